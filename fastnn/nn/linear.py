"""Fully connected layers: ``Linear`` (optionally with its activation fused) and ``Maxout``."""

import numpy as np

from .._checks import (
    check_2d,
    check_array,
    check_bool,
    check_called,
    check_choice,
    check_int,
    check_seed,
)
from ..errors import InvalidValueError, StateError
from ..kernels import activations as _act_kernels
from ..kernels import affine as _affine
from . import init as _init
from .activations import ACTIVATIONS, Activation
from .module import Module, Parameter, check_state

# What Linear's ``activation`` may name: None or "identity" (no activation), or a name of the
# ``ACTIVATIONS`` registry, each fused into the affine pass by its kernel code.
FUSED = ("identity", *ACTIVATIONS)
_ndarray = np.ndarray


def _activation(activation):
    name = "identity" if activation is None else check_choice(activation, "activation", FUSED)
    return name, _act_kernels.ACTIVATIONS[name]


def _check_saved(layer, x, y, out_shape):
    """What forward saved for backward must still be what it was: the input and the output
    are the caller's arrays, and NumPy lets one set an array's shape or strides in place."""
    if (
        x.shape != (out_shape[0], layer.in_features)
        or not x.flags.c_contiguous
        or y.shape != out_shape
    ):
        raise StateError(
            f"{layer._what()}.backward: the input or output of the last forward changed shape "
            f"(input {x.shape}, output {y.shape}); run forward again"
        )


