"""Pooling over NCHW images (``MaxPool2D``, ``AvgPool2D``, ``GlobalAvgPool2D``) and
``Flatten``, which turns images into rows for the ``Linear`` layers after them."""

import numpy as np

from .._checks import check_array, check_called
from ..errors import InvalidValueError, StateError
from ..kernels import pool as _pool
from .conv import check_images, check_saved, pair
from .module import Module


class _Pool2D(Module):
    """A kh x kw window sliding by ``stride`` (default: the window's size) over the image
    padded by ``padding`` on each side, at most half the window (PyTorch's rule, so that
    every window holds a pixel). x: (batch, C, H, W) -> (batch, C, OH, OW) with
    OH = (H + 2 * padding - kh) // stride + 1 (PyTorch's ``ceil_mode=False``)."""

    def __init__(self, kernel_size, stride=None, padding=0, dtype=np.float32):
        super().__init__(dtype)
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self._geometry()
        self._saved = None

    def _geometry(self):
        k, s, p = self.kernel_size, self.stride, self.padding
        ok = all(
            isinstance(t, tuple) and len(t) == 2 and all(type(v) is int for v in t)
            for t in (k, s, p)
        )
        if not ok or min(k) < 1 or min(s) < 1 or p[0] < 0 or p[1] < 0:
            raise InvalidValueError(
                f"{type(self).__name__}: kernel_size {k!r}, stride {s!r}, padding {p!r}: "
                "expected pairs of ints >= 1 (padding >= 0)"
            )
        if 2 * p[0] > k[0] or 2 * p[1] > k[1]:
            raise InvalidValueError(
                f"{type(self).__name__}: padding {p} must be at most half the kernel size {k}"
            )
        return (k, s, p)

    def io_widths(self):
        return None, None

    def get_config(self):
        return {
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
        }

    def _what(self):
        return (
            f"{type(self).__name__}(kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding})"
        )

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"

    def forward(self, x):
        """x: (batch, C, H, W) -> (batch, C, OH, OW)."""
        x = check_array(x, self._what, self.dtype)
        g = self._geometry()
        oh, ow = check_images(self, x)
        y = self._buffer("y", (x.shape[0], x.shape[1], oh, ow))
        self._run(x, g, y)
        return y

    def backward(self, dout, input_grad=True):
        check_called(self._saved, self._what)
        dout = check_array(dout, self._what, self.dtype, ".backward")
        check_saved(self, self._saved, self._geometry())
        x_shape, out_shape = self._saved[1], self._saved[2]
        if dout.shape != out_shape:
            raise InvalidValueError(
                f"{self._what()}.backward: expected dout of shape {out_shape}, got {dout.shape}"
            )
        dx = self._buffer("dx", x_shape)
        self._back(dout, dx)
        return dx


class MaxPool2D(_Pool2D):
    """The maximum of each window; padding counts as -inf (it never wins).

    Backward sends each output's gradient to the one input its maximum came from; of equal
    maxima in a window, the first in row-major window order gets it (as PyTorch); a NaN in a
    window is its maximum (NaN propagates).
    """

    def _run(self, x, g, y):
        (kh, kw), (sh, sw), (ph, pw) = g
        argmax = self._buffers.get(("argmax", y.shape))
        if argmax is None:
            argmax = np.empty(y.shape, dtype=np.int64)
            self._buffers[("argmax", y.shape)] = argmax
        _pool.maxpool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax)
        self._saved = (g, x.shape, y.shape, argmax)

    def _back(self, dout, dx):
        argmax = self._saved[3]
        if argmax.shape != dout.shape or argmax.dtype != np.int64:
            raise StateError(f"{self._what()}.backward: run forward again")
        _pool.maxpool_backward(dout, argmax, dx)


class AvgPool2D(_Pool2D):
    """The mean of each window, padding counted as zeros: every window divides by kh * kw
    (PyTorch's default ``count_include_pad=True``)."""

    def _run(self, x, g, y):
        (kh, kw), (sh, sw), (ph, pw) = g
        _pool.avgpool_forward(x, kh, kw, sh, sw, ph, pw, y)
        self._saved = (g, x.shape, y.shape)

    def _back(self, dout, dx):
        (kh, kw), (sh, sw), (ph, pw) = self._saved[0]
        _pool.avgpool_backward(dout, kh, kw, sh, sw, ph, pw, dx)


class GlobalAvgPool2D(Module):
    """The mean of each channel over the image: x (batch, C, H, W) -> (batch, C)."""

    def __init__(self, dtype=np.float32):
        super().__init__(dtype)
        self._shape = None  # the last forward's input shape

    def io_widths(self):
        return None, None

    def get_config(self):
        return {}

    def _what(self):
        return "GlobalAvgPool2D()"

    def forward(self, x):
        """x: (batch, C, H, W) -> (batch, C)."""
        x = check_array(x, self._what, self.dtype)
        if x.ndim != 4 or 0 in x.shape:
            raise InvalidValueError(
                f"GlobalAvgPool2D(): expected input of shape (batch, channels, height, width), "
                f"got {x.shape}"
            )
        n, c, h, w = x.shape
        y = self._buffer("y", (n, c, 1, 1))
        _pool.avgpool_forward(x, h, w, 1, 1, 0, 0, y)
        self._shape = x.shape
        return y.reshape(n, c)

    def backward(self, dout, input_grad=True):
        check_called(self._shape, self._what)
        dout = check_array(dout, self._what, self.dtype, ".backward")
        n, c, h, w = self._shape
        if dout.shape != (n, c):
            raise InvalidValueError(
                f"GlobalAvgPool2D().backward: expected dout of shape {(n, c)}, got {dout.shape}"
            )
        dx = self._buffer("dx", self._shape)
        _pool.avgpool_backward(dout.reshape(n, c, 1, 1), h, w, 1, 1, 0, 0, dx)
        return dx


class Flatten(Module):
    """(batch, C, H, W) -> (batch, C * H * W) in C order, as ``torch.flatten(x, 1)`` (any
    input of two or more axes: everything after the batch axis becomes one row). Its output
    width depends on the input's shape, so ``io_widths`` cannot tell it."""

    def __init__(self, dtype=np.float32):
        super().__init__(dtype)
        self._shape = None

    def io_widths(self):
        return None, None

    def get_config(self):
        return {}

    def _what(self):
        return "Flatten()"

    def forward(self, x):
        x = check_array(x, self._what, self.dtype)
        if x.ndim < 2 or x.shape[0] == 0:
            raise InvalidValueError(
                f"Flatten(): expected input of shape (batch, ...) with two or more axes, "
                f"got {x.shape}"
            )
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout, input_grad=True):
        check_called(self._shape, self._what)
        dout = check_array(dout, self._what, self.dtype, ".backward")
        n = self._shape[0]
        width = int(np.prod(self._shape[1:]))
        if dout.shape != (n, width):
            raise InvalidValueError(
                f"Flatten().backward: expected dout of shape {(n, width)}, got {dout.shape}"
            )
        return dout.reshape(self._shape)
