"""Numerical faults (issue 7): stable layers and losses at extreme values, divergence caught
during training with the last finite weights kept, gradient clipping by global norm, and
optimizer hyperparameters checked.

The stability tests run under ``warnings.simplefilter("error")`` and
``np.errstate(all="raise", under="ignore")``: overflow, division by zero and invalid
operations raise, while underflow to 0 (exp(-1e4) == 0, the right answer) is allowed. The
errstate reaches the NumPy code around the kernels, and the kernels themselves when they run
as Python (``NUMBA_DISABLE_JIT=1``); compiled kernels never warn, so there the checks are the
finite, closed-form results.
"""

import contextlib
import math
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastnn as fn
from fastnn import optim
from fastnn.nn.module import Parameter

TIGHT = {np.float32: dict(rtol=1e-6, atol=1e-7), np.float64: dict(rtol=1e-13, atol=1e-15)}


@contextlib.contextmanager
def strict():
    """Every warning an error; NumPy overflow, divide and invalid raise (underflow allowed)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise", under="ignore"):
            yield


def finite(*arrays):
    return all(np.isfinite(np.asarray(a)).all() for a in arrays)


# -- softmax and cross-entropy ---------------------------------------------------------------
def test_softmax_of_huge_logits(dtype):
    x = np.array(
        [[1e4, 0], [0, 1e4], [-1e4, 1e4], [1e4, 1e4], [-1e4, -1e4], [1e4, -1e4]], dtype=dtype
    )
    expected = np.array([[1, 0], [0, 1], [0, 1], [0.5, 0.5], [0.5, 0.5], [1, 0]])
    layer = fn.Softmax(dtype=dtype)
    with strict():
        y = layer.forward(x)
        dout = np.tile(np.array([1.0, 0.0], dtype=dtype), (len(x), 1))
        dx = layer.backward(dout)
    assert y.dtype == dtype and finite(y, dx)
    assert_array_equal(y, expected)
    # dx = y * (dout - sum_j dout_j y_j): 0 for one-hot rows, +-0.25 for the even ones.
    expected_dx = expected * (dout - (dout * expected).sum(axis=1, keepdims=True))
    assert_array_equal(dx, expected_dx)
    assert_array_equal(dx[3], [0.25, -0.25])


@pytest.mark.parametrize("path", ["labels", "one-hot targets"])
def test_cross_entropy_of_confident_answers(dtype, path):
    """Logits (1e4, 0, -1e4): softmax is exactly (1, 0, 0), so classes 1 and 2 have
    probability exactly 0, yet their losses are the finite 1e4 and 2e4 of the closed form
    -log softmax(z)_k = logsumexp(z) - z_k."""
    z = np.array([[1e4, 0.0, -1e4]], dtype=dtype)
    loss = fn.SoftmaxCrossEntropy()
    for label, expected in [(0, 0.0), (1, 1e4), (2, 2e4)]:
        target = np.array([label]) if path == "labels" else np.eye(3, dtype=dtype)[[label]]
        with strict():
            value = loss.forward(z, target)
            dz = loss.backward()
        assert math.isfinite(value) and finite(dz)
        assert value == pytest.approx(expected, rel=1e-12, abs=1e-12)
        assert_array_equal(dz, np.array([[1, 0, 0]]) - np.eye(3)[[label]])
    # The same for the negated logits: the confident answer is now class 2.
    with strict():
        value = loss.forward(-z, np.array([0]) if path == "labels" else np.eye(3, dtype=dtype)[[0]])
    assert value == pytest.approx(2e4, rel=1e-12)


def test_cross_entropy_with_zero_probabilities_and_zero_targets(dtype):
    """Soft targets whose zeros meet probabilities that are exactly 0: 0 * log 0 counts as 0,
    never as NaN; a batch mixes rows of every kind and the mean is over the batch."""
    z = np.array([[1e4, 0.0, -1e4], [1e4, 0.0, -1e4], [-1e4, -1e4, 1e4]], dtype=dtype)
    t = np.array([[1, 0, 0], [0, 0.5, 0.5], [0.25, 0, 0.75]], dtype=dtype)
    # Rows: 0; 0.5 * 1e4 + 0.5 * 2e4; 0.25 * 2e4 + 0.75 * 0.
    expected = (0 + 1.5e4 + 0.5e4) / 3
    loss = fn.SoftmaxCrossEntropy()
    with strict():
        value = loss.forward(z, t)
        dz = loss.backward()
    assert value == pytest.approx(expected, rel=1e-12)
    p = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]])
    assert_allclose(dz, (p - t) / 3, **TIGHT[dtype])
    # Through evaluate, with a model that produces such logits.
    model = fn.Linear(1, 3, init=0.0, dtype=dtype)
    model.weight.data[...] = [[1e4, 0.0, -1e4]]
    x = np.ones((3, 1), dtype=dtype)
    with strict():
        figures = fn.evaluate(model, x, np.array([0, 1, 2]))
    assert figures["loss"] == pytest.approx(1e4, rel=1e-12)  # (0 + 1e4 + 2e4) / 3
    assert figures["accuracy"] == pytest.approx(1 / 3)


def test_mse_of_probabilities_that_are_zero(dtype):
    probs = fn.Softmax(dtype=dtype)
    mse = fn.MSELoss()
    with strict():
        y = probs.forward(np.array([[1e4, -1e4], [-1e4, 1e4]], dtype=dtype))
        value = mse.forward(y, np.array([[0, 1], [0, 1]], dtype=dtype))
        dy = mse.backward()
        dx = probs.backward(dy)
    assert value == pytest.approx(0.5)  # row 0 misses by 1 twice, row 1 is exact
    assert_array_equal(dy, [[0.5, -0.5], [0, 0]])
    assert finite(dx)
    assert_array_equal(dx, np.zeros((2, 2)))  # softmax is saturated: no gradient flows


# -- elementwise activations -----------------------------------------------------------------
def _layer_and_fused(name, dtype):
    """The activation as a layer, and fused into a Linear(1, 1) layer with weight 1."""
    layer = {"sigmoid": fn.Sigmoid, "elu": fn.ELU, "tanh": fn.Tanh}[name](dtype=dtype)
    fused = fn.Linear(1, 1, init=0.0, activation=name, dtype=dtype)
    fused.weight.data[...] = 1.0
    return layer, fused


def _run_both(name, x, dtype):
    layer, fused = _layer_and_fused(name, dtype)
    x = np.asarray(x, dtype=dtype)
    with strict():
        y = layer.forward(x).copy()
        dx = layer.backward(np.ones_like(x)).copy()
        yf = fused.forward(x.reshape(-1, 1)).ravel().copy()
        dxf = fused.backward(np.ones((x.size, 1), dtype=dtype)).ravel().copy()
    assert finite(y, dx, yf, dxf, fused.weight.grad, fused.bias.grad)
    assert_array_equal(yf, y)
    assert_array_equal(dxf, dx)
    return y, dx


def test_sigmoid_of_huge_values(dtype):
    x = [-1e4, -1000, 1000, 1e4, 0, -50, 50]
    y, dx = _run_both("sigmoid", x, dtype)
    # sigmoid(-1000) = exp(-1000) underflows to 0; sigmoid(-50) = 1.9e-22 stays a normal number.
    # Closed form in Python floats: exp(v) / (1 + exp(v)) for v < 0 (math.exp(-1e4) == 0.0).
    expected = [1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v)) for v in x]
    assert_allclose(y, expected, **TIGHT[dtype])
    assert_array_equal(y[:4], [0, 0, 1, 1])
    assert y[4] == 0.5 and dx[4] == 0.25
    assert_array_equal(dx[:4], 0)  # y (1 - y) at the saturated ends


def test_elu_of_huge_negative_values(dtype):
    x = [-1e4, -1000, -50, 1000, 1e4]
    for alpha in (1.0, 2.5):
        layer = fn.ELU(alpha=alpha, dtype=dtype)
        with strict():
            y = layer.forward(np.array(x, dtype=dtype))
            dx = layer.backward(np.ones(len(x), dtype=dtype))
        assert finite(y, dx)
        # alpha * (exp(x) - 1) -> -alpha; its derivative y + alpha -> 0.
        assert_allclose(y, [-alpha, -alpha, alpha * np.expm1(-50), 1000, 1e4], **TIGHT[dtype])
        assert_array_equal(dx[:2], 0)
        assert_array_equal(dx[3:], 1)
    y, dx = _run_both("elu", x, dtype)
    assert_array_equal(y[:2], -1)


def test_tanh_of_huge_values(dtype):
    x = [-1e4, -1000, -20, 20, 1000, 1e4, 0.01]
    y, dx = _run_both("tanh", x, dtype)
    assert_allclose(y, np.tanh(np.array(x, dtype=np.float64)), **TIGHT[dtype])
    assert_array_equal(y[[0, 1, 4, 5]], [-1, -1, 1, 1])
    assert_array_equal(dx[[0, 1, 4, 5]], 0)  # 1 - y**2
    assert np.all((dx >= 0) & (dx <= 1))


# -- batch norm of a constant feature -------------------------------------------------------
@pytest.mark.parametrize("value", [0.0, 3.0, 1e4])
def test_batchnorm_of_a_constant_feature(dtype, value):
    """Feature 0 is constant over the batch (variance exactly 0): training mode normalises it
    to 0, so the output is the shift; the gradients follow the closed forms with
    inv_std = 1 / sqrt(eps). Eval mode and its backward stay finite even with a running
    variance of exactly 0."""
    n, eps = 6, 1e-5
    rng = np.random.default_rng(0)
    x = np.empty((n, 2), dtype=dtype)
    x[:, 0] = value
    x[:, 1] = rng.standard_normal(n)
    bn = fn.BatchNorm(2, eps=eps, dtype=dtype)
    bn.weight.data[...] = [2.0, 1.0]
    bn.bias.data[...] = [0.5, 0.0]
    dout = rng.standard_normal((n, 2)).astype(dtype)
    with strict():
        out = bn.forward(x).copy()
        dx = bn.backward(dout).copy()
    assert finite(out, dx, bn.weight.grad, bn.bias.grad, bn.running_mean, bn.running_var)
    assert_array_equal(out[:, 0], 0.5)
    # dx = gamma * inv_std * (dout - mean(dout) - xhat * mean(dout * xhat)), xhat = 0.
    inv_std = 1 / np.sqrt(eps)
    expected = 2.0 * inv_std * (dout[:, 0] - dout[:, 0].astype(np.float64).mean())
    assert_allclose(dx[:, 0], expected, rtol=1e-4 if dtype == np.float32 else 1e-10, atol=1e-3)
    assert bn.weight.grad[0] == 0  # sum(dout * xhat)
    assert bn.bias.grad[0] == pytest.approx(dout[:, 0].astype(np.float64).sum(), rel=1e-5)
    assert bn.running_mean[0] == pytest.approx(0.1 * value, rel=1e-6)
    assert bn.running_var[0] == pytest.approx(0.9, rel=1e-6)  # 0.9 * 1 + 0.1 * 0

    bn.eval()
    bn.running_var[0] = 0.0  # a feature that was constant in every batch seen
    bn.running_mean[0] = value
    with strict():
        out = bn.forward(x).copy()
        dx = bn.backward(dout).copy()
    assert finite(out, dx, bn.weight.grad, bn.bias.grad)
    assert_allclose(out[:, 0], 0.5, **TIGHT[dtype])
    assert_allclose(dx[:, 0], dout[:, 0] * 2.0 / np.sqrt(eps), rtol=1e-5)


def test_batchnorm_constant_feature_in_a_model_trains(dtype):
    """A whole input column constant: fit runs with finite weights and losses."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 4)).astype(dtype)
    x[:, 2] = 7.0
    y = (x[:, 0] > 0).astype(np.int64)
    model = fn.Sequential(fn.BatchNorm(4, dtype=dtype), fn.MLP([4, 8, 2], seed=0, dtype=dtype))
    with strict():
        history = fn.fit(model, x, y, epochs=3, batch_size=16, seed=0, verbose=0)
    assert all(math.isfinite(v) for v in history["loss"])
    assert all(finite(v) for v in model.state_dict().values())


