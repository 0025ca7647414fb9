"""The hyperparameter-search and activation-table experiments, in quick mode: the patterns the
course shows (learning rate matters, the test set stays out of the search; sigmoid does not
train in a deep network while the ReLU family and Maxout do), on the returned numbers."""

import importlib
import io
import math

import numpy as np
import pytest

import fastnn as fn
from fastnn.errors import InvalidTypeError, InvalidValueError
from fastnn.experiments import _common
from fastnn.experiments.activation_table import activation_table, deep_mlp
from fastnn.experiments.hyperparameter_search import hyperparameter_search, train_fn

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_png(result, tmp_path, name):
    assert [p.rsplit("/", 1)[-1] for p in result["figures"]] == [name]
    data = (tmp_path / name).read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000


def all_trials(result):
    return [t for r in result["rounds"] for t in r["trials"]]


# -- hyperparameter search --------------------------------------------------------------------


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search")
    text = io.StringIO()
    return hyperparameter_search(quick=True, seed=0, out=out, file=text), out, text.getvalue()


def test_search_figure_and_table(search):
    result, out, printed = search
    check_png(result, out, "hyperparameter_search.png")
    assert "rank" in printed and "weight decay" in printed and "val accuracy" in printed
    assert "test accuracy" in printed and "retrained on training + validation" in printed


def test_search_rounds_and_ranges(search):
    result, _, _ = search
    first, second = result["rounds"]
    assert first["lr_range"] == (-6.0, -2.0) and first["wd_range"] == (-8.0, -4.0)
    assert len(first["trials"]) == 16 and len(second["trials"]) == 6
    for r in result["rounds"]:
        for t in r["trials"]:
            assert r["lr_range"][0] <= math.log10(t["lr"]) <= r["lr_range"][1]
            assert r["wd_range"][0] <= math.log10(t["weight_decay"]) <= r["wd_range"][1]
    # Round 2's ranges lie inside round 1's and span round 1's five best trials (by validation
    # accuracy, ties in trial order, as fastnn.tune's SearchResult.ranked orders them).
    for key, bounds in (("lr", "lr_range"), ("weight_decay", "wd_range")):
        low, high = second[bounds]
        assert first[bounds][0] <= low < high <= first[bounds][1]
        assert high - low < first[bounds][1] - first[bounds][0]
        best5 = sorted(first["trials"], key=lambda t: -t["val_accuracy"])[:5]  # stable
        for t in best5:
            assert low - 1e-9 <= math.log10(t[key]) <= high + 1e-9
    # The best is the top validation accuracy over both rounds.
    best = result["best"]
    assert best["val_accuracy"] == max(t["val_accuracy"] for t in all_trials(result))
    assert best["round"] in (1, 2)


def test_search_learning_rate_pattern(search):
    result, _, _ = search
    trials = all_trials(result)
    # A few epochs of SGD at lr < 1e-4 move the weights by almost nothing: near chance
    # (10% of the 100 validation images), while the best trial learned.
    slow = [t["val_accuracy"] for t in trials if t["lr"] < 1e-4]
    assert slow and max(slow) < 0.25
    assert result["best"]["val_accuracy"] > 0.4
    # The best learning rates lie in the upper half of 10^[-6, -2].
    assert result["best"]["lr"] > 1e-4
    best5 = sorted(trials, key=lambda t: -t["val_accuracy"])[:5]
    assert np.median([math.log10(t["lr"]) for t in best5]) > -3
    assert 0.3 < result["test_accuracy"] <= 1.0


def test_train_fn_learning_rates():
    # Independent of which rates the search happened to draw: same data, same seeds.
    x, y, _, _ = _common.mnist(500, 1, 0)
    train, validation = (x[:400], y[:400]), (x[400:], y[400:])
    settings = dict(hidden=(100,) * 6, epochs=5, batch_size=10)
    scores = {
        lr: train_fn({"lr": lr, "weight_decay": 1e-6}, (train, validation, settings), 1)
        for lr in (1e-6, 1e-2)
    }
    assert set(scores[1e-6]) == {"score", "val_loss"}
    assert scores[1e-6]["score"] < 0.25
    assert abs(scores[1e-6]["val_loss"] - math.log(10)) < 0.3
    assert scores[1e-2]["score"] > 0.4


