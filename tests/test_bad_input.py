"""Bad input at every public entry point gets a clear error before any kernel runs.

An audit of issue 7's "Bad input" list: wrong shapes, wrong types, bad labels, NaN/inf, empty
input and out-of-range hyperparameters, for the layers, models, losses, ``fit``/``evaluate``/
``predict``, preprocessing, datasets, ``load`` and the command line. The tests that spy on the
kernels replace them with a function that fails, so an input that reached one would fail the
test even if it happened to give no error. Inputs that are converted rather than refused
(float64 for a float32 model, integers, booleans, lists, non-contiguous arrays) are compared
with the result of the contiguous float array they stand for.
"""

import re

import numpy as np
import pytest

import fastnn as fn
from fastnn import optim
from fastnn import preprocessing as pp
from fastnn.cli import main
from fastnn.nn.activations import ELU, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from fastnn.nn.containers import MLP, Sequential
from fastnn.nn.dropout import Dropout
from fastnn.nn.linear import Linear, Maxout
from fastnn.nn.losses import MSELoss, SoftmaxCrossEntropy, check_labels
from fastnn.nn.normalization import BatchNorm
from fastnn.training import TrainingDivergedError, evaluate, fit

# Every warning is an error here: a label cast that wraps around, say, warns before it fails.
pytestmark = pytest.mark.filterwarnings("error")

ELEMENTWISE = [ReLU, Sigmoid, Tanh, Step, LeakyReLU, ELU]


def _fail(*args, **kwargs):
    raise AssertionError("a kernel ran on input that should have been refused")


@pytest.fixture
def no_kernels(monkeypatch):
    """Replace the affine and loss kernels with ``_fail`` (layers and losses import them as
    modules, so patching the module attributes reaches every call)."""
    from fastnn.kernels import affine, softmax_cross_entropy

    for name in ("affine_forward", "affine_backward"):
        monkeypatch.setattr(affine, name, _fail)
    for name in ("softmax_cross_entropy_labels", "softmax_cross_entropy_targets", "mse_forward"):
        monkeypatch.setattr(softmax_cross_entropy, name, _fail)


def _data(n=24, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, k, n)


def _layers():
    """One of each layer with 4 input features, already used once in training mode."""
    return [
        Linear(4, 3, rng=0),
        Linear(4, 3, rng=0, activation="tanh"),
        Maxout(4, 3, rng=0),
        BatchNorm(4),
        *(cls() for cls in ELEMENTWISE),
        Softmax(),
        Dropout(0.5, rng=0),
        MLP([4, 5, 3], batchnorm=True, dropout=0.2, seed=0),
    ]


# -- wrong shapes ---------------------------------------------------------------------------------
def test_the_issue_example_message():
    layer = Linear(784, 100, rng=0)
    x = np.zeros((32, 785), np.float32)
    expected = "Linear(784, 100): expected input of shape (batch, 784), got (32, 785)"
    with pytest.raises(ValueError, match=re.escape(expected)):
        layer.forward(x)


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (Linear(4, 3), (2, 5), "Linear(4, 3): expected input of shape (batch, 4), got (2, 5)"),
        (Linear(4, 3), (4,), "Linear(4, 3): expected input of shape (batch, 4), got (4,)"),
        (Linear(4, 3), (2, 2, 4), "got (2, 2, 4)"),
        (Maxout(4, 3), (2, 5), "Maxout(4, 3, pieces=2): expected input of shape (batch, 4)"),
        (BatchNorm(4), (3, 5), "BatchNorm(4): expected input of shape (batch, 4), got (3, 5)"),
        (Softmax(), (3,), "Softmax(): expected input of shape (batch, classes), got (3,)"),
        (MLP([4, 5, 3]), (2, 6), "Linear(4, 5): expected input of shape (batch, 4), got (2, 6)"),
    ],
)
def test_wrong_input_shape_names_layer_and_shapes(layer, shape, message, no_kernels):
    with pytest.raises(ValueError, match=re.escape(message)):
        layer.forward(np.zeros(shape, np.float32))


