"""Gradient norms and clipping by the global norm (``torch.nn.utils.clip_grad_norm_``)."""

import math

from .._checks import _unwrap, check_real
from ..kernels.optim import flat_norm


def check_max_norm(value, name="max_norm"):
    """None (no clipping) or a finite max_norm > 0."""
    if _unwrap(value) is None:
        return None
    return check_real(value, name, low=0.0, closed="right")


def global_norm(a):
    """The L2 norm of the 1-D array ``a`` as a float; inf or NaN when ``a`` holds inf or NaN.

    One compiled pass (``kernels.optim.flat_norm``): the squares summed in float64 in a
    fixed order, so the norm does not depend on the thread count, and the compiled training
    step, which calls the same kernel, clips exactly as this does.
    """
    return float(flat_norm(a))


def clip_flat(grad, max_norm):
    """Scale ``grad`` in place to global norm about ``max_norm`` if larger; return its norm
    before. A non-finite norm leaves ``grad`` as it is (scaling would only spread NaN)."""
    norm = global_norm(grad)
    if norm > max_norm and math.isfinite(norm):
        grad *= max_norm / (norm + 1e-6)
    return norm
