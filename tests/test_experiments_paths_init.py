"""Experiments optimizer-paths, weight-init-histograms, vanishing-gradients and tuning: each
runs in quick mode, writes its figures, and shows the pattern the course describes, checked
against closed forms, hand-written textbook updates or torch.optim where one exists."""

import math
from pathlib import Path

import numpy as np
import pytest

from fastnn.errors import InvalidTypeError, InvalidValueError
from fastnn.experiments.optimizer_paths import optimizer_paths
from fastnn.experiments.tuning import tuning
from fastnn.experiments.vanishing_gradients import vanishing_gradients
from fastnn.experiments.weight_init_histograms import weight_init_histograms

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_pngs(result, names):
    paths = [Path(p) for p in result["figures"]]
    assert sorted(p.name for p in paths) == sorted(names)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, path


# -- optimizer-paths -------------------------------------------------------------------------
START = np.array([-7.0, 2.0])


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    out = tmp_path_factory.mktemp("optimizer_paths")
    return optimizer_paths(quick=True, out=out, file=False)


def grad(p):
    return np.array([p[0] / 10.0, 2.0 * p[1]])


def textbook_path(update, steps=30):
    """Apply ``update(p, g, state)`` (in place on p) ``steps`` times from START."""
    p, state, path = START.copy(), {}, [START.copy()]
    for _ in range(steps):
        update(p, grad(p), state)
        path.append(p.copy())
    return np.array(path)


# The course's updates (common/optimizer.py), written out for one point, with the eps of
# torch.optim, which fastnn follows (the course uses 1e-7).
def sgd(lr):
    def update(p, g, state):
        p -= lr * g

    return update


def momentum(lr, m=0.9):
    def update(p, g, state):
        v = state.get("v", np.zeros(2))
        state["v"] = m * v - lr * g
        p += state["v"]

    return update


def nesterov(lr, m=0.9):
    def update(p, g, state):
        v = state.get("v", np.zeros(2))
        p += m * m * v - (1 + m) * lr * g
        state["v"] = m * v - lr * g

    return update


def adagrad(lr, eps=1e-10):
    def update(p, g, state):
        state["h"] = state.get("h", np.zeros(2)) + g * g
        p -= lr * g / (np.sqrt(state["h"]) + eps)

    return update


def rmsprop(lr, rho=0.99, eps=1e-8):
    def update(p, g, state):
        state["h"] = rho * state.get("h", np.zeros(2)) + (1 - rho) * g * g
        p -= lr * g / (np.sqrt(state["h"]) + eps)

    return update


def adadelta(lr=1.0, rho=0.9, eps=1e-6):  # Zeiler (2012), Algorithm 1
    def update(p, g, state):
        v = rho * state.get("v", np.zeros(2)) + (1 - rho) * g * g
        d = np.sqrt(state.get("u", np.zeros(2)) + eps) / np.sqrt(v + eps) * g
        state["v"], state["u"] = v, rho * state.get("u", np.zeros(2)) + (1 - rho) * d * d
        p -= lr * d

    return update


def adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    def update(p, g, state):
        t = state["t"] = state.get("t", 0) + 1
        m = state["m"] = beta1 * state.get("m", np.zeros(2)) + (1 - beta1) * g
        v = state["v"] = beta2 * state.get("v", np.zeros(2)) + (1 - beta2) * g * g
        lr_t = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
        p -= lr_t * m / (np.sqrt(v) + eps)

    return update


TEXTBOOK = {
    "SGD": sgd,
    "Momentum": momentum,
    "Nesterov": nesterov,
    "AdaGrad": adagrad,
    "RMSprop": rmsprop,
    "AdaDelta": adadelta,
    "Adam": adam,
}


def test_optimizer_paths_match_the_textbook_updates(paths):
    assert set(paths["paths"]) == set(TEXTBOOK)
    for name, make in TEXTBOOK.items():
        expected = textbook_path(make(paths["lr"][name]))
        # Adam's eps is scaled by sqrt(1 - beta2^t) in torch's form, not in the course's: the
        # paths differ by about 1e-6 there.
        atol = 1e-5 if name == "Adam" else 1e-9
        np.testing.assert_allclose(paths["paths"][name], expected, rtol=1e-9, atol=atol)