def test_wrong_gradient_shape_names_layer_and_shapes():
    x, _ = _data(8)
    for layer in _layers():
        out = layer.forward(x)
        bad = np.zeros((out.shape[0] + 1,) + out.shape[1:], np.float32)
        with pytest.raises(ValueError, match=r"\.backward: expected dout of shape") as e:
            layer.backward(bad)
        assert str(out.shape) in str(e.value) and str(bad.shape) in str(e.value), e.value


@pytest.mark.parametrize(
    "make",
    [
        lambda: Linear(4, 3),
        lambda: Maxout(4, 3),
        lambda: BatchNorm(4),
        lambda: Dropout(0.5),
        lambda: Softmax(),
        lambda: MLP([4, 5, 3]),
        *(lambda cls=cls: cls() for cls in ELEMENTWISE),
    ],
)
def test_backward_before_forward_is_a_runtime_error(make):
    with pytest.raises(RuntimeError, match=r"\.backward called before forward"):
        make().backward(np.zeros((2, 3), np.float32))


def test_sequential_checks_widths_when_built():
    msg = r"layer 2 \(Linear\(in_features=5, out_features=2\)\) expects inputs of width 5, "
    msg += r"but layer 0 \(Linear\(in_features=4, out_features=3\)\) gives outputs of width 3"
    with pytest.raises(ValueError, match=msg):
        Sequential(Linear(4, 3), ReLU(), Linear(5, 2))
    with pytest.raises(ValueError, match="expects inputs of width 4"):
        Sequential(Linear(4, 3), BatchNorm(4))
    with pytest.raises(ValueError, match="expects inputs of width 2"):
        Sequential(Sequential(Linear(4, 3), Tanh()), Linear(2, 2))
    # Matching widths, pass-through layers between them, and the MLP builder are accepted.
    Sequential(Linear(4, 3), Dropout(0.1), BatchNorm(3), Maxout(3, 2), Softmax())


# -- wrong types ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad",
    [
        np.array([[1, 2, 3, None]], dtype=object),
        np.array([["1", "2", "3", "4"]]),
        np.ones((2, 4), dtype=complex),
        np.zeros((2, 4), dtype="datetime64[s]"),
        None,
    ],
    ids=["object", "string", "complex", "datetime", "None"],
)
def test_non_numeric_input_is_a_type_error(bad, no_kernels):
    x, y = _data()
    for layer in _layers():
        with pytest.raises(TypeError, match="expected an array of real numbers, got dtype"):
            layer.forward(bad)
    model = MLP([4, 5, 3])
    with pytest.raises(TypeError, match=r"MLP\.predict: expected an array of real numbers"):
        model.predict(bad)
    with pytest.raises(TypeError, match="fit x: expected an array of real numbers"):
        fit(model, bad, y, epochs=1, verbose=0)
    with pytest.raises(TypeError, match="expected an array of real numbers"):
        SoftmaxCrossEntropy().forward(bad, [0])
    with pytest.raises(TypeError, match="expected an array of real numbers"):
        pp.Standardizer().fit(bad)


def test_predict_refuses_a_string_rather_than_calling_it_empty():
    with pytest.raises(TypeError, match=r"MLP\.predict: expected an array of real numbers"):
        MLP([4, 3]).predict_classes("abcd")


def test_ragged_lists_name_the_layer():
    for layer in (Linear(4, 3), ReLU(), BatchNorm(4)):
        with pytest.raises(ValueError, match=re.escape(repr(layer)[:6])) as e:
            layer.forward([[1, 2, 3, 4], [1, 2]])
        assert "rows of different lengths" in str(e.value)
    with pytest.raises(ValueError, match=r"MLP\.predict: could not make an array"):
        MLP([4, 3]).predict([[1, 2, 3, 4], [1]])
    with pytest.raises(ValueError, match="Standardizer.fit: could not make an array"):
        pp.Standardizer().fit([[1.0, 2.0], [3.0]])


def _converted_inputs(x):
    """Stand-ins for ``x`` (float32, shape (n, 4)) that must give exactly x's results."""
    wide = np.zeros((x.shape[0], 8), np.float32)
    wide[:, ::2] = x
    return {
        "float64": x.astype(np.float64),
        "list": x.tolist(),
        "fortran": np.asfortranarray(x),
        "strided": wide[:, ::2],
        "reversed rows": x[::-1].copy()[::-1],
    }


