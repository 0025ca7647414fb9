"""Gradient norms and clipping by the global norm (``torch.nn.utils.clip_grad_norm_``)."""

import math

import numpy as np

from .._checks import _unwrap, check_real


def check_max_norm(value, name="max_norm"):
    """None (no clipping) or a finite max_norm > 0."""
    if _unwrap(value) is None:
        return None
    return check_real(value, name, low=0.0, closed="right")


def global_norm(a):
    """The L2 norm of the 1-D array ``a`` as a float; inf or NaN when ``a`` holds inf or NaN.

    One BLAS dot product, no allocation. Only when the sum of squares overflows although every
    value is finite (float32 norms above about 1e19) is it redone in float64, scaled. NumPy
    warns of that overflow: callers run it under ``np.errstate`` (``fit``'s loop does).
    """
    s = float(np.dot(a, a))
    if math.isfinite(s):
        return math.sqrt(s)
    if not np.isfinite(a).all():
        return math.inf if not np.isnan(a).any() else math.nan
    big = float(np.abs(a).max())
    scaled = a.astype(np.float64) / big
    return big * math.sqrt(float(np.dot(scaled, scaled)))


def clip_flat(grad, max_norm):
    """Scale ``grad`` in place to global norm about ``max_norm`` if larger; return its norm
    before. A non-finite norm leaves ``grad`` as it is (scaling would only spread NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        norm = global_norm(grad)
    if norm > max_norm and math.isfinite(norm):
        grad *= max_norm / (norm + 1e-6)
    return norm