def test_optimizer_paths_match_torch(paths):
    torch = pytest.importorskip("torch")
    makers = {
        "SGD": lambda p, lr: torch.optim.SGD(p, lr=lr),
        "Momentum": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9),
        "Nesterov": lambda p, lr: torch.optim.SGD(p, lr=lr, momentum=0.9, nesterov=True),
        "AdaGrad": lambda p, lr: torch.optim.Adagrad(p, lr=lr),
        "RMSprop": lambda p, lr: torch.optim.RMSprop(p, lr=lr),
        "AdaDelta": lambda p, lr: torch.optim.Adadelta(p, lr=lr),
        "Adam": lambda p, lr: torch.optim.Adam(p, lr=lr),
    }
    for name, make in makers.items():
        point = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        opt = make([point], paths["lr"][name])
        path = [START.copy()]
        for _ in range(paths["steps"]):
            opt.zero_grad()
            x, y = point[0], point[1]
            (x**2 / 20 + y**2).backward()
            opt.step()
            path.append(point.detach().numpy().copy())
        np.testing.assert_allclose(paths["paths"][name], np.array(path), rtol=1e-9, atol=1e-12)


def test_optimizer_paths_pattern(paths):
    start_distance = math.hypot(*START)
    for name, distance in paths["distance"].items():
        assert distance < start_distance, name
        x, y = paths["final"][name]
        assert paths["final_f"][name] == pytest.approx(x * x / 20 + y * y)
    sgd_path = paths["paths"]["SGD"]
    # lr 0.95: each step multiplies y by 1 - 2 * 0.95 = -0.9 and x by 1 - 0.095.
    t = np.arange(sgd_path.shape[0])
    np.testing.assert_allclose(sgd_path[:, 0], -7 * 0.905**t, rtol=1e-12)
    np.testing.assert_allclose(sgd_path[:, 1], 2 * (-0.9) ** t, rtol=1e-12)
    assert np.all(np.sign(sgd_path[1:11, 1]) == -np.sign(sgd_path[:10, 1]))  # zig-zag
    # SGD's first step is the gradient: 2 * 2 / (7 / 10) = 5.7 times longer in y than in x.
    first = np.abs(sgd_path[1] - sgd_path[0])
    assert first[1] / first[0] == pytest.approx(40 / 7)
    # The adaptive methods scale each coordinate by its own gradient size: the first step is
    # as long in x as in y (lr * sign(g) for AdaGrad and Adam, 10 lr for RMSprop).
    for name, length in (("AdaGrad", 1.5), ("RMSprop", 1.5), ("Adam", 0.3)):
        step = paths["paths"][name][1] - START
        np.testing.assert_allclose(step, [length, -length], rtol=1e-5)
    # AdaGrad's steps in y are at most 1.5 * 2y / 4 = 0.75 y (its sum of g^2 is at least the
    # first 4^2), so y falls toward 0 without ever crossing it.
    ada_y = paths["paths"]["AdaGrad"][:, 1]
    assert np.all(ada_y > 0) and np.all(np.diff(ada_y) < 0)
    # ... and AdaGrad and RMSprop end nearer the minimum than SGD's zig-zag.
    assert paths["distance"]["AdaGrad"] < paths["distance"]["SGD"]
    assert paths["distance"]["RMSprop"] < paths["distance"]["SGD"]
    # Momentum rolls past the minimum along the valley; Nesterov swings less far.
    assert paths["paths"]["Momentum"][:, 0].max() > 0.5
    assert paths["paths"]["Nesterov"][:, 0].max() < paths["paths"]["Momentum"][:, 0].max()
    # AdaDelta's first steps are about sqrt(eps / (0.1 g^2)) * |g| = 0.003: it barely moves.
    assert paths["distance"]["AdaDelta"] > 0.9 * start_distance


def test_optimizer_paths_figure_and_settings(paths, tmp_path):
    assert_pngs(paths, ["optimizer_paths.png"])
    short = optimizer_paths(steps=3, start=(4.0, -1.0), lrs={"SGD": 0.1}, file=False)
    assert short["paths"]["SGD"].shape == (4, 2)
    np.testing.assert_allclose(short["final"]["SGD"], [4 * 0.99**3, -1 * 0.8**3])
    assert short["figures"] == []
    for bad, message in (
        (dict(steps=0), "invalid steps: 0; expected a positive integer"),
        (dict(start=(1.0,)), "start must be two finite numbers"),
        (dict(lrs={"Lion": 0.1}), "unknown optimizer 'Lion'; expected one of SGD, Momentum"),
        (dict(lrs={"SGD": 0}), "invalid lr of SGD: 0; expected a finite number > 0"),
    ):
        with pytest.raises(InvalidValueError, match=message):
            optimizer_paths(file=False, **bad)
    with pytest.raises(InvalidTypeError, match="lrs must be a dict of optimizer -> lr, got list"):
        optimizer_paths(file=False, lrs=[0.1])
    with pytest.raises(InvalidTypeError, match="start: expected an array of real numbers"):
        optimizer_paths(file=False, start=("a", "b"))


