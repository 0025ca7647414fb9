"""Every layer's and loss's forward + backward, time and peak memory, over sizes and dtypes.

A size "RxC" is a batch of R rows of C features; Linear and Maxout map C features to C
(Maxout: C/2 units of 2 pieces, the same matrix product). ``setup`` builds the layer from
a fixed seed and runs one forward + backward, so compile time stays out of the timings.
"""

import numpy as np

import fastnn as fn

SIZES = ["100x100", "256x1024"]
DTYPES = ["float32", "float64"]


def _data(size, dtype):
    rows, cols = map(int, size.split("x"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, cols)).astype(dtype)
    return rows, cols, x, rng


class _Layer:
    """Times ``self.layer``'s forward on ``self.x`` then backward of ``self.dout``."""

    def _prepare(self, layer, x, dout):
        self.layer, self.x, self.dout = layer, x, dout
        self._step()

    def _step(self):
        self.layer.forward(self.x)
        self.layer.backward(self.dout)


class LinearLayer(_Layer):
    """Linear with each fused activation ("identity": none)."""

    params = (
        ["identity", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "step"],
        SIZES,
        DTYPES,
    )
    param_names = ["activation", "size", "dtype"]

    def setup(self, activation, size, dtype):
        rows, cols, x, rng = _data(size, dtype)
        act = None if activation == "identity" else activation
        layer = fn.Linear(cols, cols, activation=act, rng=0, dtype=dtype)
        self._prepare(layer, x, rng.standard_normal((rows, cols)).astype(dtype))

    def time_forward_backward(self, activation, size, dtype):
        self._step()

    def peakmem_forward_backward(self, activation, size, dtype):
        self._step()


class MaxoutLayer(_Layer):
    params = (SIZES, DTYPES)
    param_names = ["size", "dtype"]

    def setup(self, size, dtype):
        rows, cols, x, rng = _data(size, dtype)
        layer = fn.Maxout(cols, cols // 2, pieces=2, rng=0, dtype=dtype)
        self._prepare(layer, x, rng.standard_normal((rows, cols // 2)).astype(dtype))

    def time_forward_backward(self, size, dtype):
        self._step()

    def peakmem_forward_backward(self, size, dtype):
        self._step()


class BatchNormLayer(_Layer):
    """Batch norm in training mode (batch statistics) and eval mode (running statistics)."""

    params = (["train", "eval"], SIZES, DTYPES)
    param_names = ["mode", "size", "dtype"]

    def setup(self, mode, size, dtype):
        rows, cols, x, rng = _data(size, dtype)
        layer = fn.BatchNorm(cols, dtype=dtype)
        layer.train(mode == "train")
        self._prepare(layer, x, rng.standard_normal((rows, cols)).astype(dtype))

    def time_forward_backward(self, mode, size, dtype):
        self._step()

    def peakmem_forward_backward(self, mode, size, dtype):
        self._step()


class DropoutLayer(_Layer):
    """Dropout with p = 0.5 in training mode (in eval mode it returns its input)."""

    params = (SIZES, DTYPES)
    param_names = ["size", "dtype"]

    def setup(self, size, dtype):
        rows, cols, x, rng = _data(size, dtype)
        layer = fn.Dropout(0.5, rng=0, dtype=dtype)
        self._prepare(layer, x, rng.standard_normal((rows, cols)).astype(dtype))

    def time_forward_backward(self, size, dtype):
        self._step()

    def peakmem_forward_backward(self, size, dtype):
        self._step()


ACTIVATION_LAYERS = {
    "relu": fn.ReLU,
    "sigmoid": fn.Sigmoid,
    "tanh": fn.Tanh,
    "step": fn.Step,
    "leaky_relu": fn.LeakyReLU,
    "elu": fn.ELU,
    "identity": fn.Identity,
    "softmax": fn.Softmax,
}


class ActivationLayers(_Layer):
    """Each activation layer on its own (as after batch norm), and softmax over rows."""

    params = (list(ACTIVATION_LAYERS), SIZES, DTYPES)
    param_names = ["layer", "size", "dtype"]

    def setup(self, layer, size, dtype):
        rows, cols, x, rng = _data(size, dtype)
        module = ACTIVATION_LAYERS[layer](dtype=dtype)
        self._prepare(module, x, rng.standard_normal((rows, cols)).astype(dtype))

    def time_forward_backward(self, layer, size, dtype):
        self._step()

    def peakmem_forward_backward(self, layer, size, dtype):
        self._step()


class Losses:
    """Loss value and gradient: softmax + cross-entropy on labels or on one-hot targets, and
    mean squared error. A size "RxC" is R rows of C classes (outputs)."""

    params = (
        ["cross_entropy_labels", "cross_entropy_targets", "mse"],
        ["100x10", "256x1024"],
        DTYPES,
    )
    param_names = ["loss", "size", "dtype"]

    def setup(self, loss, size, dtype):
        rows, cols, z, rng = _data(size, dtype)
        labels = rng.integers(0, cols, rows)
        if loss == "cross_entropy_labels":
            self.loss, self.target = fn.SoftmaxCrossEntropy(), labels
        elif loss == "cross_entropy_targets":
            self.loss, self.target = fn.SoftmaxCrossEntropy(), np.eye(cols, dtype=dtype)[labels]
        else:
            self.loss = fn.MSELoss()
            self.target = rng.standard_normal((rows, cols)).astype(dtype)
        self.z = z
        self._step()

    def _step(self):
        self.loss.forward(self.z, self.target)
        self.loss.backward()

    def time_forward_backward(self, loss, size, dtype):
        self._step()

    def peakmem_forward_backward(self, loss, size, dtype):
        self._step()
