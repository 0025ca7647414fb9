"""2-D convolution over NCHW batches: im2col, col2im, and the convolution's passes.

Layout: images are (batch, channels, height, width), weights (out_channels, in_channels, kh,
kw), as in PyTorch. The patches of the whole batch are gathered into ``col`` of shape
(C * kh * kw, N, OH * OW): the transpose of the course's (N * OH * OW, C * kh * kw) matrix.
Row r = (c * kh + i) * kw + j holds x[n, c, oh * sh - ph + i, ow * sw - pw + j] at
[r, n, oh * OW + ow], zero where that falls in the padding. Each of the three products is
then one BLAS call over the whole batch (bench/NOTES.md, "Issue 17", has the figures that
chose this over one call per image, and over calls from inside parallel loops):

    z  = W2 @ col                 (C_out, N * P)       W2 = W.reshape(C_out, C * kh * kw)
    dW2 = g^T-layout @ col.T      (C_out, C * kh * kw)  g moved to (C_out, N, P)
    dcol = W2.T @ g               (C * kh * kw, N * P)  then col2im

and the (C_out, N, P) product is moved to NCHW by the bias-and-activation pass's copy.
Gathering writes each row of ``col`` contiguously (and reads x contiguously when the stride
is 1), so the loops vectorise. im2col and col2im split over images: each chunk writes only
its images' columns of ``col`` and its images of ``dx``, so no two threads add into one
element.

Shapes: x (N, C, H, W), W (C_out, C, kh, kw), b (C_out,), col (C * kh * kw, N, OH * OW),
z (C_out, N, OH * OW) scratch, y (N, C_out, OH, OW). Strides sh, sw >= 1, paddings ph,
pw >= 0, OH, OW >= 1 (unchecked).
"""

import numpy as np
from numba import njit, prange

from . import blas
from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks
from .activations import IDENTITY, _backward_range, _forward_range
from .softmax_cross_entropy import _row_sum


@njit(**SERIAL)
def _out_range(j, pad, stride, size, out):
    """[lo, hi) of the output positions o whose input position o * stride - pad + j lies in
    [0, size): the columns of a col row that are not padding."""
    # o * stride >= pad - j  and  o * stride <= size - 1 + pad - j
    a = pad - j
    lo = 0 if a <= 0 else (a + stride - 1) // stride
    b = size - 1 + pad - j
    hi = 0 if b < 0 else b // stride + 1
    return min(lo, out), min(max(hi, lo), out)


@njit(**SERIAL)
def _copy(dst, src):
    """dst[:] = src[:] for 1-D arrays of one length; unsigned indices, so no wraparound
    checks and a loop LLVM vectorises."""
    for t in range(np.uint64(dst.shape[0])):
        dst[t] = src[t]


@njit(**SERIAL)
def _add(dst, src):
    """dst[:] += src[:], as _copy."""
    for t in range(np.uint64(dst.shape[0])):
        dst[t] += src[t]


@njit(**SERIAL)
def _im2col_image(x, kh, kw, sh, sw, ph, pw, oh_n, ow_n, col, k):
    # x: (C, H, W) of image k, into its columns of col: (C * kh * kw, N, OH * OW).
    c_n, h, w = x.shape
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j, k]
                lo, hi = _out_range(j, pw, sw, w, ow_n)
                off = j - pw
                for oh in range(oh_n):
                    ih = oh * sh - ph + i
                    base = oh * ow_n
                    if ih < 0 or ih >= h:
                        row[base : base + ow_n] = 0
                        continue
                    src = x[c, ih]
                    row[base : base + lo] = 0
                    if sw == 1:  # unit stride both sides
                        _copy(row[base + lo : base + hi], src[lo + off : hi + off])
                    else:
                        for ow in range(lo, hi):
                            row[base + ow] = src[ow * sw + off]
                    row[base + hi : base + ow_n] = 0


@njit(**SERIAL)
def _col2im_image(col, k, kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx):
    # The adjoint of _im2col_image: dx (C, H, W) of image k = the sum of its col entries at
    # their pixels.
    c_n, h, w = dx.shape
    for c in range(c_n):
        for y in range(h):
            for z in range(w):
                dx[c, y, z] = 0
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j, k]
                lo, hi = _out_range(j, pw, sw, w, ow_n)
                off = j - pw
                for oh in range(oh_n):
                    ih = oh * sh - ph + i
                    if ih < 0 or ih >= h:
                        continue
                    dst = dx[c, ih]
                    base = oh * ow_n
                    if sw == 1:
                        _add(dst[lo + off : hi + off], row[base + lo : base + hi])
                    else:
                        for ow in range(lo, hi):
                            dst[ow * sw + off] += row[base + ow]