def test_search_does_not_see_the_test_set(search, monkeypatch):
    result, _, _ = search
    assert result["sizes"] == {"train": 400, "validation": 100, "test": 2000}
    real_mnist = _common.mnist

    def noisy_test_set(train_size, test_size, seed):
        x_train, y_train, x_test, y_test = real_mnist(train_size, test_size, seed)
        rng = np.random.default_rng(123)
        noise = rng.random(x_test.shape, dtype=np.float32)
        return x_train, y_train, noise, rng.integers(0, 10, len(y_test))

    monkeypatch.setattr(_common, "mnist", noisy_test_set)
    noisy = hyperparameter_search(quick=True, seed=0, file=False)
    # Same seed: the same trials, whatever the test images are; only the final test changes.
    assert noisy["rounds"] == result["rounds"]
    assert noisy["best"] == result["best"]
    assert noisy["test_accuracy"] < 0.2 < result["test_accuracy"]


def test_search_seeds():
    small = dict(train_size=100, test_size=50, hidden=(20,), epochs=1, batch_size=20)
    small.update(file=False, trials=(3, 2), top=2)
    a = hyperparameter_search(seed=3, **small)
    b = hyperparameter_search(seed=3, **small)
    c = hyperparameter_search(seed=4, **small)
    assert a["rounds"] == b["rounds"] and a["test_accuracy"] == b["test_accuracy"]
    assert a["rounds"][0]["trials"] != c["rounds"][0]["trials"]
    assert a["figures"] == []


def test_search_keeps_failed_trials_out_of_the_ranking(monkeypatch):
    module = importlib.import_module("fastnn.experiments.hyperparameter_search")
    real_train_fn = module.train_fn

    def diverging_above_1e_3(params, data, seed):
        if params["lr"] > 1e-3:
            raise FloatingPointError("diverged")
        return real_train_fn(params, data, seed)

    monkeypatch.setattr(module, "train_fn", diverging_above_1e_3)
    small = dict(train_size=100, test_size=50, hidden=(20,), epochs=1, batch_size=20)
    result = hyperparameter_search(seed=1, file=False, trials=(8, 3), top=2, **small)
    trials = all_trials(result)
    failed = [t for t in trials if t["lr"] > 1e-3]
    assert failed and len(trials) == 11
    assert all(math.isnan(t["val_accuracy"]) and math.isnan(t["val_loss"]) for t in failed)
    assert result["best"]["lr"] <= 1e-3 and not math.isnan(result["best"]["val_accuracy"])


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(trials=(1,)), "trials must be two integers"),
        (dict(top=1), "invalid top: 1; expected an integer >= 2 and <= 40"),
        (dict(validation=1.5), "invalid validation: 1.5; expected a finite number > 0 and < 1"),
        (dict(epochs=0), "invalid epochs: 0; expected a positive integer"),
        (dict(lr_range=(-2, -6)), "lr_range must be two exponents"),
        (dict(train_size=9000, test_size=2000), "at most 10000"),
        (dict(hidden=()), "hidden must be a non-empty list"),
    ],
)
def test_search_bad_settings(options, message):
    with pytest.raises(InvalidValueError, match=message):
        hyperparameter_search(file=False, **options)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(trials=5), "trials must be a list, got int"),
        (dict(top=2.0), "top must be an integer, got float"),
        (dict(validation="0.2"), "validation must be a real number, got str"),
        (dict(epochs=True), "epochs must be an integer, got bool"),
        (dict(lr_range=(-6, "-2")), r"lr_range\[1\] must be a real number, got str"),
        (dict(hidden=(100, 1.5)), r"hidden\[1\] must be an integer, got float"),
    ],
)
def test_search_settings_of_the_wrong_type(options, message):
    with pytest.raises(InvalidTypeError, match=message):
        hyperparameter_search(file=False, **options)


# -- activation table -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("table")
    text = io.StringIO()
    return activation_table(quick=True, seed=0, out=out, file=text), out, text.getvalue()


def cell(result, key, init, activation):
    return result[key][result["inits"].index(init)][result["activations"].index(activation)]


