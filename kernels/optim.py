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
from numba.extending import overload

from ._config import FASTMATH, PARALLEL, SERIAL, chunk_bounds, n_chunks
from ._reduce import _contiguous_floats, _vector_sum_squares

# How the loops are written, all so that LLVM vectorizes them (several times faster):
# - each loop is alone in its own function, over whole arrays (the caller slices [lo, hi)),
#   indexed from 0 so Numba's negative-index wraparound drops out; a loop that shares its
#   function with others, or stores to a buffer only under a flag, is often left scalar;
# - NumPy's error model (set for every kernel in _config), so a division by zero gives
#   inf/nan (as in torch) instead of raising.
_LOOP = SERIAL
_SCALAR = dict(SERIAL, inline="always")


@njit(**_SCALAR)
def _decayed(g, p, on, wd):
    """g + wd*p where weight decay is on for this element (``on``), else g."""
    return g + wd * p if on else g


# -- SGD -------------------------------------------------------------------------------------
@njit(**_LOOP)
def _sgd_loop(params, grads, decay_mask, lr, wd):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
        params[i] = params[i] - lr * g


@njit(**_LOOP)
def _sgd_momentum_loop(params, grads, buf, decay_mask, lr, momentum, damp1, wd, nesterov, first):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
        b = g if first else momentum * buf[i] + damp1 * g
        buf[i] = b
        params[i] = params[i] - lr * (g + momentum * b if nesterov else b)


@njit(**SERIAL)
def _sgd_range(params, grads, buf, decay_mask, lr, momentum, damp1, wd, nesterov, first, lo, hi):
    if momentum == 0:
        _sgd_loop(params[lo:hi], grads[lo:hi], decay_mask[lo:hi], lr, wd)
    else:
        _sgd_momentum_loop(
            params[lo:hi],
            grads[lo:hi],
            buf[lo:hi],
            decay_mask[lo:hi],
            lr,
            momentum,
            damp1,
            wd,
            nesterov,
            first,
        )


@njit(**PARALLEL)
def sgd_step(
    params, grads, buf, decay_mask, lr, momentum, dampening, weight_decay, nesterov, first_step
):
    """SGD with optional momentum/Nesterov. ``buf``: momentum buffer (unused if momentum is 0);
    ``first_step``: the buffer is new, so it is set to the gradient (no dampening)."""
    lr_ = params.dtype.type(lr)
    mom = params.dtype.type(momentum)
    damp1 = params.dtype.type(1.0 - dampening)
    wd = params.dtype.type(weight_decay)
    n = params.size
    c = n_chunks(n)
    if c == 1:
        _sgd_range(
            params,
            grads,
            buf,
            decay_mask,
            lr_,
            mom,
            damp1,
            wd,
            nesterov,
            first_step,
            np.int64(0),
            n,
        )
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _sgd_range(
                params, grads, buf, decay_mask, lr_, mom, damp1, wd, nesterov, first_step, lo, hi
            )


# -- AdaGrad ---------------------------------------------------------------------------------
@njit(**_LOOP)
def _adagrad_loop(params, grads, h, decay_mask, clr, wd, eps):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
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
        _adagrad_loop(params, grads, h, decay_mask, clr_, wd, eps_)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adagrad_loop(params[lo:hi], grads[lo:hi], h[lo:hi], decay_mask[lo:hi], clr_, wd, eps_)


# -- RMSprop ---------------------------------------------------------------------------------
@njit(**_LOOP)
def _rmsprop_loop(params, grads, square_avg, decay_mask, lr, alpha, alpha1, eps, wd):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
        v = alpha * square_avg[i] + alpha1 * g * g
        square_avg[i] = v
        params[i] = params[i] - lr * (g / (np.sqrt(v) + eps))


@njit(**_LOOP)
def _rmsprop_centered_loop(
    params, grads, square_avg, grad_avg, decay_mask, lr, alpha, alpha1, eps, wd
):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
        v = alpha * square_avg[i] + alpha1 * g * g
        square_avg[i] = v
        m = grad_avg[i]
        m = m + alpha1 * (g - m)
        grad_avg[i] = m
        params[i] = params[i] - lr * (g / (np.sqrt(v - m * m) + eps))


@njit(**_LOOP)
def _rmsprop_momentum_loop(
    params, grads, square_avg, buf, decay_mask, lr, alpha, alpha1, eps, wd, momentum
):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
        v = alpha * square_avg[i] + alpha1 * g * g
        square_avg[i] = v
        b = momentum * buf[i] + g / (np.sqrt(v) + eps)
        buf[i] = b
        params[i] = params[i] - lr * b


