import os

# Under pytest-xdist (``-n 2`` in CI) each worker gets one BLAS thread: two workers with two
# OpenBLAS threads each on 2 cores made small networks' matrix products 30-40x slower (the
# waiting threads spin and the cores are oversubscribed; bench/NOTES.md). Set before NumPy or
# SciPy load their OpenBLAS; Numba's kernels keep their threads (their workers wait passively).
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import pytest

from fastnn.kernels._config import PARALLEL_MIN

if os.environ.get("PYTEST_XDIST_WORKER"):
    # In case a plugin imported NumPy before this file ran.
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")

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


@pytest.fixture
def restore_threads():
    """Put Numba's and BLAS's thread counts back as they were after a test that changes them
    (``fastnn.set_num_threads``), so the worker's one-BLAS-thread limit above survives."""
    import numba
    import scipy.linalg.cython_blas  # noqa: F401  (SciPy's BLAS, loaded so it is recorded too)
    from threadpoolctl import threadpool_limits

    n = numba.get_num_threads()
    with threadpool_limits(limits=None):  # records the current limits, restores them on exit
        yield
    numba.set_num_threads(n)