def test_float64_lists_and_non_contiguous_input_equal_the_contiguous_float32_copy():
    x, _ = _data(16)
    for name, alt in _converted_inputs(x).items():
        for make in (
            lambda: Linear(4, 3, rng=1, activation="relu"),
            lambda: Maxout(4, 3, rng=1),
            lambda: BatchNorm(4),
            lambda: Sigmoid(),
            lambda: Dropout(0.5, rng=3),
            lambda: MLP([4, 6, 3], batchnorm=True, dropout=0.3, seed=2),
        ):
            ref_layer, layer = make(), make()
            ref = ref_layer.forward(x).copy()
            out = layer.forward(alt)
            assert out.dtype == np.float32, name
            np.testing.assert_array_equal(out, ref, err_msg=f"{name}: {layer!r}")
            dout = np.ones_like(ref)
            np.testing.assert_array_equal(
                layer.backward(np.asfortranarray(dout.astype(np.float64))),
                ref_layer.backward(dout),
                err_msg=f"{name} backward: {layer!r}",
            )


def test_integer_and_boolean_input_is_converted():
    x = np.array([[0, 1, 2, 3], [4, -5, 6, 7]])
    for alt in (x, x.astype(np.int8), x.astype(np.uint16), x > 2):
        ref = Linear(4, 3, rng=0).forward(alt.astype(np.float32)).copy()
        np.testing.assert_array_equal(Linear(4, 3, rng=0).forward(alt), ref)
        assert MLP([4, 3], seed=0).predict(alt).dtype == np.float32


def test_float32_data_for_a_float64_model_gives_float64():
    x, _ = _data(8)
    model64 = MLP([4, 5, 3], seed=0, dtype=np.float64)
    out = model64.predict(x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, model64.predict(x.astype(np.float64)))


def test_fit_converts_float64_lists_and_non_contiguous_data_exactly():
    x, y = _data(24)

    def weights(xx, yy):
        model = MLP([4, 5, 3], seed=0)
        fit(model, xx, yy, epochs=2, batch_size=6, verbose=0, seed=0)
        return model.state_dict()

    ref = weights(x, y)
    alternatives = {name: (alt, y) for name, alt in _converted_inputs(x).items()}
    alternatives["labels as list"] = (x, y.tolist())
    alternatives["labels as whole floats"] = (x, y.astype(np.float64))
    alternatives["labels as uint8"] = (x, y.astype(np.uint8))
    alternatives["strided labels"] = (x, np.repeat(y, 2)[::2])
    for name, (xx, yy) in alternatives.items():
        got = weights(xx, yy)
        for k, v in ref.items():
            np.testing.assert_array_equal(got[k], v, err_msg=f"{name}: {k}")


# -- labels ---------------------------------------------------------------------------------------
BAD_LABELS = [
    ([0, 1, -1, 2], ValueError, r"labels must be in \[0, 2\], got -1"),
    ([0, 1, 3, 2], ValueError, r"labels must be in \[0, 2\], got 3"),
    ([0, 1, 1.5, 2], ValueError, "labels must be whole numbers, got 1.5"),
    ([0, 1, np.nan, 2], ValueError, "labels must be whole numbers, got nan"),
    ([0, 1, np.inf, 2], ValueError, "labels must be whole numbers, got inf"),
    ([0, 1, 1e20, 2], ValueError, r"labels must be in \[0, 2\], got 1e\+20"),
    (np.array([0, 1, 2**63 + 1, 2], np.uint64), ValueError, "got 9223372036854775809"),
    ([0, 1, 2], ValueError, r"expected 4 labels of shape \(4,\), got shape \(3,\)"),
    ([[0], [1], [2], [0]], ValueError, r"targets of shape \(4, 3\), got \(4, 1\)"),
    (0, ValueError, r"of shape \(4,?\)?.*got (shape )?\(\)"),
    (["a", "b", "c", "d"], TypeError, "expected integer labels, got dtype <U1"),
    (np.array([0, 1, 2, None], object), TypeError, "expected integer labels, got dtype object"),
    (np.array([0, 1, 2, 0], complex), TypeError, "expected integer labels"),
]


