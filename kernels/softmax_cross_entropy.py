"""Softmax, softmax fused with cross-entropy, and mean squared error.

Softmax subtracts each row's maximum before exponentiating, so logits of any size give
finite results. The fused kernels return the mean loss over the batch and write the gradient
of the logits in the same pass over the data:

    loss = mean_i [log(sum_j exp(z_ij)) - sum_j t_ij z_ij / sum_j t_ij ... ]  (see each kernel)
    dz   = (softmax(z) - t) / batch

Losses are accumulated in float64 whatever the data's dtype. Shapes: logits (batch, classes).
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks


@njit(**SERIAL)
def _softmax_rows(x, out, lo, hi):
    m = x.shape[1]
    for i in range(lo, hi):
        mx = x[i, 0]
        for j in range(1, m):
            if x[i, j] > mx:
                mx = x[i, j]
        s = 0.0
        for j in range(m):
            e = np.exp(x[i, j] - mx)
            out[i, j] = e
            s += float(e)
        inv = 1.0 / s
        for j in range(m):
            out[i, j] *= inv


@njit(**PARALLEL)
def softmax_forward(x, out):
    """out[i] = exp(x[i] - max x[i]) / sum_j exp(x[i, j] - max x[i])."""
    n = x.shape[0]
    c = n_chunks(x.size)
    if c == 1:
        _softmax_rows(x, out, 0, n)
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
        _softmax_backward_rows(dout, y, dx, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _softmax_backward_rows(dout, y, dx, lo, hi)


@njit(**SERIAL)
def _ce_labels_rows(z, t, dz, scale, lo, hi):
    # Returns the sum over rows [lo, hi) of  log(sum_j exp(z_ij - max)) - (z_it - max).
    m = z.shape[1]
    total = 0.0
    for i in range(lo, hi):
        mx = z[i, 0]
        for j in range(1, m):
            if z[i, j] > mx:
                mx = z[i, j]
        s = 0.0
        for j in range(m):
            e = np.exp(z[i, j] - mx)
            dz[i, j] = e
            s += float(e)  # float(): accumulate in float64 also when the JIT is off
        label = t[i]
        total += np.log(s) - float(z[i, label] - mx)
        inv = scale / s
        for j in range(m):
            dz[i, j] *= inv
        dz[i, label] -= scale
    return total


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
        return _ce_labels_rows(z, t, dz, scale, 0, n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _ce_labels_rows(z, t, dz, scale, lo, hi)
    return part.sum() / n


@njit(**SERIAL)
def _ce_targets_rows(z, t, dz, scale, lo, hi):
    # loss_i = sum_j t_ij * (lse_i - z_ij) = lse_i * T_i - sum_j t_ij z_ij, with T_i = sum_j t_ij.
    m = z.shape[1]
    total = 0.0
    for i in range(lo, hi):
        mx = z[i, 0]
        for j in range(1, m):
            if z[i, j] > mx:
                mx = z[i, j]
        s = 0.0
        tsum = 0.0
        tz = 0.0
        for j in range(m):
            e = np.exp(z[i, j] - mx)
            dz[i, j] = e
            s += float(e)
            tsum += float(t[i, j])
            tz += float(t[i, j]) * float(z[i, j] - mx)
        total += np.log(s) * tsum - tz
        inv = tsum / s
        for j in range(m):
            dz[i, j] = (dz[i, j] * inv - t[i, j]) * scale
    return total


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
        return _ce_targets_rows(z, t, dz, scale, 0, n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _ce_targets_rows(z, t, dz, scale, lo, hi)
    return part.sum() / n


@njit(**SERIAL)
def _squared_error_sum(y, t, lo, hi):
    s = 0.0
    for i in range(lo, hi):
        d = float(y[i]) - float(t[i])
        s += d * d
    return s


@njit(**PARALLEL)
def mse_forward(y, t):
    """mean((y - t)**2) over all elements of the 1-D arrays y and t (PyTorch's MSELoss),
    summed in float64 (per chunk, then over the chunks in order)."""
    n = y.size
    c = n_chunks(n)
    if c == 1:
        return _squared_error_sum(y, t, 0, n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _squared_error_sum(y, t, lo, hi)
    return part.sum() / n


@njit(**SERIAL)
def mse_backward(y, t, dy):
    """dy = 2 (y - t) / n, the gradient of mse_forward; 1-D arrays."""
    scale = 2.0 / y.size
    for i in range(y.size):
        dy[i] = (y[i] - t[i]) * scale