# -- divergence during training --------------------------------------------------------------
def blobs(rng, n=64, d=6, classes=3, dtype=np.float32):
    centers = rng.normal(0, 3, (classes, d))
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.normal(0, 1, (n, d))).astype(dtype), y


def _weights(model):
    return {k: v.copy() for k, v in model.state_dict().items()}


def test_a_diverging_learning_rate_stops_fit_and_keeps_the_last_finite_weights(dtype):
    """SGD with lr 1e6: fit raises TrainingDivergedError naming epoch and step, even with
    warnings as errors and np.errstate(all="raise"), and the model holds the weights it had
    before the failing step: those of a run stopped just before it. One step per epoch and
    no shuffling, so "before step 1 of epoch e" is "after epoch e - 1"."""
    x, y = blobs(np.random.default_rng(0), dtype=dtype)

    def run(epochs):
        model = fn.MLP([6, 16, 3], seed=0, dtype=dtype)
        opt = optim.SGD(model.parameters(), lr=1e6)
        fit = dict(optimizer=opt, batch_size=64, shuffle=False, seed=0, verbose=0)
        return model, lambda: fn.fit(model, x, y, epochs=epochs, **fit)

    model, train = run(50)
    with strict(), pytest.raises(fn.TrainingDivergedError) as info:
        train()
    err = info.value
    assert err.step == 1 and err.epoch >= 2
    assert f"in epoch {err.epoch}, step 1" in str(err)
    assert err.history.epochs == err.epoch - 1
    assert all(finite(v) for v in model.state_dict().values())
    reference, train_reference = run(err.epoch - 1)
    train_reference()
    for name, value in reference.state_dict().items():
        assert_array_equal(model.state_dict()[name], value, err_msg=name)


