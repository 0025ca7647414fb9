"""Convolution: ``Conv2D`` over NCHW images, its activation fused as in ``Linear``.

The sizes shared with the pooling layers (a kernel size, stride or padding given as an int or
a pair, the output size, the input check) live here too.
"""

import numpy as np

from .._checks import check_array, check_bool, check_called, check_int, check_seed
from ..errors import InvalidTypeError, InvalidValueError, StateError
from ..kernels import conv as _conv
from . import init as _init
from .activations import ACTIVATIONS, Activation
from .linear import _activation
from .module import Module, Parameter, check_state

# BLAS takes 32-bit sizes: a product's dimensions (and so a patch matrix's rows and columns)
# stay below this.
_BLAS_MAX = 2**31 - 1


def pair(value, name, low):
    """``value`` (an int or a pair of ints, each >= ``low``) as a tuple (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise InvalidValueError(f"invalid {name}: {value!r}; expected an int or a pair")
        return (check_int(value[0], name, low=low), check_int(value[1], name, low=low))
    if isinstance(value, (str, bytes)):
        raise InvalidTypeError(f"{name} must be an integer or a pair, got {type(value).__name__}")
    v = check_int(value, name, low=low)
    return (v, v)


def out_size(size, kernel, stride, padding):
    """Output length of a window of ``kernel`` sliding by ``stride`` over ``size`` padded by
    ``padding`` on each side (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def check_images(layer, x, channels=None):
    """``x`` must be (batch >= 1, channels, height, width) with the padded image at least as
    large as the layer's kernel; returns (OH, OW). ``layer`` has ``kernel_size``, ``stride``
    and ``padding`` pairs and a ``_what()``."""
    if x.ndim != 4 or x.shape[0] == 0 or (channels is not None and x.shape[1] != channels):
        c = "channels" if channels is None else channels
        raise InvalidValueError(
            f"{layer._what()}: expected input of shape (batch, {c}, height, width), got {x.shape}"
        )
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    h, w = x.shape[2], x.shape[3]
    if h + 2 * ph < kh or w + 2 * pw < kw:
        raise InvalidValueError(
            f"{layer._what()}: the kernel {kh}x{kw} is larger than the padded image "
            f"{h + 2 * ph}x{w + 2 * pw} of input {x.shape}; the output would be empty"
        )
    return out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)


def check_saved(layer, saved, geometry):
    """What forward saved must still hold for backward: the same sizes and settings."""
    if saved[0] != geometry:
        raise StateError(
            f"{layer._what()}.backward: the layer's sizes changed since the last forward; "
            "run forward again"
        )