@pytest.mark.parametrize("labels, error, message", BAD_LABELS)
def test_bad_labels_are_refused_before_the_loss_kernel(labels, error, message, no_kernels):
    with pytest.raises(error, match=message):
        SoftmaxCrossEntropy().forward(np.zeros((4, 3), np.float32), labels)


@pytest.mark.parametrize("labels, error, message", BAD_LABELS)
def test_bad_labels_are_refused_by_fit_and_evaluate_before_any_kernel(
    labels, error, message, no_kernels
):
    x, _ = _data(4)
    with pytest.raises(error, match=message):
        fit(MLP([4, 5, 3]), x, labels, epochs=1, batch_size=2, verbose=0)
    with pytest.raises(error, match=message):
        evaluate(MLP([4, 5, 3]), x, labels)


def test_good_labels_pass_check_labels():
    for labels in ([0, 2, 1], [0.0, 2.0, 1.0], np.array([0, 2, 1], np.uint8), [True, False, True]):
        t = check_labels(labels, 3, 3, "t")
        assert t.dtype == np.int64 and t.flags.c_contiguous


@pytest.mark.parametrize(
    "labels, num_classes, error, message",
    [
        ([0, -1], None, ValueError, "labels must be >= 0, got -1"),
        ([0, 1.5], None, ValueError, "labels must be integers, got 1.5"),
        ([0, 3], 3, ValueError, "label 3 is out of range for num_classes=3"),
        ([0, 1e20], 3, ValueError, "label 1e\\+20 is too large"),
        ([0, 1e20], None, ValueError, "label 1e\\+20 is too large"),
        (np.array([0, 2**63 + 5], np.uint64), 3, ValueError, "is too large"),
        (["a"], 3, TypeError, "expected integer labels"),
    ],
)
def test_one_hot_refuses_bad_labels_without_wrapping_them(labels, num_classes, error, message):
    with pytest.raises(error, match=message):
        pp.one_hot(labels, num_classes)


def test_one_hot_and_split_indices_type_errors():
    with pytest.raises(TypeError, match="one_hot: expected a numeric dtype, got 'bogus'"):
        pp.one_hot([0, 1], 2, dtype="bogus")
    with pytest.raises(TypeError, match="stratify needs labels that can be sorted"):
        pp.split_indices(np.array([None, 1, None], object), [1])


# -- NaN and infinity -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_fit_refuses_nan_and_inf_unless_allowed(value, monkeypatch):
    x, y = _data(24)
    x[5, 2] = value
    model = MLP([4, 5, 3], seed=0)
    before = model.state_dict()
    with pytest.raises(ValueError, match="fit: x holds NaN or infinite values"):
        fit(model, x, y, epochs=1, batch_size=6, verbose=0)
    with pytest.raises(ValueError, match="fit validation_data: x holds NaN or infinite"):
        fit(model, _data(24)[0], y, epochs=1, batch_size=6, verbose=0, validation_data=(x, y))
    with pytest.raises(ValueError, match="evaluate: x holds NaN or infinite values"):
        evaluate(model, x, y)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    # check_finite=False lets the data through: here the NaN reaches the loss, and training
    # stops with its own error.
    with pytest.raises(TrainingDivergedError):
        fit(model, x, y, epochs=1, batch_size=6, verbose=0, check_finite=False, shuffle=False)
    targets = np.eye(3, dtype=np.float32)[y]
    targets[0, 0] = value
    with pytest.raises(ValueError, match="fit: y holds NaN or infinite values"):
        fit(MLP([4, 5, 3]), _data(24)[0], targets, epochs=1, batch_size=6, verbose=0)


def test_preprocessing_refuses_nan_in_fit():
    bad = np.array([[1.0, np.nan], [2.0, 3.0]])
    for fitter in (pp.Standardizer().fit, pp.MinMaxScaler().fit, pp.min_max_scale):
        with pytest.raises(ValueError, match="contains NaN or infinity"):
            fitter(bad)