def test_divergence_in_the_middle_of_an_epoch_names_that_step():
    x, y = blobs(np.random.default_rng(0))
    model = fn.MLP([6, 16, 3], seed=0)
    opt = optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(fn.TrainingDivergedError) as info:
        fn.fit(model, x, y, optimizer=opt, epochs=20, batch_size=16, seed=0, verbose=0)
    assert 1 <= info.value.step <= 4
    assert f"epoch {info.value.epoch}, step {info.value.step}" in str(info.value)
    assert all(finite(v) for v in model.state_dict().values())


def test_an_infinite_gradient_with_a_finite_loss_stops_before_the_update():
    """MSE of a float32 output near 1e19: the loss (1e38, accumulated in float64) is finite,
    but dW = x * 2 (y - t) = 2e40 overflows float32. The update must not happen."""
    model = fn.Linear(1, 1, init=0.0)
    model.weight.data[...] = 1e-2
    before = _weights(model)
    x = np.array([[1e21]], dtype=np.float32)
    with strict(), pytest.raises(fn.TrainingDivergedError, match="gradient") as info:
        fn.fit(model, x, np.zeros((1, 1)), loss="mse", optimizer="sgd", epochs=3, batch_size=1)
    err = info.value
    assert (err.what, err.epoch, err.step) == ("gradient", 1, 1)
    assert "epoch 1, step 1" in str(err) and "loss was finite" in str(err)
    for name, value in before.items():
        assert_array_equal(model.state_dict()[name], value)


