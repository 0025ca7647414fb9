"""NumPy twins of ``kernels.conv``: the course's im2col and col2im (deep learning from
scratch, chapter 7), whose (N * OH * OW, C * kh * kw) matrix is the transpose of the
kernels' (C * kh * kw, N, OH * OW) ``col``."""

import numpy as np

from ..activations import IDENTITY
from .affine import _apply, _grad


def _out_size(size, k, stride, pad):
    return (size + 2 * pad - k) // stride + 1


def im2col(x, kh, kw, sh, sw, ph, pw, col):
    n, c, h, w = x.shape
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    img = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    patches = np.zeros((n, c, kh, kw, oh, ow), x.dtype)
    for y in range(kh):
        y_max = y + sh * oh
        for z in range(kw):
            z_max = z + sw * ow
            patches[:, :, y, z, :, :] = img[:, :, y:y_max:sh, z:z_max:sw]
    course = patches.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)
    col[...] = course.T.reshape(c * kh * kw, n, oh * ow)


def col2im(col, kh, kw, sh, sw, ph, pw, dx):
    n, c, h, w = dx.shape
    oh, ow = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
    course = col.reshape(col.shape[0], -1).T  # (N * OH * OW, C * kh * kw)
    patches = course.reshape(n, oh, ow, c, kh, kw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, h + 2 * ph + sh - 1, w + 2 * pw + sw - 1), col.dtype)
    for y in range(kh):
        y_max = y + sh * oh
        for z in range(kw):
            z_max = z + sw * ow
            img[:, :, y:y_max:sh, z:z_max:sw] += patches[:, :, y, z, :, :]
    dx[...] = img[:, :, ph : h + ph, pw : w + pw]


def conv_bias_act_forward(y, b, act, alpha):
    _apply(y + b[:, None], act, alpha, y)


def conv_bias_act_backward(dout, y, act, alpha, dz, db):
    g = np.empty_like(dout)
    _grad(dout, y, act, alpha, g)
    if act != IDENTITY:
        dz[...] = g
    db[...] = g.sum(axis=(0, 2))


def conv2d_forward(x, W, b, sh, sw, ph, pw, act, alpha, col, z, y):
    m = W.shape[0]
    im2col(x, W.shape[2], W.shape[3], sh, sw, ph, pw, col)
    z[...] = (W.reshape(m, -1) @ col.reshape(col.shape[0], -1)).reshape(z.shape)
    out = z.transpose(1, 0, 2).reshape(y.shape) + b[:, None, None]
    _apply(out, act, alpha, y)


def conv2d_backward(dout, W, y, sh, sw, ph, pw, act, alpha, col, dz, gt, dcol, dx, dW, db, need_dx):
    m, n = W.shape[0], dout.shape[0]
    g = np.empty_like(dout)
    _grad(dout, y, act, alpha, g)
    if act != IDENTITY:
        dz[...] = g
    g3 = g.reshape(n, m, -1)
    gt[...] = g3.transpose(1, 0, 2)
    db[...] = g3.sum(axis=(0, 2))
    dW[...] = np.einsum("nmp,knp->mk", g3, col).reshape(dW.shape)
    if need_dx:
        dcol[...] = np.einsum("mk,nmp->knp", W.reshape(m, -1), g3)
        col2im(dcol, W.shape[2], W.shape[3], sh, sw, ph, pw, dx)
