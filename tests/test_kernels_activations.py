"""Activation kernels against their NumPy twins, and the parallel path against the serial one."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from conftest import BIG, SHAPES, tol
from fastnn.kernels import activations as kernels
from fastnn.kernels import reference
from fastnn.kernels._config import PARALLEL_MIN
from fastnn.kernels.reference import activations as ref

# name -> (forward kernel, backward kernel, extra parameter or None), spelled out so that a
# grep for a kernel's name finds its test.
KERNELS = {
    "identity": ("identity_forward", "identity_backward", None),
    "step": ("step_forward", "step_backward", None),
    "sigmoid": ("sigmoid_forward", "sigmoid_backward", None),
    "tanh": ("tanh_forward", "tanh_backward", None),
    "relu": ("relu_forward", "relu_backward", None),
    "leaky_relu": ("leaky_relu_forward", "leaky_relu_backward", 0.1),
    "elu": ("elu_forward", "elu_backward", 1.3),
}
ELEMENTWISE = list(KERNELS)


def _call_forward(mod, name, x, out):
    forward, _, param = KERNELS[name]
    f = getattr(mod, forward)
    f(x, out) if param is None else f(x, param, out)


def _call_backward(mod, name, dout, y, dx):
    _, backward, param = KERNELS[name]
    f = getattr(mod, backward)
    if name == "identity":
        f(dout, dx)
    elif param is None:
        f(dout, y, dx)
    else:
        f(dout, y, param, dx)


def _check(name, x, dout):
    y, y_ref = np.empty_like(x), np.empty_like(x)
    _call_forward(kernels, name, x, y)
    _call_forward(ref, name, x, y_ref)
    np.testing.assert_allclose(y, y_ref, **tol(x.dtype))
    dx, dx_ref = np.empty_like(x), np.empty_like(x)
    _call_backward(kernels, name, dout, y_ref, dx)
    _call_backward(ref, name, dout, y_ref, dx_ref)
    np.testing.assert_allclose(dx, dx_ref, **tol(x.dtype))
    return y, dx


def test_reference_module_reexports():
    # The reference package exposes every kernel name at its top level too.
    assert reference.relu_forward is ref.relu_forward


@pytest.mark.nojit
@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("shape", SHAPES)
def test_elementwise_matches_reference(name, shape, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype).ravel()
    dout = rng.standard_normal(shape).astype(dtype).ravel()
    _check(name, x, dout)


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_extreme_values_finite_and_correct(name, dtype):
    x = np.array([-1e4, -1000, -88.8, -1, -0.0, 0, 1e-30, 1, 88.8, 1000, 1e4], dtype=dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, dx = _check(name, x, np.ones_like(x))
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))


def test_closed_form_values():
    x = np.array([-1000.0, -1.0, 0.0, 2.0])
    y = np.empty_like(x)
    kernels.sigmoid_forward(x, y)
    np.testing.assert_allclose(y, [0.0, 1 / (1 + np.e), 0.5, 1 / (1 + np.exp(-2))], rtol=1e-15)
    kernels.relu_forward(x, y)
    np.testing.assert_array_equal(y, [0, 0, 0, 2])
    dx = np.empty_like(x)
    kernels.relu_backward(np.ones(4), y, dx)
    np.testing.assert_array_equal(dx, [0, 0, 0, 1])  # ReLU's derivative at 0 is 0
    kernels.elu_forward(x, 1.0, y)
    np.testing.assert_allclose(y, [-1.0, np.expm1(-1), 0, 2], rtol=1e-15)
    kernels.step_forward(x, y)
    np.testing.assert_array_equal(y, [0, 0, 0, 1])


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_derivative_matches_float64_numerical(name, rng):
    # The derivative written through y equals d act(x)/dx, away from the kinks.
    x = rng.uniform(-4, 4, 200)
    x = x[np.abs(x) > 1e-3]
    eps = 1e-6
    yp, ym, y = np.empty_like(x), np.empty_like(x), np.empty_like(x)
    _call_forward(kernels, name, x + eps, yp)
    _call_forward(kernels, name, x - eps, ym)
    _call_forward(kernels, name, x, y)
    dx = np.empty_like(x)
    _call_backward(kernels, name, np.ones_like(x), y, dx)
    np.testing.assert_allclose(dx, (yp - ym) / (2 * eps), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_parallel_path_matches_serial(name, rng):
    # Above PARALLEL_MIN the kernel splits the work between threads; run it on a big array and
    # on small pieces of it (serial path) and compare bit for bit.
    n = PARALLEL_MIN * 2 + 13
    x = rng.standard_normal(n).astype(np.float32)
    dout = rng.standard_normal(n).astype(np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    _call_forward(kernels, name, x, y)
    _call_backward(kernels, name, dout, y, dx)
    piece = 1000
    for lo in range(0, n, n // 7):
        xs = np.ascontiguousarray(x[lo : lo + piece])
        ys, dxs = np.empty_like(xs), np.empty_like(xs)
        _call_forward(kernels, name, xs, ys)
        _call_backward(kernels, name, np.ascontiguousarray(dout[lo : lo + piece]), ys, dxs)
        np.testing.assert_array_equal(y[lo : lo + piece], ys)
        np.testing.assert_array_equal(dx[lo : lo + piece], dxs)
    _check(name, x, dout)


@pytest.mark.nojit
@pytest.mark.parametrize("pieces", [1, 2, 3])
@pytest.mark.parametrize("shape", [(1, 1), (4, 5), (33, 8)])
def test_maxout_matches_reference(shape, pieces, dtype, rng):
    n, m = shape
    z = rng.standard_normal((n, m * pieces)).astype(dtype)
    z[0, :pieces] = 0.5  # a tie: the first piece wins in both
    out, out_ref = np.empty((n, m), dtype), np.empty((n, m), dtype)
    arg, arg_ref = np.empty((n, m), np.int64), np.empty((n, m), np.int64)
    kernels.maxout_forward(z, pieces, out, arg)
    ref.maxout_forward(z, pieces, out_ref, arg_ref)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    dout = rng.standard_normal((n, m)).astype(dtype)
    dz, dz_ref = np.empty_like(z), np.empty_like(z)
    kernels.maxout_backward(dout, arg, pieces, dz)
    ref.maxout_backward(dout, arg_ref, pieces, dz_ref)
    np.testing.assert_array_equal(dz, dz_ref)


@settings(deadline=None, max_examples=25)
@given(
    name=st.sampled_from(list(ELEMENTWISE)),
    x=hnp.arrays(
        np.float64, hnp.array_shapes(max_dims=1, max_side=50), elements=st.floats(-1e6, 1e6)
    ),
)
def test_property_matches_reference(name, x):
    _check(name, x, np.ones_like(x))


def test_big_shape_constant_is_parallel():
    assert BIG[0] * BIG[1] > PARALLEL_MIN


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "elu"])
def test_accurate_near_zero_and_at_the_polynomial_switch(name, dtype):
    # tanh and ELU switch from a Taylor polynomial to exp at |x| = 0.03 and x = -0.06, where
    # 1 - exp(-2|x|) or exp(x) - 1 would otherwise lose digits to cancellation.
    tiny = np.geomspace(1e-30, 0.5, 400)
    x = np.concatenate([tiny, -tiny, [0.03, -0.03, -0.06, 0.0300001, -0.0599999]]).astype(dtype)
    y, y_ref = np.empty_like(x), np.empty_like(x)
    _call_forward(kernels, name, x, y)
    _call_forward(ref, name, x, y_ref)
    rtol = 2e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, y_ref, rtol=rtol, atol=0)
