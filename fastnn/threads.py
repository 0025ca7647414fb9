"""Thread control for both Numba's parallel kernels and the BLAS behind the matrix products."""

import numba


def set_num_threads(n):
    """Use ``n`` threads in Numba's parallel kernels and in BLAS (NumPy's and SciPy's).

    ``n`` is at most ``numba.config.NUMBA_NUM_THREADS`` (the machine's cores unless the
    ``NUMBA_NUM_THREADS`` environment variable says otherwise).
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"number of threads must be an integer, got {type(n).__name__}")
    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= n <= limit:
        raise ValueError(f"invalid number of threads: {n}; expected 1 to {limit}")
    numba.set_num_threads(n)
    # Numba's np.dot calls the BLAS that SciPy bundles; load it so threadpoolctl sees it too.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads Numba's parallel kernels use."""
    return numba.get_num_threads()
