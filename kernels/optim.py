"""Optimizer updates over one flat buffer of parameters.

Every kernel updates ``params`` (1-D, all of a model's parameters back to back) in place from
``grads`` (same size, left unchanged) and flat state buffers of the same size. Weight decay is
fused and applies only where ``decay_mask[i]`` (uint8, same size) is nonzero. The formulas are
torch.optim's single-tensor ones, with ``g`` the gradient after weight decay:

    sgd       g += wd*p;  b = g (first step) or momentum*b + (1-dampening)*g
              p -= lr * (g + momentum*b if nesterov else b)      (b only if momentum != 0)
    adagrad   g += wd*p;  h += g*g;  p -= clr * g / (sqrt(h) + eps)
    rmsprop   g += wd*p;  v = alpha*v + (1-alpha)*g*g;  a = sqrt(v - m*m) + eps (centered,
              m += (1-alpha)*(g-m)) or sqrt(v) + eps;  b = momentum*b + g/a; p -= lr*b
              (without momentum p -= lr * g/a)
    adadelta  g += wd*p;  v = rho*v + (1-rho)*g*g;  d = sqrt(u+eps) / sqrt(v+eps) * g
              u = rho*u + (1-rho)*d*d;  p -= lr*d
    adam      g += wd*p;  m += (1-beta1)*(g-m);  v = beta2*v + (1-beta2)*g*g
              (amsgrad: vmax = max(vmax, v), used for v);  p -= step_size * m / (sqrt(v)/bc2 + eps)
    adamw     p *= 1 - lr*wd; then adam without the wd*p term

Scalars that depend on the step count (clr, step_size = lr/(1-beta1**t),
bc2 = sqrt(1-beta2**t)) are computed by the caller. Every scalar is rounded to the buffers'
dtype before use, so float32 buffers are updated with float32 arithmetic. State buffers a
setting does not use (``buf`` without momentum, ``v_max`` without amsgrad) may be empty.
"""

import numpy as np
from numba import njit, prange

from ._config import PARALLEL, SERIAL, chunk_bounds, n_chunks


# -- SGD -------------------------------------------------------------------------------------
@njit(**SERIAL)
def _sgd_range(params, grads, buf, decay_mask, lr, momentum, damp1, wd, nesterov, first, lo, hi):
    use_wd = wd != 0
    use_momentum = momentum != 0
    for i in range(lo, hi):
        g = grads[i]
        if use_wd:
            g = g + wd * params[i]
        if use_momentum:
            if first:
                b = g
            else:
                b = momentum * buf[i] + damp1 * g
            buf[i] = b
            if nesterov:
                g = g + momentum * b
            else:
                g = b
        params[i] = params[i] - lr * g


