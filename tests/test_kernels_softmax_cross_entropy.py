"""Softmax, fused softmax-cross-entropy and MSE kernels against their NumPy twins."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import BIG, SHAPES, tol
from fastnn.kernels import softmax_cross_entropy as kernels
from fastnn.kernels.reference import softmax_cross_entropy as ref


def _loss_tol(dtype):
    return dict(rtol=1e-6 if dtype == np.float32 else 1e-12)


@pytest.mark.nojit
@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_matches_reference(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    y, y_ref = np.empty_like(x), np.empty_like(x)
    kernels.softmax_forward(x, y)
    ref.softmax_forward(x, y_ref)
    np.testing.assert_allclose(y, y_ref, **tol(dtype))
    np.testing.assert_allclose(y.sum(axis=1), 1, rtol=1e-5)
    dout = rng.standard_normal(shape).astype(dtype)
    dx, dx_ref = np.empty_like(x), np.empty_like(x)
    kernels.softmax_backward(dout, y_ref, dx)
    ref.softmax_backward(dout, y_ref, dx_ref)
    np.testing.assert_allclose(dx, dx_ref, **tol(dtype))


@pytest.mark.nojit
@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_labels_matches_reference(shape, dtype, rng):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    dz, dz_ref = np.empty_like(z), np.empty_like(z)
    loss = kernels.softmax_cross_entropy_labels(z, t, dz)
    loss_ref = ref.softmax_cross_entropy_labels(z, t, dz_ref)
    np.testing.assert_allclose(loss, loss_ref, **_loss_tol(dtype))
    np.testing.assert_allclose(dz, dz_ref, **tol(dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_targets_matches_reference(shape, dtype, rng):
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    soft = rng.random(shape).astype(dtype)
    soft /= soft.sum(axis=1, keepdims=True)
    unnormalised = rng.random(shape).astype(dtype) * 3
    for t in (soft, unnormalised):
        dz, dz_ref = np.empty_like(z), np.empty_like(z)
        loss = kernels.softmax_cross_entropy_targets(z, t, dz)
        loss_ref = ref.softmax_cross_entropy_targets(z, t, dz_ref)
        np.testing.assert_allclose(loss, loss_ref, **_loss_tol(dtype))
        np.testing.assert_allclose(dz, dz_ref, **tol(dtype))


def test_one_hot_targets_equal_labels(rng):
    z = rng.standard_normal((9, 4))
    t = rng.integers(0, 4, 9)
    a, b = np.empty_like(z), np.empty_like(z)
    la = kernels.softmax_cross_entropy_labels(z, t, a)
    lb = kernels.softmax_cross_entropy_targets(z, np.eye(4)[t], b)
    np.testing.assert_allclose(la, lb, rtol=1e-14)
    np.testing.assert_allclose(a, b, atol=1e-16)


def test_closed_form_values():
    # Uniform logits over 4 classes: loss log 4; gradient (1/4 - onehot) / batch.
    z = np.zeros((2, 4))
    dz = np.empty_like(z)
    loss = kernels.softmax_cross_entropy_labels(z, np.array([0, 3]), dz)
    np.testing.assert_allclose(loss, np.log(4), rtol=1e-15)
    np.testing.assert_allclose(dz, (0.25 - np.eye(4)[[0, 3]]) / 2, rtol=1e-15)
    # The course's example: y = softmax output with 0.6 on the true class -> -log 0.6.
    p = np.array(
        [[0.1, 0.05, 0.6, 0.0 + 1e-300, 0.05, 0.1, 0.0 + 1e-300, 0.1, 0.0 + 1e-300, 0.0 + 1e-300]]
    )
    loss = kernels.softmax_cross_entropy_labels(np.log(p), np.array([2]), np.empty_like(p))
    np.testing.assert_allclose(loss, -np.log(0.6), rtol=1e-12)
    y = np.array([1.0, 2.0, 3.0])
    t = np.array([1.5, 2.0, 1.0])
    np.testing.assert_allclose(kernels.mse_forward(y, t), (0.25 + 0 + 4) / 3, rtol=1e-15)
    dy = np.empty(3)
    kernels.mse_backward(y, t, dy)
    np.testing.assert_allclose(dy, 2 * (y - t) / 3, rtol=1e-15)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_extreme_logits_finite(scale, dtype, rng):
    z = (rng.standard_normal((16, 10)) * scale).astype(dtype)
    t = rng.integers(0, 10, 16)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        dz, dz_ref = np.empty_like(z), np.empty_like(z)
        loss = kernels.softmax_cross_entropy_labels(z, t, dz)
        loss_ref = ref.softmax_cross_entropy_labels(z, t, dz_ref)
        y = np.empty_like(z)
        kernels.softmax_forward(z, y)
    assert np.isfinite(loss) and np.all(np.isfinite(dz)) and np.all(np.isfinite(y))
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-6)
    np.testing.assert_allclose(dz, dz_ref, **tol(dtype))


@pytest.mark.parametrize("shape", SHAPES)
def test_mse_matches_reference(shape, dtype, rng):
    y = rng.standard_normal(shape).astype(dtype).ravel()
    t = rng.standard_normal(shape).astype(dtype).ravel()
    np.testing.assert_allclose(kernels.mse_forward(y, t), ref.mse_forward(y, t), **_loss_tol(dtype))
    dy, dy_ref = np.empty_like(y), np.empty_like(y)
    kernels.mse_backward(y, t, dy)
    ref.mse_backward(y, t, dy_ref)
    np.testing.assert_allclose(dy, dy_ref, **tol(dtype))


def test_parallel_path_matches_serial(rng):
    n, m = BIG
    z = rng.standard_normal((n, m)).astype(np.float32) * 4
    t = rng.integers(0, m, n)
    dz = np.empty_like(z)
    loss = kernels.softmax_cross_entropy_labels(z, t, dz)
    y = np.empty_like(z)
    kernels.softmax_forward(z, y)
    dz_ref = np.empty_like(z)
    np.testing.assert_allclose(loss, ref.softmax_cross_entropy_labels(z, t, dz_ref), rtol=1e-6)
    # Serial path on a handful of rows: same per-row results.
    total = 0.0
    for lo in range(0, n, 97):
        rows = slice(lo, lo + 97)
        k = z[rows].shape[0]
        dzs = np.empty((k, m), np.float32)
        total += kernels.softmax_cross_entropy_labels(z[rows].copy(), t[rows].copy(), dzs) * k
        np.testing.assert_allclose(dzs * k / n, dz[rows], rtol=1e-5, atol=1e-12)
        ys = np.empty((k, m), np.float32)
        kernels.softmax_forward(z[rows].copy(), ys)
        np.testing.assert_array_equal(ys, y[rows])
    np.testing.assert_allclose(total / n, loss, rtol=1e-9)
    T = np.eye(m, dtype=np.float32)[t]
    np.testing.assert_allclose(kernels.softmax_cross_entropy_targets(z, T, dz), loss, rtol=1e-6)
    # softmax_backward's rows and mse_forward's chunks: the parallel path against the twin
    # and against the serial path on slices below the parallel threshold.
    dout = rng.standard_normal((n, m)).astype(np.float32)
    dx, dx_ref = np.empty_like(z), np.empty_like(z)
    kernels.softmax_backward(dout, y, dx)
    ref.softmax_backward(dout, y, dx_ref)
    np.testing.assert_allclose(dx, dx_ref, **tol(np.float32))
    for lo in range(0, n, 97):
        rows = slice(lo, lo + 97)
        dxs = np.empty_like(dout[rows])
        kernels.softmax_backward(dout[rows].copy(), y[rows].copy(), dxs)
        np.testing.assert_array_equal(dxs, dx[rows])
    a, b = z.ravel(), dout.ravel()
    pieces = sum(
        kernels.mse_forward(a[i : i + 9973], b[i : i + 9973]) * a[i : i + 9973].size
        for i in range(0, a.size, 9973)
    )
    np.testing.assert_allclose(kernels.mse_forward(a, b), pieces / a.size, rtol=1e-12)
    np.testing.assert_allclose(kernels.mse_forward(a, b), ref.mse_forward(a, b), rtol=1e-9)


@settings(deadline=None, max_examples=25)
@given(
    n=st.integers(1, 20),
    m=st.integers(1, 20),
    scale=st.floats(0.01, 1e3),
    seed=st.integers(0, 2**32 - 1),
)
def test_property_labels(n, m, scale, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, m)) * scale
    t = rng.integers(0, m, n)
    dz, dz_ref = np.empty_like(z), np.empty_like(z)
    loss = kernels.softmax_cross_entropy_labels(z, t, dz)
    np.testing.assert_allclose(
        loss, ref.softmax_cross_entropy_labels(z, t, dz_ref), rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(dz, dz_ref, atol=1e-14)
    assert loss >= 0
    np.testing.assert_allclose(dz.sum(axis=1), 0, atol=1e-14)  # each row of p - onehot sums to 0


# -- sigmoid + binary cross-entropy ---------------------------------------------------------------
@pytest.mark.nojit
@pytest.mark.parametrize("shape", SHAPES)
def test_sigmoid_cross_entropy_matches_reference(shape, dtype, rng):
    z = (rng.standard_normal(shape) * 4).astype(dtype)
    for t in (rng.random(shape).astype(dtype), (rng.random(shape) < 0.3).astype(dtype)):
        dz, dz_ref = np.empty_like(z), np.empty_like(z)
        loss = kernels.sigmoid_cross_entropy(z, t, dz)
        loss_ref = ref.sigmoid_cross_entropy(z, t, dz_ref)
        np.testing.assert_allclose(loss, loss_ref, **_loss_tol(dtype))
        np.testing.assert_allclose(dz, dz_ref, **tol(dtype))


def test_sigmoid_cross_entropy_closed_form_and_extremes():
    # z = 0: s = 1/2, loss log 2 per output whatever the target; dz = (1/2 - t) / batch.
    z = np.zeros((2, 3))
    t = np.array([[0.0, 1.0, 0.5], [1.0, 1.0, 0.0]])
    dz = np.empty_like(z)
    np.testing.assert_allclose(kernels.sigmoid_cross_entropy(z, t, dz), 3 * np.log(2), rtol=1e-15)
    np.testing.assert_allclose(dz, (0.5 - t) / 2, rtol=1e-15)
    # Logits far out: the loss is |z| for a wrong confident output and exp(-|z|) (tiny, not 0
    # and not NaN) for a right one; s is 1 or 0 exactly at +-1e4 and at 100, and
    # exp(-100) at -100.
    for dtype in (np.float32, np.float64):
        z = np.array([[1e4, -1e4, 100.0, -100.0]], dtype)
        t = np.array([[0.0, 1.0, 1.0, 0.0]], dtype)
        dz = np.empty_like(z)
        loss = kernels.sigmoid_cross_entropy(z, t, dz)
        np.testing.assert_allclose(loss, 2e4, rtol=1e-12)
        np.testing.assert_array_equal(dz[0, :3], [1, -1, 0])
        np.testing.assert_allclose(
            dz[0, 3], np.exp(-100.0), rtol=1e-5 if dtype == np.float64 else 0.1
        )
    # One output: the loss of a 2-class softmax over (0, z) with labels t.
    z = np.array([[0.3], [-2.0], [5.0]])
    t = np.array([1, 0, 1])
    two = np.hstack([np.zeros_like(z), z])
    expected = kernels.softmax_cross_entropy_labels(two, t, np.empty_like(two))
    dz = np.empty_like(z)
    np.testing.assert_allclose(
        kernels.sigmoid_cross_entropy(z, t[:, None].astype(float), dz), expected, rtol=1e-14
    )


def test_sigmoid_cross_entropy_matches_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    z = (rng.standard_normal((33, 5)) * 6).astype(dtype)
    t = rng.random((33, 5)).astype(dtype)
    zt = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        zt, torch.tensor(t, dtype=torch.float64), reduction="sum"
    ) / len(z)
    expected.backward()
    dz = np.empty_like(z)
    loss = kernels.sigmoid_cross_entropy(z, t, dz)
    np.testing.assert_allclose(loss, expected.item(), **_loss_tol(dtype))
    np.testing.assert_allclose(dz, zt.grad.numpy(), **tol(dtype))


def test_parallel_losses_add_their_chunks_as_the_serial_forms(rng):
    # The serial forms (what the compiled step and small batches use) add the chunks' sums
    # one after another; the parallel kernels must too, for the same bits. (A part.sum()
    # inside a parallel kernel became a parallel reduction, and differed in 3 of 30 seeds.)
    n, m = BIG
    for _ in range(10):
        z = rng.standard_normal((n, m)) * 5
        labels = rng.integers(0, m, n)
        t, onehot = rng.random((n, m)), np.eye(m)[labels]
        a, b = np.empty_like(z), np.empty_like(z)
        pairs = [
            (kernels.softmax_cross_entropy_labels, kernels._ce_labels_serial, (z, labels)),
            (kernels.softmax_cross_entropy_targets, kernels._ce_targets_serial, (z, onehot)),
            (kernels.sigmoid_cross_entropy, kernels._bce_serial, (z, t)),
        ]
        for parallel, serial, args in pairs:
            assert parallel(*args, a) == serial(*args, b)
            np.testing.assert_array_equal(a, b)
        assert kernels.mse_forward(z.ravel(), t.ravel()) == kernels._mse_serial(
            z.ravel(), t.ravel()
        )


def test_sigmoid_cross_entropy_keeps_tiny_losses(dtype, rng):
    # Every output confidently right: the loss is a sum of log(1 + exp(-|z|)) ~ 1e-13 terms,
    # over rows longer than one LOG_BLOCK; it must keep its relative precision.
    t = (rng.random((5, 700)) < 0.5).astype(dtype)
    z = (np.where(t > 0, 30.0, -30.0) * rng.uniform(0.5, 1.5, t.shape)).astype(dtype)
    loss = kernels.sigmoid_cross_entropy(z, t, np.empty_like(z))
    expected = ref.sigmoid_cross_entropy(z, t, np.empty_like(z))
    assert 1e-7 < expected < 1e-4
    np.testing.assert_allclose(loss, expected, **_loss_tol(dtype))
