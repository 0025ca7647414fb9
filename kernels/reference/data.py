"""NumPy twins of ``fastnn.kernels.data``."""

import numpy as np


def gather_rows(x, idx, out):
    """out[i] = x[idx[i]]."""
    np.take(x, idx, axis=0, out=out)


def count_equal(a, b):
    """How many positions have a[i] == b[i]."""
    return int(np.count_nonzero(a == b))