def test_optimizer_paths_prints_a_row_per_optimizer(capsys):
    optimizer_paths(quick=True)
    lines = capsys.readouterr().out.splitlines()
    for name in TEXTBOOK:
        assert any(line.strip().startswith(name) for line in lines), name


# -- weight-init-histograms ------------------------------------------------------------------
@pytest.fixture(scope="module")
def histograms(tmp_path_factory):
    out = tmp_path_factory.mktemp("weight_init_histograms")
    return weight_init_histograms(quick=True, out=out, file=False)


def column(stats, key):
    return np.array([layer[key] for layer in stats])


def test_sigmoid_histograms(histograms):
    stats = histograms["stats"]
    # std 1: saturated, most outputs within 0.1 of 0 or 1 in every layer.
    saturated = column(stats["sigmoid, std 1"], "below_0.1") + column(
        stats["sigmoid, std 1"], "above_0.9"
    )
    assert np.all(saturated > 0.5)
    # std 0.01: everything collapses near 0.5.
    small = stats["sigmoid, std 0.01"]
    assert np.all(column(small, "std") < 0.05)
    np.testing.assert_allclose(column(small, "mean"), 0.5, atol=0.02)
    # Xavier: spread out, neither saturated nor collapsed.
    xavier = stats["sigmoid, Xavier"]
    assert np.all(column(xavier, "std") > 3 * column(small, "std"))
    assert np.all(column(xavier, "below_0.1") + column(xavier, "above_0.9") < 0.1)
    for label in ("sigmoid, std 1", "sigmoid, std 0.01", "sigmoid, Xavier"):
        counts = histograms["histograms"][label]
        assert counts.shape == (5, 30)
        assert np.all(counts.sum(axis=1) == 1000 * 100)  # every output lies in (0, 1)
        assert histograms["ranges"][label] == (0.0, 1.0)


def test_relu_histograms(histograms):
    stats = histograms["stats"]
    small = column(stats["ReLU, std 0.01"], "std")
    # Each layer scales the activations by about 0.01 * sqrt(100 / 2) = 0.07.
    assert np.all(small[1:] < 0.2 * small[:-1])
    # Xavier (1/sqrt(n)) loses a factor sqrt(1/2) per layer; He (sqrt(2/n)) keeps the scale.
    xavier = column(stats["ReLU, Xavier"], "std")
    assert 0.1 < xavier[-1] / xavier[0] < 0.6
    he = column(stats["ReLU, He"], "std")
    assert np.all((0.5 < he / he[0]) & (he / he[0] < 2))
    for label in ("ReLU, std 0.01", "ReLU, Xavier", "ReLU, He"):
        positive = histograms["histograms"][label].sum(axis=1)
        # Roughly half of ReLU's outputs are positive; all the positive ones up to the range's
        # top (the 99th percentile of the largest layer) are counted.
        assert np.all((0.3 * 100_000 < positive) & (positive < 0.6 * 100_000))


def test_weight_init_histograms_figures_and_seed(histograms):
    assert_pngs(
        histograms,
        [
            "weight_init_sigmoid_std1.png",
            "weight_init_sigmoid_std0.01.png",
            "weight_init_sigmoid_xavier.png",
            "weight_init_relu_std0.01.png",
            "weight_init_relu_xavier.png",
            "weight_init_relu_he.png",
        ],
    )
    again = weight_init_histograms(quick=True, file=False)
    other = weight_init_histograms(quick=True, seed=1, file=False)
    for label, counts in histograms["histograms"].items():
        np.testing.assert_array_equal(again["histograms"][label], counts)
        assert not np.array_equal(other["histograms"][label], counts)
    with pytest.raises(InvalidValueError, match="invalid layers: 0; expected a positive integer"):
        weight_init_histograms(layers=0, file=False)
    with pytest.raises(InvalidTypeError, match="bins must be an integer, got float"):
        weight_init_histograms(bins=30.0, file=False)


# -- vanishing-gradients ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def gradients(tmp_path_factory):
    out = tmp_path_factory.mktemp("vanishing_gradients")
    return vanishing_gradients(quick=True, out=out, file=False)


