"""Batch normalisation over the rows of a (batch, features) array.

Statistics are accumulated in float64 whatever the data's dtype (a float32 running sum over a
large batch loses digits), in a (2, features) float64 ``work`` array the caller keeps, so that
a training step allocates nothing; results are written in the dtype of the output arrays. Parallel
kernels split the features into chunks, so each thread owns whole columns and their sums and
no reduction is shared between threads. A chunk's rows are walked outer, its columns inner,
so every read is a contiguous run of a row.
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks

# The helpers loop over ``range(np.uint64(lo), np.uint64(hi))``: Numba cannot tell that a signed
# index from ``lo`` is never negative, and the wraparound test it then adds to every access
# stops LLVM from vectorising the loop (about 5x slower). Unsigned indices need no such test.

# Fewest columns a chunk gets: narrower row runs would have threads sharing cache lines.
_MIN_COLS = 16


@njit(**SERIAL)
def _feature_chunks(n, d):
    """How many column chunks to split an (n, d) pass into; 1 means run serially."""
    return max(1, min(n_chunks(n * d), d // _MIN_COLS))


@njit(**SERIAL)
def _forward_train_cols(x, gamma, beta, eps, out, xhat, mean, var, inv_std, m, s, lo, hi):
    n = x.shape[0]
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    for j in range(ulo, uhi):
        m[j] = 0.0
        s[j] = 0.0
    # Welford's update, one row at a time for all columns of the chunk: one pass over x. The
    # data are shifted by their first row (exactly, in float64) so that a mean far larger than
    # the spread costs no digits of the variance.
    for i in range(n):
        r = 1.0 / (i + 1)
        for j in range(ulo, uhi):
            v = np.float64(x[i, j]) - np.float64(x[0, j])
            d = v - m[j]
            m[j] += d * r
            s[j] += d * (v - m[j])
    inv_n = 1.0 / n if n > 0 else 0.0
    for j in range(ulo, uhi):
        v = s[j] * inv_n
        k = 1.0 / np.sqrt(v + eps)
        mean[j] = np.float64(x[0, j]) + m[j] if n > 0 else 0.0
        var[j] = v
        inv_std[j] = k
        s[j] = k
    for i in range(n):
        for j in range(ulo, uhi):
            h = ((np.float64(x[i, j]) - np.float64(x[0, j])) - m[j]) * s[j]
            xhat[i, j] = h
            out[i, j] = gamma[j] * h + beta[j]


@njit(**PARALLEL)
def batchnorm_forward_train(x, gamma, beta, eps, out, xhat, mean, var, inv_std, work):
    """Normalise x (N, D) with its own batch statistics.

    mean, var (biased: sum((x - mean)**2) / N), inv_std = 1 / sqrt(var + eps): (D,).
    xhat = (x - mean) * inv_std, out = gamma * xhat + beta: (N, D).
    work: (2, D) float64 scratch (overwritten).
    """
    n, d = x.shape
    m = work[0]
    s = work[1]
    c = _feature_chunks(n, d)
    if c == 1:
        _forward_train_cols(x, gamma, beta, eps, out, xhat, mean, var, inv_std, m, s, 0, d)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, d)
            _forward_train_cols(x, gamma, beta, eps, out, xhat, mean, var, inv_std, m, s, lo, hi)


@njit(**SERIAL)
def batchnorm_update_running(running_mean, running_var, mean, var, momentum, n):
    """running = (1 - momentum) * running + momentum * batch, in place; all (D,).

    The variance blended in is the unbiased one, var * n / (n - 1) (var is the biased batch
    variance of n rows), as PyTorch does; with n = 1 it is var itself.
    """
    f = n / (n - 1.0) if n > 1 else 1.0
    keep = 1.0 - momentum
    for j in range(running_mean.size):
        running_mean[j] = keep * running_mean[j] + momentum * np.float64(mean[j])
        running_var[j] = keep * running_var[j] + momentum * (np.float64(var[j]) * f)


@njit(**SERIAL)
def _forward_eval_rows(x, beta, running_mean, scale, out, lo, hi):
    d = x.shape[1]
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    for i in range(ulo, uhi):
        for j in range(d):
            out[i, j] = (np.float64(x[i, j]) - running_mean[j]) * scale[j] + beta[j]


@njit(**PARALLEL)
def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, out, work):
    """out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.

    x, out: (N, D); gamma, beta, running_mean, running_var: (D,); work: (2, D) float64 scratch.
    """
    n, d = x.shape
    scale = work[0]
    for j in range(d):
        scale[j] = gamma[j] / np.sqrt(np.float64(running_var[j]) + eps)
    # Elementwise once the scales are known, so rows can be split among threads.
    c = min(n_chunks(n * d), n)
    if c <= 1:
        _forward_eval_rows(x, beta, running_mean, scale, out, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _forward_eval_rows(x, beta, running_mean, scale, out, lo, hi)


@njit(**SERIAL)
def _backward_cols(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, a, b, lo, hi):
    n = dout.shape[0]
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    for j in range(ulo, uhi):
        a[j] = 0.0
        b[j] = 0.0
    for i in range(n):
        for j in range(ulo, uhi):
            g = np.float64(dout[i, j])
            a[j] += g
            b[j] += g * xhat[i, j]
    inv_n = 1.0 / n if n > 0 else 0.0
    for j in range(ulo, uhi):
        dbeta[j] = a[j]
        dgamma[j] = b[j]
        a[j] *= inv_n
        b[j] *= inv_n
    # dx = gamma * inv_std * (dout - mean(dout) - xhat * mean(dout * xhat)), the formula
    # above divided through by N.
    for i in range(n):
        for j in range(ulo, uhi):
            g = np.float64(gamma[j]) * inv_std[j]
            dx[i, j] = g * (dout[i, j] - a[j] - xhat[i, j] * b[j])


@njit(**PARALLEL)
def batchnorm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, work):
    """Gradients of training-mode batch norm (statistics depend on x).

    dbeta = sum(dout, 0), dgamma = sum(dout * xhat, 0): (D,).
    dx = gamma * inv_std / N * (N * dout - dbeta - xhat * dgamma): (N, D).
    work: (2, D) float64 scratch (overwritten).
    """
    n, d = dout.shape
    a = work[0]
    b = work[1]
    c = _feature_chunks(n, d)
    if c == 1:
        _backward_cols(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, a, b, 0, d)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, d)
            _backward_cols(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, a, b, lo, hi)


@njit(**SERIAL)
def _backward_eval_cols(
    dout, x, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, a, b, lo, hi
):
    n = dout.shape[0]
    ulo, uhi = np.uint64(lo), np.uint64(hi)
    for j in range(ulo, uhi):
        a[j] = 0.0
        b[j] = 0.0
    for i in range(n):
        for j in range(ulo, uhi):
            g = np.float64(dout[i, j])
            a[j] += g
            b[j] += g * (np.float64(x[i, j]) - running_mean[j])
    for j in range(ulo, uhi):
        k = 1.0 / np.sqrt(np.float64(running_var[j]) + eps)
        dbeta[j] = a[j]
        dgamma[j] = b[j] * k
        a[j] = gamma[j] * k
    for i in range(n):
        for j in range(ulo, uhi):
            dx[i, j] = dout[i, j] * a[j]


@njit(**PARALLEL)
def batchnorm_backward_eval(
    dout, x, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, work
):
    """Gradients of eval-mode batch norm (fixed running statistics).

    With inv_std = 1 / sqrt(running_var + eps) and xhat = (x - running_mean) * inv_std:
    dbeta = sum(dout, 0), dgamma = sum(dout * xhat, 0): (D,); dx = dout * gamma * inv_std: (N, D).
    work: (2, D) float64 scratch (overwritten).
    """
    n, d = dout.shape
    a = work[0]
    b = work[1]
    c = _feature_chunks(n, d)
    if c == 1:
        _backward_eval_cols(
            dout, x, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, a, b, 0, d
        )
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, d)
            _backward_eval_cols(
                dout, x, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, a, b, lo, hi
            )
