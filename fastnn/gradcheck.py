"""Numerical gradients and gradient checking."""

import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """Central-difference gradient of the scalar function ``f`` at ``x`` (float64).

    ``f`` is called with ``x`` modified in place, one element at a time, and ``x`` is restored
    afterwards. Returns an array of ``x``'s shape: (f(x + eps) - f(x - eps)) / (2 eps).
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise TypeError(f"numerical_gradient needs a float64 array, got {x.dtype}")
    grad = np.zeros_like(x)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = float(f(x))
        flat[i] = old - eps
        fm = float(f(x))
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


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
    import copy

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
