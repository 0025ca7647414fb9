"""2-D convolution over NCHW batches: im2col, col2im, and the convolution's passes.

Layout: images are (batch, channels, height, width), weights (out_channels, in_channels, kh,
kw), as in PyTorch. Each image's patches are gathered into ``col[n]`` of shape
(C * kh * kw, OH * OW) (the transpose of the course's (OH * OW, C * kh * kw) rows), so that

    y[n] = W.reshape(C_out, C * kh * kw) @ col[n]        (C_out, OH * OW)

is that image's output already in NCHW order: no transpose of the output or of its gradient.
Row r = (c * kh + i) * kw + j of ``col[n]`` holds x[n, c, oh * sh - ph + i, ow * sw - pw + j]
at column oh * OW + ow, zero where that falls in the padding. Gathering walks each row of
``col`` contiguously (and x contiguously too when the stride is 1), so the loops vectorise.

Work splits over images: a chunk of images per thread gathers its images and multiplies each
by W with one BLAS call per image (small products run on the calling thread inside OpenBLAS),
and backward's col2im adds each image's patch gradients into that image's dx only, so no two
threads ever add into one element. bench/NOTES.md ("Issue 17") has the figures that chose this
layout over one big product over the batch.

Shapes: x (N, C, H, W), W (C_out, C, kh, kw), b (C_out,), col (N, C * kh * kw, OH * OW),
y (N, C_out, OH, OW). Strides sh, sw >= 1, paddings ph, pw >= 0, OH, OW >= 1 (unchecked).
"""

import numpy as np
from numba import njit, prange

from . import blas
from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks
from .activations import IDENTITY, _backward_range, _forward_range


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
def _im2col_image(x, kh, kw, sh, sw, ph, pw, oh_n, ow_n, col):
    # x: (C, H, W) of one image, col: (C * kh * kw, OH * OW).
    c_n, h, w = x.shape
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j]
                lo, hi = _out_range(j, pw, sw, w, ow_n)
                for oh in range(oh_n):
                    ih = oh * sh - ph + i
                    base = oh * ow_n
                    if ih < 0 or ih >= h:
                        for ow in range(ow_n):
                            row[base + ow] = 0
                        continue
                    src = x[c, ih]
                    for ow in range(lo):
                        row[base + ow] = 0
                    off = j - pw
                    for ow in range(lo, hi):
                        row[base + ow] = src[ow * sw + off]
                    for ow in range(hi, ow_n):
                        row[base + ow] = 0


@njit(**SERIAL)
def _col2im_image(col, kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx):
    # The adjoint of _im2col_image: dx (C, H, W) = the sum of every col entry at its pixel.
    c_n, h, w = dx.shape
    for c in range(c_n):
        for y in range(h):
            for z in range(w):
                dx[c, y, z] = 0
    for c in range(c_n):
        for i in range(kh):
            for j in range(kw):
                row = col[(c * kh + i) * kw + j]
                lo, hi = _out_range(j, pw, sw, w, ow_n)
                off = j - pw
                for oh in range(oh_n):
                    ih = oh * sh - ph + i
                    if ih < 0 or ih >= h:
                        continue
                    dst = dx[c, ih]
                    base = oh * ow_n
                    for ow in range(lo, hi):
                        dst[ow * sw + off] += row[base + ow]


@njit(**PARALLEL)
def im2col(x, kh, kw, sh, sw, ph, pw, col):
    """col[n] (C * kh * kw, OH * OW) = the kh x kw patches of x[n], zero-padded by ph, pw."""
    n = x.shape[0]
    oh_n = (x.shape[2] + 2 * ph - kh) // sh + 1
    ow_n = (x.shape[3] + 2 * pw - kw) // sw + 1
    c = min(n_chunks(col.size), n)
    if c <= 1:
        for k in range(n):
            _im2col_image(x[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, col[k])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                _im2col_image(x[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, col[k])


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
            _col2im_image(col[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx[k])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                _col2im_image(col[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx[k])


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
            row = g[k, c]
            for q in range(p):
                s += row[q]
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
def conv2d_forward(x, W, b, sh, sw, ph, pw, act, alpha, col, y):
    """y = act(conv(x, W) + b), written into ``y`` (N, C_out, OH, OW); fills ``col`` with x's
    patches (N, C * kh * kw, OH * OW), which backward reads."""
    n = x.shape[0]
    m, _, kh, kw = W.shape
    oh_n, ow_n = y.shape[2], y.shape[3]
    w2 = W.reshape(m, -1)
    y3 = y.reshape(n, m, oh_n * ow_n)
    c = min(n_chunks(col.size), n)
    if c <= 1:
        for k in range(n):
            _im2col_image(x[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, col[k])
            blas.gemm(w2, col[k], y3[k], False, False, 0.0)
            _bias_act_image(y3[k], b, act, alpha)
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                _im2col_image(x[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, col[k])
                blas.gemm(w2, col[k], y3[k], False, False, 0.0)
                _bias_act_image(y3[k], b, act, alpha)


@njit(**PARALLEL)
def _dx_images(g, w2, kh, kw, sh, sw, ph, pw, dcol, dx):
    # dcol[n] = W2.T @ g[n], then col2im of it into dx[n].
    n = dx.shape[0]
    oh_n = (dx.shape[2] + 2 * ph - kh) // sh + 1
    ow_n = (dx.shape[3] + 2 * pw - kw) // sw + 1
    c = min(n_chunks(dcol.size), n)
    if c <= 1:
        for k in range(n):
            blas.gemm(w2, g[k], dcol[k], True, False, 0.0)
            _col2im_image(dcol[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx[k])
    else:
        for t in prange(c):
            lo, hi = chunk_bounds(t, c, n)
            for k in range(lo, hi):
                blas.gemm(w2, g[k], dcol[k], True, False, 0.0)
                _col2im_image(dcol[k], kh, kw, sh, sw, ph, pw, oh_n, ow_n, dx[k])


@njit(**SERIAL)
def _dw(g, col, dw2):
    # dW2 = sum over images of g[n] @ col[n].T: one BLAS call per image, added in order.
    for k in range(g.shape[0]):
        blas.gemm(g[k], col[k], dw2, False, True, 0.0 if k == 0 else 1.0)


def conv2d_backward(dout, W, y, sh, sw, ph, pw, act, alpha, col, dcol, dz, dx, dW, db, need_dx):
    """Gradients of y = act(conv(x, W) + b), with ``col`` the patches forward gathered.

    dout, y, dz: (N, C_out, OH, OW). Writes dz = dout * act'(y) (unused when act is identity;
    ``dz`` may be dout itself), dW (C_out, C, kh, kw), db (C_out,), and, when ``need_dx``,
    dx (N, C, H, W), through the patch gradients ``dcol`` (col's shape; scratch).
    """
    n, m = dout.shape[0], dout.shape[1]
    p = dout.shape[2] * dout.shape[3]
    d3 = dout.reshape(n, m, p)
    z3 = dz.reshape(n, m, p)
    conv_bias_act_backward(d3, y.reshape(n, m, p), act, alpha, z3, db)
    g = d3 if act == IDENTITY else z3
    _dw(g, col, dW.reshape(m, -1))
    if need_dx:
        _dx_images(g, W.reshape(m, -1), W.shape[2], W.shape[3], sh, sw, ph, pw, dcol, dx)