@njit(**_LOOP)
def _rmsprop_centered_momentum_loop(
    params, grads, square_avg, grad_avg, buf, decay_mask, lr, alpha, alpha1, eps, wd, momentum
):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
        v = alpha * square_avg[i] + alpha1 * g * g
        square_avg[i] = v
        m = grad_avg[i]
        m = m + alpha1 * (g - m)
        grad_avg[i] = m
        b = momentum * buf[i] + g / (np.sqrt(v - m * m) + eps)
        buf[i] = b
        params[i] = params[i] - lr * b


@njit(**SERIAL)
def _rmsprop_range(
    params,
    grads,
    square_avg,
    grad_avg,
    buf,
    decay_mask,
    lr,
    alpha,
    alpha1,
    eps,
    wd,
    momentum,
    centered,
    lo,
    hi,
):
    p, g, v, mask = params[lo:hi], grads[lo:hi], square_avg[lo:hi], decay_mask[lo:hi]
    if centered and momentum > 0:
        _rmsprop_centered_momentum_loop(
            p, g, v, grad_avg[lo:hi], buf[lo:hi], mask, lr, alpha, alpha1, eps, wd, momentum
        )
    elif centered:
        _rmsprop_centered_loop(p, g, v, grad_avg[lo:hi], mask, lr, alpha, alpha1, eps, wd)
    elif momentum > 0:
        _rmsprop_momentum_loop(p, g, v, buf[lo:hi], mask, lr, alpha, alpha1, eps, wd, momentum)
    else:
        _rmsprop_loop(p, g, v, mask, lr, alpha, alpha1, eps, wd)


@njit(**PARALLEL)
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
        _rmsprop_range(
            params,
            grads,
            square_avg,
            grad_avg,
            buf,
            decay_mask,
            lr_,
            alpha_,
            alpha1,
            eps_,
            wd,
            mom,
            centered,
            np.int64(0),
            n,
        )
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _rmsprop_range(
                params,
                grads,
                square_avg,
                grad_avg,
                buf,
                decay_mask,
                lr_,
                alpha_,
                alpha1,
                eps_,
                wd,
                mom,
                centered,
                lo,
                hi,
            )


# -- AdaDelta --------------------------------------------------------------------------------
@njit(**_LOOP)
def _adadelta_loop(params, grads, square_avg, acc_delta, decay_mask, lr, rho, rho1, eps, wd):
    use_wd = wd != 0
    for i in range(params.size):
        g = _decayed(grads[i], params[i], use_wd and decay_mask[i] != 0, wd)
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
        _adadelta_loop(params, grads, square_avg, acc_delta, decay_mask, lr_, rho_, rho1, eps_, wd)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adadelta_loop(
                params[lo:hi],
                grads[lo:hi],
                square_avg[lo:hi],
                acc_delta[lo:hi],
                decay_mask[lo:hi],
                lr_,
                rho_,
                rho1,
                eps_,
                wd,
            )


# -- Adam / AdamW ----------------------------------------------------------------------------
# ``shrink`` (AdamW's 1 - lr*wd) and ``wd`` (Adam's L2 term) are never both in use.
@njit(**_LOOP)
def _adam_loop(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    decay_mask,
    shrink,
    step_size,
    beta1_1,
    beta2,
    beta2_1,
    eps,
    wd,
    bc2,
):
    use_wd = wd != 0
    use_shrink = shrink != 1
    for i in range(params.size):
        on = decay_mask[i] != 0
        p = params[i] * shrink if use_shrink and on else params[i]
        g = _decayed(grads[i], p, use_wd and on, wd)
        m = exp_avg[i]
        m = m + beta1_1 * (g - m)
        exp_avg[i] = m
        v = beta2 * exp_avg_sq[i] + beta2_1 * g * g
        exp_avg_sq[i] = v
        params[i] = p - step_size * (m / (np.sqrt(v) / bc2 + eps))


@njit(**_LOOP)
def _amsgrad_loop(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    v_max,
    decay_mask,
    shrink,
    step_size,
    beta1_1,
    beta2,
    beta2_1,
    eps,
    wd,
    bc2,
):
    use_wd = wd != 0
    use_shrink = shrink != 1
    for i in range(params.size):
        on = decay_mask[i] != 0
        p = params[i] * shrink if use_shrink and on else params[i]
        g = _decayed(grads[i], p, use_wd and on, wd)
        m = exp_avg[i]
        m = m + beta1_1 * (g - m)
        exp_avg[i] = m
        v = beta2 * exp_avg_sq[i] + beta2_1 * g * g
        exp_avg_sq[i] = v
        vm = v_max[i]
        # Written so that a NaN in v carries into v_max, as torch.maximum does.
        vm = vm if vm >= v else v
        v_max[i] = vm
        params[i] = p - step_size * (m / (np.sqrt(vm) / bc2 + eps))


