"""Loss objects: values and gradients against NumPy formulas and PyTorch, and label checks."""

import numpy as np
import pytest

import fastnn as fn


def test_cross_entropy_course_example():
    # The course's example: the network gives 0.6 to the true class "2".
    t = np.array([0, 0, 1, 0, 0, 0, 0, 0, 0, 0.0])
    y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
    logits = np.log(np.maximum(y, 1e-300))[None, :]
    loss = fn.SoftmaxCrossEntropy()
    np.testing.assert_allclose(loss.forward(logits, np.array([2])), -np.log(0.6), rtol=1e-12)
    np.testing.assert_allclose(loss.forward(logits, t[None, :]), -np.log(0.6), rtol=1e-12)


def test_mse_and_course_form():
    y = np.array([[0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0]])
    t = np.zeros((1, 10))
    t[0, 2] = 1
    # The course's value for this example is 0.0975 (0.5 * sum of squares).
    np.testing.assert_allclose(fn.sum_squared_error(y, t), 0.0975, rtol=1e-12)
    loss = fn.MSELoss()
    np.testing.assert_allclose(loss.forward(y, t), 0.195 / 10, rtol=1e-12)
    np.testing.assert_allclose(loss.backward(), 2 * (y - t) / 10, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_against_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((13, 7)).astype(dtype) * 3
    t = rng.integers(0, 7, 13)
    soft = rng.random((13, 7)).astype(dtype)
    soft /= soft.sum(axis=1, keepdims=True)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for target, tt in ((t, torch.tensor(t)), (soft, torch.tensor(soft))):
        zt = torch.tensor(z, requires_grad=True)
        ref = torch.nn.functional.cross_entropy(zt, tt)
        ref.backward()
        loss = fn.SoftmaxCrossEntropy()
        np.testing.assert_allclose(loss.forward(z, target), ref.item(), rtol=rtol)
        np.testing.assert_allclose(loss.backward(), zt.grad.numpy(), rtol=rtol, atol=1e-7)
    y = rng.standard_normal((5, 3)).astype(dtype)
    yt = torch.tensor(y, requires_grad=True)
    target = rng.standard_normal((5, 3)).astype(dtype)
    ref = torch.nn.functional.mse_loss(yt, torch.tensor(target))
    ref.backward()
    loss = fn.MSELoss()
    np.testing.assert_allclose(loss.forward(y, target), ref.item(), rtol=rtol)
    np.testing.assert_allclose(loss.backward(), yt.grad.numpy(), rtol=rtol, atol=1e-7)


def test_extreme_logits_give_finite_loss():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=np.float32)
    loss = fn.SoftmaxCrossEntropy()
    with np.errstate(all="raise"):
        value = loss.forward(z, np.array([1, 2]))
    np.testing.assert_allclose(value, (2e4 + 0.0) / 2, rtol=1e-6)
    assert np.all(np.isfinite(loss.backward()))


@pytest.mark.parametrize(
    "labels, error, match",
    [
        (np.array([0, 3]), ValueError, r"labels must be in \[0, 2\], got 3"),
        (np.array([0, -1]), ValueError, r"labels must be in \[0, 2\], got -1"),
        (np.array([0, 1, 2]), ValueError, r"expected 2 labels of shape \(2,\), got shape \(3,\)"),
        (np.array([0.5, 1.0]), ValueError, "whole numbers"),
        (np.array(["a", "b"]), TypeError, "integer labels"),
        (np.zeros((2, 4)), ValueError, r"expected targets of shape \(2, 3\), got \(2, 4\)"),
    ],
)
def test_bad_labels_rejected_before_the_kernel(labels, error, match):
    with pytest.raises(error, match=match):
        fn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), labels)


def test_float_labels_with_whole_values_accepted():
    loss = fn.SoftmaxCrossEntropy()
    a = loss.forward(np.eye(3), np.array([0.0, 1.0, 2.0]))
    b = loss.forward(np.eye(3), np.array([0, 1, 2]))
    assert a == b


