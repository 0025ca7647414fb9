"""Dropout kernels against their NumPy references, and the Dropout layer."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn.course.gradcheck import numerical_gradient
from fastnn.kernels import dropout as kernels
from fastnn.kernels._config import PARALLEL_MIN, n_chunks
from fastnn.kernels.reference import dropout as reference
from fastnn.nn.dropout import Dropout

DTYPES = [np.float32, np.float64]


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _forward(mod, x, u, p):
    out = np.full_like(x, np.nan)
    mask = np.full_like(x, np.nan)
    mod.dropout_forward(x, u, p, out, mask)
    return out, mask


def _backward(mod, dout, mask):
    dx = np.full_like(dout, np.nan)
    mod.dropout_backward(dout, mask, dx)
    return dx


# -- kernels against the reference ------------------------------------------------------------


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 7, 1000])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
def test_kernels_match_reference(rng, dtype, n, p):
    x = rng.normal(size=n).astype(dtype)
    u = rng.random(n, dtype=dtype)
    out, mask = _forward(kernels, x, u, p)
    want_out, want_mask = _forward(reference, x, u, p)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(out, want_out)
    assert out.dtype == mask.dtype == np.dtype(dtype)
    # The definition, written out independently of both.
    scale = dtype(1 / (1 - p))
    np.testing.assert_array_equal(mask, np.where(u.astype(np.float64) >= p, scale, 0))
    dout = rng.normal(size=n).astype(dtype)
    dx = _backward(kernels, dout, mask)
    np.testing.assert_array_equal(dx, _backward(reference, dout, mask))
    np.testing.assert_array_equal(dx, dout * mask)


@pytest.mark.nojit
def test_p_zero_keeps_everything_and_extremes_propagate():
    x = np.array([0.0, -1.5, 3e38, np.inf, -np.inf, np.nan, 1e-45], np.float32)
    u = np.array([0.0, 0.1, 0.5, 0.2, 0.9, 0.3, 0.7], np.float32)
    out, mask = _forward(kernels, x, u, 0.0)
    np.testing.assert_array_equal(mask, 1)
    np.testing.assert_array_equal(out, x)  # NaN compares equal to NaN here
    # u == p is kept (u >= p); kept values are scaled, even to overflow; a dropped inf or
    # NaN gives NaN (inf * 0), so a diverging activation is not hidden.
    with np.errstate(over="ignore", invalid="ignore"):  # warnings only without the JIT
        out, mask = _forward(kernels, x, u, 0.5)
    np.testing.assert_array_equal(mask, [0, 0, 2, 0, 2, 0, 2])
    assert out[0] == 0 and out[1] == 0
    assert out[2] == np.inf and out[4] == -np.inf and out[6] == x[6] * np.float32(2) > 0
    assert np.isnan(out[3]) and np.isnan(out[5])


@pytest.mark.parametrize("dtype", DTYPES)
def test_parallel_path_matches_serial_pieces(rng, dtype):
    n = 3 * PARALLEL_MIN + 11
    assert n_chunks(n) > 1
    x = rng.normal(size=n).astype(dtype)
    u = rng.random(n, dtype=dtype)
    dout = rng.normal(size=n).astype(dtype)
    out, mask = _forward(kernels, x, u, 0.4)
    dx = _backward(kernels, dout, mask)
    piece = PARALLEL_MIN // 3
    for lo in range(0, n, piece):
        sl = slice(lo, lo + piece)
        o, m = _forward(kernels, x[sl], u[sl], 0.4)
        np.testing.assert_array_equal(out[sl], o)
        np.testing.assert_array_equal(mask[sl], m)
        np.testing.assert_array_equal(dx[sl], _backward(kernels, dout[sl], m))
    want_out, want_mask = _forward(reference, x, u, 0.4)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(mask, want_mask)


# -- the layer ----------------------------------------------------------------------------------


def test_repr_and_no_parameters():
    assert repr(Dropout()) == "Dropout(p=0.5)"
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
    d = Dropout(0)
    assert d.p == 0.0 and d.parameters() == [] and d.state_dict() == {}


@pytest.mark.parametrize("p", [1.0, 1, -0.1, 1.5, float("nan"), float("inf")])
def test_invalid_probability(p):
    with pytest.raises(ValueError, match="invalid dropout probability"):
        Dropout(p)


@pytest.mark.parametrize("p", ["0.5", True, None, [0.5]])
def test_probability_of_wrong_type(p):
    with pytest.raises(TypeError, match="dropout probability must be a real number"):
        Dropout(p)


def test_invalid_probability_message():
    with pytest.raises(ValueError) as info:
        Dropout(1.0)
    expected = "invalid dropout probability: 1.0; expected a finite number >= 0 and < 1"
    assert str(info.value) == expected
    layer = Dropout(0.5)
    with pytest.raises(ValueError, match="invalid dropout probability: 2.0"):
        layer.p = 2.0
    assert layer.p == 0.5


@pytest.mark.parametrize("bad", ["seed", 1.5, np.random.RandomState(0)])
def test_invalid_rng(bad):
    with pytest.raises(TypeError, match="rng must be"):
        Dropout(0.5, rng=bad)


def test_rng_forms(rng):
    gen = np.random.default_rng(3)
    assert Dropout(rng=gen).rng is gen
    x = np.ones((50, 40), np.float32)
    a = Dropout(rng=7).forward(x).copy()
    b = Dropout(rng=np.random.default_rng(7)).forward(x).copy()
    np.testing.assert_array_equal(a, b)  # an int seed means default_rng(seed)
    assert isinstance(Dropout(rng=np.int64(7)).rng, np.random.Generator)
    seq = np.random.SeedSequence(4)
    c = Dropout(rng=seq).forward(x).copy()
    np.testing.assert_array_equal(c, Dropout(rng=np.random.default_rng(seq)).forward(x))
    assert isinstance(Dropout().rng, np.random.Generator)


def test_no_global_random_state():
    # The legacy global generator is what must stay untouched.
    before = np.random.get_state()[1].copy()  # noqa: NPY002
    layer = Dropout(0.5)
    layer.forward(np.ones(1000))
    Dropout(0.5, rng=1).forward(np.ones(1000))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_statistics(dtype, p):
    n = 100_000
    layer = Dropout(p, rng=42, dtype=dtype)
    x = np.full(n, 3.0, dtype)
    out = layer.forward(x)
    dropped = np.count_nonzero(out == 0)
    # Binomial(n, p): 5 standard deviations.
    assert abs(dropped - n * p) < 5 * np.sqrt(n * p * (1 - p))
    kept = out[out != 0]
    np.testing.assert_array_equal(kept, x[0] * dtype(1 / (1 - p)))
    # E[out] = x: each element's mask has mean 1 and standard deviation sqrt(p / (1 - p)).
    assert abs(out.mean(dtype=np.float64) - 3.0) < 5 * 3.0 * np.sqrt(p / (1 - p) / n)


def test_same_seed_same_mask_and_rng_advances():
    x = np.arange(1, 2001, dtype=np.float32).reshape(40, 50)
    a = Dropout(0.5, rng=5)
    b = Dropout(0.5, rng=5)
    first = a.forward(x).copy()
    np.testing.assert_array_equal(first, b.forward(x))
    second = a.forward(x).copy()
    assert not np.array_equal(first, second)  # the generator moved on
    c = Dropout(0.5, rng=6)
    assert not np.array_equal(first, c.forward(x))
    # The layer's mask is the definition applied to the generator's numbers.
    u = np.random.default_rng(5).random((40, 50), dtype=np.float32)
    np.testing.assert_array_equal(first, np.where(u >= 0.5, x * np.float32(2), 0))


def test_eval_and_p_zero_are_identity(rng):
    x = rng.normal(size=(8, 3)).astype(np.float32)
    dout = rng.normal(size=(8, 3)).astype(np.float32)
    layer = Dropout(0.7, rng=0).eval()
    assert layer.forward(x) is x
    assert layer.backward(dout) is dout
    layer = Dropout(0.0, rng=0)
    assert layer.training
    assert layer.forward(x) is x
    assert layer.backward(dout) is dout
    # Other inputs are converted to the layer's dtype and made contiguous.
    layer = Dropout(0.3).eval()
    got = layer.forward(x.astype(np.float64).T)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, x.T)
    # Switching back to training drops units again.
    layer.train()
    big = np.ones(1000, np.float32)
    assert np.count_nonzero(layer.forward(big) == 0) > 0


def test_steady_state_reuses_buffers(rng):
    layer = Dropout(0.5, rng=1)
    x = rng.normal(size=(16, 9)).astype(np.float32)
    out1 = layer.forward(x)
    mask1 = out1 != 0
    dx1 = layer.backward(np.ones_like(x))
    out2 = layer.forward(x)
    dx2 = layer.backward(np.ones_like(x))
    assert out1 is out2 and dx1 is dx2
    assert not np.array_equal(mask1, out2 != 0)
    # backward uses the mask of the latest forward
    np.testing.assert_array_equal(dx2 != 0, out2 != 0)
    assert layer(x) is not layer.forward(x)  # calling the module returns a copy


def test_any_shape_and_backward(rng):
    for shape in [(5,), (3, 4, 5), (2, 1, 1, 7), (0, 4)]:
        x = rng.normal(size=shape).astype(np.float32)
        layer = Dropout(0.4, rng=9)
        out = layer.forward(x)
        assert out.shape == shape
        u = np.random.default_rng(9).random(shape, dtype=np.float32)
        mask = np.where(u >= 0.4, np.float32(1 / 0.6), np.float32(0))
        np.testing.assert_array_equal(out, x * mask)
        dout = rng.normal(size=shape).astype(np.float32)
        np.testing.assert_array_equal(layer.backward(dout), dout * mask)


def test_backward_validation(rng):
    layer = Dropout(0.5)
    with pytest.raises(RuntimeError, match="before forward"):
        layer.backward(np.ones(3))
    layer.forward(np.ones((2, 3)))
    msg = r"Dropout\(p=0.5\).backward: expected dout of shape \(2, 3\), got \(3, 2\)"
    with pytest.raises(ValueError, match=msg):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        layer.forward(np.array(["a", "b"]))


def test_gradient_check_float64(rng):
    layer = Dropout(0.35, dtype=np.float64)
    x = rng.normal(size=(6, 7))
    g = rng.normal(size=(6, 7))

    def f(_):
        layer.rng = np.random.default_rng(11)  # the same mask every call
        return float(np.sum(layer.forward(x) * g))

    num = numerical_gradient(f, x)
    f(x)
    dx = layer.backward(g)
    err = np.linalg.norm(dx - num) / (np.linalg.norm(dx) + np.linalg.norm(num))
    assert err < 1e-6
    assert np.count_nonzero(dx == 0) > 0  # the check covered dropped units


@settings(deadline=None, max_examples=25)
@given(
    shape=st.lists(st.integers(1, 12), min_size=1, max_size=3).map(tuple),
    p=st.floats(0.0, 0.99),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_property_layer_matches_reference(shape, p, seed, dtype):
    x = np.random.default_rng(seed + 1).normal(size=shape).astype(dtype)
    dout = np.random.default_rng(seed + 2).normal(size=shape).astype(dtype)
    layer = Dropout(p, rng=seed, dtype=dtype)
    out = layer.forward(x).copy()
    dx = layer.backward(dout)
    if p == 0:
        np.testing.assert_array_equal(out, x)
        np.testing.assert_array_equal(dx, dout)
        return
    u = np.random.default_rng(seed).random(shape, dtype=dtype)
    want_out = np.empty_like(x)
    mask = np.empty_like(x)
    reference.dropout_forward(x.ravel(), u.ravel(), p, want_out.reshape(-1), mask.reshape(-1))
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(dx, dout * mask)


def test_steady_state_allocates_nothing(rng):
    layer = Dropout(0.5, rng=0)
    x = rng.normal(size=(64, 300)).astype(np.float32)
    for _ in range(2):
        layer.forward(x)
        layer.backward(x)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    layer.forward(x)
    layer.backward(x)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    assert peak < 2000, peak  # every array here is 76 kB
