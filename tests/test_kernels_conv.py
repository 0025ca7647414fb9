"""Convolution and pooling kernels against their NumPy twins (the course's im2col), and their
parallel paths against the serial ones."""

import numpy as np
import pytest

from conftest import tol
from fastnn.kernels import conv as kernels
from fastnn.kernels import pool
from fastnn.kernels._config import n_chunks
from fastnn.kernels.activations import ACTIVATIONS, IDENTITY
from fastnn.kernels.reference import conv as ref
from fastnn.kernels.reference import pool as ref_pool

# (batch, channels, height, width, out_channels, kernel, stride, padding): kernels 1, 3 and
# 5, strides 1 and 2, paddings 0-2, odd and non-square images, batch 1.
GEOMETRIES = [
    (1, 1, 1, 1, 1, 1, 1, 0),
    (1, 3, 5, 5, 2, 3, 1, 0),
    (2, 2, 7, 6, 3, 3, 2, 1),
    (3, 1, 9, 8, 4, 5, 1, 2),
    (2, 3, 4, 5, 2, 1, 2, 0),
    (1, 2, 6, 7, 5, 3, 2, 2),
    (2, 2, 5, 3, 3, 5, 2, 1),
    (1, 4, 11, 9, 3, 3, 1, 1),
]
IDS = ["n{}c{}h{}w{}m{}k{}s{}p{}".format(*g) for g in GEOMETRIES]
ALPHA = {"leaky_relu": 0.05, "elu": 0.7}


def _loose(dtype, k):
    t = tol(dtype)
    return dict(rtol=t["rtol"] * 10, atol=t["atol"] * 10 * np.sqrt(k))


def _out(h, k, s, p):
    return (h + 2 * p - k) // s + 1


def _conv_case(rng, dtype, n, c, h, w, m, k, s, p):
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    W = rng.standard_normal((m, c, k, k)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    oh, ow = _out(h, k, s, p), _out(w, k, s, p)
    return x, W, b, oh, ow


def _conv_run(mod, x, W, b, s, p, act, alpha, dout, need_dx=True):
    n, c = x.shape[:2]
    m, _, k, _ = W.shape
    oh, ow = dout.shape[2:]
    col = np.full((c * k * k, n, oh * ow), np.nan, x.dtype)
    z = np.empty((m, n, oh * ow), x.dtype)
    y = np.empty((n, m, oh, ow), x.dtype)
    mod.conv2d_forward(x, W, b, s, s, p, p, act, alpha, col, z, y)
    dz = np.full(y.shape, np.nan, x.dtype)
    dx = np.full(x.shape, np.nan, x.dtype)
    dW, db = np.empty_like(W), np.empty_like(b)
    dcol = np.empty_like(col)
    mod.conv2d_backward(dout, W, y, s, s, p, p, act, alpha, col.copy(), dz, z, dcol, dx, dW, db,
                        need_dx)  # fmt: skip
    return {"col": col, "y": y, "dz": dz, "dx": dx, "dW": dW, "db": db}


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_im2col_col2im_match_the_course(geometry, dtype, rng):
    n, c, h, w, _, k, s, p = geometry
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    oh, ow = _out(h, k, s, p), _out(w, k, s, p)
    got = np.full((c * k * k, n, oh * ow), np.nan, dtype)
    want = np.empty_like(got)
    kernels.im2col(x, k, k, s, s, p, p, got)
    ref.im2col(x, k, k, s, s, p, p, want)
    np.testing.assert_array_equal(got, want)
    dcol = rng.standard_normal(got.shape).astype(dtype)
    dx, dx_ref = np.full(x.shape, np.nan, dtype), np.empty_like(x)
    kernels.col2im(dcol, k, k, s, s, p, p, dx)
    ref.col2im(dcol, k, k, s, s, p, p, dx_ref)
    np.testing.assert_allclose(dx, dx_ref, **tol(dtype))
    # col2im is im2col's adjoint: <im2col(x), d> = <x, col2im(d)>.
    lhs, rhs = np.vdot(got, dcol), np.vdot(x, dx)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4 if dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_conv2d_matches_reference(geometry, name, dtype, rng):
    n, c, h, w, m, k, s, p = geometry
    x, W, b, oh, ow = _conv_case(rng, dtype, n, c, h, w, m, k, s, p)
    act, alpha = ACTIVATIONS[name], ALPHA.get(name, 0.0)
    dout = rng.standard_normal((n, m, oh, ow)).astype(dtype)
    got = _conv_run(kernels, x, W, b, s, p, act, alpha, dout)
    want = _conv_run(ref, x, W, b, s, p, act, alpha, dout)
    t = _loose(dtype, c * k * k * max(n * oh * ow, m))
    for key in got:
        if key == "dz" and act == IDENTITY:
            assert np.isnan(got[key]).all()  # not written: backward reads dout itself
            continue
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **t)