def test_an_update_that_overflows_the_weights_is_undone():
    """A finite gradient (2) times lr 3e38 overflows float32: the weights go back to those
    before the step, and the error says the weights failed."""
    model = fn.Linear(1, 1, init=0.0)
    model.weight.data[...] = 1.0
    before = _weights(model)
    opt = optim.SGD(model.parameters(), lr=3e38)
    with pytest.raises(fn.TrainingDivergedError, match="weights became") as info:
        fn.fit(model, np.ones((1, 1)), np.zeros((1, 1)), "mse", opt, batch_size=1, verbose=0)
    assert (info.value.what, info.value.epoch, info.value.step) == ("weights", 1, 1)
    assert "restored" in str(info.value)
    for name, value in before.items():
        assert_array_equal(model.state_dict()[name], value)


def test_weights_overflowed_by_an_update_go_back_to_the_start_of_the_epoch():
    """Three rows, one step each, lr 1e38: step 1 (x = 1e-30) moves only the bias; step 2
    (x = 1) has a finite gradient but overflows the weight, which fit does not check per step
    (that would cost a pass over the weights every step); step 3's loss is then infinite, so
    training stops there, and the weights, no longer finite, go back to the epoch's start."""
    x = np.array([[1e-30], [1.0], [1.0]], dtype=np.float32)
    t = np.zeros((3, 1), dtype=np.float32)
    model = fn.Linear(1, 1, init=0.0)
    model.weight.data[...] = 1.0
    before = _weights(model)
    opt = optim.SGD(model.parameters(), lr=1e38)
    fit = dict(loss="mse", optimizer=opt, epochs=1, batch_size=1, shuffle=False, verbose=0)
    with pytest.raises(fn.TrainingDivergedError) as info:
        fn.fit(model, x, t, **fit)
    assert (info.value.what, info.value.epoch, info.value.step) == ("loss", 1, 3)
    assert "restored to those at the start of epoch 1" in str(info.value)
    for name, value in before.items():
        assert_array_equal(model.state_dict()[name], value, err_msg=name)


