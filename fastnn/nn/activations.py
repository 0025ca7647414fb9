"""Activation layers: elementwise functions of any input shape, and softmax over rows.

Each keeps its output for backward (derivatives are written through the output; see
``fastnn.kernels.activations``). ``ACTIVATIONS`` at the end names the nonlinearities: what
``Linear(activation=...)`` fuses, ``MLP(activation=...)`` puts between its layers, and the
command line, the tuner and the scikit-learn estimators offer.
"""

import numpy as np

from .._checks import check_array, check_called, check_real
from ..errors import InvalidValueError
from ..kernels import activations as _k
from ..kernels import softmax_cross_entropy as _sce
from .module import SAME, Module


class Activation(Module):
    """Base class of the elementwise activation layers.

    ``default_init`` is the initialiser ``MLP`` gives the Linear layers before it: He's scale
    for ReLU-like activations, Xavier's for the others.
    """

    default_init = "xavier"
    default_alpha = 0.0  # the activation's parameter (leaky slope, ELU alpha), if it has one
    _y = None  # the last forward's output, which backward reads

    @classmethod
    def check_alpha(cls, alpha):
        """``alpha`` checked as this activation's parameter (which ``Linear`` also takes)."""
        return check_real(alpha, "alpha")

    def io_widths(self):
        return None, SAME

    def get_config(self):
        return {}

    def forward(self, x):
        x = check_array(x, self.__repr__, self.dtype)
        if x.size == 0:
            raise InvalidValueError(f"{self!r}: got an empty input of shape {x.shape}")
        y = self._buffer("y", x.shape)
        self._fwd(x.reshape(-1), y.reshape(-1))
        self._y = y
        return y

    def backward(self, dout, input_grad=True):
        check_called(self._y, self.__repr__)
        y = self._y
        dout = check_array(dout, self.__repr__, self.dtype, ".backward")
        if dout.shape != y.shape:
            raise InvalidValueError(
                f"{self!r}.backward: expected dout of shape {y.shape}, got {dout.shape}"
            )
        dx = self._buffer("dx", y.shape)
        self._bwd(dout.reshape(-1), y.reshape(-1), dx.reshape(-1))
        return dx


class ReLU(Activation):
    """y = max(x, 0); derivative 1 where x > 0, else 0 (0 at x = 0)."""

    default_init = "he"

    def _fwd(self, x, y):
        _k.relu_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.relu_backward(dout, y, dx)


class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)); derivative y (1 - y). Finite for any x."""

    def _fwd(self, x, y):
        _k.sigmoid_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.sigmoid_backward(dout, y, dx)


class Tanh(Activation):
    """y = tanh(x); derivative 1 - y**2."""

    def _fwd(self, x, y):
        _k.tanh_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.tanh_backward(dout, y, dx)


class Step(Activation):
    """The perceptron's step function: y = 1 where x > 0, else 0. Its derivative is 0."""

    def _fwd(self, x, y):
        _k.step_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.step_backward(dout, y, dx)


class LeakyReLU(Activation):
    """y = x where x > 0, else negative_slope * x (negative_slope finite and >= 0)."""

    default_init = "he"

    def __init__(self, negative_slope=0.01, dtype=np.float32):
        super().__init__(dtype)
        self.negative_slope = self.check_alpha(negative_slope)

    default_alpha = 0.01

    @classmethod
    def check_alpha(cls, alpha):
        return check_real(alpha, "negative_slope", low=0.0)

    def get_config(self):
        return {"negative_slope": self.negative_slope}

    def _fwd(self, x, y):
        _k.leaky_relu_forward(x, self.negative_slope, y)

    def _bwd(self, dout, y, dx):
        _k.leaky_relu_backward(dout, y, self.negative_slope, dx)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(Activation):
    """y = x where x > 0, else alpha * (exp(x) - 1) (alpha finite and > 0)."""

    default_init = "he"

    def __init__(self, alpha=1.0, dtype=np.float32):
        super().__init__(dtype)
        self.alpha = self.check_alpha(alpha)

    default_alpha = 1.0

    @classmethod
    def check_alpha(cls, alpha):
        return check_real(alpha, "ELU alpha", low=0.0, closed="right")

    def get_config(self):
        return {"alpha": self.alpha}

    def _fwd(self, x, y):
        _k.elu_forward(x, self.alpha, y)

    def _bwd(self, dout, y, dx):
        _k.elu_backward(dout, y, self.alpha, dx)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Identity(Module):
    """y = x. Returns its input (as a contiguous array of the module's dtype) unchanged."""

    def io_widths(self):
        return None, SAME

    def get_config(self):
        return {}

    def forward(self, x):
        return check_array(x, "Identity()", self.dtype)

    def backward(self, dout, input_grad=True):
        return check_array(dout, "Identity().backward", self.dtype)


class Softmax(Module):
    """y_ij = exp(x_ij) / sum_k exp(x_ik) over each row. x: (batch, classes).

    For training a classifier use ``SoftmaxCrossEntropy`` on the logits instead: it fuses the
    two and its gradient is simply (y - t) / batch.
    """

    _y = None

    def io_widths(self):
        return None, SAME

    def get_config(self):
        return {}

    def forward(self, x):
        x = check_array(x, "Softmax()", self.dtype)
        if x.ndim != 2 or x.size == 0:
            raise InvalidValueError(
                f"Softmax(): expected input of shape (batch, classes), got {x.shape}"
            )
        y = self._buffer("y", x.shape)
        _sce.softmax_forward(x, y)
        self._y = y
        return y

    def backward(self, dout, input_grad=True):
        check_called(self._y, "Softmax()")
        y = self._y
        dout = check_array(dout, "Softmax().backward", self.dtype)
        if dout.shape != y.shape:
            raise InvalidValueError(
                f"Softmax().backward: expected dout of shape {y.shape}, got {dout.shape}"
            )
        dx = self._buffer("dx", y.shape)
        _sce.softmax_backward(dout, y, dx)
        return dx


# The nonlinearities by name (the kernels' names, ``fastnn.kernels.activations.ACTIVATIONS``).
ACTIVATIONS = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "step": Step,
}