def test_conv2d_skips_dx_when_not_needed(rng):
    x, W, b, oh, ow = _conv_case(rng, np.float64, 2, 2, 6, 5, 3, 3, 1, 1)
    dout = rng.standard_normal((2, 3, oh, ow))
    got = _conv_run(kernels, x, W, b, 1, 1, IDENTITY, 0.0, dout, need_dx=False)
    want = _conv_run(ref, x, W, b, 1, 1, IDENTITY, 0.0, dout)
    assert np.isnan(got["dx"]).all()
    np.testing.assert_allclose(got["dW"], want["dW"], rtol=1e-12, atol=1e-12)


def test_conv2d_when_the_output_is_smaller_than_the_channels(rng):
    # N * OH * OW = 1 < C_out: products with an inner dimension of 1.
    x, W, b, oh, ow = _conv_case(rng, np.float64, 1, 2, 3, 3, 7, 3, 1, 0)
    dout = rng.standard_normal((1, 7, oh, ow))
    got = _conv_run(kernels, x, W, b, 1, 0, IDENTITY, 0.0, dout)
    want = _conv_run(ref, x, W, b, 1, 0, IDENTITY, 0.0, dout)
    for key in ("y", "dx", "dW", "db"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=1e-12, err_msg=key)


@pytest.mark.parametrize("name", ["identity", "relu", "tanh", "elu"])
def test_conv_bias_act_kernels_match_reference(name, dtype, rng):
    act, alpha = ACTIVATIONS[name], ALPHA.get(name, 0.0)
    for shape in [(1, 1, 1), (3, 5, 7), (40, 16, 256)]:
        y = rng.standard_normal(shape).astype(dtype)
        b = rng.standard_normal(shape[1]).astype(dtype)
        got, want = y.copy(), y.copy()
        kernels.conv_bias_act_forward(got, b, act, alpha)
        ref.conv_bias_act_forward(want, b, act, alpha)
        np.testing.assert_allclose(got, want, **tol(dtype))
        dout = rng.standard_normal(shape).astype(dtype)
        dz, db = np.full(shape, np.nan, dtype), np.empty(shape[1], dtype)
        dz_ref, db_ref = np.full(shape, np.nan, dtype), np.empty(shape[1], dtype)
        kernels.conv_bias_act_backward(dout, got, act, alpha, dz, db)
        ref.conv_bias_act_backward(dout, want, act, alpha, dz_ref, db_ref)
        if act != IDENTITY:
            np.testing.assert_allclose(dz, dz_ref, **tol(dtype))
        np.testing.assert_allclose(db, db_ref, **_loose(dtype, shape[0] * shape[2]))


def _pool_run(mod, x, k, s, p, dout):
    n, c, h, w = x.shape
    oh, ow = _out(h, k, s, p), _out(w, k, s, p)
    y = np.full((n, c, oh, ow), np.nan, x.dtype)
    argmax = np.full(y.shape, -1, np.int64)
    mod.maxpool_forward(x, k, k, s, s, p, p, y, argmax)
    dx = np.full(x.shape, np.nan, x.dtype)
    mod.maxpool_backward(dout, argmax, dx)
    a = np.full(y.shape, np.nan, x.dtype)
    mod.avgpool_forward(x, k, k, s, s, p, p, a)
    da = np.full(x.shape, np.nan, x.dtype)
    mod.avgpool_backward(dout, k, k, s, s, p, p, da)
    return {"y": y, "argmax": argmax, "dx": dx, "avg": a, "davg": da}


# (batch, channels, height, width, kernel, stride, padding <= kernel // 2)
POOLS = [
    (1, 1, 1, 1, 1, 1, 0),
    (2, 3, 6, 6, 2, 2, 0),
    (1, 2, 7, 5, 3, 2, 1),
    (3, 2, 9, 8, 3, 1, 1),
    (2, 1, 11, 7, 5, 2, 2),
    (1, 3, 5, 9, 5, 1, 2),
    (2, 2, 8, 7, 4, 3, 2),
]


