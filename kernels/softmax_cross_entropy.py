"""Softmax, softmax fused with cross-entropy, sigmoid fused with binary cross-entropy, and
mean squared error.

Softmax subtracts each row's maximum before exponentiating, so logits of any size give
finite results. The fused kernels return the mean loss over the batch and write the gradient
of the logits in the same pass over the data:

    loss = mean_i [log(sum_j exp(z_ij)) - sum_j t_ij z_ij / sum_j t_ij ... ]  (see each kernel)
    dz   = (softmax(z) - t) / batch

Losses are accumulated in float64 whatever the data's dtype. Shapes: logits (batch, classes).

exp is fastexp's, which LLVM vectorises. The row maximum and the row sum of exp are vector
loops written in LLVM IR (``_row_max``, ``_row_sum``, from ``_reduce``): they add in a fixed
order, the same on every path and every machine, where a plain loop would add one value at a
time.
"""

import numpy as np
from numba import njit, prange
from numba.extending import overload

from ._config import FASTMATH, PARALLEL, SERIAL, chunk_bounds, n_chunks
from ._reduce import _contiguous_floats, _vector_max, _vector_sum
from .fastexp import _cast, _exp

_OVERLOAD = {"jit_options": {"fastmath": FASTMATH, "error_model": "numpy"}}
# Inlined by Numba: called once a row, a call would cost more than a short row's work (LLVM
# does not inline these itself, and each call counts references to the row's array).
_INLINE = dict(_OVERLOAD, inline="always")


def _row_max(a):
    """Largest value of the 1-D array ``a`` (not empty). A NaN may or may not come out; the
    exp pass turns a NaN anywhere in the row into a NaN sum, so the row comes out NaN."""
    return a.max()


@overload(_row_max, **_INLINE)
def _row_max_compiled(a):
    if _contiguous_floats(a):
        return lambda a: _vector_max(a)

    def impl(a):  # strided rows: one value at a time
        mx = a[0]
        for j in range(1, a.size):
            v = a[j]
            mx = v if v > mx else mx
        return mx

    return impl


def _row_sum(a):
    """Sum of the 1-D array ``a`` in float64."""
    return float(a.sum(dtype=np.float64))


@overload(_row_sum, **_INLINE)
def _row_sum_compiled(a):
    if _contiguous_floats(a):
        return lambda a: _vector_sum(a)

    def impl(a):
        s = 0.0
        for j in range(a.size):
            s += a[j]
        return s

    return impl


def _exp_rows(a, lo, hi):
    """a[lo:hi] = exp(a[lo:hi]) in place, for a 2-D array."""
    a[lo:hi] = np.exp(a[lo:hi])


@overload(_exp_rows, **_OVERLOAD)
def _exp_rows_compiled(a, lo, hi):
    if a.layout == "C":
        # Rows lo to hi are one run of memory: one loop over all of it, which LLVM vectorises
        # whatever the row length (a row of 10 classes is shorter than one vector).
        def impl(a, lo, hi):
            flat = a[lo:hi].reshape(-1)
            for f in range(np.uint64(flat.size)):
                flat[f] = _exp(flat[f])

        return impl

    def impl(a, lo, hi):
        for i in range(lo, hi):
            ai = a[i]
            for j in range(np.uint64(ai.size)):
                ai[j] = _exp(ai[j])

    return impl


@njit(**SERIAL)
def _in_order(part):
    """The sum of ``part`` from zero, one value after another: the serial forms' order. (In a
    parallel kernel ``part.sum()`` becomes a parallel reduction, which adds in another order
    and so may differ from a serial form in the last bit.)"""
    total = 0.0
    for k in range(part.size):
        total += part[k]
    return total


# The row kernels below take their rows in blocks of about BLOCK values (small enough to stay
# in the L1 cache) and make three passes over each block: z - max into the output, exp of the
# whole block in place (_exp_rows), then each row's sum and scaling. The scale factor is
# rounded to the data's dtype so that float32 rows are scaled in float32.
BLOCK = 4096


