"""Optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSprop, AdaDelta, Adam, AdamW.

An optimizer packs its parameters into one flat data buffer and one flat gradient buffer
(``fastnn.nn.pack_parameters``), so a step is a single kernel call over the whole model.
The updates are exactly torch.optim's (same defaults, same order of operations), and each
class's docstring says how its update relates to the course's form. ``base.py`` holds what
they share (buffers, hyperparameter checks, state dicts); ``sgd.py`` and ``adaptive.py`` the
updates, simple to complex; ``clip.py`` the global gradient norm.

    opt = Adam(model.parameters(), lr=1e-3)
    for x, t in batches:
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())    # writes the parameters' gradients
        opt.step()
    opt.lr = 1e-4                          # hyperparameters can change between steps
"""

from .._checks import check_choice
from .adaptive import AdaDelta, Adadelta, AdaGrad, Adagrad, Adam, AdamW, RMSprop
from .base import Optimizer, clip_grad_norm
from .sgd import SGD, Momentum, Nesterov

__all__ = [
    "AdaDelta",
    "Adadelta",
    "AdaGrad",
    "Adagrad",
    "Adam",
    "AdamW",
    "Momentum",
    "Nesterov",
    "OPTIMIZERS",
    "Optimizer",
    "RMSprop",
    "SGD",
    "clip_grad_norm",
    "get",
]

# The optimizers by name, as ``fit(optimizer=...)``, the command line, the tuner and the
# scikit-learn estimators (``solver=``) take them.
OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adadelta": AdaDelta,
    "adam": Adam,
    "adamw": AdamW,
}


def get(name, params, **kwargs):
    """The optimizer called ``name`` (case-insensitive) over ``params``, e.g.
    ``get("adam", model.parameters(), lr=1e-3)``."""
    return OPTIMIZERS[check_choice(name, "optimizer", OPTIMIZERS)](params, **kwargs)
