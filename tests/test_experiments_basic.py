"""The first experiments of the course (gates, activations, gradient descent, preprocessing,
symmetric weights), run in quick mode: the patterns the course shows, on the returned numbers."""

import io
import math

import numpy as np
import pytest

from fastnn import numerical_gradient
from fastnn.errors import InvalidTypeError, InvalidValueError
from fastnn.experiments.activations import activations
from fastnn.experiments.gates import gates
from fastnn.experiments.gradient_descent import gradient_descent
from fastnn.experiments.preprocessing import preprocessing
from fastnn.experiments.symmetric_weights import symmetric_weights

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def check_pngs(result, tmp_path, names):
    assert sorted(p.rsplit("/", 1)[-1] for p in result["figures"]) == sorted(names)
    for name in names:
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000


# -- gates ------------------------------------------------------------------------------------


def test_gates(tmp_path):
    text = io.StringIO()
    r = gates(quick=True, out=tmp_path, file=text)
    check_pngs(r, tmp_path, ["gates.png", "xor_regions.png"])
    assert r["truth_tables"] == {
        "AND": [0, 0, 0, 1],
        "NAND": [1, 1, 1, 0],
        "OR": [0, 1, 1, 1],
        "XOR": [0, 1, 1, 0],
    }
    acc = r["accuracy"]
    assert acc["AND, perceptron rule"] == 1.0 and acc["OR, perceptron rule"] == 1.0
    # A line gets at most 3 of XOR's 4 rows; the pocket keeps the best line found.
    assert acc["XOR, one layer (perceptron rule)"] == 0.75
    assert acc["XOR, two layers (NAND, OR -> AND)"] == 1.0
    assert acc["XOR, two layers (backprop)"] == 1.0
    assert r["rule_epochs"]["XOR"] == 50  # ran every epoch: never one without a mistake
    assert r["rule_epochs"]["AND"] < 50 and r["rule_epochs"]["OR"] < 50
    printed = text.getvalue()
    assert "truth tables" in printed and "XOR, two layers (backprop)" in printed


def test_gates_without_figures_and_bad_settings():
    assert gates(quick=True, file=False)["figures"] == []
    with pytest.raises(InvalidValueError, match="invalid epochs: 0; expected a positive integer"):
        gates(quick=True, file=False, epochs=0)
    with pytest.raises(InvalidValueError, match="invalid lr: -1; expected a finite number > 0"):
        gates(quick=True, file=False, lr=-1)
    with pytest.raises(InvalidTypeError, match="epochs must be an integer, got float"):
        gates(quick=True, file=False, epochs=5.0)
    with pytest.raises(InvalidTypeError, match="xor_lr must be a real number, got str"):
        gates(quick=True, file=False, xor_lr="0.05")


# -- activations ------------------------------------------------------------------------------

FORMULAS = {  # written independently of fastnn, float64
    "step": lambda x: (x > 0).astype(np.float64),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "ReLU": lambda x: np.maximum(x, 0),
    "Leaky ReLU": lambda x: np.where(x > 0, x, 0.1 * x),
    "ELU": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
}


def test_activations(tmp_path):
    r = activations(quick=True, out=tmp_path, file=io.StringIO())
    check_pngs(r, tmp_path, ["activations.png", "activation_derivatives.png"])
    x = r["x"]
    assert x[0] == -5 and x[-1] == 5 and 0.0 in x
    assert set(r["values"]) == set(FORMULAS) == set(r["derivatives"])
    away = np.abs(x) > 1e-3  # away from the kinks at 0
    for name, formula in FORMULAS.items():
        np.testing.assert_allclose(r["values"][name], formula(x), rtol=1e-12, atol=1e-15)
        numerical = np.array(
            [numerical_gradient(lambda p, f=formula: f(p)[0], np.array([v]))[0] for v in x[away]]
        )
        np.testing.assert_allclose(r["derivatives"][name][away], numerical, atol=1e-7)
    zero = int(np.flatnonzero(x == 0)[0])
    assert r["derivatives"]["sigmoid"][zero] == pytest.approx(0.25, abs=1e-12)
    assert r["derivatives"]["tanh"][zero] == pytest.approx(1.0, abs=1e-12)
    assert r["samples"]["sigmoid"][0.0] == pytest.approx((0.5, 0.25))
    # sigmoid's derivative vanishes far from 0: the vanishing gradient
    assert r["derivatives"]["sigmoid"][0] < 0.01 and r["derivatives"]["sigmoid"][-1] < 0.01
    assert np.all(r["derivatives"]["step"] == 0)


def test_activations_settings():
    with pytest.raises(InvalidValueError, match="low < high"):
        activations(quick=True, file=False, low=1.0, high=-1.0)
    with pytest.raises(InvalidTypeError, match="alpha must be a real number, got bool"):
        activations(quick=True, file=False, alpha=True)
    r = activations(file=False, low=-1.0, high=1.0, points=5)
    np.testing.assert_array_equal(r["x"], [-1, -0.5, 0, 0.5, 1])


# -- gradient descent -------------------------------------------------------------------------