def test_backward_before_forward():
    with pytest.raises(RuntimeError):
        fn.SoftmaxCrossEntropy().backward()
    with pytest.raises(RuntimeError):
        fn.MSELoss().backward()


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"expected target of shape \(2, 3\), got \(3, 2\)"):
        fn.MSELoss().forward(np.zeros((2, 3)), np.zeros((3, 2)))


def test_loss_by_name():
    from fastnn.nn import losses

    assert isinstance(losses.get("MSE"), fn.MSELoss)
    assert isinstance(losses.get("cross_entropy"), fn.SoftmaxCrossEntropy)
    with pytest.raises(ValueError, match="cross_entropy"):
        losses.get("hinge")


# -- BinaryCrossEntropy ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_against_torch(dtype, rng):
    torch = pytest.importorskip("torch")
    z = rng.standard_normal((13, 4)).astype(dtype) * 4
    t = (rng.random((13, 4)) < 0.4).astype(dtype)
    zt = torch.tensor(z, requires_grad=True)
    ref = torch.nn.functional.binary_cross_entropy_with_logits(
        zt, torch.tensor(t), reduction="sum"
    ) / len(z)
    ref.backward()
    loss = fn.BinaryCrossEntropy()
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(loss.forward(z, t), ref.item(), rtol=rtol)
    np.testing.assert_allclose(loss.backward(), zt.grad.numpy(), rtol=rtol, atol=1e-7)
    np.testing.assert_allclose(loss.row_losses(z, t).mean(), ref.item(), rtol=rtol)


def test_binary_cross_entropy_against_probabilities():
    # The definition: -[t log s + (1 - t) log(1 - s)] for s = sigmoid(z), one output, y (n,).
    z = np.array([[0.5], [-1.5], [2.0]])
    t = np.array([1.0, 0.0, 0.25])
    s = 1 / (1 + np.exp(-z[:, 0]))
    expected = np.mean(-(t * np.log(s) + (1 - t) * np.log(1 - s)))
    loss = fn.BinaryCrossEntropy()
    np.testing.assert_allclose(loss(z, t), expected, rtol=1e-14)
    np.testing.assert_allclose(loss.backward()[:, 0], (s - t) / 3, rtol=1e-14)


def test_binary_cross_entropy_refuses_bad_targets():
    loss = fn.BinaryCrossEntropy()
    z = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\], got 2.0"):
        loss(z, np.array([[0, 1], [2, 0]]))
    with pytest.raises(ValueError, match=r"in \[0, 1\], got nan"):
        loss(z, np.array([[0, 1], [np.nan, 0]]))
    with pytest.raises(ValueError, match=r"expected targets of shape \(2, 2\)"):
        loss(z, np.zeros(2))
    with pytest.raises(fn.errors.StateError):
        fn.BinaryCrossEntropy().backward()
    assert isinstance(fn.nn.losses.get("binary_cross_entropy"), fn.BinaryCrossEntropy)


@pytest.mark.parametrize(
    "loss, target",
    [
        (fn.SoftmaxCrossEntropy(), "labels"),
        (fn.SoftmaxCrossEntropy(), "soft"),
        (fn.MSELoss(), "values"),
        (fn.BinaryCrossEntropy(), "bits"),
    ],
)
def test_row_losses_average_to_the_loss(loss, target, rng):
    z = rng.standard_normal((9, 5)) * 3
    t = {
        "labels": rng.integers(0, 5, 9),
        "soft": rng.dirichlet(np.ones(5), 9),
        "values": rng.standard_normal((9, 5)),
        "bits": (rng.random((9, 5)) < 0.5).astype(float),
    }[target]
    rows = loss.row_losses(z, t)
    assert rows.shape == (9,)
    np.testing.assert_allclose(rows.mean(), loss.forward(z, t), rtol=1e-13)
    # Each row alone gives its own loss.
    for i in (0, 4, 8):
        np.testing.assert_allclose(rows[i], loss.forward(z[i : i + 1], t[i : i + 1]), rtol=1e-13)
