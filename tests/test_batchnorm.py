"""Batch-norm kernels against their NumPy references, and the BatchNorm layer."""

import tracemalloc
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.course.gradcheck import numerical_gradient
from fastnn.kernels import batchnorm as kernels
from fastnn.kernels._config import MAX_CHUNKS, PARALLEL_MIN
from fastnn.kernels.reference import batchnorm as reference
from fastnn.nn.normalization import BatchNorm

DTYPES = [np.float32, np.float64]
# Kernel and reference both compute in float64; they differ by summation order only.
TOL = {np.float32: {"rtol": 2e-6, "atol": 2e-6}, np.float64: {"rtol": 1e-10, "atol": 1e-10}}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _params(rng, d, dtype):
    gamma = rng.normal(1.0, 0.5, d).astype(dtype)
    beta = rng.normal(0.0, 0.5, d).astype(dtype)
    return gamma, beta


def _work(d, slots):
    return np.full((slots, 2, d), np.nan)


def _train(mod, x, gamma, beta, eps=1e-5, slots=MAX_CHUNKS):
    """Run ``mod.batchnorm_forward_train``; return (out, xhat, mean, var, inv_std)."""
    n, d = x.shape
    res = (
        np.full((n, d), np.nan, x.dtype),
        np.full((n, d), np.nan, x.dtype),
        np.full(d, np.nan, x.dtype),
        np.full(d, np.nan, x.dtype),
        np.full(d, np.nan, x.dtype),
    )
    mod.batchnorm_forward_train(x, gamma, beta, eps, *res, _work(d, slots))
    return res


def _eval(mod, x, gamma, beta, rmean, rvar, eps=1e-5, slots=MAX_CHUNKS):
    out = np.full(x.shape, np.nan, x.dtype)
    mod.batchnorm_forward_eval(x, gamma, beta, rmean, rvar, eps, out, _work(x.shape[1], slots))
    return out


def _backward(mod, dout, xhat, gamma, inv_std, slots=MAX_CHUNKS):
    d = dout.shape[1]
    res = (np.full(dout.shape, np.nan, dout.dtype), np.full(d, np.nan, dout.dtype))
    res = res + (np.full(d, np.nan, dout.dtype),)
    mod.batchnorm_backward(dout, xhat, gamma, inv_std, *res, _work(d, slots))
    return res


def _backward_eval(mod, dout, x, gamma, rmean, rvar, eps=1e-5, slots=MAX_CHUNKS):
    d = dout.shape[1]
    res = (np.full(dout.shape, np.nan, dout.dtype), np.full(d, np.nan, dout.dtype))
    res = res + (np.full(d, np.nan, dout.dtype),)
    mod.batchnorm_backward_eval(dout, x, gamma, rmean, rvar, eps, *res, _work(d, slots))
    return res


def _assert_all_close(got, want, dtype):
    for g, w in zip(got, want, strict=True):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, w, **TOL[dtype])


