"""Batch normalisation over the rows of a (batch, features) array.

Statistics are accumulated in float64 whatever the data's dtype (a float32 running sum over a
large batch loses digits), in a float64 ``work`` array of shape (slots, 2, features) that the
caller keeps, so that a training step allocates nothing; results are written in the dtype of
the output arrays.

Every pass walks rows outer and features inner, so each thread reads contiguous rows. Above
the parallel threshold the rows are split into chunks; each chunk reduces its rows into its
own slot of ``work`` and the slots are merged serially afterwards (Chan et al.'s pairwise
update for the variance), so no sum is shared between threads. Splitting by features instead
(each thread owning whole columns) was measured about 8x slower on a 4096 x 1024 float32
batch: every thread then strides through all rows, touching a new page every few hundred
bytes.

Inner loops run over ``range(np.uint64(d))``: given a signed index Numba adds a wraparound
test to every access, and that stops LLVM from vectorising the loop (about 5x slower).
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks

# Fewest rows per chunk (merging a chunk's partial result costs about one row's work).
_MIN_ROWS = 8


@njit(**SERIAL)
def _row_chunks(n, d, slots):
    """How many row chunks an (n, d) pass with ``slots`` work slots is split into."""
    return max(1, min(n_chunks(n * d), slots, n // _MIN_ROWS))


# -- forward, training mode ---------------------------------------------------------------------


@njit(**SERIAL)
def _welford(x, m, s, lo, hi):
    # Welford's update, one row at a time, of the mean m and summed squared deviation s of
    # x[lo:hi, j] - x[0, j]. Shifting by the first row (exact in float64) keeps a mean far
    # larger than the spread from costing digits of the variance.
    ud = np.uint64(x.shape[1])
    for j in range(ud):
        m[j] = 0.0
        s[j] = 0.0
    for i in range(lo, hi):
        r = 1.0 / (i - lo + 1)
        for j in range(ud):
            v = np.float64(x[i, j]) - np.float64(x[0, j])
            dv = v - m[j]
            m[j] += dv * r
            s[j] += dv * (v - m[j])


@njit(**SERIAL)
def _merge_welford(work, c, n):
    # Fold the statistics of row chunks 1..c-1 into chunk 0's slot.
    m0 = work[0, 0]
    s0 = work[0, 1]
    na = chunk_bounds(0, c, n)[1]
    for k in range(1, c):
        lo, hi = chunk_bounds(k, c, n)
        nb = hi - lo
        f = nb / (na + nb)
        g = na * f
        mk = work[k, 0]
        sk = work[k, 1]
        for j in range(np.uint64(m0.size)):
            delta = mk[j] - m0[j]
            m0[j] += delta * f
            s0[j] += sk[j] + delta * delta * g
        na += nb


@njit(**SERIAL)
def _finish_stats(x, eps, m, s, mean, var, inv_std):
    # Leaves inv_std in float64 in s for _normalize.
    inv_n = 1.0 / x.shape[0]
    for j in range(np.uint64(x.shape[1])):
        v = s[j] * inv_n
        k = 1.0 / np.sqrt(v + eps)
        mean[j] = np.float64(x[0, j]) + m[j]
        var[j] = v
        inv_std[j] = k
        s[j] = k


@njit(**SERIAL)
def _normalize(x, gamma, beta, m, k, out, xhat, lo, hi):
    ud = np.uint64(x.shape[1])
    for i in range(lo, hi):
        for j in range(ud):
            h = ((np.float64(x[i, j]) - np.float64(x[0, j])) - m[j]) * k[j]
            xhat[i, j] = h
            out[i, j] = gamma[j] * h + beta[j]


@njit(**PARALLEL)
def batchnorm_forward_train(x, gamma, beta, eps, out, xhat, mean, var, inv_std, work):
    """Normalise x (N, D) with its own batch statistics.

    mean, var (biased: sum((x - mean)**2) / N), inv_std = 1 / sqrt(var + eps): (D,).
    xhat = (x - mean) * inv_std, out = gamma * xhat + beta: (N, D).
    work: (slots, 2, D) float64 scratch, overwritten; the rows are split into at most
    ``slots`` chunks, so ``slots = n_chunks(N * D)`` allows the full split.
    """
    n, d = x.shape
    if n == 0:
        for j in range(d):
            mean[j] = 0.0
            var[j] = 0.0
            inv_std[j] = 1.0 / np.sqrt(eps)
        return
    m = work[0, 0]
    s = work[0, 1]
    c = _row_chunks(n, d, work.shape[0])
    if c == 1:
        _welford(x, m, s, np.int64(0), n)
        _finish_stats(x, eps, m, s, mean, var, inv_std)
        _normalize(x, gamma, beta, m, s, out, xhat, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _welford(x, work[k, 0], work[k, 1], lo, hi)
        _merge_welford(work, c, n)
        _finish_stats(x, eps, m, s, mean, var, inv_std)
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _normalize(x, gamma, beta, m, s, out, xhat, lo, hi)


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


# -- forward, eval mode -------------------------------------------------------------------------


@njit(**SERIAL)
def _forward_eval_rows(x, beta, running_mean, scale, out, lo, hi):
    ud = np.uint64(x.shape[1])
    for i in range(lo, hi):
        for j in range(ud):
            out[i, j] = (np.float64(x[i, j]) - running_mean[j]) * scale[j] + beta[j]


@njit(**PARALLEL)
def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, out, work):
    """out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta.

    x, out: (N, D); gamma, beta, running_mean, running_var: (D,); work: (slots, 2, D)
    float64 scratch (one slot is enough).
    """
    n, d = x.shape
    scale = work[0, 0]
    for j in range(d):
        scale[j] = gamma[j] / np.sqrt(np.float64(running_var[j]) + eps)
    # Elementwise once the scales are known: any row split will do.
    c = min(n_chunks(n * d), n)
    if c <= 1:
        _forward_eval_rows(x, beta, running_mean, scale, out, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _forward_eval_rows(x, beta, running_mean, scale, out, lo, hi)


# -- backward -----------------------------------------------------------------------------------


@njit(**SERIAL)
def _merge_sums(work, c):
    a0 = work[0, 0]
    b0 = work[0, 1]
    for k in range(1, c):
        ak = work[k, 0]
        bk = work[k, 1]
        for j in range(np.uint64(a0.size)):
            a0[j] += ak[j]
            b0[j] += bk[j]


@njit(**SERIAL)
def _sums(dout, xhat, a, b, lo, hi):
    # a = sum(dout), b = sum(dout * xhat) over rows lo:hi.
    ud = np.uint64(dout.shape[1])
    for j in range(ud):
        a[j] = 0.0
        b[j] = 0.0
    for i in range(lo, hi):
        for j in range(ud):
            g = np.float64(dout[i, j])
            a[j] += g
            b[j] += g * xhat[i, j]


@njit(**SERIAL)
def _finish_sums(a, b, dgamma, dbeta, n):
    # Leaves mean(dout) and mean(dout * xhat) in a and b for _dx.
    inv_n = 1.0 / n
    for j in range(np.uint64(a.size)):
        dbeta[j] = a[j]
        dgamma[j] = b[j]
        a[j] *= inv_n
        b[j] *= inv_n


@njit(**SERIAL)
def _dx(dout, xhat, gamma, inv_std, a, b, dx, lo, hi):
    # dx = gamma * inv_std * (dout - mean(dout) - xhat * mean(dout * xhat)): the formula of
    # batchnorm_backward divided through by N.
    ud = np.uint64(dout.shape[1])
    for i in range(lo, hi):
        for j in range(ud):
            g = np.float64(gamma[j]) * inv_std[j]
            dx[i, j] = g * (dout[i, j] - a[j] - xhat[i, j] * b[j])


@njit(**PARALLEL)
def batchnorm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, work):
    """Gradients of training-mode batch norm (statistics depend on x).

    dbeta = sum(dout, 0), dgamma = sum(dout * xhat, 0): (D,).
    dx = gamma * inv_std / N * (N * dout - dbeta - xhat * dgamma): (N, D).
    work: (slots, 2, D) float64 scratch, overwritten (as for batchnorm_forward_train).
    """
    n, d = dout.shape
    a = work[0, 0]
    b = work[0, 1]
    if n == 0:
        for j in range(d):
            dgamma[j] = 0.0
            dbeta[j] = 0.0
        return
    c = _row_chunks(n, d, work.shape[0])
    if c == 1:
        _sums(dout, xhat, a, b, np.int64(0), n)
        _finish_sums(a, b, dgamma, dbeta, n)
        _dx(dout, xhat, gamma, inv_std, a, b, dx, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _sums(dout, xhat, work[k, 0], work[k, 1], lo, hi)
        _merge_sums(work, c)
        _finish_sums(a, b, dgamma, dbeta, n)
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _dx(dout, xhat, gamma, inv_std, a, b, dx, lo, hi)


@njit(**SERIAL)
def _sums_eval(dout, x, running_mean, a, b, lo, hi):
    # a = sum(dout), b = sum(dout * (x - running_mean)) over rows lo:hi.
    ud = np.uint64(dout.shape[1])
    for j in range(ud):
        a[j] = 0.0
        b[j] = 0.0
    for i in range(lo, hi):
        for j in range(ud):
            g = np.float64(dout[i, j])
            a[j] += g
            b[j] += g * (np.float64(x[i, j]) - running_mean[j])


@njit(**SERIAL)
def _finish_sums_eval(gamma, running_var, eps, a, b, dgamma, dbeta):
    # Leaves gamma * inv_std in a for _dx_eval.
    for j in range(np.uint64(a.size)):
        k = 1.0 / np.sqrt(np.float64(running_var[j]) + eps)
        dbeta[j] = a[j]
        dgamma[j] = b[j] * k
        a[j] = gamma[j] * k


@njit(**SERIAL)
def _dx_eval(dout, a, dx, lo, hi):
    ud = np.uint64(dout.shape[1])
    for i in range(lo, hi):
        for j in range(ud):
            dx[i, j] = dout[i, j] * a[j]


@njit(**PARALLEL)
def batchnorm_backward_eval(
    dout, x, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, work
):
    """Gradients of eval-mode batch norm (fixed running statistics).

    With inv_std = 1 / sqrt(running_var + eps) and xhat = (x - running_mean) * inv_std:
    dbeta = sum(dout, 0), dgamma = sum(dout * xhat, 0): (D,); dx = dout * gamma * inv_std: (N, D).
    work: (slots, 2, D) float64 scratch, overwritten (as for batchnorm_forward_train).
    """
    n, d = dout.shape
    a = work[0, 0]
    b = work[0, 1]
    c = _row_chunks(n, d, work.shape[0])
    if c == 1:
        _sums_eval(dout, x, running_mean, a, b, np.int64(0), n)
        _finish_sums_eval(gamma, running_var, eps, a, b, dgamma, dbeta)
        _dx_eval(dout, a, dx, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _sums_eval(dout, x, running_mean, work[k, 0], work[k, 1], lo, hi)
        _merge_sums(work, c)
        _finish_sums_eval(gamma, running_var, eps, a, b, dgamma, dbeta)
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _dx_eval(dout, a, dx, lo, hi)
