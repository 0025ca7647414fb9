"""Affine kernels against their NumPy twins, for every fused activation."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SHAPES, tol
from fastnn.kernels import affine as kernels
from fastnn.kernels._config import n_chunks
from fastnn.kernels.activations import ACTIVATIONS, IDENTITY
from fastnn.kernels.affine import _MIN_COLS
from fastnn.kernels.reference import affine as ref

ALPHA = {"leaky_relu": 0.05, "elu": 0.7}


def _run(mod, x, W, b, act, alpha, dout, need_dx=True):
    n, m = x.shape[0], W.shape[1]
    y = np.empty((n, m), x.dtype)
    mod.affine_forward(x, W, b, act, alpha, y)
    dz = np.full((n, m), np.nan, x.dtype)
    dx = np.full(x.shape, np.nan, x.dtype)
    dW = np.empty_like(W)
    db = np.empty_like(b)
    mod.affine_backward(dout, x, W, y, act, alpha, dz, dx, dW, db, need_dx)
    return y, dz, dx, dW, db


def _compare(x, W, b, name, dout, need_dx=True):
    act, alpha = ACTIVATIONS[name], ALPHA.get(name, 0.0)
    got = _run(kernels, x, W, b, act, alpha, dout, need_dx)
    want = _run(ref, x, W, b, act, alpha, dout, need_dx)
    # BLAS sums in a different order than NumPy's matmul: allow for the inner dimension.
    t = tol(x.dtype)
    t = dict(rtol=t["rtol"] * 10, atol=t["atol"] * 10 * np.sqrt(max(x.shape)))
    for g, w, what in zip(got, want, ["y", "dz", "dx", "dW", "db"], strict=True):
        if what == "dz" and act == IDENTITY:
            continue  # dz is not written when there is no activation
        if what == "dx" and not need_dx:
            assert np.all(np.isnan(g)), "dx must not be written when need_dx is False"
            continue
        np.testing.assert_allclose(g, w, err_msg=what, **t)
    return got


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_reference(name, shape, dtype, rng):
    n, d = shape
    m = 3 if d > 1 else 1
    x = rng.standard_normal((n, d)).astype(dtype)
    W = rng.standard_normal((d, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    dout = rng.standard_normal((n, m)).astype(dtype)
    _compare(x, W, b, name, dout)


@pytest.mark.parametrize("name", ["identity", "relu", "sigmoid"])
def test_skips_dx_when_not_needed(name, rng):
    x = rng.standard_normal((6, 4))
    W = rng.standard_normal((4, 5))
    _compare(x, W, rng.standard_normal(5), name, rng.standard_normal((6, 5)), need_dx=False)


@pytest.mark.parametrize("name", ["relu", "tanh", "identity"])
def test_parallel_path_matches_serial(name, rng):
    # More than PARALLEL_MIN outputs and at least two 256-column chunks, so bias/activation
    # and dz/db run in chunks.
    n, m = 260, 600
    assert n_chunks(n * m) > 1 and m // _MIN_COLS >= 2
    d = 9
    x = rng.standard_normal((n, d)).astype(np.float32)
    W = rng.standard_normal((d, m)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32)
    dout = rng.standard_normal((n, m)).astype(np.float32)
    y, dz, dx, dW, db = _compare(x, W, b, name, dout)
    # The same rows through the serial path, a few at a time.
    act, alpha = ACTIVATIONS[name], 0.0
    for lo in (0, n // 2, n - 5):
        rows = slice(lo, lo + 5)
        ys, dzs, dxs, _, _ = _run(kernels, x[rows].copy(), W, b, act, alpha, dout[rows].copy())
        # BLAS may block a 5-row product differently from the big one: float32 rounding only.
        np.testing.assert_allclose(y[rows], ys, rtol=1e-5, atol=1e-5)
        if act != IDENTITY:
            np.testing.assert_allclose(dz[rows], dzs, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(dx[rows], dxs, rtol=1e-5, atol=1e-4)


def test_transposed_and_sliced_inputs_made_contiguous_match(rng):
    # Kernels need C-contiguous arrays; the layer copies others. The result must not depend on it.
    xt = rng.standard_normal((7, 5)).T  # (5, 7), F-ordered
    W = rng.standard_normal((7, 3))
    b = rng.standard_normal(3)
    y = np.empty((5, 3))
    kernels.affine_forward(np.ascontiguousarray(xt), W, b, IDENTITY, 0.0, y)
    np.testing.assert_allclose(y, xt @ W + b, rtol=1e-12)


def test_extreme_inputs_stay_finite(dtype):
    x = np.array([[1e4, -1e4], [-1000.0, 1000.0]], dtype)
    W = np.eye(2, dtype=dtype)
    b = np.zeros(2, dtype)
    for name in ACTIVATIONS:
        if name in ("identity", "relu", "leaky_relu"):
            continue  # unbounded by design
        y, *_ = _compare(x, W, b, name, np.ones((2, 2), dtype))
        assert np.all(np.isfinite(y)), name


@settings(deadline=None, max_examples=25)
@given(
    n=st.integers(1, 12),
    d=st.integers(1, 12),
    m=st.integers(1, 12),
    name=st.sampled_from(list(ACTIVATIONS)),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_matches_reference(n, d, m, name, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    W = rng.standard_normal((d, m))
    _compare(x, W, rng.standard_normal(m), name, rng.standard_normal((n, m)))


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("shape", [*SHAPES, (260, 600)])
def test_bias_act_kernels_match_reference(name, shape, dtype, rng):
    """The compiled passes between the products: bias + activation, and dz + db."""
    act, alpha = ACTIVATIONS[name], ALPHA.get(name, 0.0)
    n, m = shape
    z = rng.standard_normal((n, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    got, want = z.copy(), z.copy()
    kernels.bias_act_forward(got, b, act, alpha)
    ref.bias_act_forward(want, b, act, alpha)
    np.testing.assert_allclose(got, want, **tol(dtype))
    dout = rng.standard_normal((n, m)).astype(dtype)
    dz, db = np.full((n, m), np.nan, dtype), np.empty(m, dtype)
    dz_ref, db_ref = np.full((n, m), np.nan, dtype), np.empty(m, dtype)
    kernels.bias_act_backward(dout, got, act, alpha, dz, db)
    ref.bias_act_backward(dout, want, act, alpha, dz_ref, db_ref)
    if act != IDENTITY:
        np.testing.assert_allclose(dz, dz_ref, **tol(dtype))
    else:
        assert np.isnan(dz).all()  # not written: backward uses dout itself
    t = tol(dtype)
    np.testing.assert_allclose(db, db_ref, rtol=t["rtol"] * 10, atol=t["atol"] * np.sqrt(n))
