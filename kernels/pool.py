"""2-D max and average pooling over NCHW batches, and their backward passes.

Windows of kh x kw with strides sh, sw over the image padded by ph, pw on each side; the
output has OH = (H + 2 ph - kh) // sh + 1 rows (PyTorch's ``ceil_mode=False``), likewise OW.
The padding counts as -inf for max pooling (it never wins) and as zeros for average pooling,
whose divisor is always kh * kw (PyTorch's ``count_include_pad=True``; with ph <= kh / 2 and
the floor above, every window lies inside the padded image). Callers keep ph <= kh // 2 and
pw <= kw // 2 (PyTorch's rule), so every window holds at least one pixel of the image.

Max pooling records, per output, the flat index ih * W + iw of its maximum in the input plane
(``argmax``, int64). Of equal maxima the first in row-major window order wins (a later value
must be strictly greater), as in PyTorch; a NaN wins over any number (the last NaN of the
window), so NaN propagates as in PyTorch and ``np.max``.

Work splits over the N * C planes: each chunk owns whole planes of x, y and dx, so backward's
additions (overlapping windows) never meet another thread's.
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks


@njit(**SERIAL)
def _maxpool_plane(x, kh, kw, sh, sw, ph, pw, y, argmax):
    h, w = x.shape
    oh_n, ow_n = y.shape
    if kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0:
        # The common 2x2 pooling: its four values by name, chosen without branches (the
        # comparisons of random data are unpredictable), in the same order and rule.
        for oh in range(oh_n):
            r0, r1 = x[2 * oh], x[2 * oh + 1]
            base = 2 * oh * w
            for ow in range(ow_n):
                j = 2 * ow
                best, at = r0[j], base + j
                v = r0[j + 1]
                take = v > best or v != v
                best, at = (v, base + j + 1) if take else (best, at)
                v = r1[j]
                take = v > best or v != v
                best, at = (v, base + w + j) if take else (best, at)
                v = r1[j + 1]
                take = v > best or v != v
                best, at = (v, base + w + j + 1) if take else (best, at)
                y[oh, ow] = best
                argmax[oh, ow] = at
        return
    for oh in range(oh_n):
        h0 = oh * sh - ph
        i_lo, i_hi = max(h0, 0), min(h0 + kh, h)
        for ow in range(ow_n):
            w0 = ow * sw - pw
            j_lo, j_hi = max(w0, 0), min(w0 + kw, w)
            best = -np.inf
            at = i_lo * w + j_lo
            for i in range(i_lo, i_hi):
                row = x[i]
                for j in range(j_lo, j_hi):
                    v = row[j]
                    if v > best or np.isnan(v):
                        best = v
                        at = i * w + j
            y[oh, ow] = best  # x's value at ``at`` (-inf only when the whole window is)
            argmax[oh, ow] = at


@njit(**PARALLEL)
def maxpool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    """y[n, c, oh, ow] = the maximum of its window of x; argmax its flat index in the plane."""
    n, c_n, h, w = x.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    planes = n * c_n
    x3 = x.reshape(planes, h, w)
    y3 = y.reshape(planes, oh_n, ow_n)
    a3 = argmax.reshape(planes, oh_n, ow_n)
    c = min(n_chunks(x.size), planes)
    if c <= 1:
        for p in range(planes):
            _maxpool_plane(x3[p], kh, kw, sh, sw, ph, pw, y3[p], a3[p])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, planes)
            for p in range(lo, hi):
                _maxpool_plane(x3[p], kh, kw, sh, sw, ph, pw, y3[p], a3[p])


@njit(**SERIAL)
def _maxpool_back_plane(dout, argmax, dx):
    for i in range(dx.shape[0]):
        dx[i] = 0
    for q in range(dout.shape[0]):
        dx[argmax[q]] += dout[q]


@njit(**PARALLEL)
def maxpool_backward(dout, argmax, dx):
    """dx (N, C, H, W) = dout added at each output's argmax; zero elsewhere. Overwrites dx."""
    n, c_n, h, w = dx.shape
    planes = n * c_n
    q = dout.shape[2] * dout.shape[3]
    d2 = dout.reshape(planes, q)
    a2 = argmax.reshape(planes, q)
    x2 = dx.reshape(planes, h * w)
    c = min(n_chunks(dx.size), planes)
    if c <= 1:
        for p in range(planes):
            _maxpool_back_plane(d2[p], a2[p], x2[p])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, planes)
            for p in range(lo, hi):
                _maxpool_back_plane(d2[p], a2[p], x2[p])