@pytest.mark.parametrize("geometry", POOLS, ids=["n{}c{}h{}w{}k{}s{}p{}".format(*g) for g in POOLS])
def test_pooling_matches_reference(geometry, dtype, rng):
    n, c, h, w, k, s, p = geometry
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    dout = rng.standard_normal((n, c, _out(h, k, s, p), _out(w, k, s, p))).astype(dtype)
    got, want = _pool_run(pool, x, k, s, p, dout), _pool_run(ref_pool, x, k, s, p, dout)
    for key in got:
        np.testing.assert_allclose(got[key], want[key], err_msg=key, **tol(dtype))


def test_maxpool_ties_go_to_the_first_in_row_major_order_and_nan_wins():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = x[0, 0, 0, 1] = 2.0  # window 0: (0, 1) comes first
    x[0, 0, 2:, 2:] = -1.0  # window 3: all equal: (2, 2) comes first
    x[0, 0, 3, 0] = np.nan  # window 2: NaN is the maximum
    for mod in (pool, ref_pool):
        y, argmax = np.empty((1, 1, 2, 2)), np.empty((1, 1, 2, 2), np.int64)
        mod.maxpool_forward(x, 2, 2, 2, 2, 0, 0, y, argmax)
        assert argmax.ravel().tolist() == [1, 2, 12, 10]
        assert np.isnan(y[0, 0, 1, 0]) and y[0, 0, 0, 0] == 2.0 and y[0, 0, 1, 1] == -1.0


def test_maxpool_padding_never_wins():
    x = -np.ones((1, 1, 3, 3), np.float32) * 5
    for mod in (pool, ref_pool):
        y, argmax = np.empty((1, 1, 2, 2), np.float32), np.empty((1, 1, 2, 2), np.int64)
        mod.maxpool_forward(x, 3, 3, 2, 2, 1, 1, y, argmax)
        assert (y == -5).all() and argmax.ravel().tolist() == [0, 1, 3, 4]


def test_parallel_paths_match_serial(rng):
    # Enough work for several chunks; each image again alone runs the serial path.
    n, c, h, w, m, k, s, p = 40, 4, 33, 31, 8, 3, 1, 1
    oh, ow = _out(h, k, s, p), _out(w, k, s, p)
    assert n_chunks(c * k * k * n * oh * ow) > 1 and n_chunks(n * c * h * w) > 1
    x, W, b, _, _ = _conv_case(rng, np.float32, n, c, h, w, m, k, s, p)
    dout = rng.standard_normal((n, m, oh, ow)).astype(np.float32)
    whole = _conv_run(kernels, x, W, b, s, p, ACTIVATIONS["relu"], 0.0, dout)
    pshape = (n, c, _out(h, 3, 2, 1), _out(w, 3, 2, 1))
    pooled = _pool_run(pool, x, 3, 2, 1, rng.standard_normal(pshape).astype(np.float32))
    for i in (0, n // 2, n - 1):
        one = _conv_run(
            kernels, x[i : i + 1], W, b, s, p, ACTIVATIONS["relu"], 0.0, dout[i : i + 1]
        )
        assert n_chunks(one["col"].size) == 1
        np.testing.assert_array_equal(one["col"][:, 0], whole["col"][:, i])
        np.testing.assert_allclose(one["y"][0], whole["y"][i], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(one["dx"][0], whole["dx"][i], rtol=1e-5, atol=1e-4)
        onep = _pool_run(pool, x[i : i + 1], 3, 2, 1,
                         np.ascontiguousarray(pooled["y"][i : i + 1] * 0 + 1))  # fmt: skip
        np.testing.assert_array_equal(onep["y"][0], pooled["y"][i])
        np.testing.assert_array_equal(onep["argmax"][0], pooled["argmax"][i])
        np.testing.assert_array_equal(onep["avg"][0], pooled["avg"][i])
    # col2im and the pooling backward passes over many planes, against their twins.
    dcol = rng.standard_normal(whole["col"].shape).astype(np.float32)
    dx, dx_ref = np.empty_like(x), np.empty_like(x)
    kernels.col2im(dcol, k, k, s, s, p, p, dx)
    ref.col2im(dcol, k, k, s, s, p, p, dx_ref)
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-5, atol=1e-5)
    ref_out = _pool_run(ref_pool, x, 3, 2, 1, rng.standard_normal(pshape).astype(np.float32))
    np.testing.assert_array_equal(pooled["argmax"], ref_out["argmax"])
