"""The MNIST experiments of the course: weight initialisation, optimizers, batch norm,
overfitting. Each runs once in quick mode (module-scoped fixtures); the tests check the
pattern the course shows on the numbers it returns."""

import io
import math

import numpy as np
import pytest

from fastnn.errors import InvalidTypeError, InvalidValueError
from fastnn.experiments.batchnorm import batchnorm
from fastnn.experiments.optimizers_mnist import OPTIMIZERS, optimizers_mnist
from fastnn.experiments.overfitting import overfitting
from fastnn.experiments.weight_init_mnist import smooth, weight_init_mnist

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LN10 = math.log(10)  # the loss of a uniform guess over 10 digits


def run(function, tmp_path_factory):
    printed = io.StringIO()
    out = tmp_path_factory.mktemp(function.__name__)
    result = function(quick=True, seed=0, out=out, file=printed)
    return result, printed.getvalue()


def assert_pngs(result, count=1):
    assert len(result["figures"]) == count
    for path in result["figures"]:
        with open(path, "rb") as f:
            data = f.read()
        assert data[:8] == PNG_MAGIC and len(data) > 1000


# -- weight initialisation ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def weight_init(tmp_path_factory):
    return run(weight_init_mnist, tmp_path_factory)


def test_weight_init_writes_its_table_and_figure(weight_init):
    result, printed = weight_init
    assert_pngs(result)
    assert "std=0.01" in printed and "Xavier" in printed and "He" in printed
    for curve in result["losses"].values():
        assert curve.shape == (result["steps"],) and np.isfinite(curve).all()


def test_std_001_barely_learns_while_xavier_and_he_do(weight_init):
    result, _ = weight_init
    small = result["losses"]["std=0.01"]
    # Tiny weights give near-zero logits: the softmax is uniform and the loss ln 10, and the
    # vanishing gradients leave it there for the whole run.
    assert np.all(np.abs(smooth(small, 20) - LN10) < 0.05)
    assert abs(result["final"]["std=0.01"] - LN10) < 0.02
    for label in ("Xavier", "He"):
        assert result["final"][label] < LN10 - 0.3, label
    # He's larger scale suits ReLU, which zeroes half its inputs: it learns faster.
    assert result["final"]["He"] < result["final"]["Xavier"]


def test_weight_init_is_reproducible_and_checks_its_settings():
    small = dict(train_size=300, steps=15, file=False)
    a = weight_init_mnist(seed=3, **small)
    b = weight_init_mnist(seed=3, **small)
    c = weight_init_mnist(seed=4, **small)
    for label in a["losses"]:
        np.testing.assert_array_equal(a["losses"][label], b["losses"][label])
    assert not np.array_equal(a["losses"]["He"], c["losses"]["He"])
    assert a["figures"] == []
    with pytest.raises(InvalidValueError, match="invalid steps: 0; expected a positive integer"):
        weight_init_mnist(steps=0, file=False)
    with pytest.raises(InvalidValueError, match="batch_size 128 is larger than train_size 100"):
        weight_init_mnist(train_size=100, file=False)
    with pytest.raises(InvalidValueError, match="invalid lr: -0.1; expected a finite number > 0"):
        weight_init_mnist(lr=-0.1, file=False)
    with pytest.raises(InvalidTypeError, match=r"hidden\[0\] must be an integer, got str"):
        weight_init_mnist(hidden=["100"], file=False)


# -- optimizers ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def optimizers(tmp_path_factory):
    return run(optimizers_mnist, tmp_path_factory)


def test_optimizers_write_their_table_and_figure(optimizers):
    result, printed = optimizers
    assert_pngs(result)
    assert set(result["losses"]) == set(OPTIMIZERS) == set(result["final"])
    for label in OPTIMIZERS:
        assert label in printed


def test_every_optimizer_learns_and_adam_beats_sgd(optimizers):
    result, _ = optimizers
    for label, final in result["final"].items():
        assert final < result["initial"] - 0.5, label
    assert result["final"]["Adam"] < result["final"]["SGD"]
    # Plain SGD is the slowest of the seven.
    assert max(result["final"], key=result["final"].get) == "SGD"