def test_batchnorm_running_statistics_are_restored_with_the_weights():
    x, y = blobs(np.random.default_rng(0))
    x *= 1e3
    model = fn.MLP([6, 16, 3], batchnorm=True, seed=0)
    opt = optim.SGD(model.parameters(), lr=1e30)
    with pytest.raises(fn.TrainingDivergedError):
        fn.fit(model, x, y, optimizer=opt, epochs=20, batch_size=16, seed=0, verbose=0)
    for name, value in model.state_dict().items():
        assert finite(value), name


# -- gradient clipping -----------------------------------------------------------------------
def _params(rng, dtype=np.float32, scale=10.0):
    shapes = [(5, 4), (4,), (4, 3), (3,)]
    params = [Parameter(rng.standard_normal(s).astype(dtype), decay=len(s) == 2) for s in shapes]
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape) * scale
    return params


def _numpy_clip(grads, max_norm):
    norm = np.sqrt(sum(np.sum(np.asarray(g, dtype=np.float64) ** 2) for g in grads))
    scale = max_norm / (norm + 1e-6) if norm > max_norm else 1.0
    return norm, [g * scale for g in grads]


@pytest.mark.parametrize("form", ["optimizer", "parameters", "generator"])
@pytest.mark.parametrize("max_norm", [0.5, 1e9])
def test_clip_grad_norm_matches_the_numpy_formula(dtype, form, max_norm):
    params = _params(np.random.default_rng(3), dtype)
    grads = [p.grad.copy() for p in params]
    norm_ref, clipped_ref = _numpy_clip(grads, max_norm)
    if form == "optimizer":
        target = optim.SGD(params, lr=0.1)
    elif form == "parameters":
        target = params
    else:
        target = (p for p in params)
    norm = optim.clip_grad_norm(target, max_norm)
    assert isinstance(norm, float)
    assert norm == pytest.approx(norm_ref, rel=1e-6 if dtype == np.float32 else 1e-13)
    for p, g in zip(params, clipped_ref, strict=True):
        assert p.grad.dtype == dtype
        assert_allclose(p.grad, g, **TIGHT[dtype])
    if max_norm > norm_ref:
        for p, g in zip(params, grads, strict=True):
            assert_array_equal(p.grad, g)
    else:
        total = math.sqrt(sum(float(np.sum(p.grad.astype(np.float64) ** 2)) for p in params))
        assert total == pytest.approx(max_norm, rel=1e-5)


def test_clip_grad_norm_matches_torch(dtype):
    torch = pytest.importorskip("torch")
    params = _params(np.random.default_rng(4), dtype)
    tparams = []
    for p in params:
        t = torch.tensor(p.data.copy(), requires_grad=True)
        t.grad = torch.tensor(p.grad.copy())
        tparams.append(t)
    for max_norm in (3.0, 1e6):
        norm = optim.clip_grad_norm(params, max_norm)
        tnorm = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
        assert norm == pytest.approx(float(tnorm), rel=1e-6 if dtype == np.float32 else 1e-13)
        for p, t in zip(params, tparams, strict=True):
            assert_allclose(p.grad, t.grad.numpy(), **TIGHT[dtype])


def test_clip_grad_norm_edge_cases():
    p = Parameter(np.zeros(3, dtype=np.float32))
    assert optim.clip_grad_norm(p, 1.0) == 0.0  # a zero gradient stays zero
    assert optim.clip_grad_norm([], 1.0) == 0.0
    # Squares that overflow float32 although the values do not: the norm is still right.
    p.grad[...] = [3e20, 4e20, 0]
    norm = optim.clip_grad_norm(p, 1.0)
    assert norm == pytest.approx(5e20, rel=1e-6)
    assert_allclose(p.grad, [0.6, 0.8, 0], rtol=1e-6)
    # A non-finite gradient: its norm is reported and the gradient left alone.
    for bad, expected in ((np.inf, math.inf), (np.nan, math.nan)):
        p.grad[...] = [1.0, bad, 2.0]
        norm = optim.clip_grad_norm(p, 1.0)
        assert (math.isnan(norm) and math.isnan(expected)) or norm == expected
        assert p.grad[0] == 1.0 and p.grad[2] == 2.0