class Conv2D(Module):
    """y = act(conv(x, W) + b): a 2-D convolution (cross-correlation, as in PyTorch).

    x: (batch, in_channels, H, W) -> y: (batch, out_channels, OH, OW) with
    OH = (H + 2 * padding - kh) // stride + 1 (likewise OW). ``weight`` has shape
    (out_channels, in_channels, kh, kw) (PyTorch's layout) and ``bias`` (out_channels,).
    ``kernel_size``, ``stride`` (>= 1) and ``padding`` (>= 0, zeros) are ints or pairs
    (height, width). ``activation`` and ``alpha`` are fused as in ``Linear``. ``init`` fills
    the weight as if it were (in_channels, out_channels, kh, kw), fastnn's (in, out, ...)
    layout, so fan_in = in_channels * kh * kw as in PyTorch; ``rng`` is a Generator or a seed.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        bias=True,
        init="he",
        rng=None,
        activation=None,
        alpha=None,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        self.in_channels = check_int(in_channels, "in_channels", low=1)
        self.out_channels = check_int(out_channels, "out_channels", low=1)
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self.activation, self._act = _activation(activation)
        kind = ACTIVATIONS.get(self.activation, Activation)
        self.alpha = kind.check_alpha(kind.default_alpha if alpha is None else alpha)
        self.init = init
        self._fill = _init.resolve(init)
        self.weight = Parameter(np.empty(self._weight_shape(), self.dtype), True)
        bias = check_bool(bias, "bias")
        self.bias = Parameter(np.zeros(self.out_channels, self.dtype)) if bias else None
        self._zero_bias = None if bias else np.zeros(self.out_channels, self.dtype)
        self._saved = None  # (geometry, input shape, col, y) of the last forward
        self.reset_parameters(rng)

    def _weight_shape(self):
        return (self.out_channels, self.in_channels, *self.kernel_size)

    def reset_parameters(self, rng=None):
        """Draw the weights from ``init`` with ``rng``; zero the bias."""
        rng = check_seed(rng)
        if _init.filling():
            m, c, kh, kw = self._weight_shape()
            a = np.empty((c, m, kh, kw), self.dtype)
            self._fill(a, rng)
            self.weight.data[...] = a.transpose(1, 0, 2, 3)
        if self.bias is not None:
            self.bias.data.fill(0)

    def _after_to(self):
        if self.bias is None:
            self._zero_bias = np.zeros(self.out_channels, self.dtype)

    def _b(self):
        return self.bias.data if self.bias is not None else self._zero_bias

    def _geometry(self):
        """The sizes the kernels rely on, checked (an attribute may have been reassigned)."""
        g = (self.in_channels, self.out_channels, self.kernel_size, self.stride, self.padding)
        c, m, k, s, p = g
        ok = (
            isinstance(c, int)
            and isinstance(m, int)
            and c >= 1
            and m >= 1
            and all(
                isinstance(t, tuple) and len(t) == 2 and all(isinstance(v, int) for v in t)
                for t in (k, s, p)
            )
        )
        if not ok or min(k) < 1 or min(s) < 1 or min(p) < 0:
            raise InvalidValueError(
                f"{type(self).__name__}: in_channels {c!r}, out_channels {m!r}, kernel_size "
                f"{k!r}, stride {s!r}, padding {p!r}: expected positive ints and pairs of "
                "ints >= 1 (padding >= 0)"
            )
        return g

    def _check_params(self, grads):
        shape, b = self._weight_shape(), self.bias
        check_state(self, "weight.data", self.weight.data, shape, contiguous=True)
        if b is not None:
            check_state(self, "bias.data", b.data, shape[:1])
        if grads:
            check_state(self, "weight.grad", self.weight.grad, shape, True, contiguous=True)
            if b is not None:
                check_state(self, "bias.grad", b.grad, shape[:1], writeable=True)

    @classmethod
    def state_shapes(cls, in_channels, out_channels, kernel_size, bias=True, **config):
        c = check_int(in_channels, "in_channels", low=1)
        m = check_int(out_channels, "out_channels", low=1)
        shapes = {"weight": (m, c, *pair(kernel_size, "kernel_size", 1))}
        if check_bool(bias, "bias"):
            shapes["bias"] = (m,)
        return shapes

    def io_widths(self):
        # Its input and output are images, not rows of features: no width to chain.
        return None, None

    def get_config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": list(self.kernel_size),
            "stride": list(self.stride),
            "padding": list(self.padding),
            "bias": self.bias is not None,
            "activation": None if self.activation == "identity" else self.activation,
            "alpha": self.alpha,
            "init": _init.spec(self.init, "he"),
        }

    def _what(self):
        k = self.kernel_size
        return f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={k})"

    def forward(self, x):
        """x: (batch, in_channels, H, W) -> (batch, out_channels, OH, OW)."""
        x = check_array(x, self._what, self.dtype)
        g = self._geometry()
        oh, ow = check_images(self, x, self.in_channels)
        self._check_params(grads=False)
        n = x.shape[0]
        (kh, kw), (sh, sw), (ph, pw) = g[2:]
        rows = self.in_channels * kh * kw
        if rows > _BLAS_MAX or n * oh * ow > _BLAS_MAX:
            raise InvalidValueError(f"{self._what()}: input {x.shape} is too large")
        col = self._buffer("col", (rows, n, oh * ow))
        z = self._buffer("z", (self.out_channels, n, oh * ow))
        y = self._buffer("y", (n, self.out_channels, oh, ow))
        _conv.conv2d_forward(x, self.weight.data, self._b(), sh, sw, ph, pw, self._act,
                             self.alpha, col, z, y)  # fmt: skip
        self._saved = (g, x.shape, col, y)
        return y

    def backward(self, dout, input_grad=True):
        """dx for dout of the output's shape; writes weight.grad and bias.grad."""
        check_called(self._saved, self._what)
        dout = check_array(dout, self._what, self.dtype, ".backward")
        g = self._geometry()
        check_saved(self, self._saved, g)
        _, x_shape, col, y = self._saved
        (kh, kw), (sh, sw), (ph, pw) = g[2:]
        oh, ow = out_size(x_shape[2], kh, sh, ph), out_size(x_shape[3], kw, sw, pw)
        n, rows = x_shape[0], self.in_channels * kh * kw
        if col.shape != (rows, n, oh * ow) or y.shape != (n, self.out_channels, oh, ow):
            raise StateError(
                f"{self._what()}.backward: the output of the last forward changed shape "
                f"({y.shape}); run forward again"
            )
        if dout.shape != y.shape:
            raise InvalidValueError(
                f"{self._what()}.backward: expected dout of shape {y.shape}, got {dout.shape}"
            )
        self._check_params(grads=True)
        dz = self._buffer("dz", y.shape)
        dx = self._buffer("dx", x_shape) if input_grad else dz
        dcol = self._buffer("dcol", col.shape) if input_grad else col  # unwritten then
        gt = self._buffer("z", (self.out_channels, n, oh * ow))
        db = self.bias.grad if self.bias is not None else self._buffer("db", (self.out_channels,))
        _conv.conv2d_backward(dout, self.weight.data, y, sh, sw, ph, pw, self._act, self.alpha,
                              col, dz, gt, dcol, dx, self.weight.grad, db, input_grad)  # fmt: skip
        return dx if input_grad else None

    def extra_repr(self):
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}"
        )
        if self.bias is None:
            s += ", bias=False"
        if self.activation != "identity":
            s += f", activation={self.activation!r}"
            if self.activation in ("leaky_relu", "elu"):
                s += f", alpha={self.alpha}"
        return s
