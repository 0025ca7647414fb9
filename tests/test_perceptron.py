"""fastnn.perceptron: the course's gates, the perceptron rule, and XOR by two layers."""

import itertools

import numpy as np
import pytest

import fastnn as fn
from fastnn.perceptron import (
    AND,
    GATE_INPUTS,
    NAND,
    OR,
    XOR,
    Perceptron,
    PerceptronNetwork,
    train_perceptron,
    train_xor_network,
)

TRUTH = {  # the four rows (x1, x2) = (0,0), (1,0), (0,1), (1,1)
    "AND": [0, 0, 0, 1],
    "NAND": [1, 1, 1, 0],
    "OR": [0, 1, 1, 1],
    "XOR": [0, 1, 1, 0],
}
GATES = {"AND": AND, "NAND": NAND, "OR": OR, "XOR": XOR}


def test_gates_have_the_course_weights():
    np.testing.assert_array_equal(AND.weights, [0.5, 0.5])
    assert AND.bias == -0.7
    np.testing.assert_array_equal(NAND.weights, [-0.5, -0.5])
    assert NAND.bias == 0.7
    np.testing.assert_array_equal(OR.weights, [0.5, 0.5])
    assert OR.bias == -0.2


@pytest.mark.parametrize("name", TRUTH)
def test_truth_tables_one_input_at_a_time_and_batched(name):
    gate = GATES[name]
    for x, want in zip(GATE_INPUTS, TRUTH[name], strict=True):
        y = gate(x.astype(int).tolist())
        assert y == want and isinstance(y, int)
    y = gate(GATE_INPUTS)
    assert y.dtype == np.int64 and y.shape == (4,)
    np.testing.assert_array_equal(y, TRUTH[name])


@pytest.mark.parametrize("name", TRUTH)
def test_gates_take_the_course_two_argument_form(name):
    # The course calls AND(x1, x2); both forms give the same table, one row or a batch.
    gate = GATES[name]
    for (x1, x2), want in zip(GATE_INPUTS.astype(int).tolist(), TRUTH[name], strict=True):
        y = gate(x1, x2)
        assert y == want == gate([x1, x2]) and isinstance(y, int)
    y = gate(GATE_INPUTS[:, 0], GATE_INPUTS[:, 1])
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, TRUTH[name])
    with pytest.raises(TypeError, match="2 separate inputs; got 3 arguments"):
        gate(1, 0, 1)
    with pytest.raises(ValueError, match=r"one length, got shapes \[\(2,\), \(3,\)\]"):
        gate(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="NaN or infinity"):
        gate(np.nan, 1)


def test_threshold_is_strict():
    p = Perceptron([1.0, 1.0], -1.0)
    assert p([0.5, 0.5]) == 0  # w.x + b == 0 -> 0
    assert p([0.5, 0.51]) == 1
    assert p.net([0.5, 0.5]) == 0.0
    np.testing.assert_allclose(p.net([[1, 2], [0, 0]]), [2.0, -1.0])


def test_xor_is_nand_or_and():
    for x in GATE_INPUTS:
        assert XOR(x) == AND([NAND(x), OR(x)])