class Linear(Module):
    """y = act(x @ W + b).

    x: (batch, in_features) -> y: (batch, out_features). ``weight`` has shape
    (in_features, out_features) and ``bias`` (out_features,). ``activation`` (None, "relu",
    "sigmoid", "tanh", "leaky_relu", "elu", "step") is applied in the same pass over the output
    as the bias, and its derivative is folded into backward; ``alpha`` is the leaky slope or
    ELU alpha (defaults 0.01 and 1.0; finite, >= 0 and > 0 respectively), ignored by other
    activations. ``init`` names an initialiser of ``fastnn.init``, a float standard deviation,
    or a callable ``fill(array, rng)``; ``rng`` is a ``numpy.random.Generator`` or a seed.
    ``bias`` is True or False.
    """

    def __init__(
        self,
        in_features,
        out_features,
        init="he",
        bias=True,
        rng=None,
        activation=None,
        alpha=None,
        dtype=np.float32,
    ):
        super().__init__(dtype)
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        self.activation, self._act = _activation(activation)
        # The leaky slope or ELU alpha, checked as that activation's layer checks it; ignored
        # by the other activations.
        kind = ACTIVATIONS.get(self.activation, Activation)
        self.alpha = kind.check_alpha(kind.default_alpha if alpha is None else alpha)
        self.init = init
        self._fill = _init.resolve(init)
        self.weight = Parameter(np.empty((self.in_features, self.out_features), self.dtype), True)
        bias = check_bool(bias, "bias")
        self.bias = Parameter(np.zeros(self.out_features, self.dtype)) if bias else None
        self._zero_bias = None if bias else np.zeros(self.out_features, self.dtype)
        self._x = self._y = None  # the last forward's input and output, for backward
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        """Draw the weights from ``init`` with ``rng``; zero the bias."""
        rng = check_seed(rng)
        if _init.filling():
            self._fill(self.weight.data, rng)
        if self.bias is not None:
            self.bias.data.fill(0)

    def _after_to(self):
        if self.bias is None:
            self._zero_bias = np.zeros(self.out_features, self.dtype)

    def _b(self):
        return self.bias.data if self.bias is not None else self._zero_bias

    def _check_params(self, grads):
        """The parameters' arrays have the layer's shapes and dtype before they go to a kernel,
        the weights C-contiguous (BLAS reads them as one block), and, when ``grads``, the
        gradients too, writeable (someone may clear the flag in place): one expression when
        they are, ``check_state`` on each (which names what is wrong) when they are not."""
        shape, dt, w, b = (self.in_features, self.out_features), self.dtype, self.weight, self.bias
        a, c = w.data, None if b is None else b.data
        if not (
            a.__class__ is _ndarray
            and a.shape == shape
            and a.dtype is dt
            and a.flags.c_contiguous
            and (c is None or (c.__class__ is _ndarray and c.shape == shape[1:] and c.dtype is dt))
        ):
            check_state(self, "weight.data", a, shape, contiguous=True)
            if c is not None:
                check_state(self, "bias.data", c, shape[1:])
        if not grads:
            return
        a, c = w.grad, None if b is None else b.grad
        if not (
            a.__class__ is _ndarray
            and a.shape == shape
            and a.dtype is dt
            and a.flags.writeable
            and a.flags.c_contiguous
            and (
                c is None
                or (c.__class__ is _ndarray and c.shape == shape[1:] and c.dtype is dt)
                and c.flags.writeable
            )
        ):
            check_state(self, "weight.grad", a, shape, writeable=True, contiguous=True)
            if c is not None:
                check_state(self, "bias.grad", c, shape[1:], writeable=True)

    @classmethod
    def state_shapes(cls, in_features, out_features, bias=True, **config):
        n_in = check_int(in_features, "in_features", low=1)
        n_out = check_int(out_features, "out_features", low=1)
        shapes = {"weight": (n_in, n_out)}
        if check_bool(bias, "bias"):
            shapes["bias"] = (n_out,)
        return shapes

    def get_config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "activation": None if self.activation == "identity" else self.activation,
            "alpha": self.alpha,
            "init": _init.spec(self.init, "he"),
        }

    def _what(self):
        return f"{type(self).__name__}({self.in_features}, {self.out_features})"

    def forward(self, x):
        x = check_array(x, self._what, self.dtype)
        check_2d(x, self.in_features, self._what)
        self._check_params(grads=False)
        y = self._buffer("y", (x.shape[0], self.out_features))
        _affine.affine_forward(x, self.weight.data, self._b(), self._act, self.alpha, y)
        self._x, self._y = x, y
        return y

    def backward(self, dout, input_grad=True):
        """dx for dout of shape (batch, out_features); writes weight.grad and bias.grad.

        With ``input_grad=False`` (the first layer of a network) dx is not computed and None
        is returned.
        """
        check_called(self._y, self._what)
        x, y = self._x, self._y
        dout = check_array(dout, self._what, self.dtype, ".backward")
        if dout.shape != y.shape:
            raise InvalidValueError(
                f"{self._what()}.backward: expected dout of shape {y.shape}, got {dout.shape}"
            )
        n = x.shape[0]
        _check_saved(self, x, y, (n, self.out_features))
        self._check_params(grads=True)
        # Unused without an activation (dout is read in its place), but the kernel's signature
        # takes a writeable array there, which a read-only dout (np.load(mmap_mode="r")) is not.
        dz = self._buffer("dz", y.shape)
        dx = self._buffer("dx", (n, self.in_features))
        db = self.bias.grad if self.bias is not None else self._buffer("db", (self.out_features,))
        _affine.affine_backward(
            dout,
            x,
            self.weight.data,
            y,
            self._act,
            self.alpha,
            dz,
            dx,
            self.weight.grad,
            db,
            input_grad,
        )
        return dx if input_grad else None

    def extra_repr(self):
        s = f"in_features={self.in_features}, out_features={self.out_features}"
        if self.bias is None:
            s += ", bias=False"
        if self.activation != "identity":
            s += f", activation={self.activation!r}"
            if self.activation in ("leaky_relu", "elu"):
                s += f", alpha={self.alpha}"
        return s