def test_table_layout(grid):
    result, out, printed = grid
    check_png(result, out, "activation_table.png")
    assert result["inits"] == ["LSUV", "orthogonal", "Xavier", "He"]
    assert result["activations"] == ["Maxout", "ReLU", "VLReLU", "tanh", "sigmoid"]
    assert np.shape(result["accuracy"]) == np.shape(result["converged"]) == (4, 5)
    lines = printed.splitlines()
    header = lines[1].split()
    assert header == ["init", "Maxout", "ReLU", "VLReLU", "tanh", "sigmoid"]
    assert [line.split()[0] for line in lines[3:7]] == result["inits"]
    assert "n/c (not converged)" in printed and "ln 10" in printed
    assert result["threshold"] == pytest.approx(0.9 * math.log(10))


def test_table_sigmoid_fails_relu_family_trains(grid):
    result, _, _ = grid
    for init in result["inits"]:
        # Sigmoid's derivative is at most 1/4: through 6 layers the gradient vanishes and
        # the loss stays at ln 10, whatever the initial weights.
        assert not cell(result, "converged", init, "sigmoid")
        assert cell(result, "accuracy", init, "sigmoid") is None
    for init in ("LSUV", "orthogonal", "He"):
        for activation in ("ReLU", "VLReLU"):
            assert cell(result, "converged", init, activation), (init, activation)
    for init in ("LSUV", "orthogonal"):
        assert cell(result, "converged", init, "Maxout"), init
    # LSUV trains every activation but sigmoid, as in the paper's row.
    for activation in ("Maxout", "ReLU", "VLReLU", "tanh"):
        assert cell(result, "accuracy", "LSUV", activation) > 0.7
    # A cell holds an accuracy exactly when it converged; those are far above chance.
    for acc_row, ok_row in zip(result["accuracy"], result["converged"], strict=True):
        for acc, ok in zip(acc_row, ok_row, strict=True):
            assert (acc is not None) == ok
            assert acc is None or acc > 0.5


def test_he_maxout_blows_up_with_depth():
    # Why He + Maxout is n/c in the paper (and in the default 10-layer run): He's gain
    # sqrt(2) makes up for ReLU zeroing half its inputs, but the max of two zero-mean
    # pieces keeps the second moment, so it doubles at every layer; LSUV holds it at 1.
    x, _, _, _ = _common.mnist(300, 1, 0)
    seq = np.random.SeedSequence(0)
    moments = {}
    for init in ("He", "LSUV"):
        model = deep_mlp("Maxout", init, 10, 100, seq)
        if init == "LSUV":
            fn.init.lsuv_(model, x, rng=0)
        moments[init] = float(np.mean(np.square(model.forward(x))))
    assert moments["He"] > 50
    assert 0.3 < moments["LSUV"] < 3


def test_table_seeds():
    small = dict(depth=3, width=20, train_size=200, test_size=100, epochs=1, batch_size=50)
    small.update(file=False, lsuv_batch=100)
    a = activation_table(seed=1, **small)
    b = activation_table(seed=1, **small)
    c = activation_table(seed=2, **small)
    np.testing.assert_array_equal(a["final_loss"], b["final_loss"])
    assert a["accuracy"] == b["accuracy"]
    assert not np.array_equal(a["final_loss"], c["final_loss"])
    assert a["figures"] == []


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(depth=0), "invalid depth: 0; expected a positive integer"),
        (dict(lr=0), "invalid lr: 0; expected a finite number > 0"),
        (dict(momentum=1.0), "invalid momentum: 1.0; expected a finite number >= 0 and < 1"),
        (dict(lsuv_batch=5000), "lsuv_batch 5000 is larger than train_size"),
        (dict(train_size=9500), "at most 10000"),
    ],
)
def test_table_bad_settings(options, message):
    with pytest.raises(InvalidValueError, match=message):
        activation_table(file=False, **options)


def test_table_settings_of_the_wrong_type():
    with pytest.raises(InvalidTypeError, match="width must be an integer, got float"):
        activation_table(file=False, width=100.0)
    with pytest.raises(InvalidTypeError, match="momentum must be a real number, got NoneType"):
        activation_table(file=False, momentum=None)