def test_every_optimizer_starts_from_the_same_weights_and_batches(optimizers):
    result, _ = optimizers
    firsts = {float(curve[0]) for curve in result["losses"].values()}
    assert len(firsts) == 1


# -- batch normalisation -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bn(tmp_path_factory):
    return run(batchnorm, tmp_path_factory)


def test_batchnorm_writes_its_table_and_grid(bn):
    result, printed = bn
    assert_pngs(result)
    np.testing.assert_allclose(result["stds"], [1, 0.1, 0.01, 0.001, 0.0001])
    assert result["accuracy"].shape == result["accuracy_bn"].shape == (5, 11)
    assert "batch norm" in printed


def test_batchnorm_trains_where_the_plain_network_cannot(bn):
    result, _ = bn
    stds, plain, with_bn = result["stds"], result["final"], result["final_bn"]
    small = stds <= 0.01
    # Small weights: the signal vanishes layer by layer, so the plain network stays at chance
    # (10 digits; the commonest is about 11% of the images), while batch norm rescales every
    # layer's input to unit variance and learns.
    assert np.all(plain[small] < 0.2)
    assert np.all(with_bn[small] > 0.35)
    # Batch norm learns from every scale.
    assert np.all(with_bn > 0.2)
    assert np.all(with_bn[:, None] >= result["accuracy_bn"][:, :1] + 0.1)


def test_batchnorm_is_never_much_worse_at_he_scale_and_below(bn):
    result, _ = bn
    plain, with_bn = result["final"], result["final_bn"]
    # Up to He's scale (0.14 for 100 inputs); at 0.15-0.3 the plain network can be ahead after
    # a few epochs, as large weights slow batch norm's learning down (see the module docstring).
    below = (result["stds"] <= 0.1) & np.isfinite(plain)
    assert below.sum() >= 3
    assert np.all(with_bn[below] >= plain[below] - 0.05)


# -- overfitting ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    return run(overfitting, tmp_path_factory)


def test_overfitting_writes_its_table_and_figure(overfit):
    result, printed = overfit
    assert_pngs(result)
    for case in ("none", "weight decay", "dropout"):
        assert result["train"][case].shape == result["test"][case].shape == (100,)
    assert "weight decay 0.1" in printed and "dropout 0.2" in printed
    # The course scales at test time, fastnn in training: the table says which it ran.
    assert "dropout here is inverted" in printed


def test_without_regularisation_the_network_memorises_the_training_images(overfit):
    result, _ = overfit
    train, test = result["final_train"]["none"], result["final_test"]["none"]
    assert train > 0.95
    assert test < train - 0.1


def test_weight_decay_and_dropout_narrow_the_gap(overfit):
    result, _ = overfit
    gap = result["gap"]
    assert gap["weight decay"] < gap["none"] - 0.02
    assert gap["dropout"] < gap["none"] - 0.02
    # Weight decay pays for the narrower gap with a lower training accuracy.
    assert result["final_train"]["weight decay"] < result["final_train"]["none"]


def test_overfitting_checks_its_settings():
    with pytest.raises(
        InvalidValueError, match="invalid dropout: 1.0; expected a finite number > 0 and < 1"
    ):
        overfitting(dropout=1.0, file=False)
    with pytest.raises(InvalidValueError, match="at most 10000"):
        overfitting(train_size=9000, test_size=2000, file=False)
    with pytest.raises(
        InvalidValueError, match="invalid weight_decay: 0; expected a finite number > 0"
    ):
        overfitting(weight_decay=0, file=False)
    with pytest.raises(InvalidTypeError, match="epochs must be an integer, got float"):
        overfitting(epochs=10.0, file=False)


def test_batchnorm_checks_its_settings():
    with pytest.raises(InvalidValueError, match="invalid scales: 0; expected a positive integer"):
        batchnorm(scales=0, file=False)
    with pytest.raises(
        InvalidValueError, match="invalid batch_size: 1; expected an integer >= 2 and <= 1000"
    ):
        batchnorm(batch_size=1, file=False)
    with pytest.raises(InvalidTypeError, match="lr must be a real number, got str"):
        batchnorm(lr="0.01", file=False)
