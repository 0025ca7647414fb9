"""Inverted dropout."""

import numbers

import numpy as np

from ._validation import as_float_array, as_rng
from .kernels.dropout import dropout_backward, dropout_forward
from .module import Module


def _check_p(p):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise TypeError(f"dropout probability must be a real number, got {type(p).__name__}")
    value = float(p)
    if not 0.0 <= value < 1.0:
        raise ValueError(f"invalid dropout probability: {value}; expected 0 <= p < 1")
    return value


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
        self.rng = as_rng(rng)
        # The last forward's input shape and mask (None when that forward was the identity).
        self._shape = None
        self._mask = None

    @property
    def p(self):
        return self._p

    @p.setter
    def p(self, value):
        self._p = _check_p(value)

    def forward(self, x):
        """Any shape; returns an array of x's shape."""
        x = as_float_array(x, self.dtype, self.__repr__)
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

    def backward(self, dout):
        """dout of the last input's shape -> dx = dout * mask (dout itself when identity)."""
        if self._shape is None:
            raise RuntimeError(f"{self!r}.backward called before forward")
        dout = as_float_array(dout, self.dtype, self.__repr__, ".backward")
        if dout.shape != self._shape:
            raise ValueError(
                f"{self!r}.backward: expected dout of shape {self._shape}, got {dout.shape}"
            )
        if self._mask is None:
            return dout
        dx = self._buffer("dx", dout.shape)
        dropout_backward(dout.reshape(-1), self._mask.reshape(-1), dx.reshape(-1))
        return dx

    def extra_repr(self):
        return f"p={self._p}"