@njit(**PARALLEL)
def im2col(x, kh, kw, sh, sw, ph, pw, col):
    """col[:, n] (C * kh * kw, OH * OW) = the kh x kw patches of x[n], zero-padded by ph, pw."""
    n = x.shape[0]
    oh_n = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow_n = (x.shape[3] + 2 * pw - kw) // sw + 1
    c = min(n_chunks(col.size), n)
    if c <= 1:
        for k in range(n):
            _im2col_image(x[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, col, k)
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                _im2col_image(x[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, col, k)


@njit(**PARALLEL)
def col2im(col, kh, kw, sh, sw, ph, pw, dx):
    """dx (N, C, H, W) = the sum over patches of col's entries at their pixels (im2col's
    adjoint; the padding's entries are dropped). Overwrites dx."""
    n = dx.shape[0]
    oh_n = (dx.shape[2] + 2 * ph - kh) // sh + 1
    ow_n = (dx.shape[3] + 2 * pw - kw) // sw + 1
    c = min(n_chunks(col.size), n)
    if c <= 1:
        for k in range(n):
            _col2im_image(col, k, kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx[k])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                _col2im_image(col, k, kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx[k])


@njit(**SERIAL)
def _bias_act_image(y, b, act, alpha):
    # y: (C_out, P) of one image: y[c] <- act(y[c] + b[c]).
    p = np.uint64(y.shape[1])
    for c in range(y.shape[0]):
        row = y[c]
        bc = b[c]
        for q in range(p):
            row[q] += bc
        _forward_range(row, row, act, alpha, np.int64(0), p)


@njit(**PARALLEL)
def conv_bias_act_forward(y, b, act, alpha):
    """y (N, C_out, P) <- act(y + b[c]) per channel c, in place (P = OH * OW)."""
    n = y.shape[0]
    c = min(n_chunks(y.size), n)
    if c <= 1:
        for k in range(n):
            _bias_act_image(y[k], b, act, alpha)
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                _bias_act_image(y[k], b, act, alpha)


@njit(**SERIAL)
def _dz_channels(dout, y, act, alpha, dz, db, lo, hi):
    # Channels [lo, hi): dz = dout * act'(y) and db[c] = the sum of dz over images and
    # pixels (summed in float64). A chunk owns whole channels: no shared sums.
    n = dout.shape[0]
    p = np.uint64(dout.shape[2])
    g = dout if act == IDENTITY else dz
    for c in range(lo, hi):
        s = 0.0
        for k in range(n):
            if act != IDENTITY:
                _backward_range(dout[k, c], y[k, c], dz[k, c], act, alpha, 0, p)
            s += _row_sum(g[k, c])  # float64, in a fixed order, vectorised
        db[c] = s


@njit(**PARALLEL)
def conv_bias_act_backward(dout, y, act, alpha, dz, db):
    """dz = dout * act'(y) (not written when act is identity) and db[c] = the sum of dz over
    images and pixels. dout, y, dz: (N, C_out, P)."""
    m = dout.shape[1]
    c = min(n_chunks(dout.size), m)
    if c <= 1:
        _dz_channels(dout, y, act, alpha, dz, db, 0, m)
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, m)
            _dz_channels(dout, y, act, alpha, dz, db, lo, hi)


@njit(**PARALLEL)
def _swap01(a, out):
    """out[j, i] = a[i, j] for (I, J, P) -> (J, I, P): moves whole rows of P values."""
    n_i, n_j = a.shape[0], a.shape[1]
    c = min(n_chunks(a.size), n_i)
    if c <= 1:
        for i in range(n_i):
            for j in range(n_j):
                out[j, i] = a[i, j]
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n_i)
            for i in range(lo, hi):
                for j in range(n_j):
                    out[j, i] = a[i, j]


def conv2d_forward(x, W, b, sh, sw, ph, pw, act, alpha, col, z, y):
    """y = act(conv(x, W) + b), written into ``y`` (N, C_out, OH, OW); fills ``col`` with x's
    patches (C * kh * kw, N, OH * OW), which backward reads; ``z`` (C_out, N, OH * OW) is
    scratch for the product."""
    n, m = y.shape[0], y.shape[1]
    p = y.shape[2] * y.shape[3]
    im2col(x, W.shape[2], W.shape[3], sh, sw, ph, pw, col)
    blas.gemm(W.reshape(m, -1), col.reshape(col.shape[0], -1), z.reshape(m, -1), False, False, 0.0)
    y3 = y.reshape(n, m, p)
    _swap01(z, y3)
    conv_bias_act_forward(y3, b, act, alpha)


def conv2d_backward(dout, W, y, sh, sw, ph, pw, act, alpha, col, dz, gt, dcol, dx, dW, db, need_dx):
    """Gradients of y = act(conv(x, W) + b), with ``col`` the patches forward gathered.

    dout, y, dz: (N, C_out, OH, OW). Writes dz = dout * act'(y) (unused when act is identity;
    ``dz`` may be dout itself), dW (C_out, C, kh, kw), db (C_out,), and, when ``need_dx``,
    dx (N, C, H, W) through the patch gradients ``dcol`` (col's shape). ``gt``
    (C_out, N, OH * OW) is scratch: the gradient moved channels first for the products.
    """
    n, m = dout.shape[0], dout.shape[1]
    p = dout.shape[2] * dout.shape[3]
    d3 = dout.reshape(n, m, p)
    z3 = dz.reshape(n, m, p)
    conv_bias_act_backward(d3, y.reshape(n, m, p), act, alpha, z3, db)
    _swap01(d3 if act == IDENTITY else z3, gt)
    g2 = gt.reshape(m, -1)
    rows = col.shape[0]
    blas.gemm(g2, col.reshape(rows, -1), dW.reshape(m, rows), False, True, 0.0)
    if need_dx:
        blas.gemm(W.reshape(m, -1), g2, dcol.reshape(rows, -1), True, False, 0.0)
        col2im(dcol, W.shape[2], W.shape[3], sh, sw, ph, pw, dx)
