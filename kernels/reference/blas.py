"""NumPy twins of ``kernels.blas``."""

from .. import blas as _blas


def gemm(a, b, c, trans_a, trans_b, beta):
    product = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if beta == 0:
        c[...] = product  # as BLAS: c is not read, so NaN in it does not carry over
    else:
        c[...] = product + c.dtype.type(beta) * c


def set_blas_threads(n):
    if _blas.OPENBLAS is not None:
        _blas.OPENBLAS.set_num_threads(n)  # threadpoolctl's call of openblas_set_num_threads


def blas_threads():
    return 0 if _blas.OPENBLAS is None else _blas.OPENBLAS.num_threads
