"""Affine (fully connected) layer: y = act(x @ W + b), and its backward pass.

The matrix products go to BLAS through ``blas.gemm`` into preallocated outputs (the same call
the compiled training step makes, so that the two give the same bits); the bias and the
activation are applied by one compiled pass over the product (``bias_act_forward``), and
backward folds the activation's derivative into the pass that sums the bias gradient
(``bias_act_backward``). ``act`` is a code from ``activations.ACTIVATIONS`` and ``alpha`` its
parameter (leaky slope, ELU alpha).

Not ``np.dot`` inside a Numba kernel: Numba's ``np.dot`` calls BLAS through a wrapper that
costs several microseconds a call, most of a product's time at the course's sizes
(bench/NOTES.md); ``blas.gemm`` calls sgemm/dgemm directly.

Shapes: x (batch, in), W (in, out), b (out,), y (batch, out).
"""

import numpy as np
from numba import njit, prange

from . import blas
from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks
from .activations import IDENTITY, _backward_range, _forward_range

_MIN_COLS = 256


@njit(**SERIAL)
def _bias_act_rows(y, b, act, alpha, lo, hi):
    m = np.uint64(y.shape[1])
    for i in range(lo, hi):
        row = y[i]
        for j in range(m):
            row[j] += b[j]
        # The activation's own loop, in place on the row (still in L1 cache).
        _forward_range(row, row, act, alpha, np.int64(0), m)


@njit(**PARALLEL)
def bias_act_forward(y, b, act, alpha):
    """y <- act(y + b), in place; y holds x @ W."""
    n = y.shape[0]
    c = n_chunks(y.size)
    if c == 1:
        _bias_act_rows(y, b, act, alpha, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _bias_act_rows(y, b, act, alpha, lo, hi)


def affine_forward(x, W, b, act, alpha, y):
    """y = act(x @ W + b), written into ``y``."""
    blas.gemm(x, W, y, False, False, 0.0)
    bias_act_forward(y, b, act, alpha)


@njit(**SERIAL)
def _dz_cols(dout, y, act, alpha, dz, db, lo, hi):
    # Columns [lo, hi) of dz = dout * act'(y), and their sums over the batch into db, in one
    # pass over the rows. A chunk owns whole columns, so no two threads add into one element.
    n = dout.shape[0]
    lo = np.uint64(lo)
    hi = np.uint64(hi)
    for j in range(lo, hi):
        db[j] = 0
    g = dout if act == IDENTITY else dz
    for i in range(n):
        if act != IDENTITY:
            _backward_range(dout[i], y[i], dz[i], act, alpha, lo, hi)
        row = g[i]
        for j in range(lo, hi):
            db[j] += row[j]


@njit(**PARALLEL)
def bias_act_backward(dout, y, act, alpha, dz, db):
    """dz = dout * act'(y) (not written when act is identity) and db = sum of dz over rows."""
    m = dout.shape[1]
    # Chunks of at least _MIN_COLS columns: each visits every row, and narrow ones spend
    # their time in per-row call overhead instead of vectorised loops.
    c = min(n_chunks(dout.size), m // _MIN_COLS)
    if c <= 1:
        _dz_cols(dout, y, act, alpha, dz, db, np.int64(0), m)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, m)
            _dz_cols(dout, y, act, alpha, dz, db, lo, hi)


def affine_backward(dout, x, W, y, act, alpha, dz, dx, dW, db, need_dx):
    """Gradients of y = act(x @ W + b).

    dout: (batch, out) gradient of the loss w.r.t. y. Writes dz = dout * act'(y) into ``dz``
    (unused when act is identity; ``dz`` may be ``dout`` itself to work in place),
    dW = x.T @ dz, db = sum of dz over the batch, and, when ``need_dx``, dx = dz @ W.T
    (the first layer of a network skips it).
    """
    bias_act_backward(dout, y, act, alpha, dz, db)
    g = dout if act == IDENTITY else dz
    blas.gemm(x, g, dW, True, False, 0.0)
    if need_dx:
        blas.gemm(g, W, dx, False, True, 0.0)