# -- kernels against the reference ------------------------------------------------------------


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 1), (1, 4), (7, 13), (33, 1), (5, 40)])
def test_forward_train_matches_reference(rng, dtype, shape):
    x = rng.normal(2.0, 3.0, shape).astype(dtype)
    gamma, beta = _params(rng, shape[1], dtype)
    got = _train(kernels, x, gamma, beta)
    want = _train(reference, x, gamma, beta)
    _assert_all_close(got, want, dtype)
    # Independent of both: the definition with NumPy's own mean and variance.
    xd = x.astype(np.float64)
    np.testing.assert_allclose(got[2], xd.mean(0), **TOL[dtype])
    np.testing.assert_allclose(got[3], xd.var(0), **TOL[dtype])


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_features_give_finite_output(rng, dtype):
    eps = 1e-5
    x = rng.normal(size=(9, 5)).astype(dtype)
    x[:, 1] = 3.0
    x[:, 3] = -1e6
    gamma, beta = _params(rng, 5, dtype)
    out, xhat, mean, var, inv_std = _train(kernels, x, gamma, beta, eps)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(xhat))
    for j in (1, 3):
        assert var[j] == 0
        np.testing.assert_allclose(inv_std[j], 1 / np.sqrt(eps), rtol=1e-6)
        assert np.all(xhat[:, j] == 0)
        np.testing.assert_array_equal(out[:, j], beta[j])
    assert mean[1] == 3.0 and mean[3] == dtype(-1e6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_large_offset_keeps_precision(rng, dtype):
    # A mean far larger than the spread: a float32 or one-pass sum-of-squares estimate
    # would lose the variance. The oracle is exact rational arithmetic on the inputs.
    eps = 1e-5
    offset = 1e4 if dtype == np.float32 else 1e9
    x = (offset + rng.normal(size=(200, 3))).astype(dtype)
    gamma, beta = np.ones(3, dtype), np.zeros(3, dtype)
    got = _train(kernels, x, gamma, beta, eps)
    _, xhat, mean, var, _ = got
    for j in range(3):
        col = [Fraction(float(v)) for v in x[:, j]]
        mu = sum(col) / len(col)
        v = sum((c - mu) ** 2 for c in col) / len(col)
        want_xhat = np.array([float(c - mu) for c in col]) / np.sqrt(float(v) + eps)
        tight = 1e-13 if dtype == np.float64 else 2e-7
        np.testing.assert_allclose(mean[j], float(mu), rtol=tight)
        np.testing.assert_allclose(var[j], float(v), rtol=tight)
        np.testing.assert_allclose(xhat[:, j], want_xhat, rtol=tight, atol=tight)
    if dtype == np.float32:  # here the plain two-pass reference is exact enough too
        _assert_all_close(got, _train(reference, x, gamma, beta, eps), dtype)
    # Large magnitudes everywhere still give finite, normalised output.
    big = (rng.normal(size=(50, 3)) * 1e30).astype(dtype)
    out = _train(kernels, big, np.ones(3, dtype), np.zeros(3, dtype))[0]
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.astype(np.float64).std(0), 1, rtol=1e-4)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [2, 3, 64])
def test_update_running_matches_reference(rng, dtype, n):
    d = 6
    mean = rng.normal(size=d).astype(dtype)
    var = rng.random(d).astype(dtype)
    start_mean = rng.normal(size=d).astype(dtype)
    start_var = rng.random(d).astype(dtype) + 0.5
    results = []
    for mod in (kernels, reference):
        rm, rv = start_mean.copy(), start_var.copy()
        mod.batchnorm_update_running(rm, rv, mean, var, 0.1, n)
        results.append((rm, rv))
    _assert_all_close(results[0], results[1], dtype)
    # PyTorch's convention, written out.
    want_var = 0.9 * start_var.astype(np.float64) + 0.1 * var.astype(np.float64) * n / (n - 1)
    np.testing.assert_allclose(results[0][1], want_var, rtol=1e-6)
    want_mean = 0.9 * start_mean.astype(np.float64) + 0.1 * mean.astype(np.float64)
    np.testing.assert_allclose(results[0][0], want_mean, rtol=1e-6, atol=1e-7)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (8, 3), (17, 20)])
def test_forward_eval_matches_reference(rng, dtype, shape):
    x = rng.normal(1.0, 2.0, shape).astype(dtype)
    gamma, beta = _params(rng, shape[1], dtype)
    rmean = rng.normal(size=shape[1]).astype(dtype)
    rvar = (rng.random(shape[1]) + 0.1).astype(dtype)
    got = _eval(kernels, x, gamma, beta, rmean, rvar)
    want = _eval(reference, x, gamma, beta, rmean, rvar)
    _assert_all_close([got], [want], dtype)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 1), (1, 3), (7, 13), (40, 2)])
def test_backward_matches_reference(rng, dtype, shape):
    x = rng.normal(size=shape).astype(dtype)
    gamma, beta = _params(rng, shape[1], dtype)
    _, xhat, _, _, inv_std = _train(reference, x, gamma, beta)
    dout = rng.normal(size=shape).astype(dtype)
    got = _backward(kernels, dout, xhat, gamma, inv_std)
    want = _backward(reference, dout, xhat, gamma, inv_std)
    _assert_all_close(got, want, dtype)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (6, 11)])
