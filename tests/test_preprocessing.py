"""fastnn.preprocessing against direct NumPy formulas, and the splits' and batches' guarantees."""

import numpy as np
import pytest

from fastnn.preprocessing import (
    MinMaxScaler,
    Standardizer,
    batches,
    min_max_scale,
    normalize,
    one_hot,
    split_indices,
    train_val_test_split,
)

DTYPES = [np.float32, np.float64]
TOL = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-6), np.dtype(np.float64): dict(rtol=1e-12)}


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


# -- Standardizer -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_standardizer_matches_formula(rng, dtype):
    x = (rng.normal(size=(50, 7)) * rng.uniform(0.1, 100, 7) + rng.normal(0, 50, 7)).astype(dtype)
    s = Standardizer().fit(x)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(s.mean_, x64.sum(axis=0) / 50, rtol=1e-12)
    np.testing.assert_allclose(
        s.scale_, np.sqrt(((x64 - x64.sum(axis=0) / 50) ** 2).sum(axis=0) / 50), rtol=1e-12
    )
    z = s.transform(x)
    assert z.dtype == dtype and z.shape == x.shape
    np.testing.assert_allclose(z, (x64 - x64.mean(0)) / x64.std(0), **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(s.fit_transform(x), z)
    np.testing.assert_allclose(
        s.inverse_transform(z), x, rtol=1e-5 if dtype == np.float32 else 1e-12
    )
    # New data uses the fitted statistics.
    x2 = rng.normal(size=(3, 7)).astype(dtype)
    np.testing.assert_allclose(s.transform(x2), (x2 - s.mean_) / s.scale_, **TOL[np.dtype(dtype)])


def test_standardizer_int_input_gives_float32():
    x = np.arange(12).reshape(6, 2)
    z = Standardizer().fit_transform(x)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z, (x - x.mean(0)) / x.std(0), rtol=1e-6)


def test_standardizer_constant_feature_maps_to_zero():
    # 0.1 in float32 repeated: a float64 mean of equal values may be off by an ulp, which must
    # not turn into a huge z-score.
    x = np.column_stack([np.full(7, 0.1, np.float32), np.arange(7, dtype=np.float32)])
    s = Standardizer().fit(x)
    z = s.transform(x)
    assert np.isfinite(z).all()
    np.testing.assert_array_equal(z[:, 0], 0)
    assert s.scale_[0] == 1
    np.testing.assert_allclose(s.inverse_transform(z), x, rtol=1e-6)


def test_standardizer_feature_shape_and_batch_of_one():
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    s = Standardizer().fit(x)
    assert s.mean_.shape == (3, 4)
    np.testing.assert_allclose(s.transform(x), (x - x.mean(0)) / x.std(0))
    one = Standardizer().fit(np.ones((1, 3)))  # every feature constant
    np.testing.assert_array_equal(one.transform(np.ones((1, 3))), 0)


