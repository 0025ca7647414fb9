"""Matrix products through ``kernels.blas.gemm`` (SciPy's BLAS called from compiled code)
against ``np.matmul`` into a preallocated output (NumPy's BLAS), at the shapes of the course's
networks; and what setting gemm's BLAS thread count costs.

A product "m x k x n" multiplies op(a) (m, k) by op(b) (k, n) into c (m, n); its kind says
which operand is transposed, as in a Linear layer: ``x@W`` (forward), ``x.T@dz`` (the weight
gradient), ``dz@W.T`` (the input gradient). ``time_gemm`` and ``time_matmul`` are one call from
Python; ``time_gemm_compiled_x100`` is 100 calls from inside one compiled function (what a
compiled training step pays per product) and ``time_matmul_x100`` 100 calls from a Python loop.
BLAS runs on its default thread count, as in the other benchmarks.
"""

import numpy as np
from numba import njit

try:
    from fastnn.kernels.blas import blas_threads, gemm, set_blas_threads
except ImportError:  # an older fastnn, in an asv history run
    gemm = None

PRODUCTS = {
    "x@W 100x100x100": (100, 100, 100, False, False),
    "T2 x@W 100x784x50": (100, 784, 50, False, False),
    "T2 x@W 100x50x10": (100, 50, 10, False, False),
    "T2 x.T@dz 784x100x50": (784, 100, 50, True, False),
    "T2 x.T@dz 50x100x10": (50, 100, 10, True, False),
    "T2 dz@W.T 100x10x50": (100, 10, 50, False, True),
}
DTYPES = ["float32", "float64"]
CALLS = 100


if gemm is not None:

    @njit(cache=True)
    def _gemm_calls(a, b, c, trans_a, trans_b, calls):
        for _ in range(calls):
            gemm(a, b, c, trans_a, trans_b, 0.0)


def _require_gemm():
    if gemm is None:
        raise NotImplementedError("this fastnn has no kernels.blas")


class Gemm:
    params = (list(PRODUCTS), DTYPES)
    param_names = ["product", "dtype"]

    def setup(self, product, dtype):
        _require_gemm()
        m, k, n, ta, tb = PRODUCTS[product]
        rng = np.random.default_rng([m, k, n, ta, tb])
        self.a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
        self.b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
        self.c = np.empty((m, n), dtype)
        self.ta, self.tb = ta, tb
        # The views np.matmul multiplies (transposed views, which it hands to BLAS uncopied).
        self.av = self.a.T if ta else self.a
        self.bv = self.b.T if tb else self.b
        # Compile (or load from Numba's cache) before timing.
        gemm(self.a, self.b, self.c, ta, tb, 0.0)
        _gemm_calls(self.a, self.b, self.c, ta, tb, 1)

    def time_gemm(self, product, dtype):
        gemm(self.a, self.b, self.c, self.ta, self.tb, 0.0)

    def time_matmul(self, product, dtype):
        np.matmul(self.av, self.bv, out=self.c)

    def time_gemm_compiled_x100(self, product, dtype):
        _gemm_calls(self.a, self.b, self.c, self.ta, self.tb, CALLS)

    def time_matmul_x100(self, product, dtype):
        av, bv, c = self.av, self.bv, self.c
        for _ in range(CALLS):
            np.matmul(av, bv, out=c)


class BlasThreads:
    """``set_blas_threads`` (to the count already set, so nothing else changes) and
    ``blas_threads``, called from Python."""

    def setup(self):
        _require_gemm()
        self.n = max(1, blas_threads())
        set_blas_threads(self.n)

    def time_set_blas_threads(self):
        set_blas_threads(self.n)

    def time_blas_threads(self):
        blas_threads()