def test_gradient_descent(tmp_path):
    r = gradient_descent(quick=True, out=tmp_path, file=io.StringIO())
    check_pngs(r, tmp_path, ["gradient_descent.png"])
    start = np.array([-3.0, 4.0])
    # lr 0.1: every step multiplies x by 1 - 2 * 0.1 = 0.8
    np.testing.assert_allclose(r["final"][0.1], start * 0.8**100, rtol=1e-6)
    assert r["final_f"][0.1] < 1e-17
    # lr 10: every step multiplies x by -19: far away and f enormous
    assert np.abs(r["final"][10.0]).max() > 1e6 and r["final_f"][10.0] > 1e12
    np.testing.assert_allclose(r["paths"][10.0][1], start * -19)
    # lr 1e-10: barely moves
    np.testing.assert_allclose(r["final"][1e-10], start, atol=1e-7)
    assert r["final"][1e-10] != start.tolist()  # it did move, a little
    assert r["paths"][0.1].shape == (101, 2)


def test_gradient_descent_settings():
    with pytest.raises(
        InvalidValueError, match=r"invalid lrs\[1\]: -1.0; expected a finite number > 0"
    ):
        gradient_descent(file=False, lrs=(0.1, -1.0))
    with pytest.raises(InvalidValueError, match="start must be two finite numbers"):
        gradient_descent(file=False, start=(1.0, 2.0, 3.0))
    with pytest.raises(InvalidTypeError, match="steps must be an integer, got str"):
        gradient_descent(file=False, steps="3")
    r = gradient_descent(file=False, lrs=(0.25,), steps=3)
    np.testing.assert_allclose(r["final"][0.25], [-3 * 0.5**3, 4 * 0.5**3], rtol=1e-8)


# -- preprocessing ----------------------------------------------------------------------------


def test_preprocessing(tmp_path):
    r = preprocessing(quick=True, out=tmp_path, file=io.StringIO())
    check_pngs(r, tmp_path, ["preprocessing.png"])
    x = r["points"]["original"]
    assert x.shape == (100, 2) and x.dtype == np.float32
    # drawn from N(3, 2.5^2): 100 samples put the mean within ~4 standard errors (0.25 each)
    assert np.all(np.abs(x.mean(axis=0) - 3) < 1.0) and np.all(np.abs(x.std(axis=0) - 2.5) < 0.7)
    z = r["points"]["standardised"].astype(np.float64)
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(z.std(axis=0), 1, rtol=1e-5)
    n = r["points"]["L2-normalised"].astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, rtol=1e-6)
    # the direction of each point is kept
    np.testing.assert_allclose(n * np.linalg.norm(x, axis=1, keepdims=True), x, rtol=1e-5)
    s = r["stats"]
    np.testing.assert_allclose(s["standardised"]["mean"], 0, atol=1e-6)
    np.testing.assert_allclose(s["standardised"]["std"], 1, rtol=1e-5)
    assert s["L2-normalised"]["norm_min"] == pytest.approx(1, rel=1e-6)
    assert s["L2-normalised"]["norm_max"] == pytest.approx(1, rel=1e-6)


def test_preprocessing_seed():
    a = preprocessing(file=False, seed=3)["points"]["original"]
    b = preprocessing(file=False, seed=3)["points"]["original"]
    c = preprocessing(file=False, seed=4)["points"]["original"]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    with pytest.raises(InvalidValueError, match="invalid std: 0.0; expected a finite number > 0"):
        preprocessing(file=False, std=0.0)
    with pytest.raises(InvalidTypeError, match="n must be an integer, got float"):
        preprocessing(file=False, n=100.0)


# -- symmetric weights ------------------------------------------------------------------------


def test_symmetric_weights(tmp_path):
    r = symmetric_weights(quick=True, out=tmp_path, file=io.StringIO())
    check_pngs(r, tmp_path, ["symmetric_weights_units.png", "symmetric_weights_loss.png"])
    equal, random = r["equal"], r["random"]
    # equal initial weights: every hidden unit still the same after training ...
    assert equal["relative_spread"] <= 1e-12
    assert equal["distinct_units"] == 1
    # ... although training did change the weights, by far more than the spread
    assert equal["moved"] > 1e-6 and equal["moved"] > 1e6 * equal["spread"]
    # random initial weights: the units differ
    assert random["relative_spread"] > 0.1
    assert random["distinct_units"] == 50
    # one effective hidden unit learns less than fifty
    assert random["test_accuracy"] > equal["test_accuracy"]
    assert all(math.isfinite(v) for v in equal["loss"] + random["loss"])


def test_symmetric_weights_settings():
    with pytest.raises(InvalidValueError, match="value must be a nonzero number"):
        symmetric_weights(quick=True, file=False, value=0)
    with pytest.raises(InvalidValueError, match="invalid hidden: 1; expected an integer >= 2"):
        symmetric_weights(quick=True, file=False, hidden=1)
    with pytest.raises(InvalidTypeError, match="value must be a real number, got str"):
        symmetric_weights(quick=True, file=False, value="0.01")
