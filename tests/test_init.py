"""Tests of fastnn.init: the weight initialisers, resolve() and LSUV."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import init
from fastnn.nn.module import Parameter, pack_parameters

DTYPES = [np.float32, np.float64]

# A large (in, out) = (1000, 800) matrix: sample std has relative standard error
# 1/sqrt(2 * 800_000) ~ 8e-4, so a 1 % tolerance is over 10 standard errors.
FAN_IN, FAN_OUT = 1000, 800
STD_RTOL = 0.01


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _fill(fn, shape, dtype, seed=0, **kw):
    a = np.empty(shape, dtype=dtype)
    out = fn(a, np.random.default_rng(seed), **kw)
    assert out is a
    return a


# -- closed-form values --------------------------------------------------------------------
# (filler, kwargs, "normal"/"uniform", expected std (normal) or bound (uniform)), for
# fan_in = 1000, fan_out = 800, written out from the papers' formulas.
NORMALS = [
    (init.xavier_normal_, {}, math.sqrt(2 / (1000 + 800))),
    (init.xavier_normal_, {"gain": 2.0}, 2 * math.sqrt(2 / 1800)),
    (init.he_normal_, {}, math.sqrt(2 / 1000)),
    (init.he_normal_, {"nonlinearity": "leaky_relu", "negative_slope": 0.2},
     math.sqrt(2 / (1 + 0.04)) / math.sqrt(1000)),
    (init.he_normal_, {"mode": "fan_out"}, math.sqrt(2 / 800)),
    (init.he_normal_, {"nonlinearity": "tanh"}, (5 / 3) / math.sqrt(1000)),
    (init.lecun_normal_, {}, 1 / math.sqrt(1000)),
    (init.normal_, {}, 0.01),
    (init.normal_, {"std": 0.3}, 0.3),
]  # fmt: skip
UNIFORMS = [
    (init.xavier_uniform_, {}, math.sqrt(6 / 1800)),
    (init.xavier_uniform_, {"gain": 1.5}, 1.5 * math.sqrt(6 / 1800)),
    (init.he_uniform_, {}, math.sqrt(2) * math.sqrt(3 / 1000)),
    (init.he_uniform_, {"nonlinearity": "leaky_relu", "negative_slope": 0.3},
     math.sqrt(2 / 1.09) * math.sqrt(3 / 1000)),
    (init.he_uniform_, {"mode": "fan_out"}, math.sqrt(2) * math.sqrt(3 / 800)),
    (init.lecun_uniform_, {}, math.sqrt(3 / 1000)),
    (init.uniform_, {}, 0.05),
]  # fmt: skip


def _id(case):
    fn, kw = case[0], case[1]
    return fn.__name__ + "".join(f"-{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", NORMALS, ids=_id)
def test_normal_fillers_std(case, dtype):
    fn, kw, std = case
    a = _fill(fn, (FAN_IN, FAN_OUT), dtype, **kw)
    assert a.dtype == dtype
    w = a.astype(np.float64)
    assert abs(w.std() - std) < STD_RTOL * std
    assert abs(w.mean()) < 6 * std / math.sqrt(w.size)
    # Gaussian, not uniform: about 4.55 % of the mass lies beyond 2 std.
    assert abs(np.mean(np.abs(w) > 2 * std) - 0.0455) < 0.003


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", UNIFORMS, ids=_id)
def test_uniform_fillers_bound(case, dtype):
    fn, kw, bound = case
    a = _fill(fn, (FAN_IN, FAN_OUT), dtype, **kw)
    assert a.dtype == dtype
    w = a.astype(np.float64)
    tiny = 1e-6 * bound if dtype == np.float32 else 0.0  # rounding of the bound to float32
    assert w.min() >= -bound - tiny and w.max() <= bound + tiny
    assert w.min() < -0.995 * bound and w.max() > 0.995 * bound
    assert abs(w.std() - bound / math.sqrt(3)) < STD_RTOL * bound / math.sqrt(3)
    assert abs(w.mean()) < 6 * bound / math.sqrt(w.size)


def test_normal_mean_and_uniform_range():
    a = _fill(init.normal_, (500, 400), np.float64, mean=2.5, std=0.5)
    assert abs(a.mean() - 2.5) < 6 * 0.5 / math.sqrt(a.size)
    assert abs(a.std() - 0.5) < STD_RTOL * 0.5
    b = _fill(init.uniform_, (500, 400), np.float64, low=1.0, high=3.0)
    assert b.min() >= 1.0 and b.max() <= 3.0
    assert abs(b.mean() - 2.0) < 6 * (2 / math.sqrt(12)) / math.sqrt(b.size)
    c = _fill(init.uniform_, (3, 4), np.float32, low=0.7, high=0.7)
    np.testing.assert_array_equal(c, np.float32(0.7))


def test_fan_in_is_first_axis():
    # fastnn weights are (in, out): transposing the shape must change he/lecun's std.
    a = _fill(init.he_normal_, (1000, 250), np.float64)
    b = _fill(init.he_normal_, (250, 1000), np.float64)
    assert abs(a.std() - math.sqrt(2 / 1000)) < STD_RTOL * math.sqrt(2 / 1000)
    assert abs(b.std() - math.sqrt(2 / 250)) < STD_RTOL * math.sqrt(2 / 250)
    c = _fill(init.lecun_uniform_, (4, 1000), np.float64)
    assert np.abs(c).max() <= math.sqrt(3 / 4)
    assert np.abs(c).max() > 0.99 * math.sqrt(3 / 4)


def test_fans_with_receptive_field():
    # (in, out, k): fan_in = in * k, fan_out = out * k.
    a = _fill(init.xavier_normal_, (200, 300, 5), np.float64)
    std = math.sqrt(2 / (200 * 5 + 300 * 5))
    assert abs(a.std() - std) < STD_RTOL * std
    b = _fill(init.he_uniform_, (40, 3, 2, 2), np.float64)
    assert np.abs(b).max() <= math.sqrt(2) * math.sqrt(3 / (40 * 4))


# -- constants -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_and_zeros(dtype):
    a = np.ones((7, 3), dtype=dtype)
    assert init.zeros_(a) is a
    assert a.dtype == dtype and not a.any()
    b = np.zeros(5, dtype=dtype)  # 1-D (biases) allowed
    assert init.constant_(b, 0.25) is b
    np.testing.assert_array_equal(b, np.full(5, 0.25, dtype=dtype))
    c = np.zeros((2, 2), dtype=dtype)
    init.constant_(c, 3)
    np.testing.assert_array_equal(c, 3)


# -- in place, dtype, reproducibility --------------------------------------------------------
FILLERS = [
    lambda a, r: init.normal_(a, r, std=0.5),
    lambda a, r: init.uniform_(a, r),
    init.xavier_normal_,
    init.xavier_uniform_,
    init.he_normal_,
    init.he_uniform_,
    init.kaiming_normal_,
    init.kaiming_uniform_,
    init.lecun_normal_,
    init.lecun_uniform_,
    init.orthogonal_,
    lambda a, r: init.constant_(a, 1.5),
]
FILLER_IDS = [
    "normal", "uniform", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform",
    "kaiming_normal", "kaiming_uniform", "lecun_normal", "lecun_uniform", "orthogonal",
    "constant",
]  # fmt: skip


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fn", FILLERS, ids=FILLER_IDS)
def test_in_place_on_view(fn, dtype):
    buf = np.zeros(2000, dtype=dtype)
    a = buf[:1000].reshape(40, 25)
    out = fn(a, np.random.default_rng(1))
    assert out is a
    assert a.dtype == dtype and a.shape == (40, 25)
    assert np.count_nonzero(buf[:1000]) > 990
    assert not buf[1000:].any()
    np.testing.assert_array_equal(buf[:1000], a.ravel())


@pytest.mark.parametrize("fn", FILLERS, ids=FILLER_IDS)
def test_in_place_on_strided_view(fn):
    big = np.zeros((50, 60))
    a = big[::2, 5:30]
    assert not a.flags.c_contiguous
    out = fn(a, np.random.default_rng(2))
    assert out is a
    mask = np.zeros(big.shape, dtype=bool)
    mask[::2, 5:30] = True
    assert not big[~mask].any()
    assert np.count_nonzero(big[mask]) > 600
    expected = fn(np.empty((25, 25)), np.random.default_rng(2))
    np.testing.assert_array_equal(a, expected)


@pytest.mark.parametrize("fn", FILLERS, ids=FILLER_IDS)
def test_reproducible(fn):
    a = fn(np.empty((30, 20)), np.random.default_rng(7))
    b = fn(np.empty((30, 20)), np.random.default_rng(7))
    c = fn(np.empty((30, 20)), 7)  # int seed -> default_rng(7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    # Drawn in float64 and rounded: the float32 result is the float64 one cast.
    d = fn(np.empty((30, 20), dtype=np.float32), 7)
    np.testing.assert_array_equal(d, a.astype(np.float32))
    if fn is not FILLERS[-1]:  # constant_ is not random
        e = fn(np.empty((30, 20)), 8)
        assert not np.array_equal(a, e)


def test_empty_arrays_are_fine():
    for fn in FILLERS:
        a = np.empty((0, 5))
        assert fn(a, 0) is a


# -- validation ----------------------------------------------------------------------------
FAN_BASED = [
    init.xavier_normal_,
    init.xavier_uniform_,
    init.he_normal_,
    init.he_uniform_,
    init.lecun_normal_,
    init.lecun_uniform_,
    init.orthogonal_,
]


@pytest.mark.parametrize("fn", FAN_BASED, ids=lambda f: f.__name__)
def test_fan_based_reject_1d(fn):
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(10,\)"):
        fn(np.zeros(10), 0)
    with pytest.raises(ValueError, match=r"got shape \(\)"):
        fn(np.zeros(()), 0)


@pytest.mark.parametrize("fn", FILLERS, ids=FILLER_IDS)
def test_reject_non_float_and_non_array(fn):
    with pytest.raises(TypeError, match="float array, got dtype int64"):
        fn(np.zeros((3, 3), dtype=np.int64), 0)
    with pytest.raises(TypeError, match="numpy array, got list"):
        fn([[0.0, 0.0], [0.0, 0.0]], 0)
    ro = np.zeros((3, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(ro, 0)


def test_reject_bad_rng():
    a = np.zeros((3, 3))
    for bad in ("0", 1.5, None, True, np.random.RandomState(0)):
        with pytest.raises(TypeError, match="Generator, an int seed, got"):
            init.he_normal_(a, bad)
    assert init.normal_(a, np.int64(3)) is a


def test_reject_bad_arguments():
    a = np.zeros((4, 4))
    with pytest.raises(ValueError, match="invalid std: -1; expected a finite number >= 0"):
        init.normal_(a, 0, std=-1)
    with pytest.raises(ValueError, match="invalid mean: nan"):
        init.normal_(a, 0, mean=float("nan"))
    with pytest.raises(ValueError, match="low 1.0 > high 0.0"):
        init.uniform_(a, 0, low=1.0, high=0.0)
    with pytest.raises(ValueError, match="invalid gain: -2; expected a finite number >= 0"):
        init.xavier_normal_(a, 0, gain=-2)
    with pytest.raises(ValueError, match="invalid gain: inf"):
        init.orthogonal_(a, 0, gain=float("inf"))
    with pytest.raises(ValueError, match="unknown mode 'fan_avg'; expected one of fan_in, fan_out"):
        init.he_normal_(a, 0, mode="fan_avg")
    with pytest.raises(ValueError, match="unknown nonlinearity 'swish'"):
        init.he_uniform_(a, 0, nonlinearity="swish")
    with pytest.raises(TypeError, match="value must be a real number"):
        init.constant_(a, "1")
    assert not a.any()  # nothing written by a failed call


# -- orthogonal ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(50, 20), (20, 50), (33, 33), (1, 7), (7, 1), (1, 1)])
def test_orthogonal(shape, dtype):
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for gain in (1.0, 0.5):
        w = init.orthogonal_(np.empty(shape, dtype=dtype), 3, gain=gain).astype(np.float64)
        rows, cols = shape
        if rows >= cols:
            np.testing.assert_allclose(w.T @ w, gain**2 * np.eye(cols), atol=tol)
        if rows <= cols:
            np.testing.assert_allclose(w @ w.T, gain**2 * np.eye(rows), atol=tol)


def test_orthogonal_large_rms():
    # Orthonormal columns: sum(W**2) = n_cols, so the entries' rms is 1/sqrt(fan_in).
    w = init.orthogonal_(np.empty((FAN_IN, FAN_OUT)), 0, gain=2.0)
    assert math.isclose(np.sum(w**2), 4.0 * FAN_OUT, rel_tol=1e-10)
    assert abs(w.mean()) < 6 / math.sqrt(FAN_IN) / math.sqrt(w.size)


def test_orthogonal_3d_flattens_trailing_axes():
    w = init.orthogonal_(np.empty((6, 4, 5)), 0)
    m = w.reshape(6, 20)
    np.testing.assert_allclose(m @ m.T, np.eye(6), atol=1e-12)


def _gram_schmidt(g):
    """Q of the QR of g with a positive diagonal of R (modified Gram-Schmidt)."""
    q = g.copy()
    for j in range(q.shape[1]):
        for k in range(j):
            q[:, j] -= (q[:, k] @ q[:, j]) * q[:, k]
        q[:, j] /= np.linalg.norm(q[:, j])
    return q


@pytest.mark.parametrize("shape", [(30, 12), (12, 30), (9, 9)])
def test_orthogonal_sign_correction(shape):
    # With R's diagonal made positive, QR is unique: it is what Gram-Schmidt computes on the
    # same Gaussian draw (a (max, min) standard-normal matrix from the seed).
    rows, cols = shape
    g = np.random.default_rng(11).standard_normal((max(rows, cols), min(rows, cols)))
    q = _gram_schmidt(g)
    expected = q if rows >= cols else q.T
    w = init.orthogonal_(np.empty(shape), 11)
    np.testing.assert_allclose(w, expected, atol=1e-10)


def test_orthogonal_is_unbiased():
    # Without the sign correction LAPACK's Householder QR makes Q[0, 0] mostly one sign.
    first = [init.orthogonal_(np.empty((8, 8)), s)[0, 0] for s in range(400)]
    frac = np.mean(np.array(first) > 0)
    assert 0.4 < frac < 0.6


@settings(deadline=None, max_examples=25)
@given(
    rows=st.integers(1, 40),
    cols=st.integers(1, 40),
    gain=st.floats(0.1, 3.0),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_orthogonal_property(rows, cols, gain, seed, dtype):
    w = init.orthogonal_(np.empty((rows, cols), dtype=dtype), seed, gain=gain)
    assert w.dtype == dtype
    w = w.astype(np.float64)
    small = min(rows, cols)
    gram = w.T @ w if rows >= cols else w @ w.T
    tol = 3e-5 * gain**2 if dtype == np.float32 else 1e-12 * gain**2
    np.testing.assert_allclose(gram, gain**2 * np.eye(small), atol=tol)
    # Singular values are all gain.
    np.testing.assert_allclose(np.linalg.svd(w, compute_uv=False), gain, rtol=1e-4)


@settings(deadline=None, max_examples=25)
@given(
    shape=st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from(DTYPES),
)
def test_uniform_fillers_bounds_property(shape, seed, dtype):
    receptive = math.prod(shape[2:])
    fan_in, fan_out = shape[0] * receptive, shape[1] * receptive
    bounds = {
        init.xavier_uniform_: math.sqrt(6 / (fan_in + fan_out)),
        init.he_uniform_: math.sqrt(2) * math.sqrt(3 / fan_in),
        init.lecun_uniform_: math.sqrt(3 / fan_in),
    }
    for fn, bound in bounds.items():
        a = np.full(shape, np.nan, dtype=dtype)
        assert fn(a, seed) is a
        assert a.dtype == dtype and a.shape == shape
        assert np.all(np.abs(a.astype(np.float64)) <= bound * (1 + 1e-6))


# -- calculate_gain --------------------------------------------------------------------------
def test_calculate_gain():
    for name in ("linear", "identity", "sigmoid", "conv1d", "conv_transpose2d"):
        assert init.calculate_gain(name) == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3, rel=1e-15)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2), rel=1e-15)
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu", 0) == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("Leaky_ReLU", 1.0) == pytest.approx(1.0)
    assert init.calculate_gain("TANH") == pytest.approx(5 / 3)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="unknown nonlinearity 'gelu'.*relu.*selu"):
        init.calculate_gain("gelu")
    with pytest.raises(TypeError, match="must be a str"):
        init.calculate_gain(None)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        init.calculate_gain("leaky_relu", "0.1")


def test_kaiming_aliases():
    assert init.kaiming_normal_ is init.he_normal_
    assert init.kaiming_uniform_ is init.he_uniform_


# -- resolve -------------------------------------------------------------------------------
RESOLVE_NAMES = {
    "he": lambda a, r: init.he_normal_(a, r),
    "he_normal": lambda a, r: init.he_normal_(a, r),
    "kaiming": lambda a, r: init.he_normal_(a, r),
    "kaiming_normal": lambda a, r: init.he_normal_(a, r),
    "he_uniform": lambda a, r: init.he_uniform_(a, r),
    "kaiming_uniform": lambda a, r: init.he_uniform_(a, r),
    "xavier": lambda a, r: init.xavier_normal_(a, r),
    "glorot": lambda a, r: init.xavier_normal_(a, r),
    "xavier_normal": lambda a, r: init.xavier_normal_(a, r),
    "glorot_normal": lambda a, r: init.xavier_normal_(a, r),
    "xavier_uniform": lambda a, r: init.xavier_uniform_(a, r),
    "glorot_uniform": lambda a, r: init.xavier_uniform_(a, r),
    "lecun": lambda a, r: init.lecun_normal_(a, r),
    "lecun_normal": lambda a, r: init.lecun_normal_(a, r),
    "lecun_uniform": lambda a, r: init.lecun_uniform_(a, r),
    "orthogonal": lambda a, r: init.orthogonal_(a, r),
    "normal": lambda a, r: init.normal_(a, r, 0.0, 0.01),
    "uniform": lambda a, r: init.uniform_(a, r, -0.05, 0.05),
    "zeros": lambda a, r: init.zeros_(a),
}


@pytest.mark.parametrize("name", sorted(RESOLVE_NAMES))
def test_resolve_names(name):
    expected = RESOLVE_NAMES[name](np.ones((30, 20)), np.random.default_rng(4))
    for spelling in (name, name.upper(), name.title()):
        fill = init.resolve(spelling)
        a = np.ones((30, 20), dtype=np.float32)
        assert fill(a, np.random.default_rng(4)) is a
        np.testing.assert_array_equal(a, expected.astype(np.float32))


def test_resolve_std():
    for std in (0.1, 1, np.float32(0.25), np.float64(2.0)):
        fill = init.resolve(std)
        a = np.empty((30, 20))
        assert fill(a, 5) is a
        np.testing.assert_array_equal(a, np.random.default_rng(5).normal(0.0, float(std), (30, 20)))
    big = init.resolve(0.05)(np.empty((FAN_IN, FAN_OUT)), 0)
    assert abs(big.std() - 0.05) < STD_RTOL * 0.05
    for zero in (0, 0.0):
        a = np.ones((3, 4))
        init.resolve(zero)(a, 0)
        assert not a.any()


def test_resolve_callable():
    calls = []

    def in_place(a, rng):
        calls.append((a, rng))
        a[...] = 2.0

    a = np.zeros((3, 2))
    r = np.random.default_rng(0)
    assert init.resolve(in_place)(a, r) is a
    assert calls == [(a, r)]
    np.testing.assert_array_equal(a, 2.0)

    # A callable returning a fresh array instead: its values land in a.
    a = np.zeros((3, 2), dtype=np.float32)
    init.resolve(lambda a, rng: np.arange(6.0).reshape(3, 2))(a, 0)
    np.testing.assert_array_equal(a, np.arange(6.0).reshape(3, 2))
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\), expected \(3, 2\)"):
        init.resolve(lambda a, rng: np.zeros((2, 3)))(a, 0)


def test_resolve_errors():
    with pytest.raises(ValueError, match="unknown init 'bogus'") as info:
        init.resolve("bogus")
    listed = str(info.value).split("expected one of ")[1].split(", ")
    for name in RESOLVE_NAMES:
        assert name in listed
    for bad in (-0.1, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="invalid init std"):
            init.resolve(bad)
    for bad in (None, True, [0.1], b"he", {"he": 1}):
        with pytest.raises(TypeError, match="init must be a name, a std"):
            init.resolve(bad)


# -- LSUV ----------------------------------------------------------------------------------
class FakeLinear:
    """x @ W + b with W (in, out); like fastnn layers it reuses its output buffer."""

    def __init__(self, n_in, n_out, rng, dtype=np.float64, bias_scale=0.0):
        self.weight = Parameter(rng.normal(size=(n_in, n_out)).astype(dtype), decay=True)
        self.bias = Parameter((bias_scale * rng.normal(size=n_out)).astype(dtype))
        self._out = None

    def forward(self, x):
        shape = (x.shape[0], self.weight.data.shape[1])
        if self._out is None or self._out.shape != shape:
            self._out = np.empty(shape, dtype=self.weight.data.dtype)
        np.matmul(x, self.weight.data, out=self._out)
        self._out += self.bias.data
        return self._out


class FakeReLU:
    def __init__(self):
        self._out = None

    def forward(self, x):
        if self._out is None or self._out.shape != x.shape:
            self._out = np.empty_like(x)
        return np.maximum(x, 0, out=self._out)


class FakeScale:
    """Has a 1-D ``weight`` (like a batch-norm gamma): LSUV must leave it alone."""

    def __init__(self, n, dtype=np.float64):
        self.weight = Parameter(np.full(n, 3.0, dtype=dtype))

    def forward(self, x):
        return x * self.weight.data


class FakeSequential:
    def __init__(self, *layers):
        self.layers = list(layers)

    def params(self):
        return [
            p for layer in self.layers for p in vars(layer).values() if isinstance(p, Parameter)
        ]


def _make_model(seed=0, dtype=np.float64, bias_scale=0.0):
    r = np.random.default_rng(seed)
    return FakeSequential(
        FakeScale(20, dtype),
        FakeLinear(20, 50, r, dtype, bias_scale),
        FakeReLU(),
        FakeLinear(50, 30, r, dtype, bias_scale),
        FakeReLU(),
        FakeLinear(30, 10, r, dtype, bias_scale),
    )


def _layer_variances(model, x):
    """Output variance of every weight layer, recomputed with plain NumPy in float64."""
    h = x.astype(np.float64)
    out = []
    for layer in model.layers:
        if isinstance(layer, FakeLinear):
            h = h @ layer.weight.data.astype(np.float64) + layer.bias.data
            out.append(h.var())
        elif isinstance(layer, FakeReLU):
            h = np.maximum(h, 0)
        else:
            h = h * layer.weight.data
    return out


@pytest.fixture
def batch(rng):
    # Far from unit variance and not centred, so the initial weights are badly scaled.
    return 4.0 * rng.standard_normal((256, 20)) + 1.0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tol", [0.1, 0.01])
def test_lsuv_unit_variance(batch, dtype, tol):
    model = _make_model(dtype=dtype, bias_scale=0.1)
    assert init.lsuv_(model, batch, rng=0, tol=tol) is model
    variances = _layer_variances(model, batch)
    assert len(variances) == 3
    for v in variances:
        assert abs(v - 1.0) < tol
    for layer in model.layers:
        if isinstance(layer, FakeLinear):
            w = layer.weight.data.astype(np.float64)
            assert w.dtype == np.float64 and layer.weight.data.dtype == dtype
            gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
            # Orthogonal up to the LSUV scale.
            np.testing.assert_allclose(gram / gram[0, 0], np.eye(len(gram)), atol=1e-5)
    np.testing.assert_array_equal(model.layers[0].weight.data, 3.0)


def test_lsuv_before_it_variances_are_off(batch):
    # Guards the test above against passing trivially.
    model = _make_model(bias_scale=0.1)
    assert all(abs(v - 1.0) > 0.5 for v in _layer_variances(model, batch))


def test_lsuv_reproducible_and_packed(batch):
    a = _make_model()
    b = _make_model()
    flat, _ = pack_parameters(b.params())
    init.lsuv_(a, batch, rng=3)
    init.lsuv_(b, batch, rng=np.random.default_rng(3))
    for la, lb in zip(a.layers, b.layers, strict=True):
        if isinstance(la, FakeLinear):
            np.testing.assert_array_equal(la.weight.data, lb.weight.data)
            # Packed weights were written in place: still views of the flat buffer.
            assert np.shares_memory(lb.weight.data, flat)
    np.testing.assert_array_equal(flat, np.concatenate([p.data.ravel() for p in b.params()]))


def test_lsuv_warns_when_bias_dominates(batch):
    model = _make_model(bias_scale=10.0)
    with pytest.warns(RuntimeWarning) as record:
        init.lsuv_(model, batch, rng=0, max_iter=3)
    messages = [str(w.message) for w in record]
    # Every weight layer has a bias whose spread alone is far above unit variance.
    assert [m.split(" (")[0] for m in messages] == [f"lsuv_: layer {i}" for i in (1, 3, 5)]
    assert all("after 3 iterations" in m for m in messages)


def test_lsuv_errors(batch):
    with pytest.raises(TypeError, match=r"expected a Sequential model with \.layers, got object"):
        init.lsuv_(object(), batch)
    with pytest.raises(ValueError, match="no layer with a 2-D weight"):
        init.lsuv_(FakeSequential(FakeReLU(), FakeScale(20)), batch)
    model = _make_model()
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, features\), got \(20,\)"):
        init.lsuv_(model, batch[0])
    with pytest.raises(ValueError, match=r"got \(2, 256, 20\)"):
        init.lsuv_(model, np.stack([batch, batch]))
    with pytest.raises(ValueError, match="invalid tol"):
        init.lsuv_(model, batch, tol=0)
    with pytest.raises(ValueError, match="invalid max_iter: 0"):
        init.lsuv_(model, batch, max_iter=0)
    with pytest.raises(TypeError, match="max_iter must be an int"):
        init.lsuv_(model, batch, max_iter=2.5)
    with pytest.raises(ValueError, match="layer 1 .*variance 0.0"):
        init.lsuv_(model, np.zeros((8, 20)), rng=0)
