"""NumPy twins of ``fastnn.kernels.batchnorm``: statistics in float64, two passes, no tricks.

The ``work`` scratch argument (slots, 2, D) is the kernels' and is not used here.
"""

import numpy as np


def batchnorm_forward_train(x, gamma, beta, eps, out, xhat, mean, var, inv_std, work):
    """Normalise x (N, D) with its own batch statistics (see the kernel)."""
    xd = np.asarray(x, dtype=np.float64)
    mu = xd.mean(axis=0)
    centred = xd - mu
    v = (centred**2).mean(axis=0)
    k = 1.0 / np.sqrt(v + eps)
    h = centred * k
    mean[...] = mu
    var[...] = v
    inv_std[...] = k
    xhat[...] = h
    out[...] = gamma.astype(np.float64) * h + beta.astype(np.float64)


def batchnorm_update_running(running_mean, running_var, mean, var, momentum, n):
    """running = (1 - momentum) * running + momentum * batch; variance made unbiased."""
    unbiased = var.astype(np.float64) * (n / (n - 1.0) if n > 1 else 1.0)
    running_mean[...] = (1.0 - momentum) * running_mean.astype(np.float64) + momentum * mean
    running_var[...] = (1.0 - momentum) * running_var.astype(np.float64) + momentum * unbiased


def batchnorm_forward_eval(x, gamma, beta, running_mean, running_var, eps, out, work):
    """out = gamma * (x - running_mean) / sqrt(running_var + eps) + beta."""
    xd = np.asarray(x, dtype=np.float64)
    std = np.sqrt(running_var.astype(np.float64) + eps)
    out[...] = gamma.astype(np.float64) * (xd - running_mean) / std + beta


def batchnorm_backward(dout, xhat, gamma, inv_std, dx, dgamma, dbeta, work):
    """dbeta = sum(dout), dgamma = sum(dout * xhat), dx = gamma*inv_std/N*(N*dout - ...)."""
    n = dout.shape[0]
    g = np.asarray(dout, dtype=np.float64)
    h = np.asarray(xhat, dtype=np.float64)
    db = g.sum(axis=0)
    dg = (g * h).sum(axis=0)
    dbeta[...] = db
    dgamma[...] = dg
    dx[...] = gamma.astype(np.float64) * inv_std / n * (n * g - db - h * dg)


def batchnorm_backward_eval(
    dout, x, gamma, running_mean, running_var, eps, dx, dgamma, dbeta, work
):
    """Eval-mode gradients: dx = dout * gamma / sqrt(running_var + eps)."""
    g = np.asarray(dout, dtype=np.float64)
    k = 1.0 / np.sqrt(running_var.astype(np.float64) + eps)
    h = (np.asarray(x, dtype=np.float64) - running_mean) * k
    dbeta[...] = g.sum(axis=0)
    dgamma[...] = (g * h).sum(axis=0)
    dx[...] = g * (gamma.astype(np.float64) * k)