@njit(**PARALLEL)
def sgd_step(params, grads, buf, decay_mask, lr, momentum, dampening, weight_decay, nesterov,
             first_step):
    """SGD with optional momentum/Nesterov. ``buf``: momentum buffer (unused if momentum is 0);
    ``first_step``: the buffer is new, so it is set to the gradient (no dampening)."""
    lr_ = params.dtype.type(lr)
    mom = params.dtype.type(momentum)
    damp1 = params.dtype.type(1.0 - dampening)
    wd = params.dtype.type(weight_decay)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _sgd_range(params, grads, buf, decay_mask, lr_, mom, damp1, wd, nesterov, first_step,
                   0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _sgd_range(params, grads, buf, decay_mask, lr_, mom, damp1, wd, nesterov,
                       first_step, lo, hi)


# -- AdaGrad ---------------------------------------------------------------------------------
@njit(**SERIAL)
def _adagrad_range(params, grads, h, decay_mask, clr, wd, eps, lo, hi):
    use_wd = wd != 0
    for i in range(lo, hi):
        g = grads[i]
        if use_wd:
            g = g + wd * params[i]
        s = h[i] + g * g
        h[i] = s
        params[i] = params[i] - clr * (g / (np.sqrt(s) + eps))


@njit(**PARALLEL)
def adagrad_step(params, grads, h, decay_mask, clr, weight_decay, eps):
    """AdaGrad. ``h``: running sum of squared gradients; ``clr`` = lr / (1 + (t-1)*lr_decay)."""
    clr_ = params.dtype.type(clr)
    wd = params.dtype.type(weight_decay)
    eps_ = params.dtype.type(eps)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _adagrad_range(params, grads, h, decay_mask, clr_, wd, eps_, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adagrad_range(params, grads, h, decay_mask, clr_, wd, eps_, lo, hi)


# -- RMSprop ---------------------------------------------------------------------------------
@njit(**SERIAL)
def _rmsprop_range(params, grads, square_avg, grad_avg, buf, decay_mask, lr, alpha, alpha1, eps,
                   wd, momentum, centered, lo, hi):
    use_wd = wd != 0
    use_momentum = momentum > 0
    for i in range(lo, hi):
        g = grads[i]
        if use_wd:
            g = g + wd * params[i]
        v = alpha * square_avg[i] + alpha1 * g * g
        square_avg[i] = v
        if centered:
            m = grad_avg[i]
            m = m + alpha1 * (g - m)
            grad_avg[i] = m
            a = np.sqrt(v - m * m) + eps
        else:
            a = np.sqrt(v) + eps
        if use_momentum:
            b = momentum * buf[i] + g / a
            buf[i] = b
            params[i] = params[i] - lr * b
        else:
            params[i] = params[i] - lr * (g / a)


@njit(**PARALLEL)
def rmsprop_step(params, grads, square_avg, grad_avg, buf, decay_mask, lr, alpha, eps,
                 weight_decay, momentum, centered):
    """RMSprop. ``square_avg``: mean of g*g; ``grad_avg``: mean of g (used if ``centered``);
    ``buf``: momentum buffer (used if momentum > 0)."""
    lr_ = params.dtype.type(lr)
    alpha_ = params.dtype.type(alpha)
    alpha1 = params.dtype.type(1.0 - alpha)
    eps_ = params.dtype.type(eps)
    wd = params.dtype.type(weight_decay)
    mom = params.dtype.type(momentum)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _rmsprop_range(params, grads, square_avg, grad_avg, buf, decay_mask, lr_, alpha_, alpha1,
                       eps_, wd, mom, centered, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _rmsprop_range(params, grads, square_avg, grad_avg, buf, decay_mask, lr_, alpha_,
                           alpha1, eps_, wd, mom, centered, lo, hi)


# -- AdaDelta --------------------------------------------------------------------------------
@njit(**SERIAL)
def _adadelta_range(params, grads, square_avg, acc_delta, decay_mask, lr, rho, rho1, eps, wd,
                    lo, hi):
    use_wd = wd != 0
    for i in range(lo, hi):
        g = grads[i]
        if use_wd:
            g = g + wd * params[i]
        v = rho * square_avg[i] + rho1 * g * g
        square_avg[i] = v
        u = acc_delta[i]
        d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
        acc_delta[i] = rho * u + rho1 * d * d
        params[i] = params[i] - lr * d


@njit(**PARALLEL)
def adadelta_step(params, grads, square_avg, acc_delta, decay_mask, lr, rho, eps, weight_decay):
    """AdaDelta. ``square_avg``: mean of g*g; ``acc_delta``: mean of squared updates."""
    lr_ = params.dtype.type(lr)
    rho_ = params.dtype.type(rho)
    rho1 = params.dtype.type(1.0 - rho)
    eps_ = params.dtype.type(eps)
    wd = params.dtype.type(weight_decay)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _adadelta_range(params, grads, square_avg, acc_delta, decay_mask, lr_, rho_, rho1, eps_,
                        wd, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adadelta_range(params, grads, square_avg, acc_delta, decay_mask, lr_, rho_, rho1,
                            eps_, wd, lo, hi)


# -- Adam / AdamW ----------------------------------------------------------------------------
@njit(**SERIAL)
def _adam_range(params, grads, m, v, v_max, decay_mask, shrink, step_size, beta1_1, beta2,
                beta2_1, eps, wd, bc2, amsgrad, lo, hi):
    # ``shrink`` (AdamW's 1 - lr*wd) and ``wd`` (Adam's L2 term) are never both in use.
    use_wd = wd != 0
    use_shrink = shrink != 1
    for i in range(lo, hi):
        g = grads[i]
        p = params[i]
        if decay_mask[i] != 0:
            if use_shrink:
                p = p * shrink
            if use_wd:
                g = g + wd * p
        mi = m[i]
        mi = mi + beta1_1 * (g - mi)
        m[i] = mi
        vi = beta2 * v[i] + beta2_1 * g * g
        v[i] = vi
        if amsgrad:
            vm = v_max[i]
            # Written so that a NaN in v carries into v_max, as torch.maximum does.
            if not vm >= vi:
                vm = vi
            v_max[i] = vm
            vi = vm
        params[i] = p - step_size * (mi / (np.sqrt(vi) / bc2 + eps))


@njit(**PARALLEL)
def adam_step(params, grads, m, v, v_max, decay_mask, step_size, beta1, beta2, eps,
              weight_decay, bias_correction2_sqrt, amsgrad):
    """Adam with L2 weight decay (wd*p added to the gradient). ``m``, ``v``: first and second
    moments; ``v_max``: running max of ``v`` (used if ``amsgrad``);
    step_size = lr / (1 - beta1**t), bias_correction2_sqrt = sqrt(1 - beta2**t)."""
    one = params.dtype.type(1.0)
    ss = params.dtype.type(step_size)
    b11 = params.dtype.type(1.0 - beta1)
    b2 = params.dtype.type(beta2)
    b21 = params.dtype.type(1.0 - beta2)
    eps_ = params.dtype.type(eps)
    wd = params.dtype.type(weight_decay)
    bc2 = params.dtype.type(bias_correction2_sqrt)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _adam_range(params, grads, m, v, v_max, decay_mask, one, ss, b11, b2, b21, eps_, wd, bc2,
                    amsgrad, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adam_range(params, grads, m, v, v_max, decay_mask, one, ss, b11, b2, b21, eps_, wd,
                        bc2, amsgrad, lo, hi)


@njit(**PARALLEL)
def adamw_step(params, grads, m, v, v_max, decay_mask, lr, step_size, beta1, beta2, eps,
               weight_decay, bias_correction2_sqrt, amsgrad):
    """AdamW: p *= 1 - lr*weight_decay (where the mask is set), then Adam without L2 decay.
    Other arguments as ``adam_step``."""
    shrink = params.dtype.type(1.0 - lr * weight_decay)
    zero = params.dtype.type(0.0)
    ss = params.dtype.type(step_size)
    b11 = params.dtype.type(1.0 - beta1)
    b2 = params.dtype.type(beta2)
    b21 = params.dtype.type(1.0 - beta2)
    eps_ = params.dtype.type(eps)
    bc2 = params.dtype.type(bias_correction2_sqrt)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _adam_range(params, grads, m, v, v_max, decay_mask, shrink, ss, b11, b2, b21, eps_, zero,
                    bc2, amsgrad, 0, n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adam_range(params, grads, m, v, v_max, decay_mask, shrink, ss, b11, b2, b21, eps_,
                        zero, bc2, amsgrad, lo, hi)