@pytest.mark.parametrize(
    ("max_norm", "exc", "match"),
    [
        (0, ValueError, "invalid max_norm: 0; expected a finite number > 0"),
        (-1.0, ValueError, "invalid max_norm"),
        (math.inf, ValueError, "invalid max_norm"),
        (math.nan, ValueError, "invalid max_norm"),
        ("1", TypeError, "max_norm must be a real number"),
        (True, TypeError, "max_norm must be a real number"),
        (None, TypeError, "max_norm must be a real number"),
    ],
)
def test_clip_grad_norm_rejects_bad_max_norm(max_norm, exc, match):
    params = _params(np.random.default_rng(0))
    grads = [p.grad.copy() for p in params]
    with pytest.raises(exc, match=match):
        optim.clip_grad_norm(params, max_norm)
    for p, g in zip(params, grads, strict=True):
        assert_array_equal(p.grad, g)


def test_clip_grad_norm_rejects_other_things():
    with pytest.raises(TypeError, match=r"params\[1\] is ndarray"):
        optim.clip_grad_norm([Parameter(np.zeros(2)), np.zeros(2)], 1.0)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam", "adamw", "rmsprop", "adagrad"])
def test_optimizer_clip_norm_is_clip_then_step(name):
    """opt(clip_norm=c).step() == clip_grad_norm(c) then a step of the same optimizer
    without clipping, step after step (the state buffers see the clipped gradient)."""
    rng = np.random.default_rng(5)
    a, b = _params(rng), _params(rng)
    for p, q in zip(a, b, strict=True):
        q.data[...] = p.data
    clipped = optim.get(name, a, lr=0.01, clip_norm=0.7)
    plain = optim.get(name, b, lr=0.01)
    for _ in range(3):
        grads = [rng.standard_normal(p.shape).astype(np.float32) * 5 for p in a]
        for p, q, g in zip(a, b, grads, strict=True):
            p.grad[...] = g
            q.grad[...] = g
        clipped.step()
        optim.clip_grad_norm(plain, 0.7)
        plain.step()
        for p, q in zip(a, b, strict=True):
            assert_array_equal(p.data, q.data)


