"""NumPy twins of ``kernels.pool``: pad (with -inf for max, zeros for average), gather each
window offset as a strided slice (the course's im2col), reduce over the window."""

import numpy as np


def _windows(x, kh, kw, sh, sw, ph, pw, fill):
    """(N, C, kh * kw, OH, OW): every window's values in row-major window order."""
    n, c, h, w = x.shape
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    img = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)], constant_values=fill)
    out = np.empty((n, c, kh * kw, oh, ow), x.dtype)
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * kw + j] = img[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw]
    return out


def _flat_index(k, kh, kw, sh, sw, ph, pw, w):
    """The flat index ih * W + iw in the input plane of window position k at each output."""
    oh, ow = k.shape[-2:]
    i, j = np.divmod(k, kw)
    ih = np.arange(oh)[:, None] * sh - ph + i
    iw = np.arange(ow)[None, :] * sw - pw + j
    return ih * w + iw


def maxpool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax):
    win = _windows(x, kh, kw, sh, sw, ph, pw, -np.inf)
    # np.argmax gives the first maximum; a NaN counts as the maximum (the last one, as the
    # kernel keeps it: its comparison lets a later NaN take over).
    nan = np.isnan(win)
    last_nan = win.shape[2] - 1 - np.argmax(nan[:, :, ::-1], axis=2)
    k = np.where(nan.any(axis=2), last_nan, np.argmax(win, axis=2))
    argmax[...] = _flat_index(k, kh, kw, sh, sw, ph, pw, x.shape[3])
    y[...] = np.take_along_axis(win, k[:, :, None], axis=2)[:, :, 0]


def maxpool_backward(dout, argmax, dx):
    n, c, h, w = dx.shape
    flat = np.zeros((n * c, h * w), dx.dtype)
    rows = np.repeat(np.arange(n * c), dout[0, 0].size)
    np.add.at(flat, (rows, argmax.reshape(-1)), dout.reshape(-1))
    dx[...] = flat.reshape(dx.shape)


def avgpool_forward(x, kh, kw, sh, sw, ph, pw, y):
    win = _windows(x.astype(np.float64), kh, kw, sh, sw, ph, pw, 0.0)
    y[...] = win.sum(axis=2) * (1.0 / (kh * kw))


def avgpool_backward(dout, kh, kw, sh, sw, ph, pw, dx):
    n, c, h, w = dx.shape
    oh, ow = dout.shape[2:]
    img = np.zeros((n, c, h + 2 * ph + sh - 1 + kh, w + 2 * pw + sw - 1 + kw), dx.dtype)
    g = dout * dx.dtype.type(1.0 / (kh * kw))
    for i in range(kh):
        for j in range(kw):
            img[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += g
    dx[...] = img[:, :, ph : h + ph, pw : w + pw]