def test_backward_eval_matches_reference(rng, dtype, shape):
    x = rng.normal(size=shape).astype(dtype)
    dout = rng.normal(size=shape).astype(dtype)
    gamma, _ = _params(rng, shape[1], dtype)
    rmean = rng.normal(size=shape[1]).astype(dtype)
    rvar = (rng.random(shape[1]) + 0.1).astype(dtype)
    got = _backward_eval(kernels, dout, x, gamma, rmean, rvar)
    want = _backward_eval(reference, dout, x, gamma, rmean, rvar)
    _assert_all_close(got, want, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "n, d, slots, chunks",
    [
        (700, 300, MAX_CHUNKS, 3),  # chunks of rows, partial statistics merged
        (700, 300, 2, 2),  # fewer work slots: fewer chunks
        (700, 300, 1, 1),  # one slot: serial whatever the size
        (20, 20000, MAX_CHUNKS, 2),  # short and wide: at least 8 rows per chunk
    ],
)
def test_parallel_path_matches_serial_pieces(rng, dtype, n, d, slots, chunks):
    width = 100 if n > 100 else 1000
    assert n * d > PARALLEL_MIN and n * width < PARALLEL_MIN
    assert kernels._row_chunks(n, d, slots) == chunks
    assert kernels._row_chunks(n, width, slots) == 1
    # An offset far larger than the spread also tests the merge of partial variances.
    offset = 1e3 if dtype == np.float32 else 1e7
    x = (offset + rng.normal(0.5, 2.0, (n, d))).astype(dtype)
    dout = rng.normal(size=(n, d)).astype(dtype)
    gamma, beta = _params(rng, d, dtype)
    rmean = (offset + rng.normal(size=d)).astype(dtype)
    rvar = (rng.random(d) + 0.1).astype(dtype)
    big = _train(kernels, x, gamma, beta, slots=slots)
    big_back = _backward(kernels, dout, big[1], gamma, big[4], slots=slots)
    big_back_eval = _backward_eval(kernels, dout, x, gamma, rmean, rvar, slots=slots)
    tight = {"rtol": 1e-6, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}
    for lo in range(0, d, width):
        cols = slice(lo, lo + width)
        xs = np.ascontiguousarray(x[:, cols])
        ds = np.ascontiguousarray(dout[:, cols])
        piece = _train(kernels, xs, gamma[cols], beta[cols])
        for got, want in zip(big, piece, strict=True):
            np.testing.assert_allclose(got[..., cols], want, **tight)
        piece_back = _backward(kernels, ds, piece[1], gamma[cols], piece[4])
        for got, want in zip(big_back, piece_back, strict=True):
            np.testing.assert_allclose(got[..., cols], want, **tight)
        piece_back_eval = _backward_eval(kernels, ds, xs, gamma[cols], rmean[cols], rvar[cols])
        for got, want in zip(big_back_eval, piece_back_eval, strict=True):
            np.testing.assert_allclose(got[..., cols], want, **tight)
    # Eval splits rows among threads, whatever the slots.
    big_eval = _eval(kernels, x, gamma, beta, rmean, rvar, slots=slots)
    step = max(1, PARALLEL_MIN // (2 * d))
    for lo in range(0, n, step):
        rows = slice(lo, lo + step)
        piece = _eval(kernels, x[rows], gamma, beta, rmean, rvar)
        np.testing.assert_allclose(big_eval[rows], piece, **tight)
    if dtype == np.float32:  # the plain two-pass reference is exact enough at this offset
        _assert_all_close(big, _train(reference, x, gamma, beta), dtype)
        _assert_all_close(big_back, _backward(reference, dout, big[1], gamma, big[4]), dtype)


@settings(deadline=None, max_examples=25)
@given(
    n=st.integers(2, 40),
    d=st.integers(1, 40),
    dtype=st.sampled_from(DTYPES),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    offset=st.sampled_from([0.0, 10.0, -300.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_kernels_match_reference(n, d, dtype, scale, offset, seed):
    r = np.random.default_rng(seed)
    x = (offset + scale * r.normal(size=(n, d))).astype(dtype)
    gamma, beta = _params(r, d, dtype)
    dout = r.normal(size=(n, d)).astype(dtype)
    got = _train(kernels, x, gamma, beta)
    want = _train(reference, x, gamma, beta)
    # Both compute in float64 from the same inputs; only rounding of the results differs.
    tol = 1e-5 if dtype == np.float32 else 1e-9
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())
    got_b = _backward(kernels, dout, want[1], gamma, want[4])
    want_b = _backward(reference, dout, want[1], gamma, want[4])
    # dx cancels (exactly zero for two rows): measure it against the size of its terms.
    dx_scale = np.abs(gamma * want[4]).max() * np.abs(dout).max()
    np.testing.assert_allclose(got_b[0], want_b[0], rtol=tol, atol=tol * dx_scale)
    for g, w in zip(got_b[1:], want_b[1:], strict=True):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * np.abs(w).max())


# -- the layer ----------------------------------------------------------------------------------


def test_repr_and_parameters():
    bn = BatchNorm(100)
    assert repr(bn) == "BatchNorm(100, momentum=0.1, eps=1e-05)"
    assert repr(BatchNorm(3, momentum=0.5, eps=1e-3)) == "BatchNorm(3, momentum=0.5, eps=0.001)"
    assert [name for name, _ in bn.named_parameters()] == ["weight", "bias"]
    assert not bn.weight.decay and not bn.bias.decay
    np.testing.assert_array_equal(bn.weight.data, np.ones(100, np.float32))
    np.testing.assert_array_equal(bn.bias.data, np.zeros(100, np.float32))
    state = bn.state_dict()
    assert sorted(state) == ["bias", "running_mean", "running_var", "weight"]
    np.testing.assert_array_equal(state["running_var"], 1)
    np.testing.assert_array_equal(state["running_mean"], 0)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_features": 0}, ValueError, "invalid num_features: 0"),
        ({"num_features": -3}, ValueError, "invalid num_features: -3"),
        ({"num_features": 2.0}, TypeError, "num_features must be an integer"),
        ({"num_features": True}, TypeError, "num_features must be an integer"),
        ({"num_features": 4, "momentum": -0.1}, ValueError, "invalid momentum: -0.1"),
        ({"num_features": 4, "momentum": 1.5}, ValueError, "invalid momentum: 1.5"),
        ({"num_features": 4, "momentum": float("nan")}, ValueError, "invalid momentum: nan"),
        ({"num_features": 4, "momentum": "0.1"}, TypeError, "momentum must be a real number"),
        ({"num_features": 4, "eps": 0}, ValueError, "invalid eps: 0"),
        ({"num_features": 4, "eps": -1e-5}, ValueError, "invalid eps"),
        ({"num_features": 4, "eps": float("inf")}, ValueError, "invalid eps: inf"),
        ({"num_features": 4, "eps": None}, TypeError, "eps must be a real number"),
        ({"num_features": 4, "dtype": np.int32}, ValueError, "invalid dtype"),
    ],
)
def test_invalid_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        BatchNorm(**kwargs)