@njit(**SERIAL)
def _avgpool_plane(x, kh, kw, sh, sw, ph, pw, y):
    h, w = x.shape
    oh_n, ow_n = y.shape
    scale = 1.0 / (kh * kw)
    if kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0:
        # The common 2x2 pooling: the four values by name (summed in float64 in the same
        # order as below), no loops over the window.
        for oh in range(oh_n):
            r0, r1, yo = x[2 * oh], x[2 * oh + 1], y[oh]
            for ow in range(ow_n):
                j = 2 * ow
                s = np.float64(r0[j]) + np.float64(r0[j + 1])
                s = s + np.float64(r1[j]) + np.float64(r1[j + 1])
                yo[ow] = s * scale
        return
    for oh in range(oh_n):
        h0 = oh * sh - ph
        i_lo, i_hi = max(h0, 0), min(h0 + kh, h)
        for ow in range(ow_n):
            w0 = ow * sw - pw
            j_lo, j_hi = max(w0, 0), min(w0 + kw, w)
            s = 0.0  # float64 whatever the dtype: a global pool sums a whole plane
            for i in range(i_lo, i_hi):
                row = x[i]
                for j in range(j_lo, j_hi):
                    s += row[j]
            y[oh, ow] = s * scale


@njit(**PARALLEL)
def avgpool_forward(x, kh, kw, sh, sw, ph, pw, y):
    """y[n, c, oh, ow] = the sum of its window of x (padding as zeros) / (kh * kw)."""
    n, c_n, h, w = x.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    planes = n * c_n
    x3 = x.reshape(planes, h, w)
    y3 = y.reshape(planes, oh_n, ow_n)
    c = min(n_chunks(x.size), planes)
    if c <= 1:
        for p in range(planes):
            _avgpool_plane(x3[p], kh, kw, sh, sw, ph, pw, y3[p])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, planes)
            for p in range(lo, hi):
                _avgpool_plane(x3[p], kh, kw, sh, sw, ph, pw, y3[p])


@njit(**SERIAL)
def _avgpool_back_plane(dout, kh, kw, sh, sw, ph, pw, dx):
    h, w = dx.shape
    oh_n, ow_n = dout.shape
    scale = 1.0 / (kh * kw)
    if kh == 2 and kw == 2 and sh == 2 and sw == 2 and ph == 0 and pw == 0:
        # Non-overlapping 2x2 windows: each input pixel gets one output's share; the rows
        # and columns the windows leave out (odd sizes) are 0.
        for i in range(2 * oh_n, h):
            dx[i, :] = 0
        for oh in range(oh_n):
            r0, r1, do = dx[2 * oh], dx[2 * oh + 1], dout[oh]
            for ow in range(ow_n):
                g = do[ow] * scale
                j = 2 * ow
                r0[j] = g
                r0[j + 1] = g
                r1[j] = g
                r1[j + 1] = g
            r0[2 * ow_n :] = 0
            r1[2 * ow_n :] = 0
        return
    for i in range(h):
        for j in range(w):
            dx[i, j] = 0
    for oh in range(oh_n):
        h0 = oh * sh - ph
        i_lo, i_hi = max(h0, 0), min(h0 + kh, h)
        for ow in range(ow_n):
            w0 = ow * sw - pw
            j_lo, j_hi = max(w0, 0), min(w0 + kw, w)
            g = dout[oh, ow] * scale
            for i in range(i_lo, i_hi):
                row = dx[i]
                for j in range(j_lo, j_hi):
                    row[j] += g


@njit(**PARALLEL)
def avgpool_backward(dout, kh, kw, sh, sw, ph, pw, dx):
    """dx (N, C, H, W): each output's gradient / (kh * kw) added over its window. Overwrites."""
    n, c_n, h, w = dx.shape
    oh_n, ow_n = dout.shape[2], dout.shape[3]
    planes = n * c_n
    d3 = dout.reshape(planes, oh_n, ow_n)
    x3 = dx.reshape(planes, h, w)
    c = min(n_chunks(dx.size), planes)
    if c <= 1:
        for p in range(planes):
            _avgpool_back_plane(d3[p], kh, kw, sh, sw, ph, pw, x3[p])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, planes)
            for p in range(lo, hi):
                _avgpool_back_plane(d3[p], kh, kw, sh, sw, ph, pw, x3[p])