def test_standardizer_errors():
    s = Standardizer()
    with pytest.raises(RuntimeError, match="before fit"):
        s.transform(np.ones((2, 3)))
    s.fit(np.random.default_rng(0).normal(size=(4, 3)))
    with pytest.raises(ValueError, match=r"expected input of shape \(n, 3\).*got \(2, 4\)"):
        s.transform(np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"got \(3,\)"):
        s.inverse_transform(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        Standardizer().fit([[1.0, np.nan]])
    with pytest.raises(ValueError, match=r"shape \(n >= 1"):
        Standardizer().fit(np.ones((0, 3)))
    with pytest.raises(TypeError, match="dtype <U1"):
        Standardizer().fit([["a"]])


def test_standardizer_state_dict_through_npz(tmp_path, rng):
    x = rng.normal(size=(20, 5))
    s = Standardizer().fit(x)
    np.savez(tmp_path / "s.npz", **s.state_dict())
    with np.load(tmp_path / "s.npz") as f:  # allow_pickle is False by default
        t = Standardizer.from_state_dict(f)
    np.testing.assert_array_equal(t.mean_, s.mean_)
    np.testing.assert_array_equal(t.scale_, s.scale_)
    np.testing.assert_array_equal(t.transform(x), s.transform(x))
    with pytest.raises(ValueError, match='"mean" and "scale"'):
        Standardizer.from_state_dict({"mean": s.mean_})
    with pytest.raises(ValueError, match="positive scale"):
        Standardizer.from_state_dict({"mean": s.mean_, "scale": np.zeros(5)})
    with pytest.raises(RuntimeError, match="before fit"):
        Standardizer().state_dict()


# -- MinMaxScaler and min_max_scale -----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("feature_range", [(0, 1), (-1, 1), (2.5, 3)])
def test_min_max_scaler_matches_formula(rng, dtype, feature_range):
    lo, hi = feature_range
    x = (rng.normal(size=(30, 4)) * [1, 10, 100, 0.01]).astype(dtype)
    m = MinMaxScaler(feature_range).fit(x)
    x64 = x.astype(np.float64)
    want = (x64 - x64.min(0)) / (x64.max(0) - x64.min(0)) * (hi - lo) + lo
    z = m.transform(x)
    assert z.dtype == dtype
    np.testing.assert_allclose(z, want, rtol=1e-5, atol=1e-5 if dtype == np.float32 else 1e-12)
    np.testing.assert_allclose(z.min(0), lo, atol=1e-6)
    np.testing.assert_allclose(z.max(0), hi, rtol=1e-6)
    np.testing.assert_allclose(m.inverse_transform(z), x, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(m.fit_transform(x), z)


def test_min_max_scaler_constant_feature_and_errors():
    x = np.array([[3.0, 1.0], [3.0, 2.0], [3.0, 5.0]])
    z = MinMaxScaler((-1, 1)).fit_transform(x)
    np.testing.assert_array_equal(z[:, 0], -1)
    np.testing.assert_allclose(z[:, 1], [-1, -0.5, 1])
    with pytest.raises(RuntimeError, match="before fit"):
        MinMaxScaler().transform(x)
    with pytest.raises(ValueError, match=r"expected input of shape \(n, 2\).*got \(3, 3\)"):
        MinMaxScaler().fit(x).transform(np.ones((3, 3)))
    for bad in [(1, 1), (2, 1), (0, np.inf)]:
        with pytest.raises(ValueError, match="feature_range"):
            MinMaxScaler(bad)
    for bad in [(0, 1, 2), 5, ("a", "b")]:
        with pytest.raises(TypeError, match="feature_range"):
            MinMaxScaler(bad)


def test_min_max_scale_axes(rng):
    x = rng.normal(size=(6, 5))
    for axis in (0, 1, -1):
        lo, hi = x.min(axis, keepdims=True), x.max(axis, keepdims=True)
        np.testing.assert_allclose(min_max_scale(x, axis=axis), (x - lo) / (hi - lo))
    np.testing.assert_allclose(min_max_scale(x, (0, 2), None), (x - x.min()) / np.ptp(x) * 2)
    assert min_max_scale(np.arange(4)).dtype == np.float32
    np.testing.assert_array_equal(min_max_scale(np.full((3, 2), 7.0), (5, 6)), 5)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        min_max_scale(x, axis=2)
    with pytest.raises(ValueError, match="non-empty"):
        min_max_scale(np.ones((0, 2)))


# -- normalize --------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_matches_formula(rng, dtype):
    x = rng.normal(size=(8, 5)).astype(dtype)
    x[3] = 0  # a zero row stays zero
    x64 = x.astype(np.float64)
    norms = {
        1: np.abs(x64).sum(axis=1, keepdims=True),
        2: np.sqrt((x64**2).sum(axis=1, keepdims=True)),
        np.inf: np.abs(x64).max(axis=1, keepdims=True),
    }
    for ord_, norm in norms.items():
        out = normalize(x, ord=ord_)
        assert out.dtype == dtype and out.shape == x.shape
        norm[norm == 0] = 1
        np.testing.assert_allclose(out, x64 / norm, **TOL[np.dtype(dtype)])
        np.testing.assert_array_equal(out[3], 0)
    cols = normalize(x, axis=0)
    np.testing.assert_allclose((cols.astype(np.float64) ** 2).sum(0), 1, rtol=1e-5)


def test_normalize_edge_cases():
    # Squares of these overflow float32; the result is still a unit vector.
    big = np.array([[3e38, 3e38], [1e-30, 0]], dtype=np.float32)
    np.testing.assert_allclose(normalize(big), [[2**-0.5, 2**-0.5], [1, 0]], rtol=1e-6)
    assert normalize([3, 4]).dtype == np.float32
    np.testing.assert_allclose(normalize([3, 4]), [0.6, 0.8])
    for bad in (3, 0, "fro", True, -np.inf):
        with pytest.raises(ValueError, match="invalid ord"):
            normalize(big, ord=bad)
    with pytest.raises(ValueError, match="scalar"):
        normalize(1.0)
    with pytest.raises(TypeError, match="axis must be an integer"):
        normalize(big, axis=None)


# -- one_hot ----------------------------------------------------------------------------------


def test_one_hot_matches_eye(rng):
    y = rng.integers(0, 7, size=40)
    y[0] = 6  # so the inferred num_classes is 7
    out = one_hot(y)
    assert out.dtype == np.float32 and out.shape == (40, 7)
    np.testing.assert_array_equal(out, np.eye(7)[y])
    np.testing.assert_array_equal(one_hot(y, 10, dtype=np.int64), np.eye(10, dtype=np.int64)[y])
    grid = y[:12].reshape(3, 4)
    np.testing.assert_array_equal(one_hot(grid, 7), np.eye(7)[grid])
    np.testing.assert_array_equal(one_hot(np.array([2.0, 0.0]), 3), [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(one_hot([True, False]), [[0, 1], [1, 0]])
    assert one_hot(np.array([], dtype=np.int64), 3).shape == (0, 3)


def test_one_hot_errors():
    with pytest.raises(ValueError, match="integers, got 1.5"):
        one_hot([0, 1.5, 2])
    with pytest.raises(ValueError, match="integers, got nan"):
        one_hot([0, np.nan])
    with pytest.raises(ValueError, match=">= 0, got -2"):
        one_hot([0, -2, 1], 3)
    with pytest.raises(ValueError, match=r"label 5 is out of range for num_classes=3"):
        one_hot([0, 5, 1], 3)
    with pytest.raises(TypeError, match="expected integer labels"):
        one_hot(["a", "b"])
    with pytest.raises(ValueError, match="invalid num_classes: 0"):
        one_hot([0], 0)
    with pytest.raises(TypeError, match="num_classes must be an integer"):
        one_hot([0], 2.0)
    with pytest.raises(ValueError, match="num_classes is needed"):
        one_hot([])


# -- splits -----------------------------------------------------------------------------------


def _check_stratified(parts, y):
    """Each part's count of each class is within 1 of its proportional share."""
    classes, counts = np.unique(y, return_counts=True)
    for idx in parts:
        share = len(idx) * counts / len(y)
        got = np.array([(y[idx] == c).sum() for c in classes])
        assert np.all(np.abs(got - share) <= 1), (got, share)


def test_split_indices_property(rng):
    # Random class sizes (including classes of 1) and 1 to 4 parts, some covering all of y.
    for _ in range(300):
        k = int(rng.integers(1, 12))
        counts = rng.integers(1, 40, size=k)
        y = rng.permutation(np.repeat(np.arange(k), counts))
        n = len(y)
        cuts = np.sort(rng.integers(0, n + 1, size=int(rng.integers(1, 5))))
        sizes = list(np.diff(np.concatenate([[0], cuts])))
        parts = split_indices(y, sizes, rng=rng)
        assert [len(p) for p in parts] == sizes
        used = np.concatenate(parts)
        assert len(np.unique(used)) == len(used)  # disjoint
        _check_stratified(parts, y)


def test_split_indices_string_labels_and_plain():
    y = np.array(["cat"] * 30 + ["dog"] * 10)
    a, b = split_indices(y, [20, 20], rng=0)
    assert (y[a] == "dog").sum() == 5 and (y[b] == "dog").sum() == 5
    a, b = split_indices(y, [7, 3], stratify=False, rng=0)
    assert len(a) == 7 and len(b) == 3 and not set(a) & set(b)
    with pytest.raises(ValueError, match=r"add up to 41 > n = 40"):
        split_indices(y, [40, 1])
    with pytest.raises(ValueError, match="invalid size: -1"):
        split_indices(y, [-1])


def test_train_val_test_split_sizes_and_stratification(rng):
    y = np.repeat([0, 1, 2, 3], [500, 300, 150, 50])
    y = y[rng.permutation(len(y))]
    x = np.arange(len(y))[:, None] * np.ones((1, 3))  # row i holds i, so rows can be traced
    (xtr, ytr), (xva, yva), (xte, yte) = train_val_test_split(x, y, val=0.15, test=0.2, seed=1)
    assert (len(xtr), len(xva), len(xte)) == (650, 150, 200)
    ids = [a[:, 0].astype(int) for a in (xtr, xva, xte)]
    np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(1000))
    for i, ys in zip(ids, (ytr, yva, yte), strict=True):
        np.testing.assert_array_equal(ys, y[i])  # rows stay paired with their labels
    _check_stratified(ids, y)
    np.testing.assert_array_equal(np.bincount(yva), [75, 45, 22, 8])
    # Integer counts, a Generator, and reproducibility.
    again = train_val_test_split(x, y, val=0.15, test=0.2, seed=1)
    np.testing.assert_array_equal(again[0][0], xtr)
    other = train_val_test_split(x, y, val=0.15, test=0.2, seed=2)
    assert not np.array_equal(other[0][0], xtr)
    splits = train_val_test_split(x, y, val=10, test=0, seed=np.random.default_rng(0))
    assert [len(s[1]) for s in splits] == [990, 10, 0]
    plain = train_val_test_split(x, y, val=0.1, test=0.1, stratify=False, seed=0)
    assert [len(s[1]) for s in plain] == [800, 100, 100]


def test_train_val_test_split_errors():
    x, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match=r"got \(10, 2\) and \(9,\)"):
        train_val_test_split(x, y[:9])
    with pytest.raises(ValueError, match="leave no training data"):
        train_val_test_split(x, y, val=5, test=5)
    with pytest.raises(ValueError, match="leave no training data"):
        train_val_test_split(x, y, val=0.5, test=0.5)
    with pytest.raises(ValueError, match=r"invalid val: 1.0; expected a finite number >= 0 and <"):
        train_val_test_split(x, y, val=1.0)
    with pytest.raises(ValueError, match="invalid test: -0.1"):
        train_val_test_split(x, y, test=-0.1)
    with pytest.raises(TypeError, match="val must be a fraction or an integer count"):
        train_val_test_split(x, y, val="0.1")
    with pytest.raises(TypeError, match="test must be"):
        train_val_test_split(x, y, test=True)
    with pytest.raises(TypeError, match="rng must be"):
        train_val_test_split(x, y, seed="a")


# -- batches ----------------------------------------------------------------------------------


def test_batches_cover_every_sample_once_per_epoch():
    n = 103
    x = np.arange(n)[:, None] * np.ones((1, 2))
    y = np.arange(n) * 10
    gen = np.random.default_rng(0)
    orders = []
    for _ in range(2):
        got = list(batches(x, y, 10, rng=gen))
        assert [len(b[0]) for b in got] == [10] * 10 + [3]
        xs = np.concatenate([b[0][:, 0] for b in got]).astype(int)
        ys = np.concatenate([b[1] for b in got])
        np.testing.assert_array_equal(np.sort(xs), np.arange(n))
        np.testing.assert_array_equal(ys, xs * 10)
        orders.append(xs)
    assert not np.array_equal(orders[0], orders[1])  # a new permutation each epoch
    assert not np.array_equal(orders[0], np.arange(n))
    # An int seed repeats its order.
    a = np.concatenate([b for b in batches(x, None, 7, rng=5)])
    b = np.concatenate([b for b in batches(x, None, 7, rng=5)])
    np.testing.assert_array_equal(a, b)


def test_batches_drop_last_no_shuffle_and_y_none():
    x = np.arange(10)
    got = list(batches(x, None, 4, shuffle=False))
    assert [b.tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    got = list(batches(x, x, 4, shuffle=False, drop_last=True))
    assert [b[0].tolist() for b in got] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    got = list(batches(x, x, 3, rng=0, drop_last=True))
    assert len(got) == 3 and all(len(b[0]) == 3 for b in got)
    assert len(np.unique(np.concatenate([b[0] for b in got]))) == 9
    assert [len(b) for b in batches(x, None, 50)] == [10]  # one short batch


def test_batches_errors_at_call_time():
    x = np.zeros((10, 2))
    for bad, err in [(0, ValueError), (-1, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(err, match="batch_size"):
            batches(x, None, bad)  # no next(): checked before the first batch
    with pytest.raises(ValueError, match="batch_size 11 > 10 samples with drop_last=True"):
        batches(x, None, 11, drop_last=True)
    with pytest.raises(ValueError, match=r"expected y with 10 samples.*got \(9,\)"):
        batches(x, np.zeros(9), 2)
    with pytest.raises(ValueError, match=r"n >= 1"):
        batches(np.zeros((0, 2)), None, 2)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        batches(x, None, 2, shuffle="yes")
    with pytest.raises(TypeError, match="rng must be"):
        batches(x, None, 2, rng=1.5)
