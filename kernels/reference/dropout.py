"""NumPy twins of ``fastnn.kernels.dropout``."""

import numpy as np


def dropout_forward(x, u, p, out, mask):
    """mask = (u >= p) / (1 - p) (compared in float64), out = x * mask."""
    keep = np.asarray(u, dtype=np.float64) >= p
    mask[...] = keep * (1.0 / (1.0 - p))
    np.multiply(x, mask, out=out)


def dropout_backward(dout, mask, dx):
    """dx = dout * mask."""
    np.multiply(dout, mask, out=dx)
