"""The course's experiments, one function each, runnable from Python or the command line.

    import fastnn.experiments as ex
    result = ex.gates(out="figures", quick=True)     # the numbers, as a dict
    ex.list_experiments()                            # [(name, one-line description), ...]

    fastnn experiment gates --out figures [--quick] [--seed N]
    fastnn experiment --list

Every experiment is a function ``NAME(*, quick=False, seed=0, out=None, file=None)``: it runs,
prints its table to ``file`` (default stdout; ``file=False`` prints nothing), writes its
figures as PNG files into the folder ``out`` when one is given (which needs matplotlib, the
``plot`` extra), and returns a dict of the numbers it measured; ``result["figures"]`` lists
the files written. ``quick=True`` runs a smaller version in seconds (the tests use it). Names
on the command line use hyphens (``gradient-descent``); the functions use underscores
(``gradient_descent``).
"""

from ..._checks import check_choice

# name on the command line -> one-line description, in the course's order
_DESCRIPTIONS = {
    "gates": "AND, NAND, OR, XOR truth tables; XOR regions of one layer vs two",
    "activations": "step, sigmoid, tanh, ReLU, Leaky ReLU, ELU and derivatives",
    "gradient-descent": "gradient descent on x0^2 + x1^2; too large and too small learning rates",
    "optimizer-paths": "SGD, Momentum, Nesterov, AdaGrad, RMSprop, AdaDelta, Adam on x^2/20 + y^2",
    "weight-init-histograms": "activation histograms of 5 layers for std 1, std 0.01, Xavier, He",
    "symmetric-weights": "equal initial weights keep every hidden unit identical",
    "weight-init-mnist": "loss curves of a 5-layer ReLU network with std 0.01, Xavier, He",
    "optimizers-mnist": "loss curves of each optimizer on MNIST",
    "batchnorm": "accuracy with and without batch norm over 16 weight scales",
    "overfitting": "300 images, 7 layers: no regularisation vs weight decay vs dropout",
    "hyperparameter-search": "random search over learning rate and weight decay, two rounds",
    "vanishing-gradients": "gradient norm per layer of deep sigmoid, tanh, ReLU networks",
    "activation-table": "test accuracy for initialisations x activations in a deep MLP",
    "preprocessing": "points before and after standardisation and L2 norm",
    "tuning": "test accuracy against hidden units and number of layers",
    "conv-filters": "SimpleConvNet's first-layer filters before and after training",
}
# name on the command line -> (module in this package, one-line description); the module, and
# the experiment's function in it, are named as on the command line with underscores.
EXPERIMENTS = {name: (name.replace("-", "_"), text) for name, text in _DESCRIPTIONS.items()}

__all__ = ["EXPERIMENTS", "list_experiments", "run", *[m for m, _ in EXPERIMENTS.values()]]


def list_experiments():
    """``[(name, description), ...]`` in the course's order."""
    return [(name, description) for name, (_, description) in EXPERIMENTS.items()]


def _function(name):
    key = check_choice(
        name.replace("_", "-") if isinstance(name, str) else name, "experiment", EXPERIMENTS
    )
    return globals()[EXPERIMENTS[key][0]]


def run(name, **kwargs):
    """Run the experiment called ``name`` (hyphens or underscores) with ``kwargs``."""
    return _function(name)(**kwargs)


# The functions, under the names of their modules (which they hide: fastnn.experiments.gates is
# the function; its module is sys.modules["fastnn.experiments.gates"]).
from .activation_table import activation_table  # noqa: E402, F401
from .activations import activations  # noqa: E402, F401
from .batchnorm import batchnorm  # noqa: E402, F401
from .conv_filters import conv_filters  # noqa: E402, F401
from .gates import gates  # noqa: E402, F401
from .gradient_descent import gradient_descent  # noqa: E402, F401
from .hyperparameter_search import hyperparameter_search  # noqa: E402, F401
from .optimizer_paths import optimizer_paths  # noqa: E402, F401
from .optimizers_mnist import optimizers_mnist  # noqa: E402, F401
from .overfitting import overfitting  # noqa: E402, F401
from .preprocessing import preprocessing  # noqa: E402, F401
from .symmetric_weights import symmetric_weights  # noqa: E402, F401
from .tuning import tuning  # noqa: E402, F401
from .vanishing_gradients import vanishing_gradients  # noqa: E402, F401
from .weight_init_histograms import weight_init_histograms  # noqa: E402, F401
from .weight_init_mnist import weight_init_mnist  # noqa: E402, F401