def test_optimizer_clip_norm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    params = _params(rng)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt = optim.Adam(params, lr=0.05, clip_norm=1.5)
    topt = torch.optim.Adam(tparams, lr=0.05)
    for _ in range(4):
        for p, t in zip(params, tparams, strict=True):
            g = rng.standard_normal(p.shape).astype(np.float32) * 4
            p.grad[...] = g
            t.grad = torch.tensor(g)
        opt.step()
        torch.nn.utils.clip_grad_norm_(tparams, 1.5)
        topt.step()
    for p, t in zip(params, tparams, strict=True):
        assert_allclose(p.data, t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_clip_norm_setting_is_checked_saved_and_loaded():
    params = _params(np.random.default_rng(0))
    opt = optim.SGD(params, lr=0.1, clip_norm=2.0)
    assert opt.clip_norm == 2.0 and "clip_norm=2.0" in repr(opt)
    assert opt.state_dict()["clip_norm"] == 2.0
    for bad in (0, -1, math.inf, math.nan):
        with pytest.raises(ValueError, match="invalid clip_norm"):
            opt.clip_norm = bad
        with pytest.raises(ValueError, match="invalid clip_norm"):
            optim.Adam(params, clip_norm=bad)
    with pytest.raises(TypeError, match="clip_norm must be a real number"):
        opt.clip_norm = "2"
    assert opt.clip_norm == 2.0
    opt.clip_norm = None
    assert "clip_norm" not in opt.state_dict() and "clip_norm" not in repr(opt)
    # A state_dict without clip_norm (an older file) turns clipping off; one with it on.
    other = optim.SGD(params, lr=0.1, clip_norm=5.0)
    other.load_state_dict(opt.state_dict())
    assert other.clip_norm is None
    other.load_state_dict(dict(opt.state_dict(), clip_norm=3.0))
    assert other.clip_norm == 3.0
    with pytest.raises(ValueError, match="invalid clip_norm"):
        other.load_state_dict(dict(opt.state_dict(), clip_norm=-3.0))
    assert other.clip_norm == 3.0


def test_fit_clip_norm_tames_an_exploding_run():
    """lr 10 on unscaled blobs diverges; with clip_norm=1 the same run trains."""
    x, y = blobs(np.random.default_rng(0))

    def run(**kwargs):
        model = fn.MLP([6, 16, 3], seed=0)
        opt = optim.SGD(model.parameters(), lr=10.0)
        fit = dict(optimizer=opt, epochs=30, batch_size=16, seed=0, verbose=0)
        return model, fn.fit(model, x, y, **fit, **kwargs)

    with pytest.raises(fn.TrainingDivergedError):
        run()
    model, history = run(clip_norm=1.0)
    assert all(math.isfinite(v) for v in history["loss"])
    assert history["loss"][-1] < 0.1 and history["accuracy"][-1] == 1.0
    assert all(finite(v) for v in model.state_dict().values())


def test_fit_clip_norm_equals_the_optimizer_clip_norm_and_a_manual_loop():
    x, y = blobs(np.random.default_rng(2), n=48)
    runs = []
    for where in ("fit", "optimizer", "manual"):
        model = fn.MLP([6, 8, 3], seed=0)
        opt = optim.Momentum(
            model.parameters(), lr=0.5, clip_norm=0.3 if where == "optimizer" else None
        )
        if where == "manual":
            loss = fn.SoftmaxCrossEntropy()
            order = np.random.default_rng(np.random.SeedSequence(0).spawn(2)[1])
            for _ in range(3):
                idx_all = order.permutation(len(x))
                for lo in range(0, len(x), 16):
                    idx = idx_all[lo : lo + 16]
                    loss.forward(model.forward(x[idx]), y[idx])
                    model.backward(loss.backward())
                    optim.clip_grad_norm(opt, 0.3)
                    opt.step()
        else:
            clip = 0.3 if where == "fit" else None
            fn.fit(
                model,
                x,
                y,
                optimizer=opt,
                epochs=3,
                batch_size=16,
                seed=0,
                verbose=0,
                clip_norm=clip,
            )
        runs.append(model.state_dict())
    for name in runs[0]:
        assert_array_equal(runs[0][name], runs[1][name], err_msg=name)
        assert_allclose(runs[0][name], runs[2][name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("bad", [0, -0.5, math.inf, math.nan])
def test_fit_rejects_bad_clip_norm(bad):
    x, y = blobs(np.random.default_rng(0), n=16)
    model = fn.MLP([6, 4, 3], seed=0)
    before = _weights(model)
    with pytest.raises(ValueError, match="invalid clip_norm"):
        fn.fit(model, x, y, clip_norm=bad, verbose=0)
    with pytest.raises(TypeError, match="clip_norm must be a real number"):
        fn.fit(model, x, y, clip_norm="1", verbose=0)
    for name, value in before.items():
        assert_array_equal(model.state_dict()[name], value)


# -- optimizer hyperparameters ---------------------------------------------------------------
ALL = [
    optim.SGD,
    optim.Momentum,
    optim.Nesterov,
    optim.AdaGrad,
    optim.RMSprop,
    optim.AdaDelta,
    optim.Adam,
    optim.AdamW,
]
IDS = [c.__name__ for c in ALL]


@pytest.mark.parametrize("cls", ALL, ids=IDS)
@pytest.mark.parametrize("lr", [0, 0.0, -1e-3, math.inf, math.nan])
def test_learning_rate_must_be_positive_and_finite(cls, lr):
    with pytest.raises(ValueError, match=f"invalid learning rate: {lr}"):
        cls(_params(np.random.default_rng(0)), lr=lr)


def test_learning_rate_may_be_lowered_to_zero_later():
    """A schedule may anneal the rate to 0 (CosineLR's min_lr=0), which freezes the weights;
    negative, infinite or NaN rates are refused there too."""
    params = _params(np.random.default_rng(0))
    before = [p.data.copy() for p in params]
    opt = optim.SGD(params, lr=0.1)
    opt.lr = 0.0
    opt.step()
    for p, b in zip(params, before, strict=True):
        assert_array_equal(p.data, b)
    for bad in (-0.1, math.inf, math.nan):
        with pytest.raises(ValueError, match="invalid learning rate"):
            opt.lr = bad
    assert opt.lr == 0.0


@pytest.mark.parametrize("cls", ALL, ids=IDS)
@pytest.mark.parametrize("wd", [-1e-4, math.inf, math.nan])
def test_weight_decay_must_be_finite_and_not_negative(cls, wd):
    with pytest.raises(ValueError, match="invalid weight_decay value"):
        cls(_params(np.random.default_rng(0)), weight_decay=wd)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Momentum, optim.Nesterov, optim.RMSprop])
@pytest.mark.parametrize("momentum", [-0.1, math.inf, math.nan])
def test_momentum_must_be_finite_and_not_negative(cls, momentum):
    with pytest.raises(ValueError, match="invalid momentum value"):
        cls(_params(np.random.default_rng(0)), momentum=momentum)


@pytest.mark.parametrize(
    "cls", [optim.AdaGrad, optim.RMSprop, optim.AdaDelta, optim.Adam, optim.AdamW]
)
@pytest.mark.parametrize("eps", [0, 0.0, -1e-8, math.inf, math.nan])
def test_eps_must_be_positive_and_finite(cls, eps):
    with pytest.raises(ValueError, match="invalid epsilon value"):
        cls(_params(np.random.default_rng(0)), eps=eps)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize(
    ("betas", "match"),
    [
        ((1.0, 0.999), "invalid beta parameter at index 0: 1.0"),
        ((0.9, 1.0), "invalid beta parameter at index 1: 1.0"),
        ((-0.1, 0.999), "invalid beta parameter at index 0: -0.1"),
        ((0.9, 1.5), "invalid beta parameter at index 1: 1.5"),
        ((0.9, math.nan), "invalid beta parameter at index 1: nan"),
        ((0.9,), "betas must be a pair"),
        ((0.9, 0.99, 0.999), "betas must be a pair"),
        (0.9, "betas must be a pair"),
    ],
)
def test_betas_must_be_in_0_1(cls, betas, match):
    with pytest.raises(ValueError, match=match):
        cls(_params(np.random.default_rng(0)), betas=betas)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda ps: optim.RMSprop(ps, alpha=1.5), "invalid alpha value: 1.5; expected .* <= 1"),
        (lambda ps: optim.RMSprop(ps, alpha=-0.5), "invalid alpha value: -0.5"),
        (lambda ps: optim.AdaDelta(ps, rho=1.5), "invalid rho value: 1.5"),
        (lambda ps: optim.AdaDelta(ps, rho=-0.1), "invalid rho value: -0.1"),
        (lambda ps: optim.AdaGrad(ps, lr_decay=-1), "invalid lr_decay value: -1"),
        (lambda ps: optim.AdaGrad(ps, lr_decay=math.inf), "invalid lr_decay value: inf"),
        (
            lambda ps: optim.AdaGrad(ps, initial_accumulator_value=-1),
            "invalid initial_accumulator_value value: -1",
        ),
        (lambda ps: optim.SGD(ps, dampening=math.nan), "invalid dampening value"),
    ],
)
def test_other_hyperparameters_out_of_range(make, match):
    with pytest.raises(ValueError, match=match):
        make(_params(np.random.default_rng(0)))