class Maxout(Module):
    """Maxout units (Goodfellow et al. 2013): y_j = max_k (x @ W + b)[j * pieces + k].

    x: (batch, in_features) -> y: (batch, out_features). ``weight`` has shape
    (in_features, out_features * pieces); unit j owns columns j*pieces ... j*pieces+pieces-1.
    """

    def __init__(
        self, in_features, out_features, pieces=2, init="xavier", rng=None, dtype=np.float32
    ):
        super().__init__(dtype)
        self.in_features = check_int(in_features, "in_features", low=1)
        self.out_features = check_int(out_features, "out_features", low=1)
        self.pieces = check_int(pieces, "pieces", low=1)
        self.init = init
        self._fill = _init.resolve(init)
        width = self.out_features * self.pieces
        self.weight = Parameter(np.empty((self.in_features, width), self.dtype), True)
        self.bias = Parameter(np.zeros(width, self.dtype))
        self._x = self._argmax = None  # saved by forward for backward
        self.reset_parameters(rng)

    def reset_parameters(self, rng=None):
        rng = check_seed(rng)
        if _init.filling():
            self._fill(self.weight.data, rng)
        self.bias.data.fill(0)

    def _check_params(self, grads):
        width = self.out_features * self.pieces
        shape = (self.in_features, width)
        check_state(self, "weight.data", self.weight.data, shape, contiguous=True)
        check_state(self, "bias.data", self.bias.data, (width,))
        if grads:
            check_state(self, "weight.grad", self.weight.grad, shape, True, contiguous=True)
            check_state(self, "bias.grad", self.bias.grad, (width,), writeable=True)

    @classmethod
    def state_shapes(cls, in_features, out_features, pieces=2, **config):
        n_in = check_int(in_features, "in_features", low=1)
        width = check_int(out_features, "out_features", low=1) * check_int(pieces, "pieces", low=1)
        return {"weight": (n_in, width), "bias": (width,)}

    def get_config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "pieces": self.pieces,
            "init": _init.spec(self.init, "xavier"),
        }

    def _what(self):
        return f"Maxout({self.in_features}, {self.out_features}, pieces={self.pieces})"

    def forward(self, x):
        x = check_array(x, self._what, self.dtype)
        check_2d(x, self.in_features, self._what)
        self._check_params(grads=False)
        n = x.shape[0]
        z = self._buffer("z", (n, self.out_features * self.pieces))
        y = self._buffer("y", (n, self.out_features))
        argmax = self._buffers.get(("argmax", y.shape))
        if argmax is None:
            argmax = np.empty(y.shape, dtype=np.int64)
            self._buffers[("argmax", y.shape)] = argmax
        _affine.affine_forward(x, self.weight.data, self.bias.data, _act_kernels.IDENTITY, 0.0, z)
        _act_kernels.maxout_forward(z, self.pieces, y, argmax)
        self._x, self._argmax = x, argmax
        return y

    def backward(self, dout, input_grad=True):
        """dx for dout of shape (batch, out_features); writes weight.grad and bias.grad."""
        check_called(self._argmax, self._what)
        x, argmax = self._x, self._argmax
        dout = check_array(dout, self._what, self.dtype, ".backward")
        if dout.shape != argmax.shape:
            raise InvalidValueError(
                f"{self._what()}.backward: expected dout of shape {argmax.shape}, got {dout.shape}"
            )
        n = x.shape[0]
        _check_saved(self, x, argmax, (n, self.out_features))
        self._check_params(grads=True)
        dz = self._buffer("dz", (n, self.out_features * self.pieces))
        dx = self._buffer("dx", (n, self.in_features))
        _act_kernels.maxout_backward(dout, argmax, self.pieces, dz)
        _affine.affine_backward(
            dz,
            x,
            self.weight.data,
            dz,
            _act_kernels.IDENTITY,
            0.0,
            dz,
            dx,
            self.weight.grad,
            self.bias.grad,
            input_grad,
        )
        return dx if input_grad else None

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"pieces={self.pieces}"
        )