def test_sigmoid_gradients_vanish(gradients):
    for norms in (gradients["weight_norms"], gradients["trained_weight_norms"]):
        sigmoid = norms["sigmoid, Xavier"]
        assert sigmoid.shape == (11,)  # 10 hidden layers and the output layer
        assert sigmoid[0] < sigmoid[9] / 100  # first hidden layer vs last hidden layer
    # The gradient reaching each hidden layer shrinks at every step back toward the input.
    assert np.all(np.diff(gradients["hidden_norms"]["sigmoid, Xavier"]) > 0)
    # With gradients that small, SGD leaves the sigmoid network near chance.
    accuracy = gradients["accuracy"]
    assert accuracy["sigmoid, Xavier"] < 0.2
    assert accuracy["tanh, Xavier"] > accuracy["sigmoid, Xavier"] + 0.2


def test_relu_he_and_tanh_xavier_keep_the_gradient(gradients):
    for label in ("ReLU, He", "tanh, Xavier"):
        hidden_layers = gradients["weight_norms"][label][:10]
        assert hidden_layers.max() / hidden_layers.min() < 10
        h = gradients["hidden_norms"][label]
        assert h.max() / h.min() < 3
    h = gradients["trained_weight_norms"]["ReLU, He"][:10]
    assert h.max() / h.min() < 10


def test_too_large_weights_explode_toward_the_input(gradients):
    # Backward, each ReLU layer with std-1 weights multiplies the gradient by about
    # sqrt(100 / 2) = 7 (half the units pass it); tanh's saturated slope leaves about 2.3.
    relu = gradients["hidden_norms"]["ReLU, std 1"]
    factors = relu[:-1] / relu[1:]
    assert np.all((4 < factors) & (factors < 12))
    tanh = gradients["hidden_norms"]["tanh, std 1"]
    assert np.all(tanh[:-1] > 1.5 * tanh[1:])
    tanh_w = gradients["weight_norms"]["tanh, std 1"]
    assert tanh_w[0] > 100 * tanh_w[9]
    # ReLU's activations grow forward as fast, so its weight gradients are huge everywhere.
    assert np.all(
        gradients["weight_norms"]["ReLU, std 1"] > 1e4 * gradients["weight_norms"]["ReLU, He"]
    )
    assert set(gradients["trained_weight_norms"]) == {"sigmoid, Xavier", "tanh, Xavier", "ReLU, He"}


def test_vanishing_gradients_figure_and_settings(gradients):
    assert_pngs(gradients, ["vanishing_gradients.png"])
    with pytest.raises(InvalidValueError, match="invalid depth: 0; expected a positive integer"):
        vanishing_gradients(depth=0, file=False)
    with pytest.raises(InvalidValueError, match="train_size \\+ test_size must be at most 10000"):
        vanishing_gradients(train_size=9000, test_size=2000, file=False)
    with pytest.raises(InvalidValueError, match="grad_batch 2000 is larger than train_size 1000"):
        vanishing_gradients(train_size=1000, grad_batch=2000, file=False)


# -- tuning ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    out = tmp_path_factory.mktemp("tuning")
    return tuning(quick=True, out=out, file=False)


def test_tuning_pattern(tuned):
    assert tuned["units"] == [10, 50, 100, 300]
    assert tuned["layers"] == [1, 2, 3, 4, 5]
    units_acc = np.array(tuned["units_accuracy"])
    layers_acc = np.array(tuned["layers_accuracy"])
    # Far above chance (0.1) everywhere; 50 units or more, at any depth, well above it.
    assert np.all(units_acc > 0.3)
    assert np.all(units_acc[1:] > 0.7) and np.all(layers_acc > 0.7)
    # 10 units is the narrowest bottleneck: more units do not hurt.
    assert np.all(units_acc[1:] > units_acc[0])
    # Depth changes little on this problem.
    assert layers_acc.max() - layers_acc.min() < 0.1
    # One hidden layer of 100 units is the same run in both series.
    assert layers_acc[0] == units_acc[2]


def test_tuning_parameter_counts_and_figure(tuned):
    assert tuned["units_parameters"] == [784 * n + n + 10 * n + 10 for n in (10, 50, 100, 300)]
    assert tuned["layers_parameters"] == [
        784 * 100 + 100 + (k - 1) * (100 * 100 + 100) + 100 * 10 + 10 for k in range(1, 6)
    ]
    assert_pngs(tuned, ["tuning.png"])
    with pytest.raises(InvalidValueError, match="units must be a non-empty list"):
        tuning(units=[], file=False)
    with pytest.raises(InvalidValueError, match="invalid lr: -1; expected a finite number > 0"):
        tuning(lr=-1, file=False)
    with pytest.raises(InvalidTypeError, match="layers must be a list, got int"):
        tuning(layers=3, file=False)
