"""NumPy twins of ``kernels.optim``: the same updates, written array-at-a-time, in place."""

import numpy as np


def _scalar(params, x):
    # Round each scalar to the buffers' dtype, as the kernels do.
    return params.dtype.type(x)


def _with_decay(params, grads, decay_mask, wd):
    """The gradient plus wd*params where the mask is set (a new array)."""
    g = grads.copy()
    if wd != 0:
        on = decay_mask != 0
        g[on] += wd * params[on]
    return g


def sgd_step(
    params, grads, buf, decay_mask, lr, momentum, dampening, weight_decay, nesterov, first_step
):
    lr = _scalar(params, lr)
    momentum = _scalar(params, momentum)
    g = _with_decay(params, grads, decay_mask, _scalar(params, weight_decay))
    if momentum != 0:
        if first_step:
            buf[...] = g
        else:
            buf[...] = momentum * buf + _scalar(params, 1.0 - dampening) * g
        g = g + momentum * buf if nesterov else buf
    params -= lr * g


def adagrad_step(params, grads, h, decay_mask, clr, weight_decay, eps):
    g = _with_decay(params, grads, decay_mask, _scalar(params, weight_decay))
    h += g * g
    params -= _scalar(params, clr) * (g / (np.sqrt(h) + _scalar(params, eps)))


def rmsprop_step(
    params,
    grads,
    square_avg,
    grad_avg,
    buf,
    decay_mask,
    lr,
    alpha,
    eps,
    weight_decay,
    momentum,
    centered,
):
    alpha1 = _scalar(params, 1.0 - alpha)
    eps = _scalar(params, eps)
    g = _with_decay(params, grads, decay_mask, _scalar(params, weight_decay))
    square_avg[...] = _scalar(params, alpha) * square_avg + alpha1 * g * g
    if centered:
        grad_avg += alpha1 * (g - grad_avg)
        a = np.sqrt(square_avg - grad_avg * grad_avg) + eps
    else:
        a = np.sqrt(square_avg) + eps
    if momentum > 0:
        buf[...] = _scalar(params, momentum) * buf + g / a
        params -= _scalar(params, lr) * buf
    else:
        params -= _scalar(params, lr) * (g / a)


def adadelta_step(params, grads, square_avg, acc_delta, decay_mask, lr, rho, eps, weight_decay):
    rho1 = _scalar(params, 1.0 - rho)
    rho = _scalar(params, rho)
    eps = _scalar(params, eps)
    g = _with_decay(params, grads, decay_mask, _scalar(params, weight_decay))
    square_avg[...] = rho * square_avg + rho1 * g * g
    d = np.sqrt(acc_delta + eps) / np.sqrt(square_avg + eps) * g
    acc_delta[...] = rho * acc_delta + rho1 * d * d
    params -= _scalar(params, lr) * d


def _adam(params, g, m, v, v_max, step_size, beta1, beta2, eps, bias_correction2_sqrt, amsgrad):
    m += _scalar(params, 1.0 - beta1) * (g - m)
    v[...] = _scalar(params, beta2) * v + _scalar(params, 1.0 - beta2) * g * g
    if amsgrad:
        np.maximum(v_max, v, out=v_max)
        v = v_max
    denom = np.sqrt(v) / _scalar(params, bias_correction2_sqrt) + _scalar(params, eps)
    params -= _scalar(params, step_size) * (m / denom)


def adam_step(
    params,
    grads,
    m,
    v,
    v_max,
    decay_mask,
    step_size,
    beta1,
    beta2,
    eps,
    weight_decay,
    bias_correction2_sqrt,
    amsgrad,
):
    g = _with_decay(params, grads, decay_mask, _scalar(params, weight_decay))
    _adam(params, g, m, v, v_max, step_size, beta1, beta2, eps, bias_correction2_sqrt, amsgrad)


def adamw_step(
    params,
    grads,
    m,
    v,
    v_max,
    decay_mask,
    lr,
    step_size,
    beta1,
    beta2,
    eps,
    weight_decay,
    bias_correction2_sqrt,
    amsgrad,
):
    if weight_decay != 0:
        on = decay_mask != 0
        params[on] *= _scalar(params, 1.0 - lr * weight_decay)
    _adam(params, grads, m, v, v_max, step_size, beta1, beta2, eps, bias_correction2_sqrt, amsgrad)


def flat_norm(a):
    with np.errstate(over="ignore", invalid="ignore"):
        s = float(np.sum(np.square(a, dtype=np.float64)))
        if np.isfinite(s) or not np.isfinite(a).all():
            return np.sqrt(s)  # inf for inf, NaN for NaN
        big = float(np.abs(a).max())
        return big * np.sqrt(float(np.sum(np.square(a / big, dtype=np.float64))))


def scale_flat(a, factor):
    a *= a.dtype.type(factor)
