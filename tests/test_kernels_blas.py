"""gemm (BLAS called from compiled code) against its NumPy twin and np.matmul, from Python and
from inside other compiled functions; the thread-count calls against threadpoolctl's."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from numba import njit

import fastnn
from fastnn.kernels import blas as kernels
from fastnn.kernels.reference import blas as ref

# (m, n, k): c is (m, n), op(a) (m, k), op(b) (k, n). Ones and zeros in each dimension,
# rectangular shapes, and one large enough for BLAS's blocked, multi-threaded path.
SHAPES = [
    (1, 1, 1),
    (1, 7, 5),
    (1, 300, 200),  # one row: gemm goes through gemv
    (6, 1, 5),
    (6, 7, 1),
    (0, 7, 5),
    (6, 0, 5),
    (6, 7, 0),
    (0, 0, 0),
    (3, 17, 64),
    (100, 10, 50),
    (784, 50, 100),
    (300, 500, 200),
]
BETAS = [0.0, 1.0, -0.75]
FLAGS = [(False, False), (True, False), (False, True), (True, True)]


def _operands(rng, m, n, k, ta, tb, dtype):
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    c = rng.standard_normal((m, n)).astype(dtype)
    return a, b, c


def _bound(a, b, c, ta, tb, beta):
    """Elementwise bound on the rounding error of op(a) @ op(b) + beta * c computed in the
    arrays' precision by any summation order: (k + 2) eps (|op(a)| @ |op(b)| + |beta c|)
    (k roundings in each dot product, one for beta * c, one for the sum)."""
    k = a.shape[0] if ta else a.shape[1]
    eps = np.finfo(c.dtype).eps
    aa = np.abs(a.T if ta else a).astype(np.float64)
    bb = np.abs(b.T if tb else b).astype(np.float64)
    return (k + 2) * eps * (aa @ bb + abs(beta) * np.abs(c.astype(np.float64)))


def _check(got, want, bound, what):
    err = np.abs(got.astype(np.float64) - want.astype(np.float64))
    bad = ~(err <= bound)  # also catches NaN
    assert not bad.any(), f"{what}: {bad.sum()} elements off, worst {err[bad].max()}"


def _compare(rng, m, n, k, ta, tb, beta, dtype, call=kernels.gemm):
    a, b, c = _operands(rng, m, n, k, ta, tb, dtype)
    got, twin = c.copy(), c.copy()
    call(a, b, got, ta, tb, beta)
    ref.gemm(a, b, twin, ta, tb, beta)
    op_a, op_b = (a.T if ta else a), (b.T if tb else b)
    matmul = np.matmul(op_a, op_b, out=np.empty_like(c)) + c.dtype.type(beta) * c
    bound = _bound(a, b, c, ta, tb, beta)
    assert got.dtype == dtype and got.shape == (m, n)
    # Each result is within the bound of the exact value, so two are within twice of each other.
    _check(got, twin, 2 * bound, "gemm vs twin")
    _check(got, matmul, 2 * bound, "gemm vs matmul")
    return a, b, c, got


@pytest.mark.nojit
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("ta, tb", FLAGS)
@pytest.mark.parametrize("m, n, k", SHAPES)
def test_matches_twin_and_matmul(m, n, k, ta, tb, beta, dtype, rng):
    _compare(rng, m, n, k, ta, tb, beta, dtype)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype32", [np.float32])
def test_float32_sums_in_float32_near_exact(dtype32, rng):
    # Against a float64 product of the same float32 inputs (nearly exact for them): within
    # k eps |a||b|, and not bit-identical to it (BLAS really sums in float32).
    a, b, c = _operands(rng, 200, 300, 500, False, False, dtype32)
    kernels.gemm(a, b, c, False, False, 0.0)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    _check(c, exact, _bound(a, b, c, False, False, 0.0), "float32 vs float64 product")
    assert not np.array_equal(c, exact.astype(np.float32))


@pytest.mark.nojit
@pytest.mark.parametrize("rows", [5, 1])
@pytest.mark.parametrize("ta, tb", FLAGS)
def test_beta_zero_overwrites_nan_and_inf(ta, tb, rows, dtype, rng):
    a, b, _ = _operands(rng, rows, 6, 4, ta, tb, dtype)
    c = np.full((rows, 6), np.nan, dtype)
    c[0, 0] = np.inf
    kernels.gemm(a, b, c, ta, tb, 0.0)
    assert np.isfinite(c).all()
    np.testing.assert_allclose(c, (a.T if ta else a) @ (b.T if tb else b), rtol=1e-5, atol=1e-5)


@pytest.mark.nojit
@pytest.mark.parametrize("beta, want", [(0.0, 0.0), (1.0, 3.0), (-0.5, -1.5)])
def test_k_zero_gives_beta_c(beta, want, dtype):
    a, b = np.empty((4, 0), dtype), np.empty((0, 3), dtype)
    c = np.full((4, 3), 3.0, dtype)
    kernels.gemm(a, b, c, False, False, beta)
    assert np.array_equal(c, np.full((4, 3), want, dtype))
    c[:] = np.nan
    kernels.gemm(a, b, c, False, False, 0.0)
    assert np.array_equal(c, np.zeros((4, 3), dtype))


@pytest.mark.nojit
def test_nan_in_an_operand_reaches_the_output(dtype, rng):
    # Training detects a diverging loss by NaN: a NaN in row 2 of a spoils row 2 of c only.
    a, b, c = _operands(rng, 6, 8, 40, False, False, dtype)
    a[2, 7] = np.nan
    kernels.gemm(a, b, c, False, False, 0.0)
    assert np.isnan(c[2]).all()
    assert np.isfinite(np.delete(c, 2, axis=0)).all()


@pytest.mark.nojit
def test_accepts_integer_beta_and_flags(rng):
    a, b, c = _operands(rng, 4, 5, 3, True, False, np.float32)
    got, want = c.copy(), c.copy()
    kernels.gemm(a, b, got, 1, 0, 2)
    ref.gemm(a, b, want, True, False, 2.0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_other_or_mixed_dtypes_do_not_compile():
    from numba.core.errors import TypingError

    f32, f64 = np.ones((2, 2), np.float32), np.ones((2, 2), np.float64)
    for a, b, c in [(f64, f32, f32), (f32, f32, f64), (f32.astype(int), f32.astype(int), f32)]:
        with pytest.raises(TypingError):
            kernels.gemm(a, b, c.copy(), False, False, 0.0)


# -- from compiled code, on views of one flat buffer -----------------------------------------
@njit(cache=True)
def _products_in_buffer(buf, m, n, k, ta, tb, beta, guard):
    """a, b and c as reshaped slices of ``buf`` with ``guard`` elements between them (and
    after c), then c <- op(a) @ op(b) + beta * c: how a compiled training step keeps a
    network's arrays in one flat buffer."""
    sa = m * k
    sb = k * n
    a0 = 0
    b0 = a0 + sa + guard
    c0 = b0 + sb + guard
    a = buf[a0 : a0 + sa].reshape((k, m) if ta else (m, k))
    b = buf[b0 : b0 + sb].reshape((n, k) if tb else (k, n))
    c = buf[c0 : c0 + m * n].reshape((m, n))
    kernels.gemm(a, b, c, ta, tb, beta)