def test_boundary_hyperparameters_accepted():
    assert BatchNorm(1, momentum=0).momentum == 0.0
    assert BatchNorm(1, momentum=1).momentum == 1.0
    assert BatchNorm(np.int64(5)).num_features == 5


def test_input_validation(rng):
    bn = BatchNorm(100)
    msg = r"BatchNorm\(100\): expected input of shape \(batch, 100\), got \(32, 99\)"
    with pytest.raises(ValueError, match=msg):
        bn.forward(rng.normal(size=(32, 99)))
    with pytest.raises(ValueError, match=r"got \(100,\)"):
        bn.forward(np.zeros(100))
    with pytest.raises(ValueError, match=r"got \(2, 3, 100\)"):
        bn.forward(np.zeros((2, 3, 100)))
    with pytest.raises(TypeError, match="real numbers"):
        bn.forward(np.full((4, 100), "a"))
    with pytest.raises(ValueError, match="more than 1 row"):
        bn.forward(np.zeros((1, 100)))
    with pytest.raises(ValueError, match=r"got \(0, 100\)"):
        bn.forward(np.zeros((0, 100)))
    with pytest.raises(RuntimeError, match="before forward"):
        bn.backward(np.zeros((4, 100)))
    bn.forward(rng.normal(size=(4, 100)))
    msg = r"BatchNorm\(100\).backward: expected dout of shape \(4, 100\), got \(5, 100\)"
    with pytest.raises(ValueError, match=msg):
        bn.backward(np.zeros((5, 100)))
    # A batch of one row is fine in eval mode.
    bn.eval()
    assert bn.forward(np.ones((1, 100))).shape == (1, 100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_train_and_eval(rng, dtype):
    d = 12
    bn = BatchNorm(d, momentum=0.2, dtype=dtype)
    bn.weight.data[:] = rng.normal(size=d)
    bn.bias.data[:] = rng.normal(size=d)
    rm = np.zeros(d)
    rv = np.ones(d)
    for _ in range(3):
        x = rng.normal(3.0, 2.0, (16, d))  # float64 input: the layer converts it
        out = bn.forward(x)
        assert out.dtype == np.dtype(dtype) and out.shape == (16, d)
        xq = x.astype(dtype).astype(np.float64)
        mu, var = xq.mean(0), xq.var(0)
        want = bn.weight.data * (xq - mu) / np.sqrt(var + 1e-5) + bn.bias.data
        np.testing.assert_allclose(out, want, **TOL[dtype])
        rm = 0.8 * rm + 0.2 * mu
        rv = 0.8 * rv + 0.2 * xq.var(0, ddof=1)
        np.testing.assert_allclose(bn.running_mean, rm, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(bn.running_var, rv, rtol=1e-5)
    bn.eval()
    x = rng.normal(size=(5, d)).astype(dtype)
    out = bn.forward(x)
    w, b, rm, rv = (
        a.astype(np.float64)
        for a in (bn.weight.data, bn.bias.data, bn.running_mean, bn.running_var)
    )
    want = w * (x.astype(np.float64) - rm) / np.sqrt(rv + 1e-5) + b
    np.testing.assert_allclose(out, want, **TOL[dtype])
    before = bn.running_mean.copy()
    bn.forward(x)
    np.testing.assert_array_equal(bn.running_mean, before)  # eval leaves the stats alone


def test_steady_state_reuses_buffers(rng):
    bn = BatchNorm(8)
    x = rng.normal(size=(6, 8)).astype(np.float32)
    out1 = bn.forward(x)
    dx1 = bn.backward(x)
    out2 = bn.forward(x + 1)
    dx2 = bn.backward(x)
    assert out1 is out2 and dx1 is dx2
    assert bn(x) is not bn.forward(x)  # calling the module returns a copy


def test_to_float64_and_state_round_trip(rng):
    bn = BatchNorm(4)
    bn.forward(rng.normal(size=(10, 4)))
    state = bn.state_dict()
    other = BatchNorm(4)
    other.load_state_dict(state)
    other.eval()
    bn.eval()
    x = rng.normal(size=(3, 4))
    np.testing.assert_array_equal(other.forward(x), bn.forward(x))
    bn.to(np.float64)
    assert bn.running_mean.dtype == np.float64 and bn.forward(x).dtype == np.float64
    np.testing.assert_allclose(bn.forward(x), other.forward(x), rtol=1e-5, atol=1e-6)


def _rel_err(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("training", [True, False])
def test_gradient_check_float64(rng, training):
    n, d = 7, 5
    bn = BatchNorm(d, dtype=np.float64)
    bn.weight.data[:] = rng.normal(1.0, 0.5, d)
    bn.bias.data[:] = rng.normal(size=d)
    bn.running_mean[:] = rng.normal(size=d)
    bn.running_var[:] = rng.random(d) + 0.5
    bn.train(training)
    x = rng.normal(1.0, 2.0, (n, d))
    g = rng.normal(size=(n, d))

    def f(_):
        return float(np.sum(bn.forward(x) * g))

    num_x = numerical_gradient(f, x)
    num_w = numerical_gradient(f, bn.weight.data)
    num_b = numerical_gradient(f, bn.bias.data)
    bn.forward(x)
    dx = bn.backward(g).copy()
    assert _rel_err(dx, num_x) < 1e-6
    assert _rel_err(bn.weight.grad, num_w) < 1e-6
    assert _rel_err(bn.bias.grad, num_b) < 1e-6
    if training:  # the input gradient of a normalised batch sums to zero over each column
        np.testing.assert_allclose(dx.sum(0), 0, atol=1e-12)


def test_matches_torch_batchnorm1d(rng):
    torch = pytest.importorskip("torch")
    n, d = 10, 6
    bn = BatchNorm(d, momentum=0.3, eps=1e-3, dtype=np.float64)
    tb = torch.nn.BatchNorm1d(d, momentum=0.3, eps=1e-3, dtype=torch.float64)
    gamma = rng.normal(1.0, 0.5, d)
    beta = rng.normal(size=d)
    bn.weight.data[:] = gamma
    bn.bias.data[:] = beta
    with torch.no_grad():
        tb.weight.copy_(torch.from_numpy(gamma))
        tb.bias.copy_(torch.from_numpy(beta))
    for _ in range(3):
        x = rng.normal(2.0, 3.0, (n, d))
        g = rng.normal(size=(n, d))
        tx = torch.tensor(x, requires_grad=True)
        tb.zero_grad()
        ty = tb(tx)
        ty.backward(torch.from_numpy(g))
        out = bn.forward(x)
        dx = bn.backward(g)
        np.testing.assert_allclose(out, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(bn.weight.grad, tb.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.bias.grad, tb.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.running_mean, tb.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(bn.running_var, tb.running_var.numpy(), rtol=1e-12)
    bn.eval()
    tb.eval()
    x = rng.normal(size=(4, d))
    g = rng.normal(size=(4, d))
    tx = torch.tensor(x, requires_grad=True)
    tb.zero_grad()
    ty = tb(tx)
    ty.backward(torch.from_numpy(g))
    np.testing.assert_allclose(bn.forward(x), ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.backward(g), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.weight.grad, tb.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bn.bias.grad, tb.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("training", [True, False])
def test_steady_state_allocates_nothing(rng, training):
    d = 300
    bn = BatchNorm(d).train(training)
    x = rng.normal(size=(64, d)).astype(np.float32)
    dout = rng.normal(size=(64, d)).astype(np.float32)
    for _ in range(2):
        bn.forward(x)
        bn.backward(dout)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    bn.forward(x)
    bn.backward(dout)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    # The smallest array the layer uses is d * 4 = 1200 bytes; a new one would show.
    assert peak < 1200, peak


def test_layer_parallel_batch_after_small_one(rng):
    # The work slots grow with the batch; the big batch must take the parallel path.
    d = 64
    bn = BatchNorm(d, dtype=np.float64)
    bn.forward(rng.normal(size=(4, d)))
    assert bn._work.shape[0] == 1
    x = rng.normal(2.0, 3.0, (4096, d))
    out = bn.forward(x)
    assert bn._work.shape[0] > 1 and kernels._row_chunks(4096, d, bn._work.shape[0]) > 1
    np.testing.assert_allclose(
        out, _train(reference, x, bn.weight.data, bn.bias.data)[0], **TOL[np.float64]
    )
    dout = rng.normal(size=x.shape)
    dx = bn.backward(dout)
    ref = _train(reference, x, bn.weight.data, bn.bias.data)
    want_dx = _backward(reference, dout, ref[1], bn.weight.data, ref[4])[0]
    np.testing.assert_allclose(dx, want_dx, rtol=1e-9, atol=1e-12)
