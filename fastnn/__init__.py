"""fastnn: train multilayer neural networks fast on the CPU.

    import fastnn as fn
    model = fn.MLP([784, 100, 10], seed=0)
    loss = fn.SoftmaxCrossEntropy()
    opt = fn.optim.Adam(model.parameters(), lr=1e-3)

The hot paths are Numba kernels in ``fastnn.kernels``, each with a NumPy twin in
``fastnn.kernels.reference``. The packages, from the bottom up: ``nn`` (layers, models,
losses, initialisers), ``optim`` (optimizers), ``data`` (datasets and preprocessing),
``files`` (saving), ``training`` (fit, evaluate, callbacks, MPI), ``tune`` (hyperparameter
search), ``course`` (perceptrons, graphs, gradient checks, the experiments), ``onnx``
(``export_onnx``: the model as an ONNX graph) and ``cli``.
"""

import os as _os
import sys as _sys

# Numba's OpenMP workers spin after each parallel region by default, taking the cores that
# the BLAS threads of the next matrix product need: on 2 cores a 784-1024-1024-10 training
# step at batch 512 took 79 ms with 2 threads (59 ms with 1) and 32 ms with passive waiting
# (bench/NOTES.md). Set before the OpenMP runtime loads; a value the user chose is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import data, errors, nn, optim, training, tune  # noqa: E402, F401
from ._version import __version__  # noqa: E402, F401
from .course import experiments, graph, perceptron  # noqa: E402
from .course.gradcheck import (  # noqa: E402
    gradcheck,
    gradient_ascent,
    gradient_descent,
    numerical_gradient,
)
from .data import datasets, preprocessing  # noqa: E402
from .files import load, save  # noqa: E402
from .nn import (  # noqa: E402
    ELU,
    MLP,
    AvgPool2D,
    BatchNorm,
    BinaryCrossEntropy,
    Conv2D,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    LeakyReLU,
    Linear,
    Maxout,
    MaxPool2D,
    Module,
    MSELoss,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    SoftmaxCrossEntropy,
    Step,
    Tanh,
    init,
    pack_parameters,
    sum_squared_error,
)
from .nn.plan import compiled  # noqa: E402
from .onnx import export_onnx  # noqa: E402
from .threads import choose_threading_layer as _choose_threading_layer  # noqa: E402
from .threads import get_num_threads, set_num_threads, threading_layer  # noqa: E402
from .training import (  # noqa: E402
    History,
    TrainingDivergedError,
    callbacks,
    distributed,
    evaluate,
    fit,
)

# The public modules of fastnn's first, flat layout, under the names users import them by:
# ``import fastnn.datasets`` and ``from fastnn.callbacks import EarlyStopping`` keep working
# and give the very module that now lives in its package (not a copy of it).
_MODULES = {
    "callbacks": callbacks,
    "datasets": datasets,
    "distributed": distributed,
    "experiments": experiments,
    "graph": graph,
    "init": init,
    "perceptron": perceptron,
    "preprocessing": preprocessing,
}
for _name, _module in _MODULES.items():
    _sys.modules[f"{__name__}.{_name}"] = _module
    for _sub in [m for m in _sys.modules if m.startswith(_module.__name__ + ".")]:
        # Its submodules too: ``fastnn.experiments.gates`` is fastnn.course.experiments.gates.
        _sys.modules[f"{__name__}.{_name}" + _sub[len(_module.__name__) :]] = _sys.modules[_sub]

# OpenMP, else TBB, unless the user chose a layer: both allow parallel kernels from several
# Python threads at once; under workqueue fastnn serialises them (fastnn/threads.py).
_choose_threading_layer()

__all__ = [
    "AvgPool2D",
    "BatchNorm",
    "BinaryCrossEntropy",
    "Conv2D",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2D",
    "History",
    "ELU",
    "Identity",
    "LeakyReLU",
    "Linear",
    "MLP",
    "MSELoss",
    "Maxout",
    "MaxPool2D",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Step",
    "Tanh",
    "TrainingDivergedError",
    "callbacks",
    "compiled",
    "datasets",
    "evaluate",
    "export_onnx",
    "fit",
    "load",
    "save",
    "get_num_threads",
    "gradcheck",
    "gradient_ascent",
    "gradient_descent",
    "graph",
    "init",
    "numerical_gradient",
    "optim",
    "pack_parameters",
    "perceptron",
    "preprocessing",
    "set_num_threads",
    "sum_squared_error",
    "threading_layer",
]