@njit(cache=True)
def _forward_backward(x, W, dz, y, dW, dx):
    # A layer's three products with literal flags, as a compiled step would write them.
    kernels.gemm(x, W, y, False, False, 0.0)
    kernels.gemm(x, dz, dW, True, False, 0.0)
    kernels.gemm(dz, W, dx, False, True, 0.0)


@pytest.mark.nojit
@pytest.mark.parametrize("beta", [0.0, 0.5])
@pytest.mark.parametrize("ta, tb", FLAGS)
@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (5, 7, 3), (0, 4, 3), (4, 0, 3), (4, 3, 0)])
def test_from_compiled_code_on_one_buffer(m, n, k, ta, tb, beta, dtype, rng):
    guard = 5
    size = m * k + k * n + m * n + 3 * guard
    buf = rng.standard_normal(size).astype(dtype)
    before = buf.copy()
    _products_in_buffer(buf, m, n, k, ta, tb, beta, guard)
    a = before[: m * k].reshape((k, m) if ta else (m, k))
    b0 = m * k + guard
    b = before[b0 : b0 + k * n].reshape((n, k) if tb else (k, n))
    c0 = b0 + k * n + guard
    want = before[c0 : c0 + m * n].reshape(m, n).copy()
    ref.gemm(a, b, want, ta, tb, beta)
    got = buf[c0 : c0 + m * n].reshape(m, n)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # Nothing outside c was written (the leading dimensions are right).
    outside = np.ones(size, bool)
    outside[c0 : c0 + m * n] = False
    assert np.array_equal(buf[outside], before[outside])


