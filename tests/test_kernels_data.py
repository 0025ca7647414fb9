"""Data kernels (gather_rows, count_equal) against their NumPy twins."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SHAPES
from fastnn.kernels import data as kernels
from fastnn.kernels.reference import data as ref


@pytest.mark.nojit
@pytest.mark.parametrize("shape", SHAPES + [(100, 784)])
@pytest.mark.parametrize("index_dtype", [np.int64, np.intp, np.int32])
def test_gather_rows_matches_take(rng, dtype, shape, index_dtype):
    x = rng.standard_normal(shape).astype(dtype)
    for idx in (rng.permutation(shape[0]), rng.integers(0, shape[0], 2 * shape[0] + 1)):
        idx = idx.astype(index_dtype)
        got = np.full((idx.size, shape[1]), np.nan, dtype)
        want = np.empty_like(got)
        kernels.gather_rows(x, idx, got)
        ref.gather_rows(x, idx, want)
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(got, x[idx])  # and NumPy's fancy indexing


def test_gather_rows_keeps_every_bit(rng):
    # A copy, not arithmetic: NaN payloads, infinities, -0.0 and subnormals come through.
    x = np.array([[np.nan, -0.0, np.inf], [-np.inf, 1e-45, 3.0]], np.float32)
    out = np.empty_like(x)
    kernels.gather_rows(x, np.array([1, 0]), out)
    np.testing.assert_array_equal(out.view(np.uint32), x[[1, 0]].view(np.uint32))


def test_gather_rows_empty_batch(rng):
    out = np.empty((0, 3), np.float32)
    kernels.gather_rows(np.ones((4, 3), np.float32), np.empty(0, np.int64), out)
    assert out.shape == (0, 3)


@pytest.mark.nojit
@pytest.mark.parametrize("n", [0, 1, 7, 100, 4099])
@pytest.mark.parametrize(
    "dtypes", [(np.intp, np.int64), (np.int64, np.int64), (np.int32, np.int64)]
)
def test_count_equal_matches_reference(rng, n, dtypes):
    a = rng.integers(0, 4, n).astype(dtypes[0])
    b = rng.integers(0, 4, n).astype(dtypes[1])
    got = kernels.count_equal(a, b)
    assert got == ref.count_equal(a, b) == sum(int(x == y) for x, y in zip(a, b, strict=True))
    assert kernels.count_equal(a, a.astype(dtypes[1])) == n


def test_count_equal_after_argmax_counts_correct_predictions():
    # As fit uses it: NumPy's argmax decides (first maximum on ties, NaN wins).
    scores = np.array([[1.0, 3.0, 3.0], [1.0, np.nan, 5.0], [2.0, np.inf, 1.0], [0.0, 0.0, 0.0]])
    pred = np.empty(4, np.intp)
    np.argmax(scores, axis=1, out=pred)
    assert kernels.count_equal(pred, np.array([1, 1, 1, 0])) == 4
    assert kernels.count_equal(pred, np.array([2, 2, 0, 1])) == 0


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), k=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_count_equal_property(n, k, seed):
    r = np.random.default_rng(seed)
    a, b = r.integers(0, k, n), r.integers(0, k, n)
    assert kernels.count_equal(a, b) == ref.count_equal(a, b)