@njit(**SERIAL)
def _adam_range(
    params,
    grads,
    exp_avg,
    exp_avg_sq,
    v_max,
    decay_mask,
    shrink,
    step_size,
    beta1_1,
    beta2,
    beta2_1,
    eps,
    wd,
    bc2,
    amsgrad,
    lo,
    hi,
):
    p, g, m, v = params[lo:hi], grads[lo:hi], exp_avg[lo:hi], exp_avg_sq[lo:hi]
    if amsgrad:
        _amsgrad_loop(
            p,
            g,
            m,
            v,
            v_max[lo:hi],
            decay_mask[lo:hi],
            shrink,
            step_size,
            beta1_1,
            beta2,
            beta2_1,
            eps,
            wd,
            bc2,
        )
    else:
        _adam_loop(
            p, g, m, v, decay_mask[lo:hi], shrink, step_size, beta1_1, beta2, beta2_1, eps, wd, bc2
        )


@njit(**PARALLEL)
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
        _adam_range(
            params,
            grads,
            m,
            v,
            v_max,
            decay_mask,
            one,
            ss,
            b11,
            b2,
            b21,
            eps_,
            wd,
            bc2,
            amsgrad,
            np.int64(0),
            n,
        )
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adam_range(
                params,
                grads,
                m,
                v,
                v_max,
                decay_mask,
                one,
                ss,
                b11,
                b2,
                b21,
                eps_,
                wd,
                bc2,
                amsgrad,
                lo,
                hi,
            )


@njit(**PARALLEL)
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
        _adam_range(
            params,
            grads,
            m,
            v,
            v_max,
            decay_mask,
            shrink,
            ss,
            b11,
            b2,
            b21,
            eps_,
            zero,
            bc2,
            amsgrad,
            np.int64(0),
            n,
        )
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _adam_range(
                params,
                grads,
                m,
                v,
                v_max,
                decay_mask,
                shrink,
                ss,
                b11,
                b2,
                b21,
                eps_,
                zero,
                bc2,
                amsgrad,
                lo,
                hi,
            )


# -- the gradient's norm, and scaling -----------------------------------------------------------
# The sum of squares is a vector loop in LLVM IR with its order fixed (``_reduce``): LLVM would
# add one square at a time without 'reassoc', and with it the order was LLVM's, which differed
# between flat_norm compiled alone and flat_norm inlined into the training step (the clipped
# gradients then differed in the last bit, depending on which of them a process had compiled).
def _sum_squares(a):
    """Sum of the squares of the 1-D array ``a``, in float64."""
    v = np.asarray(a, dtype=np.float64)
    return float(np.dot(v, v))


@overload(_sum_squares, jit_options={"fastmath": FASTMATH, "error_model": "numpy"})
def _sum_squares_compiled(a):
    if _contiguous_floats(a):
        return lambda a: _vector_sum_squares(a)

    def impl(a):  # strided: one value at a time
        s = 0.0
        for i in range(a.size):
            v = np.float64(a[i])
            s += v * v
        return s

    return impl


@njit(**SERIAL)
def flat_norm(a):
    """The L2 norm of the 1-D array ``a``, summed in float64; inf when ``a`` holds inf and NaN
    when it holds NaN. A float64 sum of squares that overflows although every value is finite
    is redone scaled by the largest magnitude."""
    s = _sum_squares(a)
    if np.isfinite(s):
        return np.sqrt(s)
    big = 0.0
    for i in range(a.size):
        v = np.abs(np.float64(a[i]))
        if np.isnan(v):
            return np.nan
        if v > big:
            big = v
    if np.isinf(big):
        return np.inf
    t = 0.0
    for i in range(a.size):
        v = np.float64(a[i]) / big
        t += v * v
    return big * np.sqrt(t)


@njit(**SERIAL)
def scale_flat(a, factor):
    """a *= factor, the factor rounded to a's dtype first (as NumPy's ``a *= factor`` does)."""
    f = a.dtype.type(factor)
    for i in range(a.size):
        a[i] = a[i] * f
