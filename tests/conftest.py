import numpy as np
import pytest

from fastnn.kernels._config import PARALLEL_MIN

DTYPES = [np.float32, np.float64]
# Tolerances for kernel-vs-reference comparisons: a few ulps of rounding per operation.
TOL = {
    np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
    np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13),
}


def tol(dtype):
    return TOL[np.dtype(dtype)]


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


# Sizes that exercise batch 1, width 1, odd sizes and (above PARALLEL_MIN) the parallel path.
SHAPES = [(1, 1), (1, 7), (5, 1), (3, 17), (64, 33)]
BIG = (PARALLEL_MIN // 256 + 7, 257)