# -- empty input and batch sizes ------------------------------------------------------------------
def test_empty_input_is_a_clear_error(no_kernels):
    empty = np.zeros((0, 4), np.float32)
    for layer in _layers():
        if isinstance(layer, Dropout):
            continue  # an elementwise mask: an empty input gives an empty output (tested there)
        with pytest.raises(ValueError, match=r"\(0, 4\)"):
            layer.forward(empty)
    model = MLP([4, 3])
    with pytest.raises(ValueError, match=r"MLP\.predict: expected a non-empty batch, got \(0, 4\)"):
        model.predict(empty)
    with pytest.raises(ValueError, match=r"fit: expected x of shape \(n, 4\) with n >= 1"):
        fit(model, empty, [], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"evaluate: expected x of shape \(n, 4\) with n >= 1"):
        evaluate(model, empty, [])
    with pytest.raises(ValueError, match="expected logits of shape"):
        SoftmaxCrossEntropy().forward(np.zeros((0, 3)), [])
    with pytest.raises(ValueError, match="empty predictions"):
        MSELoss().forward(np.zeros((0, 3)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"expected an array of shape \(n >= 1, ...\)"):
        pp.Standardizer().fit(empty)
    with pytest.raises(ValueError, match=r"batches: expected x of shape \(n >= 1, ...\)"):
        pp.batches(empty, None, 2)


def test_batch_sizes():
    x, y = _data(20)
    model = MLP([4, 5, 3])
    for bad, error in ((0, ValueError), (-1, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="batch_size"):
            fit(model, x, y, epochs=1, batch_size=bad, verbose=0)
        with pytest.raises(error, match="batch_size"):
            model.predict(x, batch_size=bad)
        with pytest.raises(error, match="batch_size"):
            evaluate(model, x, y, batch_size=bad)
        with pytest.raises(error, match="batch_size"):
            pp.batches(x, y, bad)
    with pytest.raises(ValueError, match="batch_size 21 is larger than the 20 training rows"):
        fit(model, x, y, epochs=1, batch_size=21, verbose=0)
    with pytest.raises(ValueError, match="batch_size 21 > 20 samples with drop_last=True"):
        pp.batches(x, y, 21, drop_last=True)


def test_batch_norm_needs_two_rows_in_training():
    layer = BatchNorm(4)
    with pytest.raises(ValueError, match=r"BatchNorm\(4\): expected more than 1 row per batch"):
        layer.forward(np.ones((1, 4), np.float32))
    layer.eval()
    assert layer.forward(np.ones((1, 4), np.float32)).shape == (1, 4)  # eval mode is fine
    x, y = _data(20)
    with pytest.raises(ValueError, match="leave a last batch of 1; choose another batch_size"):
        fit(MLP([4, 5, 3], batchnorm=True), x, y, epochs=1, batch_size=19, verbose=0)


# -- hyperparameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: Dropout(1.0),
            ValueError,
            r"invalid dropout probability: 1.0; expected a finite number >= 0 and < 1",
        ),
        (lambda: Dropout(-0.1), ValueError, "invalid dropout probability: -0.1"),
        (lambda: Dropout(float("nan")), ValueError, "invalid dropout probability: nan"),
        (lambda: Dropout("a"), TypeError, "dropout probability must be a real number"),
        (lambda: Dropout(True), TypeError, "dropout probability must be a real number"),
        (lambda: MLP([4, 5, 3], dropout=1.5), ValueError, "invalid dropout probability: 1.5"),
        (lambda: MLP([4, 5, 3], dropout="a"), TypeError, "dropout probability must be a real"),
        (lambda: LeakyReLU(-0.1), ValueError, "invalid negative_slope: -0.1; expected a finite"),
        (lambda: LeakyReLU(float("inf")), ValueError, "invalid negative_slope: inf"),
        (lambda: LeakyReLU("a"), TypeError, "negative_slope must be a real number, got str"),
        (lambda: LeakyReLU(None), TypeError, "negative_slope must be a real number"),
        (lambda: ELU(0), ValueError, "invalid ELU alpha: 0; expected a finite number > 0"),
        (lambda: ELU(float("inf")), ValueError, "invalid ELU alpha: inf"),
        (lambda: ELU(True), TypeError, "ELU alpha must be a real number, got bool"),
        (lambda: Linear(4, 3, activation="leaky_relu", alpha=-1), ValueError, "negative_slope"),
        (lambda: Linear(4, 3, activation="elu", alpha=0), ValueError, "invalid ELU alpha: 0"),
        (
            lambda: Linear(4, 3, activation="elu", alpha=np.inf),
            ValueError,
            "invalid ELU alpha: inf",
        ),
        (lambda: Linear(4, 3, activation="elu", alpha="x"), TypeError, "alpha must be a real"),
        (lambda: Linear(4, 3, bias="no"), TypeError, "bias must be True or False, got 'no'"),
        (lambda: Linear(0, 3), ValueError, "invalid in_features: 0; expected a positive integer"),
        (lambda: Linear(4.0, 3), TypeError, "in_features must be an integer, got float"),
        (lambda: Linear(4, 3, dtype="bogus"), ValueError, "invalid dtype: 'bogus'; expected"),
        (lambda: Linear(4, 3, dtype=np.int32), ValueError, "invalid dtype: int32"),
        (lambda: Linear(4, 3, init="bogus"), ValueError, "unknown init 'bogus'; expected one of"),
        (lambda: Linear(4, 3, init=-1.0), ValueError, "invalid init std: -1.0"),
        (lambda: Maxout(4, 3, pieces=0), ValueError, "invalid pieces: 0"),
        (lambda: BatchNorm(4, momentum=1.5), ValueError, "invalid momentum: 1.5"),
        (lambda: BatchNorm(4, eps=0), ValueError, "invalid eps: 0"),
        (lambda: BatchNorm(0), ValueError, "invalid num_features: 0"),
        (lambda: MLP(4), TypeError, "MLP: sizes must be a sequence of layer sizes"),
        (lambda: MLP([4]), ValueError, "MLP needs at least 2 sizes"),
        (lambda: MLP([4, 0, 3]), ValueError, "invalid layer size: 0"),
        (lambda: MLP([4, 2.5, 3]), TypeError, "layer size must be an integer, got float"),
        (lambda: MLP([4, 3], batchnorm="yes"), TypeError, "batchnorm must be True or False"),
        (lambda: MLP([4, 3], seed=-1), ValueError, "invalid seed: -1; expected an integer >= 0"),
        (lambda: MLP([4, 3], seed=1.5), TypeError, "seed must be a numpy.random.Generator"),
        (lambda: Dropout(0.5, rng=-3), ValueError, "invalid seed: -3"),
        (lambda: fn.nn.losses.get("bogus"), ValueError, "expected one of cross_entropy, "),
    ],
)
def test_out_of_range_hyperparameters(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize("make", [lambda a: Linear(4, 3, activation=a), lambda a: MLP([4, 3], a)])
def test_unknown_activation_lists_the_valid_names(make):
    for name in ("bogus", "ReLu6", "softmax"):
        with pytest.raises(ValueError, match=f"unknown activation '{name}'; expected one of ") as e:
            make(name)
        for valid in ("relu", "sigmoid", "tanh", "leaky_relu", "elu", "step"):
            assert valid in str(e.value)


def _params():
    return MLP([4, 3]).parameters()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: optim.SGD(_params(), lr=-1), "invalid learning rate: -1"),
        (lambda: optim.Adam(_params(), lr=float("nan")), "invalid learning rate: nan"),
        (lambda: optim.Adam(_params(), betas=(0.9, 1.0)), "invalid beta parameter at index 1"),
        (lambda: optim.Adam(_params(), betas=(-0.1, 0.9)), "invalid beta parameter at index 0"),
        (lambda: optim.SGD(_params(), lr=0.1, weight_decay=-1), "invalid weight_decay value: -1"),
        (lambda: optim.Adam(_params(), eps=-1), "invalid epsilon value: -1"),
        (lambda: optim.get("bogus", _params()), "unknown optimizer 'bogus'; expected one of sgd"),
        (lambda: optim.SGD(_params(), lr=0), "invalid learning rate: 0"),
        (lambda: optim.Adam(_params(), lr=float("inf")), "invalid learning rate: inf"),
    ],
)
def test_optimizer_hyperparameters(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# -- models' other entry points -------------------------------------------------------------------
def test_load_state_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="load_state_dict: expected a mapping of names to arrays"):
        MLP([4, 3]).load_state_dict(None)
    with pytest.raises(TypeError, match=r"state_dict\['0.weight'\]: expected real numbers"):
        model = MLP([4, 3])
        model.load_state_dict({k: v.astype(object) for k, v in model.state_dict().items()})