def test_a_state_dict_with_bad_hyperparameters_is_refused_whole():
    params = _params(np.random.default_rng(0))
    opt = optim.Adam(params, lr=0.01)
    good = opt.state_dict()
    for key, value in [("eps", 0.0), ("lr", -1.0), ("betas", (0.9, 1.0)), ("weight_decay", -1)]:
        with pytest.raises(ValueError, match="invalid"):
            opt.load_state_dict(dict(good, **{key: value}))
    assert opt.hyperparameters() == optim.Adam(params, lr=0.01).hyperparameters()


def test_unknown_optimizer_names_list_the_valid_ones():
    params = _params(np.random.default_rng(0))
    names = "sgd, momentum, nesterov, adagrad, rmsprop, adadelta, adam, adamw"
    with pytest.raises(ValueError, match=f"unknown optimizer 'lbfgs'; expected one of {names}"):
        optim.get("lbfgs", params)
    with pytest.raises(TypeError, match="optimizer must be a string"):
        optim.get(3, params)
    x, y = blobs(np.random.default_rng(0), n=16)
    with pytest.raises(ValueError, match=f"unknown optimizer 'adamm'; expected one of {names}"):
        fn.fit(fn.MLP([6, 4, 3], seed=0), x, y, optimizer="adamm", verbose=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'betas'"):
        optim.get("sgd", params, betas=(0.9, 0.99))
