"""Inverted dropout: kept units are scaled by 1 / (1 - p) so the expected output equals the input.

The uniform numbers ``u`` come from the caller (a ``numpy.random.Generator`` in the layer), so
the kernels hold no random state and a seed reproduces a mask exactly.
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks


@njit(**SERIAL)
def _dropout_forward_range(x, u, p, scale, out, mask, lo, hi):
    # Unsigned bounds spare Numba a negative-index test per access, which blocks SIMD.
    for i in range(np.uint64(lo), np.uint64(hi)):
        mask[i] = scale if u[i] >= p else 0.0
        # Multiply by the stored (rounded) mask, as backward will.
        out[i] = x[i] * mask[i]


@njit(**PARALLEL)
def dropout_forward(x, u, p, out, mask):
    """mask = (u >= p) / (1 - p), out = x * mask. x, u, out, mask: 1-D of one size; 0 <= p < 1.

    The comparison u >= p is made in float64.
    """
    n = x.size
    scale = 1.0 / (1.0 - p)
    c = n_chunks(n)
    if c == 1:
        _dropout_forward_range(x, u, p, scale, out, mask, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _dropout_forward_range(x, u, p, scale, out, mask, lo, hi)


@njit(**SERIAL)
def _dropout_backward_range(dout, mask, dx, lo, hi):
    # Unsigned bounds spare Numba a negative-index test per access, which blocks SIMD.
    for i in range(np.uint64(lo), np.uint64(hi)):
        dx[i] = dout[i] * mask[i]


@njit(**PARALLEL)
def dropout_backward(dout, mask, dx):
    """dx = dout * mask. dout, mask, dx: 1-D of one size."""
    n = dout.size
    c = n_chunks(n)
    if c == 1:
        _dropout_backward_range(dout, mask, dx, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _dropout_backward_range(dout, mask, dx, lo, hi)