def test_datasets_refuse_bad_arguments():
    from fastnn import datasets

    with pytest.raises(TypeError, match="flatten must be True or False, got 'no'"):
        datasets.load_mnist_sample(10, 10, flatten="no")
    with pytest.raises(ValueError, match="invalid dtype: 'bogus'; expected float32 or float64"):
        datasets.load_mnist_sample(10, 10, dtype="bogus")
    with pytest.raises(ValueError, match="train_size \\+ test_size = 11000"):
        datasets.load_mnist_sample(9000, 2000)
    with pytest.raises(ValueError, match="invalid train_size: -1"):
        datasets.load_mnist_sample(-1, 10)
    with pytest.raises(ValueError, match="pass either path or sample=True"):
        datasets.load_mnist("/tmp", sample=True)


def test_load_refuses_what_is_not_a_fastnn_file(tmp_path):
    import pickle

    cases = {}
    cases["pickle"] = tmp_path / "a.pkl"
    cases["pickle"].write_bytes(pickle.dumps({"a": 1}))
    cases["npz"] = tmp_path / "b.npz"
    np.savez(cases["npz"], w=np.zeros(3))
    cases["text"] = tmp_path / "c.txt"
    cases["text"].write_text("hello")
    messages = {"pickle": "refused: a pickle", "npz": "not a fastnn file", "text": "not a fastnn"}
    for name, path in cases.items():
        with pytest.raises(ValueError, match=messages[name]):
            fn.load(path)
    with pytest.raises(FileNotFoundError):
        fn.load(tmp_path / "missing.npz")


