"""NumPy twins of ``kernels.softmax_cross_entropy``."""

import numpy as np


def _log_softmax(z):
    z = z.astype(np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def softmax_forward(x, out):
    out[...] = np.exp(_log_softmax(x))


def softmax_backward(dout, y, dx):
    dx[...] = y * (dout - (dout * y).sum(axis=1, keepdims=True))


def softmax_cross_entropy_labels(z, t, dz):
    n = z.shape[0]
    logp = _log_softmax(z)
    onehot = np.zeros(z.shape)
    onehot[np.arange(n), t] = 1
    dz[...] = (np.exp(logp) - onehot) / n
    return -logp[np.arange(n), t].sum() / n


def softmax_cross_entropy_targets(z, t, dz):
    n = z.shape[0]
    logp = _log_softmax(z)
    t = t.astype(np.float64)
    dz[...] = (np.exp(logp) * t.sum(axis=1, keepdims=True) - t) / n
    return -(t * logp).sum() / n


def sigmoid_cross_entropy(z, t, dz):
    n = z.shape[0]
    z, t = z.astype(np.float64), t.astype(np.float64)
    # log sigmoid(z) = -log(1 + exp(-z)) = -logaddexp(0, -z), and log(1 - sigmoid z) likewise.
    log_s, log_1ms = -np.logaddexp(0, -z), -np.logaddexp(0, z)
    dz[...] = (np.exp(log_s) - t) / n
    return -(t * log_s + (1 - t) * log_1ms).sum() / n


def mse_forward(y, t):
    return float(np.mean((y.astype(np.float64) - t) ** 2))


def mse_backward(y, t, dy):
    dy[...] = 2 * (y - t) / y.size
