"""Activation layers: elementwise functions of any input shape, and softmax over rows.

Each keeps its output for backward (derivatives are written through the output; see
``fastnn.kernels.activations``).
"""

import numpy as np

from ._validation import as_float_array, check_called, check_real
from .kernels import activations as _k
from .kernels import softmax_cross_entropy as _sce
from .module import Module


class _Activation(Module):
    _y = None  # the last forward's output, which backward reads

    def forward(self, x):
        x = as_float_array(x, self.dtype, self.__repr__)
        if x.size == 0:
            raise ValueError(f"{self!r}: got an empty input of shape {x.shape}")
        y = self._buffer("y", x.shape)
        self._fwd(x.reshape(-1), y.reshape(-1))
        self._y = y
        return y

    def backward(self, dout):
        check_called(self._y, self.__repr__)
        y = self._y
        dout = as_float_array(dout, self.dtype, self.__repr__, ".backward")
        if dout.shape != y.shape:
            raise ValueError(
                f"{self!r}.backward: expected dout of shape {y.shape}, got {dout.shape}"
            )
        dx = self._buffer("dx", y.shape)
        self._bwd(dout.reshape(-1), y.reshape(-1), dx.reshape(-1))
        return dx


class ReLU(_Activation):
    """y = max(x, 0); derivative 1 where x > 0, else 0 (0 at x = 0)."""

    def _fwd(self, x, y):
        _k.relu_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.relu_backward(dout, y, dx)


class Sigmoid(_Activation):
    """y = 1 / (1 + exp(-x)); derivative y (1 - y). Finite for any x."""

    def _fwd(self, x, y):
        _k.sigmoid_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.sigmoid_backward(dout, y, dx)


class Tanh(_Activation):
    """y = tanh(x); derivative 1 - y**2."""

    def _fwd(self, x, y):
        _k.tanh_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.tanh_backward(dout, y, dx)


class Step(_Activation):
    """The perceptron's step function: y = 1 where x > 0, else 0. Its derivative is 0."""

    def _fwd(self, x, y):
        _k.step_forward(x, y)

    def _bwd(self, dout, y, dx):
        _k.step_backward(dout, y, dx)


class LeakyReLU(_Activation):
    """y = x where x > 0, else negative_slope * x (negative_slope finite and >= 0)."""

    def __init__(self, negative_slope=0.01, dtype=np.float32):
        super().__init__(dtype)
        self.negative_slope = check_real(negative_slope, "negative_slope", low=0.0)

    def _fwd(self, x, y):
        _k.leaky_relu_forward(x, self.negative_slope, y)

    def _bwd(self, dout, y, dx):
        _k.leaky_relu_backward(dout, y, self.negative_slope, dx)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class ELU(_Activation):
    """y = x where x > 0, else alpha * (exp(x) - 1) (alpha finite and > 0)."""

    def __init__(self, alpha=1.0, dtype=np.float32):
        super().__init__(dtype)
        self.alpha = check_real(alpha, "ELU alpha", low=0.0, low_open=True)

    def _fwd(self, x, y):
        _k.elu_forward(x, self.alpha, y)

    def _bwd(self, dout, y, dx):
        _k.elu_backward(dout, y, self.alpha, dx)

    def extra_repr(self):
        return f"alpha={self.alpha}"


class Identity(Module):
    """y = x. Returns its input (as a contiguous array of the module's dtype) unchanged."""

    def forward(self, x):
        return as_float_array(x, self.dtype, "Identity()")

    def backward(self, dout):
        return as_float_array(dout, self.dtype, "Identity().backward")


class Softmax(Module):
    """y_ij = exp(x_ij) / sum_k exp(x_ik) over each row. x: (batch, classes).

    For training a classifier use ``SoftmaxCrossEntropy`` on the logits instead: it fuses the
    two and its gradient is simply (y - t) / batch.
    """

    _y = None

    def forward(self, x):
        x = as_float_array(x, self.dtype, "Softmax()")
        if x.ndim != 2 or x.size == 0:
            raise ValueError(f"Softmax(): expected input of shape (batch, classes), got {x.shape}")
        y = self._buffer("y", x.shape)
        _sce.softmax_forward(x, y)
        self._y = y
        return y

    def backward(self, dout):
        check_called(self._y, "Softmax()")
        y = self._y
        dout = as_float_array(dout, self.dtype, "Softmax().backward")
        if dout.shape != y.shape:
            raise ValueError(
                f"Softmax().backward: expected dout of shape {y.shape}, got {dout.shape}"
            )
        dx = self._buffer("dx", y.shape)
        _sce.softmax_backward(dout, y, dx)
        return dx
