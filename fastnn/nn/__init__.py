"""Layers, models, losses and initialisers: what a network is made of.

Every layer is a ``Module`` with ``forward``/``backward`` over (batch, features) arrays, or
(batch, channels, height, width) images for the convolution and pooling layers; a
model is a ``Sequential`` of layers (``MLP`` builds one from sizes). The hot loops are the
Numba kernels of ``fastnn.kernels``; a layer checks what it hands them, then calls them.
"""

from . import init  # noqa: F401
from .activations import (  # noqa: F401
    ACTIVATIONS,
    ELU,
    Activation,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Step,
    Tanh,
)
from .containers import MLP, Sequential, chain_widths  # noqa: F401
from .conv import Conv2D
from .dropout import Dropout  # noqa: F401
from .linear import Linear, Maxout
from .losses import (  # noqa: F401
    LOSSES,
    BinaryCrossEntropy,
    MSELoss,
    SoftmaxCrossEntropy,
    check_labels,
    check_unit_targets,
    sum_squared_error,
)
from .module import (  # noqa: F401
    SAME,
    Module,
    Parameter,
    eval_lock,
    held_for_training,
    pack_parameters,
    using,
)
from .normalization import BatchNorm
from .pooling import AvgPool2D, Flatten, GlobalAvgPool2D, MaxPool2D
from .zoo import CONV_NETS, lenet5, simple_conv_net  # noqa: F401

# The layer classes a fastnn file may name, by class name: ``fastnn.files`` rebuilds a saved
# model from these alone (never from a class a file could make it import).
LAYERS = {
    cls.__name__: cls
    for cls in (
        Linear,
        Maxout,
        Conv2D,
        MaxPool2D,
        AvgPool2D,
        GlobalAvgPool2D,
        Flatten,
        BatchNorm,
        Dropout,
        ReLU,
        Sigmoid,
        Tanh,
        LeakyReLU,
        ELU,
        Step,
        Identity,
        Softmax,
        Sequential,
        MLP,
    )
}
