"""Layers, models, losses and initialisers: what a network is made of.

Every layer is a ``Module`` with ``forward``/``backward`` over (batch, features) arrays; a
model is a ``Sequential`` of layers (``MLP`` builds one from sizes). The hot loops are the
Numba kernels of ``fastnn.kernels``; a layer checks what it hands them, then calls them.
"""

from . import init
from .activations import (
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
from .containers import MLP, Sequential, chain_widths
from .dropout import Dropout
from .linear import Linear, Maxout
from .losses import LOSSES, MSELoss, SoftmaxCrossEntropy, check_labels, sum_squared_error
from .module import SAME, Module, Parameter, eval_lock, pack_parameters
from .normalization import BatchNorm

# The layer classes a fastnn file may name, by class name: ``fastnn.files`` rebuilds a saved
# model from these alone (never from a class a file could make it import).
LAYERS = {
    cls.__name__: cls
    for cls in (
        Linear,
        Maxout,
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

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "BatchNorm",
    "Dropout",
    "ELU",
    "Identity",
    "LAYERS",
    "LOSSES",
    "LeakyReLU",
    "Linear",
    "MLP",
    "MSELoss",
    "Maxout",
    "Module",
    "Parameter",
    "ReLU",
    "SAME",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Step",
    "Tanh",
    "chain_widths",
    "check_labels",
    "eval_lock",
    "init",
    "pack_parameters",
    "sum_squared_error",
]
