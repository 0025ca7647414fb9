"""Numerical gradients, gradient checking, and gradient descent on a function."""

import copy

import numpy as np

from .._checks import check_array, check_int, check_real
from ..errors import InvalidTypeError, InvalidValueError


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at ``x`` (float64).

    ``f`` is called with ``x`` itself modified in place, one element at a time (so ``x`` may
    be a view, ``w.T`` or ``w[:, ::2]``, of what ``f`` reads), and each element is put back,
    also when ``f`` raises. ``x``: a writeable float64 array. Returns an array of ``x``'s
    shape: (f(x + eps) - f(x - eps)) / (2 eps).
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise InvalidTypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    if not x.flags.writeable:
        raise InvalidValueError("numerical_gradient: x is read-only; it is perturbed in place")
    eps = check_real(eps, "eps", low=0.0, closed="right")
    grad = np.zeros(x.shape)
    for i in np.ndindex(x.shape):  # x[i] is an element of x itself, whatever its strides
        old = x[i]
        try:
            x[i] = old + eps
            fp = float(f(x))
            x[i] = old - eps
            fm = float(f(x))
        finally:
            x[i] = old
        grad[i] = (fp - fm) / (2 * eps)
    return grad


def _check_descent(f, x0, lr, steps, who):
    if not callable(f):
        raise InvalidTypeError(f"{who}: f must be callable, got {type(f).__name__}")
    lr = check_real(lr, "learning rate", low=0.0, closed="right")
    steps = check_int(steps, "steps", low=0)
    x = np.array(check_array(x0, f"{who} x0"), dtype=np.float64)  # a copy: x0 is never changed
    if x.ndim == 0 or x.size == 0:
        raise InvalidValueError(f"{who}: x0 must be a non-empty array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise InvalidValueError(f"{who}: x0 contains NaN or infinity")
    return x, lr, steps


def _descend(f, x0, lr, steps, return_path, sign, who):
    x, lr, steps = _check_descent(f, x0, lr, steps, who)
    path = [x.copy()]
    for _ in range(steps):
        x += sign * lr * numerical_gradient(f, x)
        if return_path:
            path.append(x.copy())
    return (x, np.array(path)) if return_path else x


def gradient_descent(f, x0, lr=0.01, steps=100, return_path=False):
    """Minimise ``f`` from ``x0`` by ``steps`` steps of x <- x - lr * grad f(x), the gradient
    taken by ``numerical_gradient`` (float64 central differences).

    Returns the final x (float64, x0's shape); with ``return_path`` also the path, an array
    (steps + 1, *x0.shape) that starts with x0. ``x0`` is not modified. Too large an ``lr``
    diverges, too small a one barely moves.
    """
    return _descend(f, x0, lr, steps, return_path, -1.0, "gradient_descent")


def gradient_ascent(f, x0, lr=0.01, steps=100, return_path=False):
    """Maximise ``f``: as ``gradient_descent`` with x <- x + lr * grad f(x)."""
    return _descend(f, x0, lr, steps, return_path, 1.0, "gradient_ascent")


def _generators(model):
    for m in model.modules():
        for value in vars(m).values():
            if isinstance(value, np.random.Generator):
                yield value


def gradcheck(model, loss, x, y, eps=1e-6):
    """Compare backprop's gradients with float64 central differences, per parameter.

    Works on a float64 copy of ``model`` (the model itself is left untouched), in the model's
    current mode; random layers (dropout) replay the same mask at every evaluation. Returns
    ``{name: error}`` with error = max|analytic - numerical| / max(max|analytic|,
    max|numerical|, 1e-7): the largest deviation relative to the gradient's scale (a gradient
    that is zero in exact arithmetic is measured against 1e-7, above the rounding noise of
    central differences).
    """
    m = copy.deepcopy(model).to(np.float64)
    x = np.asarray(x, dtype=np.float64)
    rngs = list(_generators(m))
    states = [g.bit_generator.state for g in rngs]

    def f(_=None):
        for g, s in zip(rngs, states, strict=True):
            g.bit_generator.state = s
        return loss.forward(m.forward(x), y)

    f()
    m.backward(loss.backward())
    params = list(m.named_parameters())
    analytic = {name: p.grad.copy() for name, p in params}
    errors = {}
    for name, p in params:
        num = numerical_gradient(f, p.data, eps)
        a = analytic[name]
        scale = max(np.abs(a).max(), np.abs(num).max(), 1e-7)
        errors[name] = float(np.abs(a - num).max() / scale)
    return errors