def test_perceptron_validates_its_inputs():
    with pytest.raises(ValueError, match=r"shape \(n_inputs,\)"):
        Perceptron([[1, 2]], 0)
    with pytest.raises(ValueError, match=r"shape \(n_inputs,\)"):
        Perceptron([], 0)
    with pytest.raises(TypeError, match="bias"):
        Perceptron([1, 2], "0")
    with pytest.raises(ValueError, match="bias"):
        Perceptron([1, 2], float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        Perceptron([1, np.inf], 0)
    with pytest.raises(ValueError, match=r"\(2,\) or a batch of shape \(batch, 2\), got \(3,\)"):
        AND([1, 0, 1])
    with pytest.raises(ValueError, match=r"got \(4, 3\)"):
        AND(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="got"):
        AND(np.zeros((0, 2)))
    with pytest.raises(TypeError, match="real numbers"):
        AND(["a", "b"])
    with pytest.raises(ValueError, match="NaN"):
        AND([np.nan, 1])


def test_network_validates_layers():
    with pytest.raises(ValueError, match="at least one layer"):
        PerceptronNetwork()
    with pytest.raises(TypeError, match="layer 0"):
        PerceptronNetwork([AND, "OR"])
    with pytest.raises(ValueError, match="layer 1's perceptrons must all take 2 inputs"):
        PerceptronNetwork([AND, OR], [Perceptron([1, 1, 1], 0)])
    with pytest.raises(ValueError, match="last layer must have one"):
        PerceptronNetwork([AND, OR])


@pytest.mark.parametrize("name", ["AND", "OR", "NAND"])
@pytest.mark.parametrize("seed", range(5))
def test_perceptron_rule_learns_separable_gates(name, seed):
    p, mistakes = train_perceptron(GATE_INPUTS, TRUTH[name], lr=0.1, epochs=100, seed=seed)
    assert mistakes[-1] == 0 and len(mistakes) < 100  # converged, stopped early
    np.testing.assert_array_equal(p(GATE_INPUTS), TRUTH[name])


@pytest.mark.parametrize("seed", range(5))
def test_perceptron_rule_never_separates_xor(seed):
    p, mistakes = train_perceptron(GATE_INPUTS, TRUTH["XOR"], lr=0.1, epochs=200, seed=seed)
    assert len(mistakes) == 200  # never stopped: no epoch ended without a mistake
    assert min(mistakes) >= 1  # never 4 of 4
    assert np.sum(p(GATE_INPUTS) == TRUTH["XOR"]) <= 3
    # Gallant's pocket keeps the best line visited: 3 of 4, the most a line can do.
    p, _ = train_perceptron(GATE_INPUTS, TRUTH["XOR"], epochs=50, seed=seed, pocket=True)
    assert np.sum(p(GATE_INPUTS) == TRUTH["XOR"]) == 3


def test_no_single_perceptron_computes_xor():
    # Any line w.x + b = 0 gets at most 3 of XOR's 4 points right: search a grid of lines.
    grid = np.linspace(-1, 1, 21)
    best = max(
        np.sum(Perceptron([w1, w2], b)(GATE_INPUTS) == TRUTH["XOR"])
        for w1, w2, b in itertools.product(grid, grid, grid)
    )
    assert best == 3


def test_fit_validates():
    p = Perceptron([0.0, 0.0], 0.0)
    with pytest.raises(ValueError, match="targets must be 0 or 1"):
        p.fit(GATE_INPUTS, [0, 1, 2, 0])
    with pytest.raises(ValueError, match=r"expected 4 targets"):
        p.fit(GATE_INPUTS, [0, 1, 1])
    with pytest.raises(ValueError, match="learning rate"):
        p.fit(GATE_INPUTS, [0, 1, 1, 1], lr=0)
    with pytest.raises(ValueError, match="epochs"):
        p.fit(GATE_INPUTS, [0, 1, 1, 1], epochs=0)
    with pytest.raises(ValueError, match=r"batch, 2"):
        p.fit(np.zeros((4, 3)), [0, 1, 1, 1])


def test_fit_follows_the_rule_in_data_order():
    # One epoch by hand from zero weights, lr 0.5, data order, on OR:
    # (0,0) t=0: y=0 ok; (1,0) t=1: y=0 -> w=(0.5,0), b=0.5; (0,1) t=1: y=1 ok; (1,1): y=1 ok.
    p = Perceptron([0.0, 0.0], 0.0)
    mistakes = p.fit(GATE_INPUTS, TRUTH["OR"], lr=0.5, epochs=1)
    np.testing.assert_array_equal(p.weights, [0.5, 0.0])
    assert p.bias == 0.5
    assert mistakes == [1]  # (0,0) now gives 1


@pytest.mark.parametrize("seed", range(5))
def test_backprop_two_layer_network_learns_xor(seed):
    model, predictions = train_xor_network(seed=seed)
    assert isinstance(model, fn.MLP)
    np.testing.assert_array_equal(predictions, TRUTH["XOR"])
    np.testing.assert_array_equal(model.predict_classes(GATE_INPUTS), TRUTH["XOR"])