# -- the command line -----------------------------------------------------------------------------
@pytest.fixture
def cli_files(tmp_path):
    """Data files (good and bad) and a saved model for the command line."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)
    files = {}

    def npz(name, **arrays):
        files[name] = tmp_path / f"{name}.npz"
        np.savez(files[name], **arrays)

    def npy(name, array):
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], array)

    npz("good", x=x, y=y)
    npz("nan", x=np.where(np.eye(40, 6) > 0, np.nan, x), y=y)
    npz("x1d", x=x[:, 0], y=y)
    npz("xstr", x=x.astype(str), y=y)
    npz("yfloat", x=x, y=y + 0.5)
    npz("yneg", x=x, y=np.r_[y[:-1], -1])
    npz("features", x_train=x, y_train=y, x_test=x[:, :5], y_test=y)
    npz("nothing")
    npy("in_nan", np.full((3, 6), np.nan, np.float32))
    npy("in_wide", x[:, :5])
    npy("in_str", x.astype(str))
    npy("in_empty", np.zeros((0, 6), np.float32))
    files["model"] = tmp_path / "model.npz"
    fn.save(MLP([6, 4, 3], seed=0), files["model"])
    files["tmp"] = tmp_path
    return files


TRAIN = ["train", "--epochs", "1", "--layers", "4", "--batch-size", "8", "-q"]
CLI_CASES = [
    (["--data", "nan"], "fit: x holds NaN or infinite values"),
    (["--data", "x1d"], "expected training inputs of shape (n >= 1, features), got (32,)"),
    (["--data", "xstr"], "fit x: expected an array of real numbers, got dtype <U"),
    (["--data", "yfloat"], "expected integer class labels (n,) in y, got float64"),
    (["--data", "yneg"], "fit y: labels must be in [0, 2], got -1"),
    (["--data", "features"], "the training inputs have 6 features, the test inputs 5"),
    (["--data", "nothing"], "expected arrays x and y"),
    (["--data", "good", "--batch-size", "100"], "batch_size 100 is larger than the 32"),
    (["--data", "good", "--batch-size", "31", "--batchnorm"], "leave a last batch of 1"),
    (["--data", "good", "--lr", "0"], "--lr: invalid --lr: 0.0; expected a finite number > 0"),
    (["--data", "good", "--lr", "inf"], "--lr: invalid --lr: inf; expected a finite number > 0"),
    (["--data", "good", "--dropout", "1"], "invalid --dropout: 1.0; expected a finite number >= 0"),
    (["--data", "good", "--seed", "-1"], "--seed: invalid --seed: -1; expected an integer >= 0"),
    (["--data", "good", "--init", "bogus"], "unknown init 'bogus'; expected one of"),
    (["--data", "good", "--activation", "relu6"], "invalid choice: 'relu6'"),
    (["--data", "good", "--optimizer", "adamm"], "invalid choice: 'adamm'"),
    (["--data", "good", "-o", "{tmp}/no/such/m.npz"], "the folder {tmp}/no/such does not exist"),
]


def _run_cli(argv, files, capsys):
    def fill(a):
        a = files[a] if a in files and a != "tmp" else a
        return str(a).replace("{tmp}", str(files["tmp"]))

    code = main([fill(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("argv, message", CLI_CASES, ids=[" ".join(a) for a, _ in CLI_CASES])
def test_cli_train_bad_input_one_line_exit_2(argv, message, cli_files, capsys):
    code, out, err = _run_cli([*TRAIN, *argv], cli_files, capsys)
    message = message.replace("{tmp}", str(cli_files["tmp"]))
    assert code == 2, (out, err)
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("fastnn train: error: "), err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["predict", "model", "in_nan"], "the input holds NaN or infinite values (in 3 rows)"),
        (["predict", "model", "in_wide"], "Linear(6, 4): expected input of shape (batch, 6)"),
        (["predict", "model", "in_str"], "MLP.predict: expected an array of real numbers"),
        (["predict", "model", "in_empty"], "MLP.predict: expected a non-empty batch"),
        (["predict", "good", "in_wide"], "not a fastnn file"),
        (["predict", "model", "good", "-o", "{tmp}/none/p.npy"], "does not exist"),
        (
            ["evaluate", "model", "--data", "x1d"],
            "evaluate: expected x of shape (n, 6) with n >= 1",
        ),
        (["evaluate", "model", "--seed", "x"], "argument --seed: expected an integer, got 'x'"),
        (["bogus"], "invalid choice: 'bogus'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_cli_other_commands_bad_input_one_line_exit_2(argv, message, cli_files, capsys):
    code, out, err = _run_cli(argv, cli_files, capsys)
    assert code == 2, (out, err)
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_cli_help_still_exits_0(capsys):
    assert main(["train", "--help"]) == 0
    assert "--batch-size" in capsys.readouterr().out


def test_save_and_load_name_what_is_wrong_with_the_path(tmp_path):
    model = fn.MLP([4, 3], seed=0)
    with pytest.raises(FileNotFoundError, match="the folder .*nope does not exist"):
        fn.save(model, tmp_path / "nope" / "m.npz")
    assert list(tmp_path.iterdir()) == []
    for bad in (None, 5):
        with pytest.raises(TypeError, match="expected a file path"):
            fn.load(bad)
        with pytest.raises(TypeError, match="expected a file path"):
            fn.save(model, bad)
    with pytest.raises(ValueError, match="a folder, not a fastnn file"):
        fn.load(tmp_path)


def test_check_finite_must_be_a_bool():
    model = fn.MLP([4, 3], seed=0)
    x, y = np.zeros((6, 4), np.float32), np.zeros(6, np.int64)
    with pytest.raises(TypeError, match="check_finite must be True or False, got 'no'"):
        fn.fit(model, x, y, epochs=1, batch_size=2, verbose=0, check_finite="no")
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        fn.evaluate(model, x, y, check_finite=1)
