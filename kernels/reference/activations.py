"""NumPy twins of ``kernels.activations``."""

import numpy as np


def identity_forward(x, out):
    out[...] = x


def identity_backward(dout, dx):
    dx[...] = dout


def step_forward(x, out):
    out[...] = x > 0


def step_backward(dout, y, dx):
    dx[...] = 0


def sigmoid_forward(x, out):
    # exp of -|x| never overflows; the two forms agree where each is used.
    e = np.exp(-np.abs(x))
    out[...] = np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def sigmoid_backward(dout, y, dx):
    dx[...] = dout * y * (1 - y)


def tanh_forward(x, out):
    out[...] = np.tanh(x)


def tanh_backward(dout, y, dx):
    dx[...] = dout * (1 - y**2)


def relu_forward(x, out):
    out[...] = np.maximum(x, 0)


def relu_backward(dout, y, dx):
    dx[...] = np.where(y > 0, dout, 0)


def leaky_relu_forward(x, negative_slope, out):
    out[...] = np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(dout, y, negative_slope, dx):
    dx[...] = np.where(y > 0, dout, negative_slope * dout)


def elu_forward(x, alpha, out):
    out[...] = np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def elu_backward(dout, y, alpha, dx):
    dx[...] = np.where(y > 0, dout, dout * (y + alpha))


def maxout_forward(z, pieces, out, argmax):
    n, m = out.shape
    groups = z.reshape(n, m, pieces)
    argmax[...] = groups.argmax(axis=2)
    out[...] = groups.max(axis=2)


def maxout_backward(dout, argmax, pieces, dz):
    n, m = dout.shape
    groups = np.zeros((n, m, pieces), dtype=dz.dtype)
    np.put_along_axis(groups, argmax[:, :, None], dout[:, :, None], axis=2)
    dz[...] = groups.reshape(n, m * pieces)
