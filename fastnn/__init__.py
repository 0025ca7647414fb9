"""fastnn: train multilayer neural networks fast on the CPU.

    import fastnn as fn
    model = fn.MLP([784, 100, 10], seed=0)
    loss = fn.SoftmaxCrossEntropy()
    opt = fn.optim.Adam(model.parameters(), lr=1e-3)

The hot paths are Numba kernels in ``fastnn.kernels``, each with a NumPy twin in
``fastnn.kernels.reference``.
"""

import os as _os

# Numba's OpenMP workers spin after each parallel region by default, taking the cores that
# the BLAS threads of the next matrix product need: on 2 cores a 784-1024-1024-10 training
# step at batch 512 took 79 ms with 2 threads (59 ms with 1) and 32 ms with passive waiting
# (bench/NOTES.md). Set before the OpenMP runtime loads; a value the user chose is kept.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"

from . import callbacks, datasets, graph, init, optim, perceptron, preprocessing
from .activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .container import MLP, Sequential
from .dropout import Dropout
from .files import load, save
from .gradcheck import gradcheck, gradient_ascent, gradient_descent, numerical_gradient
from .linear import Linear, Maxout
from .losses import MSELoss, SoftmaxCrossEntropy, sum_squared_error
from .module import Module, Parameter, pack_parameters
from .normalization import BatchNorm
from .threads import choose_threading_layer as _choose_threading_layer
from .threads import get_num_threads, set_num_threads, threading_layer
from .training import History, TrainingDivergedError, evaluate, fit

# OpenMP, else TBB, unless the user chose a layer: both allow parallel kernels from several
# Python threads at once; under workqueue fastnn serialises them (fastnn/threads.py).
_choose_threading_layer()

__all__ = [
    "BatchNorm",
    "Dropout",
    "History",
    "ELU",
    "Identity",
    "LeakyReLU",
    "Linear",
    "MLP",
    "MSELoss",
    "Maxout",
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
    "datasets",
    "evaluate",
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
