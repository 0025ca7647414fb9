"""Activation functions and their derivatives.

Elementwise kernels take 1-D arrays (layers pass raveled, C-contiguous views) and write into
``out``/``dx``. Derivatives are expressed through the forward output ``y`` rather than the
input, so a layer keeps only its output for backward and the affine kernel can fold the
derivative in without storing the pre-activation:

    relu'       = 1 if y > 0 else 0           (so the derivative at 0 is 0)
    leaky_relu' = 1 if y > 0 else slope        (needs slope >= 0, so sign(y) = sign(x))
    elu'        = 1 if y > 0 else y + alpha    (alpha * exp(x) = y + alpha for x <= 0)
    sigmoid'    = y * (1 - y)
    tanh'       = 1 - y**2
    step'       = 0

The loops over [lo, hi) are shared with ``affine``, which runs them on each row of the matrix
product while it is in cache; ``ACTIVATIONS`` maps names to the codes it takes.
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks
from .fastexp import _cast, _exp, _expm1

IDENTITY, RELU, SIGMOID, TANH, LEAKY_RELU, ELU, STEP = range(7)
ACTIVATIONS = {
    "identity": IDENTITY,
    "relu": RELU,
    "sigmoid": SIGMOID,
    "tanh": TANH,
    "leaky_relu": LEAKY_RELU,
    "elu": ELU,
    "step": STEP,
}

SCALAR = dict(SERIAL, inline="always")


# -- scalar forms ----------------------------------------------------------------------------
# Written through fastexp's exp and expm1, which LLVM vectorises (Numba's own np.exp, tanh and
# expm1 are scalar libm calls, 2-20 ns a value), in the data's dtype: float32 data is computed
# in float32 (``_cast`` gives the constants that dtype). exp is taken of -|x| only, which never
# overflows; tanh and ELU go through expm1, which keeps its digits near 0 where 1 - exp(-2|x|)
# or exp(x) - 1 would lose them to cancellation. No branches: the loops stay SIMD.
@njit(**SCALAR)
def _sigmoid(v):
    one = _cast(1.0, v)
    e = _exp(-np.abs(v))
    r = one / (one + e)
    return r if v >= 0 else e * r


@njit(**SCALAR)
def _tanh(v):
    a = np.abs(v)
    m = _expm1(-(a + a))  # in [-1, 0]: tanh a = (1 - e^-2a) / (1 + e^-2a) = -m / (2 + m)
    return np.copysign(-m / (_cast(2.0, v) + m), v)


@njit(**SCALAR)
def _expm1_neg(v):
    """exp(v) - 1 for v <= 0 (any value for v > 0, which ELU does not use)."""
    return _expm1(v)


# -- loops over [lo, hi) ----------------------------------------------------------------------
@njit(**SERIAL)
def _forward_range(x, out, act, alpha, lo, hi):
    # In place (affine's pass over each row of the product), the loops are given one array for
    # both: LLVM vectorises a loop over two arrays only after checking at run time that they do
    # not overlap, and runs its scalar loop (5-10x slower for sigmoid and tanh) when they do.
    if x.ctypes.data == out.ctypes.data and x.strides[0] == out.strides[0]:
        _forward_loops(out, out, act, alpha, lo, hi)  # out: x may be typed read-only
    else:
        _forward_loops(x, out, act, alpha, lo, hi)


@njit(**SCALAR)
def _forward_loops(x, out, act, alpha, lo, hi):
    # One loop per activation so each inner loop is branch-free. Unsigned indices spare Numba's
    # negative-index check, which otherwise keeps LLVM from vectorising the loops.
    lo = np.uint64(lo)
    hi = np.uint64(hi)
    if act == RELU:
        for i in range(lo, hi):
            v = x[i]
            # Numba's max keeps a NaN first argument, as np.maximum keeps NaN; the LLVM loop
            # stays as fast as "v if v > 0 else 0", which turned NaN into 0.
            out[i] = max(v, 0)
    elif act == SIGMOID:
        for i in range(lo, hi):
            out[i] = _sigmoid(x[i])
    elif act == TANH:
        for i in range(lo, hi):
            out[i] = _tanh(x[i])
    elif act == LEAKY_RELU:
        for i in range(lo, hi):
            v = x[i]
            out[i] = v if v > 0 else alpha * v
    elif act == ELU:
        a = _cast(alpha, x)  # alpha in the data's dtype, so float32 stays float32
        for i in range(lo, hi):
            v = x[i]
            out[i] = v if v > 0 else a * _expm1_neg(v)
    elif act == STEP:
        for i in range(lo, hi):
            out[i] = 1 if x[i] > 0 else 0
    else:
        for i in range(lo, hi):
            out[i] = x[i]


@njit(**SERIAL)
def _backward_range(dout, y, dx, act, alpha, lo, hi):
    lo = np.uint64(lo)
    hi = np.uint64(hi)
    if act == RELU:
        for i in range(lo, hi):
            dx[i] = dout[i] if y[i] > 0 else 0
    elif act == SIGMOID:
        for i in range(lo, hi):
            dx[i] = dout[i] * y[i] * (1 - y[i])
    elif act == TANH:
        for i in range(lo, hi):
            dx[i] = dout[i] * (1 - y[i] * y[i])
    elif act == LEAKY_RELU:
        for i in range(lo, hi):
            dx[i] = dout[i] if y[i] > 0 else alpha * dout[i]
    elif act == ELU:
        for i in range(lo, hi):
            dx[i] = dout[i] if y[i] > 0 else dout[i] * (y[i] + alpha)
    elif act == STEP:
        for i in range(lo, hi):
            dx[i] = 0
    else:
        for i in range(lo, hi):
            dx[i] = dout[i]


@njit(**PARALLEL)
def _forward(x, out, act, alpha):
    n = x.size
    c = n_chunks(n)
    if c == 1:
        _forward_range(x, out, act, alpha, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _forward_range(x, out, act, alpha, lo, hi)


@njit(**PARALLEL)
def _backward(dout, y, dx, act, alpha):
    n = dout.size
    c = n_chunks(n)
    if c == 1:
        _backward_range(dout, y, dx, act, alpha, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _backward_range(dout, y, dx, act, alpha, lo, hi)


# -- public kernels -----------------------------------------------------------------------------
@njit(**SERIAL)
def identity_forward(x, out):
    """out = x."""
    _forward(x, out, IDENTITY, 0.0)


@njit(**SERIAL)
def identity_backward(dout, dx):
    """dx = dout."""
    _backward(dout, dout, dx, IDENTITY, 0.0)


@njit(**SERIAL)
def step_forward(x, out):
    """out = 1 where x > 0, else 0."""
    _forward(x, out, STEP, 0.0)


@njit(**SERIAL)
def step_backward(dout, y, dx):
    """dx = 0: the step function is flat wherever it has a derivative."""
    _backward(dout, y, dx, STEP, 0.0)


@njit(**SERIAL)
def sigmoid_forward(x, out):
    """out = 1 / (1 + exp(-x)), without overflow for large |x|."""
    _forward(x, out, SIGMOID, 0.0)


@njit(**SERIAL)
def sigmoid_backward(dout, y, dx):
    """dx = dout * y * (1 - y), y = sigmoid(x)."""
    _backward(dout, y, dx, SIGMOID, 0.0)


@njit(**SERIAL)
def tanh_forward(x, out):
    """out = tanh(x)."""
    _forward(x, out, TANH, 0.0)


@njit(**SERIAL)
def tanh_backward(dout, y, dx):
    """dx = dout * (1 - y**2), y = tanh(x)."""
    _backward(dout, y, dx, TANH, 0.0)


@njit(**SERIAL)
def relu_forward(x, out):
    """out = max(x, 0)."""
    _forward(x, out, RELU, 0.0)


@njit(**SERIAL)
def relu_backward(dout, y, dx):
    """dx = dout where y > 0, else 0 (the derivative at 0 is 0)."""
    _backward(dout, y, dx, RELU, 0.0)


@njit(**SERIAL)
def leaky_relu_forward(x, negative_slope, out):
    """out = x where x > 0, else negative_slope * x."""
    _forward(x, out, LEAKY_RELU, negative_slope)


@njit(**SERIAL)
def leaky_relu_backward(dout, y, negative_slope, dx):
    """dx = dout where y > 0, else negative_slope * dout (negative_slope >= 0)."""
    _backward(dout, y, dx, LEAKY_RELU, negative_slope)


@njit(**SERIAL)
def elu_forward(x, alpha, out):
    """out = x where x > 0, else alpha * (exp(x) - 1)."""
    _forward(x, out, ELU, alpha)


@njit(**SERIAL)
def elu_backward(dout, y, alpha, dx):
    """dx = dout where y > 0, else dout * (y + alpha) (alpha > 0)."""
    _backward(dout, y, dx, ELU, alpha)


@njit(**SERIAL)
def _maxout_forward_rows(z, pieces, out, argmax, lo, hi):
    m = np.uint64(out.shape[1])
    p = np.uint64(pieces)
    for i in range(lo, hi):
        zi, oi, ai = z[i], out[i], argmax[i]
        for j in range(m):
            base = j * p
            best = zi[base]
            k_best = np.uint64(0)  # unsigned like k: Numba would unify int64 and uint64 to float
            for k in range(np.uint64(1), p):
                v = zi[base + k]
                # The first NaN wins and stays, as in np.max and np.argmax.
                if v > best or (v != v and best == best):
                    best = v
                    k_best = k
            oi[j] = best
            ai[j] = k_best


@njit(**PARALLEL)
def maxout_forward(z, pieces, out, argmax):
    """Maximum over groups of ``pieces`` columns.

    z: (batch, units * pieces), unit j's pieces in columns j*pieces ... j*pieces + pieces - 1.
    out: (batch, units) the maxima; argmax: (batch, units) int64, which piece won (first on ties).
    """
    n = out.shape[0]
    c = min(n_chunks(z.size), n)
    if c <= 1:
        _maxout_forward_rows(z, pieces, out, argmax, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _maxout_forward_rows(z, pieces, out, argmax, lo, hi)


@njit(**SERIAL)
def _maxout_backward_rows(dout, argmax, pieces, dz, lo, hi):
    m = np.uint64(dout.shape[1])
    p = np.uint64(pieces)
    w = np.uint64(dz.shape[1])
    for i in range(lo, hi):
        di, ai, gi = dout[i], argmax[i], dz[i]
        for j in range(w):
            gi[j] = 0
        for j in range(m):
            gi[j * p + np.uint64(ai[j])] = di[j]


@njit(**PARALLEL)
def maxout_backward(dout, argmax, pieces, dz):
    """Route each dout[i, j] to the piece that won; the others get 0.

    dz: (batch, units * pieces).
    """
    n = dout.shape[0]
    c = min(n_chunks(dz.size), n)
    if c <= 1:
        _maxout_backward_rows(dout, argmax, pieces, dz, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _maxout_backward_rows(dout, argmax, pieces, dz, lo, hi)
