"""numerical_gradient on the course's function, and gradient_descent / gradient_ascent."""

import numpy as np
import pytest

import fastnn as fn
from fastnn import gradient_ascent, gradient_descent, numerical_gradient


def function_2(x):
    return x[0] ** 2 + x[1] ** 2


@pytest.mark.parametrize(
    "point, want", [((3.0, 4.0), (6.0, 8.0)), ((0.0, 2.0), (0.0, 4.0)), ((3.0, 0.0), (6.0, 0.0))]
)
def test_numerical_gradient_course_values(point, want):
    np.testing.assert_allclose(numerical_gradient(function_2, np.array(point)), want, atol=1e-6)


def test_gradient_descent_matches_closed_form():
    # grad = 2x, so each step is x <- x - 0.1 * 2x = 0.8 x.
    x0 = np.array([-3.0, 4.0])
    x = gradient_descent(function_2, x0, lr=0.1, steps=100)
    np.testing.assert_allclose(x, x0 * 0.8**100, rtol=1e-6)
    assert np.abs(x).max() < 1e-9
    np.testing.assert_array_equal(x0, [-3.0, 4.0])  # x0 untouched


def test_gradient_descent_path():
    x, path = gradient_descent(function_2, [-3, 4], lr=0.1, steps=20, return_path=True)
    assert path.shape == (21, 2) and path.dtype == np.float64
    np.testing.assert_array_equal(path[0], [-3.0, 4.0])
    np.testing.assert_array_equal(path[-1], x)
    np.testing.assert_allclose(path, np.array([-3.0, 4.0]) * 0.8 ** np.arange(21)[:, None])


def test_gradient_ascent_on_negated_function():
    x = gradient_ascent(lambda x: -function_2(x), (-3.0, 4.0), lr=0.1, steps=100)
    np.testing.assert_allclose(x, np.array([-3.0, 4.0]) * 0.8**100, rtol=1e-6)
    # ascent on f itself goes up: each step multiplies by 1 + 2 lr
    x = gradient_ascent(function_2, (-3.0, 4.0), lr=0.1, steps=10)
    np.testing.assert_allclose(x, np.array([-3.0, 4.0]) * 1.2**10, rtol=1e-6)


def test_learning_rate_extremes():
    start = np.array([-3.0, 4.0])
    big = gradient_descent(function_2, start, lr=10.0, steps=100)
    assert np.abs(big).max() > 1e6  # each step multiplies by 1 - 20 = -19: diverges
    small = gradient_descent(function_2, start, lr=1e-10, steps=100)
    np.testing.assert_allclose(small, start * (1 - 2e-10) ** 100, rtol=1e-9)
    assert np.abs(small - start).max() < 1e-6


def test_zero_steps_and_shapes():
    x = gradient_descent(lambda x: (x**2).sum(), np.ones((2, 3), np.float32), steps=0)
    assert x.dtype == np.float64 and x.shape == (2, 3)
    np.testing.assert_array_equal(x, 1.0)
    x, path = gradient_descent(lambda x: (x**2).sum(), [1.0], steps=0, return_path=True)
    assert path.shape == (1, 1)


def test_exported():
    assert fn.gradient_descent is gradient_descent and fn.gradient_ascent is gradient_ascent
    assert {"gradient_descent", "gradient_ascent", "graph", "perceptron"} <= set(fn.__all__)


@pytest.mark.parametrize("func", [gradient_descent, gradient_ascent])
def test_validation(func):
    with pytest.raises(ValueError, match="invalid learning rate"):
        func(function_2, [1.0, 2.0], lr=0)
    with pytest.raises(ValueError, match="invalid learning rate"):
        func(function_2, [1.0, 2.0], lr=-0.1)
    with pytest.raises(ValueError, match="invalid learning rate"):
        func(function_2, [1.0, 2.0], lr=float("inf"))
    with pytest.raises(TypeError, match="learning rate must be a real number"):
        func(function_2, [1.0, 2.0], lr="0.1")
    with pytest.raises(ValueError, match="invalid steps"):
        func(function_2, [1.0, 2.0], steps=-1)
    with pytest.raises(TypeError, match="steps must be an integer"):
        func(function_2, [1.0, 2.0], steps=2.5)
    with pytest.raises(TypeError, match="x0: expected an array of real numbers"):
        func(function_2, ["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        func(function_2, [np.nan, 1.0])
    with pytest.raises(ValueError, match="non-empty"):
        func(function_2, 3.0)
    with pytest.raises(TypeError, match="callable"):
        func(None, [1.0, 2.0])


def test_numerical_gradient_of_a_view_perturbs_the_viewed_array():
    # A transposed or strided view: the perturbation must reach what f reads (it used to be
    # made on a reshaped copy, and the gradient came back all zeros).
    w = np.arange(6.0).reshape(2, 3)

    def f(_):
        return float(np.sum(w**2))

    np.testing.assert_allclose(numerical_gradient(f, w.T), 2 * w.T, rtol=1e-6)
    np.testing.assert_allclose(numerical_gradient(f, w[:, ::2]), 2 * w[:, ::2], rtol=1e-6)


def test_numerical_gradient_puts_x_back_when_f_raises():
    x = np.array([1.0, 2.0, 3.0])
    calls = []

    def f(v):
        calls.append(v.copy())
        if len(calls) == 3:
            raise RuntimeError("f failed")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="f failed"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="read-only"):
        numerical_gradient(f, np.frombuffer(b"\0" * 8, dtype=np.float64))