@pytest.mark.nojit
def test_layer_products_from_compiled_code(dtype, rng):
    x = rng.standard_normal((100, 784)).astype(dtype)
    W = rng.standard_normal((784, 50)).astype(dtype)
    dz = rng.standard_normal((100, 50)).astype(dtype)
    y, dW, dx = np.empty((100, 50), dtype), np.empty((784, 50), dtype), np.empty((100, 784), dtype)
    _forward_backward(x, W, dz, y, dW, dx)
    for got, want, k in [(y, x @ W, 784), (dW, x.T @ dz, 100), (dx, dz @ W.T, 50)]:
        eps = np.finfo(dtype).eps
        scale = np.abs(want).max()
        np.testing.assert_allclose(got, want, rtol=0, atol=2 * (k + 2) * eps * scale * 10)


# -- thread count ------------------------------------------------------------------------------
@njit(cache=True)
def _set_then_read(n):
    kernels.set_blas_threads(n)
    return kernels.blas_threads()


needs_openblas = pytest.mark.skipif(kernels.OPENBLAS is None, reason="SciPy's BLAS is no OpenBLAS")


@pytest.mark.nojit
def test_finds_scipys_openblas():
    if kernels.OPENBLAS is None:
        assert kernels.blas_threads() == 0 == ref.blas_threads()
        return
    from threadpoolctl import threadpool_info

    blas_libs = [i["filepath"] for i in threadpool_info() if i["internal_api"] == "openblas"]
    assert kernels.OPENBLAS.filepath in blas_libs
    assert kernels.OPENBLAS.dynlib is not None


@needs_openblas
@pytest.mark.nojit
def test_thread_count_matches_threadpoolctl(restore_threads):
    for n in (1, 2, 1):
        kernels.set_blas_threads(n)
        assert kernels.blas_threads() == n == ref.blas_threads()
        ref.set_blas_threads(n)
        assert kernels.blas_threads() == n
        assert _set_then_read(n) == n


@needs_openblas
@pytest.mark.nojit
def test_fastnn_set_num_threads_limits_it(restore_threads):
    fastnn.set_num_threads(1)
    assert kernels.blas_threads() == 1
    kernels.set_blas_threads(2)
    assert kernels.OPENBLAS.num_threads == 2


@needs_openblas
@pytest.mark.nojit
def test_one_thread_gives_the_same_products(restore_threads, rng):
    a, b, c = _operands(rng, 300, 200, 400, False, True, np.float32)
    outs = []
    for n in (1, 2):
        kernels.set_blas_threads(n)
        out = c.copy()
        kernels.gemm(a, b, out, False, True, 0.0)
        outs.append(out)
    _check(outs[0], outs[1], 2 * _bound(a, b, c, False, True, 0.0), "1 vs 2 threads")


# -- cacheable ---------------------------------------------------------------------------------
def test_compiled_callers_are_cached(tmp_path):
    """A cache=True function that calls gemm and the thread calls is cached, not refused for
    holding an address ("dynamic globals"), and the cached code runs in a new process."""
    (tmp_path / "caller.py").write_text(
        textwrap.dedent(
            """
            import warnings
            import numpy as np
            from numba import njit
            from fastnn.kernels.blas import blas_threads, gemm, set_blas_threads

            @njit(cache=True)
            def step(a, b, c):
                n = blas_threads()
                set_blas_threads(max(n, 1))
                gemm(a, b, c, False, True, 0.0)
                return c.sum()

            a = np.arange(6.0).reshape(2, 3)
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                print(step(a, a, np.empty((2, 2))), sum(step.stats.cache_hits.values()))
            """
        )
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=str(tmp_path))
    env.pop("NUMBA_DISABLE_JIT", None)
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, str(tmp_path / "caller.py")],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.split())
    # sum(a @ a.T) for a = [[0, 1, 2], [3, 4, 5]]: 5 + 14 + 14 + 50
    assert runs[0] == ["83.0", "0"]
    assert runs[1] == ["83.0", "1"]
