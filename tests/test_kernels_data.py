"""Data kernels (gather_rows, count_correct) against their NumPy twins."""

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
@pytest.mark.parametrize("shape", SHAPES + [(100, 10)])
def test_count_correct_matches_argmax(rng, dtype, shape):
    scores = rng.standard_normal(shape).astype(dtype)
    labels = rng.integers(0, shape[1], shape[0])
    labels[: shape[0] // 2] = np.argmax(scores[: shape[0] // 2], axis=1)  # some hits for sure
    got = kernels.count_correct(scores, labels)
    assert got == ref.count_correct(scores, labels)
    assert got == sum(int(np.argmax(s) == t) for s, t in zip(scores, labels, strict=True))
    assert got >= shape[0] // 2


@pytest.mark.nojit
def test_count_correct_ties_and_nan_follow_argmax():
    scores = np.array(
        [
            [1.0, 3.0, 3.0],  # tie: the first maximum, column 1
            [1.0, np.nan, 5.0],  # NaN: argmax picks the first NaN, column 1
            [np.nan, 2.0, np.nan],  # column 0
            [-np.inf, -np.inf, -np.inf],  # all equal: column 0
            [2.0, np.inf, 1.0],  # column 1
        ]
    )
    for column in range(3):
        labels = np.full(5, column)
        want = int(np.count_nonzero(np.argmax(scores, axis=1) == labels))
        assert kernels.count_correct(scores, labels) == want == ref.count_correct(scores, labels)
    assert kernels.count_correct(scores, np.array([1, 1, 0, 0, 1])) == 5


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 20),
    cols=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    small=st.booleans(),
)
def test_count_correct_property(rows, cols, seed, small):
    r = np.random.default_rng(seed)
    # Small integers make ties common.
    scores = r.integers(-2, 3, (rows, cols)).astype(np.float64) if small else r.random((rows, cols))
    labels = r.integers(0, cols, rows)
    assert kernels.count_correct(scores, labels) == ref.count_correct(scores, labels)