@njit(**SERIAL)
def _softmax_rows(x, out, lo, hi):
    m = np.uint64(x.shape[1])
    step = max(1, BLOCK // x.shape[1])
    for first in range(lo, hi, step):
        last = min(hi, first + step)
        for i in range(first, last):
            xi, oi = x[i], out[i]
            mx = _row_max(xi)
            for j in range(m):
                oi[j] = xi[j] - mx
        _exp_rows(out, first, last)
        for i in range(first, last):
            oi = out[i]
            inv = _cast(1.0 / _row_sum(oi), oi)
            for j in range(m):
                oi[j] *= inv


@njit(**PARALLEL)
def softmax_forward(x, out):
    """out[i] = exp(x[i] - max x[i]) / sum_j exp(x[i, j] - max x[i])."""
    n = x.shape[0]
    c = n_chunks(x.size)
    if c == 1:
        _softmax_rows(x, out, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _softmax_rows(x, out, lo, hi)


@njit(**SERIAL)
def _softmax_backward_rows(dout, y, dx, lo, hi):
    m = y.shape[1]
    for i in range(lo, hi):
        s = 0.0
        for j in range(m):
            s += dout[i, j] * y[i, j]
        for j in range(m):
            dx[i, j] = y[i, j] * (dout[i, j] - s)


@njit(**PARALLEL)
def softmax_backward(dout, y, dx):
    """dx = y * (dout - sum_j dout_j * y_j) per row, y = softmax(x)."""
    n = y.shape[0]
    c = n_chunks(y.size)
    if c == 1:
        _softmax_backward_rows(dout, y, dx, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _softmax_backward_rows(dout, y, dx, lo, hi)


@njit(**SERIAL)
def _ce_labels_rows(z, t, dz, scale, lo, hi):
    # Returns the sum over rows [lo, hi) of  log(sum_j exp(z_ij - max)) - (z_it - max).
    m = np.uint64(z.shape[1])
    step = max(1, BLOCK // z.shape[1])
    total = 0.0
    for first in range(lo, hi, step):
        last = min(hi, first + step)
        for i in range(first, last):
            zi, di = z[i], dz[i]
            mx = _row_max(zi)
            for j in range(m):
                di[j] = zi[j] - mx
            total -= np.float64(di[t[i]])
        _exp_rows(dz, first, last)
        for i in range(first, last):
            di = dz[i]
            s = _row_sum(di)
            total += np.log(s)
            inv = _cast(scale / s, di)
            for j in range(m):
                di[j] *= inv
            di[t[i]] -= scale
    return total


# The kernels' one-thread forms (below), by the public kernel each one equals: the loss calls
# them for work of one chunk, and bench/reference_mode swaps them for that kernel's twin.
SERIAL_FORMS = {
    "_ce_labels_serial": "softmax_cross_entropy_labels",
    "_ce_targets_serial": "softmax_cross_entropy_targets",
    "_mse_serial": "mse_forward",
    "_bce_serial": "sigmoid_cross_entropy",
}


@njit(**SERIAL)
def _ce_labels_serial(z, t, dz):
    # softmax_cross_entropy_labels on one thread: its chunks one after another, summed in the
    # same order (``_in_order``), so the same bits. The training step
    # calls it, and the loss whenever the work is one chunk, so that nothing parallel is
    # compiled for the small batches most networks train with (cold start).
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    total = 0.0
    for k in range(c):
        lo, hi = chunk_bounds(k, c, n)
        total += _ce_labels_rows(z, t, dz, scale, lo, hi)
    return total / n


@njit(**PARALLEL)
def softmax_cross_entropy_labels(z, t, dz):
    """Mean cross-entropy of softmax(z) against integer labels ``t``; writes dz.

    z: (batch, classes) logits; t: (batch,) integer labels in [0, classes);
    dz: (batch, classes) receives (softmax(z) - onehot(t)) / batch. Returns the mean loss.
    ``t`` must be in range: the kernel does not check it.
    """
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    if c == 1:
        return _ce_labels_rows(z, t, dz, scale, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _ce_labels_rows(z, t, dz, scale, lo, hi)
    return _in_order(part) / n


@njit(**SERIAL)
def _ce_targets_rows(z, t, dz, scale, lo, hi):
    # loss_i = sum_j t_ij * (lse_i - z_ij) = lse_i * T_i - sum_j t_ij z_ij, with T_i = sum_j t_ij.
    m = np.uint64(z.shape[1])
    step = max(1, BLOCK // z.shape[1])
    total = 0.0
    for first in range(lo, hi, step):
        last = min(hi, first + step)
        for i in range(first, last):
            zi, ti, di = z[i], t[i], dz[i]
            mx = _row_max(zi)
            for j in range(m):
                di[j] = zi[j] - mx
            tz = 0.0
            for j in range(m):
                tz += np.float64(ti[j]) * np.float64(di[j])
            total -= tz
        _exp_rows(dz, first, last)
        for i in range(first, last):
            ti, di = t[i], dz[i]
            s = _row_sum(di)
            tsum = _row_sum(ti)
            total += np.log(s) * tsum
            inv = tsum / s
            for j in range(m):
                di[j] = (di[j] * inv - ti[j]) * scale
    return total


@njit(**SERIAL)
def _ce_targets_serial(z, t, dz):
    # softmax_cross_entropy_targets on one thread, as _ce_labels_serial.
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    total = 0.0
    for k in range(c):
        lo, hi = chunk_bounds(k, c, n)
        total += _ce_targets_rows(z, t, dz, scale, lo, hi)
    return total / n


@njit(**PARALLEL)
def softmax_cross_entropy_targets(z, t, dz):
    """Mean cross-entropy of softmax(z) against target distributions ``t`` (one-hot or soft).

    z, t, dz: (batch, classes). loss = mean_i sum_j -t_ij log softmax(z)_ij;
    dz = (softmax(z) * sum_j t_ij - t) / batch, which is (softmax(z) - t) / batch when each
    row of t sums to 1. Returns the mean loss.
    """
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    if c == 1:
        return _ce_targets_rows(z, t, dz, scale, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _ce_targets_rows(z, t, dz, scale, lo, hi)
    return _in_order(part) / n


# log(1 + e) of every element would be a call to log1p each; instead the row's product of
# (1 + e) - 1 is carried as q (q <- q + e (1 + q), exact for tiny e) and log1p(q) taken once
# every LOG_BLOCK elements, where the product is at most 2**LOG_BLOCK, far below float64's limit.
LOG_BLOCK = 256


@njit(**SERIAL)
def _bce_rows(z, t, dz, scale, lo, hi):
    # Returns the sum over rows [lo, hi) and every column of
    #     max(z, 0) - z t + log(1 + exp(-|z|))    (= -t log s - (1 - t) log(1 - s), s = sigmoid z)
    # and writes dz = (s - t) * scale. exp(-|z|) is in (0, 1], so nothing overflows, and
    # s = 1 / (1 + e) or e / (1 + e) never subtracts two numbers close to 1.
    m = z.shape[1]
    total = 0.0
    for i in range(lo, hi):
        zi, ti, di = z[i], t[i], dz[i]
        one, sc = _cast(1.0, di), _cast(scale, di)
        for first in range(0, m, LOG_BLOCK):
            q = 0.0
            for j in range(first, min(m, first + LOG_BLOCK)):
                x = zi[j]
                e = _exp(-abs(x))
                r = one / (one + e)
                s = r if x >= 0 else e * r
                di[j] = (s - ti[j]) * sc
                x64, e64 = np.float64(x), np.float64(e)
                total += max(x64, 0.0) - x64 * np.float64(ti[j])
                q += e64 * (1.0 + q)
            total += np.log1p(q)
    return total


@njit(**SERIAL)
def _bce_serial(z, t, dz):
    # sigmoid_cross_entropy on one thread, as _ce_labels_serial.
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    total = 0.0
    for k in range(c):
        lo, hi = chunk_bounds(k, c, n)
        total += _bce_rows(z, t, dz, scale, lo, hi)
    return total / n


@njit(**PARALLEL)
def sigmoid_cross_entropy(z, t, dz):
    """Binary cross-entropy of sigmoid(z) against targets ``t`` in [0, 1], summed over the
    outputs and averaged over the batch; writes dz.

    z, t, dz: (batch, outputs). loss = mean_i sum_j -[t_ij log s_ij + (1 - t_ij) log(1 - s_ij)]
    with s = sigmoid(z), computed from the logits as max(z, 0) - z t + log(1 + exp(-|z|)), so
    any logit gives a finite loss; dz = (s - t) / batch. Returns the mean loss (PyTorch's
    ``binary_cross_entropy_with_logits(z, t, reduction="sum") / batch``; scikit-learn's
    multilabel log loss).
    """
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    if c == 1:
        return _bce_rows(z, t, dz, scale, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _bce_rows(z, t, dz, scale, lo, hi)
    return _in_order(part) / n


@njit(**SERIAL)
def _squared_error_sum(y, t, lo, hi):
    s = 0.0
    for i in range(lo, hi):
        d = np.float64(y[i]) - np.float64(t[i])  # float() would stay float32 in Numba
        s += d * d
    return s


@njit(**SERIAL)
def _mse_serial(y, t):
    # mse_forward on one thread, as _ce_labels_serial.
    n = y.size
    c = n_chunks(n)
    total = 0.0
    for k in range(c):
        lo, hi = chunk_bounds(k, c, n)
        total += _squared_error_sum(y, t, lo, hi)
    return total / n


@njit(**PARALLEL)
def mse_forward(y, t):
    """mean((y - t)**2) over all elements of the 1-D arrays y and t (PyTorch's MSELoss),
    summed in float64 (per chunk, then over the chunks in order)."""
    n = y.size
    c = n_chunks(n)
    if c == 1:
        return _squared_error_sum(y, t, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _squared_error_sum(y, t, lo, hi)
    return _in_order(part) / n


@njit(**SERIAL)
def mse_backward(y, t, dy):
    """dy = 2 (y - t) / n, the gradient of mse_forward; 1-D arrays."""
    scale = 2.0 / y.size
    for i in range(y.size):
        dy[i] = (y[i] - t[i]) * scale
