"""Inverted dropout."""

import numpy as np

from .._checks import check_array, check_real, check_seed
from ..errors import InvalidValueError, StateError
from ..kernels.dropout import dropout_backward, dropout_forward
from .module import SAME, Module


def check_p(p):
    """A dropout probability: a real number in [0, 1)."""
    return check_real(p, "dropout probability", low=0.0, high=1.0, closed="left")


class Dropout(Module):
    """Zero each unit with probability ``p`` in training and scale the rest by 1 / (1 - p).

    Eval mode (and ``p == 0``) is the identity: forward returns its input (as a contiguous
    array of the layer's dtype) and backward returns dout. ``rng`` is a
    ``numpy.random.Generator``, an int seed or ``SeedSequence``, or None for a fresh unseeded
    generator; the layer draws from ``self.rng`` only, never from NumPy's global state.
    """

    def __init__(self, p=0.5, rng=None, dtype=np.float32):
        super().__init__(dtype)
        self.p = p
        self.rng = check_seed(rng)
        # The last forward's input shape and mask (None when that forward was the identity).
        self._shape = None
        self._mask = None

    @property
    def p(self):
        return self._p

    @p.setter
    def p(self, value):
        self._p = check_p(value)

    def io_widths(self):
        return None, SAME

    def get_config(self):
        return {"p": self._p}

    def forward(self, x):
        """Any shape; returns an array of x's shape."""
        x = check_array(x, self.__repr__, self.dtype)
        self._shape = x.shape
        if not self.training or self._p == 0.0:
            self._mask = None
            return x
        u = self._buffer("u", x.shape)
        mask = self._buffer("mask", x.shape)
        out = self._buffer("out", x.shape)
        self.rng.random(out=u, dtype=u.dtype)
        dropout_forward(x.reshape(-1), u.reshape(-1), self._p, out.reshape(-1), mask.reshape(-1))
        self._mask = mask
        return out

    def backward(self, dout, input_grad=True):
        """dout of the last input's shape -> dx = dout * mask (dout itself when identity)."""
        if self._shape is None:
            raise StateError(f"{self!r}.backward called before forward")
        dout = check_array(dout, self.__repr__, self.dtype, ".backward")
        if dout.shape != self._shape:
            raise InvalidValueError(
                f"{self!r}.backward: expected dout of shape {self._shape}, got {dout.shape}"
            )
        if self._mask is None:
            return dout
        dx = self._buffer("dx", dout.shape)
        dropout_backward(dout.reshape(-1), self._mask.reshape(-1), dx.reshape(-1))
        return dx

    def extra_repr(self):
        return f"p={self._p}"
