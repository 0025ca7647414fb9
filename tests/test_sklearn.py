"""fastnn.sklearn: MLPClassifier and MLPRegressor as scikit-learn estimators (fit, predict,
clone, pipelines, grid search, seeds, early stopping, pickling, scikit-learn's common checks)."""

# ruff: noqa: E402  (the imports after importorskip need scikit-learn)

import copy
import importlib
import inspect
import pickle
import sys
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

pytest.importorskip("sklearn")

import sklearn
from sklearn.base import clone
from sklearn.datasets import make_classification, make_moons
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.fixes import parse_version

import fastnn
from fastnn.sklearn import MLPClassifier, MLPRegressor

# Short fits stop at max_iter on purpose; one test checks the warning itself.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FAST = dict(
    hidden_layer_sizes=(32,), learning_rate_init=0.01, batch_size=32, max_iter=40, random_state=0
)


@pytest.fixture(scope="module")
def moons():
    return make_moons(300, noise=0.1, random_state=0)


@pytest.fixture(scope="module")
def blobs():
    """A 3-class problem that a small network separates almost perfectly."""
    x, y = make_classification(
        300, n_features=6, n_informative=4, n_classes=3, class_sep=2.0, random_state=0
    )
    return x, y


@pytest.fixture(scope="module")
def sine():
    x = np.linspace(-3, 3, 400).reshape(-1, 1)
    return x, np.sin(x).ravel()


# -- import -------------------------------------------------------------------------------------
def test_import_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` fail
    monkeypatch.delitem(sys.modules, "fastnn.sklearn")
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[sklearn\]'"):
        importlib.import_module("fastnn.sklearn")


# -- classifier ----------------------------------------------------------------------------------
def test_classifier_fits_moons(moons):
    x, y = moons
    clf = MLPClassifier(**FAST).fit(x, y)
    assert clf.score(x, y) > 0.95
    assert_array_equal(clf.classes_, [0, 1])
    assert clf.n_features_in_ == 2
    assert clf.n_outputs_ == 2
    assert isinstance(clf.model_, fastnn.MLP) and clf.model_.sizes == (2, 32, 2)
    assert not clf.model_.training
    assert isinstance(clf.history_, fastnn.History)
    assert clf.n_iter_ == len(clf.loss_curve_) == clf.history_.epochs
    assert clf.loss_ == clf.loss_curve_[-1] and clf.best_loss_ == min(clf.loss_curve_)
    assert clf.loss_curve_[-1] < clf.loss_curve_[0]
    assert clf.best_validation_score_ is None


def test_predict_proba(blobs):
    x, y = blobs
    clf = MLPClassifier(**FAST).fit(x, y)
    proba = clf.predict_proba(x)
    assert proba.shape == (len(x), 3)
    assert np.all(proba >= 0)
    assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert_array_equal(clf.predict(x), clf.classes_[proba.argmax(axis=1)])
    assert_allclose(clf.predict_log_proba(x), np.log(proba), rtol=1e-4, atol=1e-5)
    assert clf.score(x, y) > 0.9


@pytest.mark.parametrize(
    "labels",
    [np.array(["cat", "dog", "emu"]), np.array([-5, 10, 7]), np.array([2.0, 0.0, 1.0])],
    ids=["strings", "ints", "whole-floats"],
)
def test_labels_round_trip(blobs, labels):
    x, y = blobs
    named = labels[y]
    clf = MLPClassifier(**FAST).fit(x, named)
    assert_array_equal(clf.classes_, np.sort(labels))
    pred = clf.predict(x)
    assert pred.dtype == named.dtype
    assert set(pred) <= set(labels)
    assert np.mean(pred == named) > 0.9
    # Column j of predict_proba is the probability of classes_[j].
    assert_array_equal(clf.classes_[clf.predict_proba(x).argmax(axis=1)], pred)


def test_single_class_is_refused(moons):
    x, _ = moons
    with pytest.raises(ValueError, match="one class"):
        MLPClassifier(**FAST).fit(x, np.ones(len(x), dtype=int))


def test_continuous_targets_are_refused_by_the_classifier(sine):
    x, y = sine
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier(**FAST).fit(x, y)


# -- regressor -----------------------------------------------------------------------------------
def test_regressor_fits_sine(sine):
    x, y = sine
    reg = MLPRegressor(
        hidden_layer_sizes=(32, 32),
        activation="tanh",
        learning_rate_init=0.01,
        max_iter=150,
        random_state=0,
    ).fit(x, y)
    pred = reg.predict(x)
    assert pred.shape == y.shape and pred.dtype == np.float64
    assert reg.score(x, y) > 0.95
    assert reg.n_outputs_ == 1 and reg.model_.sizes == (1, 32, 32, 1)


def test_regressor_multi_output(sine):
    x, y = sine
    targets = np.column_stack([y, np.cos(x).ravel()])
    reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", **_no_size(FAST))
    pred = reg.fit(x, targets).predict(x)
    assert pred.shape == (len(x), 2) and reg.n_outputs_ == 2
    # One target as a column predicts (n,), as scikit-learn's MLPRegressor does.
    assert reg.fit(x, y[:, None]).predict(x).shape == (len(x),)


@pytest.mark.parametrize("activation, factor", [("relu", 6.0), ("logistic", 2.0)])
def test_defaults_follow_scikit_learn(moons, activation, factor, monkeypatch):
    # scikit-learn's Glorot-uniform initial weights and biases, bound sqrt(factor / (fan_in +
    # fan_out)); its alpha, which adds alpha * W / batch_size to the gradient; float64
    # probabilities.
    from fastnn.sklearn._training import _glorot_uniform

    net = fastnn.MLP([2, 300, 200, 2], seed=0)
    _glorot_uniform(net, activation, np.random.SeedSequence(1))
    for layer in [m for m in net.modules() if isinstance(m, fastnn.Linear)]:
        bound = np.sqrt(factor / (layer.in_features + layer.out_features))
        for a in (layer.weight.data, layer.bias.data):
            assert np.abs(a).max() <= bound
            if a.size >= 200:  # uniform: the variance of U(-bound, bound) is bound^2 / 3
                assert abs(float(a.var()) - bound**2 / 3) < 0.25 * bound**2 / 3
    decays = []
    real = fastnn.optim.get

    def spy(name, params, **kw):
        decays.append(kw["weight_decay"])
        return real(name, params, **kw)

    monkeypatch.setattr(fastnn.optim, "get", spy)
    x, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), activation=activation, alpha=0.5, batch_size=25)
    clf.set_params(max_iter=2).fit(x, y)
    assert decays == [0.5 / 25]
    assert clf.predict_proba(x).dtype == np.float64


def test_fitted_attributes_as_scikit_learn_documents(moons):
    x, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=12, random_state=0).fit(x, y)
    assert clf.n_layers_ == 4 and clf.t_ == clf.n_iter_ * len(x)
    assert [c.shape for c in clf.coefs_] == [(2, 16), (16, 8), (8, 2)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (8,), (2,)]
    # The arrays are the network's parameters (copies): the network reproduces predict.
    h = x.astype(np.float32)
    for i, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_, strict=True)):
        h = h @ w + b
        if i < 2:
            h = np.maximum(h, 0)
    assert_array_equal(clf.classes_[h.argmax(axis=1)], clf.predict(x))
    clf.coefs_[0][:] = 0
    assert np.abs(clf.coefs_[0]).max() > 0
    assert clf.validation_scores_ is None
    stopped = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, random_state=0)
    stopped.set_params(max_iter=30).fit(x, y)
    scores = stopped.validation_scores_
    assert len(scores) == stopped.n_iter_ and all(0 <= v <= 1 for v in scores)
    assert stopped.best_validation_score_ == max(scores)
    with pytest.raises(NotFittedError):
        MLPClassifier().coefs_  # noqa: B018


def test_loss_curve_has_the_l2_term_and_tol_stops_as_scikit_learn(moons):
    from types import SimpleNamespace

    from fastnn.sklearn._training import _Stopping

    x, y = moons
    clf = MLPClassifier(hidden_layer_sizes=(8,), alpha=0.3, batch_size=64, max_iter=4)
    clf.set_params(random_state=0).fit(x, y)
    batches = -(-len(x) // 64)
    squares = sum(float(np.sum(w.astype(np.float64) ** 2)) for w in clf.coefs_)
    penalty = 0.5 * 0.3 * squares * batches / len(x)
    assert clf.loss_curve_[-1] == pytest.approx(clf.history_["loss"][-1] + penalty, rel=1e-12)
    assert all(a > b for a, b in zip(clf.loss_curve_, clf.history_["loss"], strict=True))
    # scikit-learn's rule: steps of 0.6 tol each count as no improvement (the best follows
    # them); patience 2 stops on the third. EarlyStopping would reset after two small steps.
    trainer = SimpleNamespace(stop_training=False)
    stop = _Stopping("loss", patience=2, min_delta=1e-4)
    for epoch, value in enumerate([1.0, 1.0 - 0.6e-4, 1.0 - 1.2e-4, 1.0 - 1.8e-4]):
        stop.on_epoch_end(trainer, epoch, {"loss": value})
    assert trainer.stop_training and stop.stopped_epoch == 3 and stop.best_epoch == 3


def _no_size(params):
    return {k: v for k, v in params.items() if k != "hidden_layer_sizes"}


# -- scikit-learn's machinery --------------------------------------------------------------------
@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_get_params_are_the_constructor_params(cls):
    signature = inspect.signature(cls)
    params = cls().get_params()
    assert set(params) == set(signature.parameters)
    assert params == {k: p.default for k, p in signature.parameters.items()}
    sizes = [8, 4]
    est = cls(hidden_layer_sizes=sizes, activation="nonsense", alpha=-1)  # no checks in __init__
    assert est.get_params()["hidden_layer_sizes"] is sizes
    assert est.get_params()["activation"] == "nonsense" and est.alpha == -1


def test_set_params(moons):
    x, y = moons
    clf = MLPClassifier(**FAST)
    assert clf.set_params(hidden_layer_sizes=(8, 8), activation="logistic") is clf
    assert clf.get_params()["hidden_layer_sizes"] == (8, 8)
    clf.fit(x, y)
    assert clf.model_.sizes == (2, 8, 8, 2) and clf.model_.activation == "sigmoid"
    with pytest.raises(ValueError, match="Invalid parameter"):
        clf.set_params(learning_rat=0.1)


def test_clone(moons):
    x, y = moons
    clf = MLPClassifier(**FAST, dropout=0.1).fit(x, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "model_")
    assert_array_equal(twin.fit(x, y).predict_proba(x), clf.predict_proba(x))


def test_pipeline(moons):
    x, y = moons
    x = x * [100.0, 0.01] + [1000.0, -5.0]  # badly scaled features
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", MLPClassifier(**FAST))])
    assert pipe.fit(x, y).score(x, y) > 0.95
    assert pipe.predict_proba(x).shape == (len(x), 2)


def test_grid_search(moons):
    x, y = moons
    # alpha=5 is a weight decay strong enough to flatten the network.
    grid = {"alpha": [1e-4, 5.0], "hidden_layer_sizes": [(8,), (16,)]}
    search = GridSearchCV(MLPClassifier(**_no_size(FAST)), grid, cv=3).fit(x, y)
    assert search.best_params_["alpha"] == 1e-4
    assert search.best_score_ > 0.9
    assert search.score(x, y) > 0.9
    assert isinstance(search.best_estimator_.model_, fastnn.MLP)


def test_pickle_and_deepcopy(blobs):
    x, y = blobs
    clf = MLPClassifier(**FAST, batchnorm=True).fit(x, y)
    expected = clf.predict_proba(x)
    for twin in (pickle.loads(pickle.dumps(clf)), copy.deepcopy(clf)):
        assert_array_equal(twin.predict_proba(x), expected)
        assert not twin.model_.training
        assert twin.loss_curve_ == clf.loss_curve_
    assert isinstance(clf.model_, fastnn.MLP)  # pickling left the original as it was


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_not_fitted(cls, moons):
    x, y = moons
    est = cls()
    methods = ["predict", "predict_proba"] if cls is MLPClassifier else ["predict"]
    for name in methods:
        with pytest.raises(NotFittedError):
            getattr(est, name)(x)
    with pytest.raises(NotFittedError):
        est.score(x, y)


def test_wrong_number_of_features(moons):
    x, y = moons
    clf = MLPClassifier(**FAST).fit(x, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(np.zeros((3, 5)))


# -- randomness ----------------------------------------------------------------------------------
def test_same_random_state_same_predictions(blobs):
    x, y = blobs
    params = dict(FAST, dropout=0.2, random_state=7)
    a = MLPClassifier(**params).fit(x, y)
    b = MLPClassifier(**params).fit(x, y)
    assert_array_equal(a.predict_proba(x), b.predict_proba(x))
    assert a.loss_curve_ == b.loss_curve_
    c = MLPClassifier(**dict(params, random_state=8)).fit(x, y)
    assert not np.array_equal(a.predict_proba(x), c.predict_proba(x))


@pytest.mark.parametrize(
    "make", [np.random.RandomState, np.random.default_rng], ids=["RandomState", "Generator"]
)
def test_random_state_objects(blobs, make):
    x, y = blobs
    a = MLPClassifier(**dict(FAST, random_state=make(3))).fit(x, y)
    b = MLPClassifier(**dict(FAST, random_state=make(3))).fit(x, y)
    assert_array_equal(a.predict_proba(x), b.predict_proba(x))


def test_unseeded_fits_differ(moons):
    x, y = moons
    params = dict(FAST, random_state=None, max_iter=2)
    a = MLPClassifier(**params).fit(x, y)
    b = MLPClassifier(**params).fit(x, y)
    assert not np.array_equal(a.model_[0].weight.data, b.model_[0].weight.data)


# -- stopping ------------------------------------------------------------------------------------
def test_early_stopping_stops_before_max_iter():
    # 100 validation samples: accuracy in steps of 1% rather than a 30-sample set's 3%.
    x, y = make_moons(1000, noise=0.1, random_state=0)
    clf = MLPClassifier(**dict(FAST, max_iter=500), early_stopping=True).fit(x, y)
    assert clf.n_iter_ < 500
    assert clf.history_.stopped_early
    assert "val_accuracy" in clf.history_
    assert clf.best_validation_score_ == max(clf.history_["val_accuracy"]) > 0.95
    assert clf.score(x, y) > 0.95
    assert clf.best_loss_ is None


def test_regressor_early_stopping(sine):
    x, y = sine
    reg = MLPRegressor(**dict(FAST, max_iter=500), early_stopping=True, tol=1e-3).fit(x, y)
    assert reg.n_iter_ < 500
    assert reg.best_validation_score_ > 0.5  # validation R^2


def test_training_loss_stopping(moons):
    x, y = moons
    # No epoch improves the loss by 10: stop once n_iter_no_change epochs after the first fail.
    clf = MLPClassifier(**FAST, tol=10.0, n_iter_no_change=3).fit(x, y)
    assert clf.n_iter_ == 5 and clf.history_.stopped_early


def test_convergence_warning(moons):
    x, y = moons
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(**dict(FAST, max_iter=3)).fit(x, y)


# -- parameters ----------------------------------------------------------------------------------
def test_bad_activation_lists_the_valid_ones(moons):
    x, y = moons
    with pytest.raises(ValueError, match="unknown activation 'swish'.*logistic, relu, sigmoid"):
        MLPClassifier(activation="swish").fit(x, y)
    with pytest.raises(ValueError, match="'identity'.*no linear hidden layers"):
        MLPRegressor(activation="identity").fit(x, y)


def test_bad_solver_lists_the_valid_ones(moons):
    x, y = moons
    with pytest.raises(ValueError, match="unknown solver 'newton'.*sgd, momentum.*adamw"):
        MLPClassifier(solver="newton").fit(x, y)
    with pytest.raises(ValueError, match="'lbfgs' is not available in fastnn.*sgd, momentum"):
        MLPClassifier(solver="lbfgs").fit(x, y)


@pytest.mark.parametrize(
    "params, error, match",
    [
        (dict(hidden_layer_sizes=(8, 0)), ValueError, "hidden layer size"),
        (dict(hidden_layer_sizes="wide"), TypeError, "hidden layer size"),
        (dict(alpha=-1.0), ValueError, "alpha"),
        (dict(learning_rate_init=0.0), ValueError, "learning_rate_init"),
        (dict(max_iter=0), ValueError, "max_iter"),
        (dict(batch_size=0), ValueError, "batch_size"),
        (dict(batch_size="big"), TypeError, "batch_size"),
        (dict(n_iter_no_change=0), ValueError, "n_iter_no_change"),
        (dict(tol=-1.0), ValueError, "tol"),
        (dict(early_stopping=True, validation_fraction=1.0), ValueError, "validation_fraction"),
        (dict(dropout=1.0), ValueError, "dropout"),
        (dict(dtype="float16"), ValueError, "dtype"),
        (dict(random_state=-1), ValueError, "random_state"),
        (dict(random_state="seed"), TypeError, "random_state"),
    ],
)
def test_bad_parameters_fail_in_fit(moons, params, error, match):
    x, y = moons
    est = MLPClassifier(**params)  # stored as given
    # A wrong type is a TypeError, a wrong value a ValueError.
    with pytest.raises(error, match=match):
        est.fit(x, y)


@pytest.mark.parametrize("solver", ["sgd", "momentum", "nesterov", "rmsprop", "adamw"])
def test_solvers(moons, solver):
    x, y = moons
    lr = 0.1 if solver in ("sgd", "momentum", "nesterov") else 0.01
    clf = MLPClassifier(**dict(FAST, learning_rate_init=lr), solver=solver.upper()).fit(x, y)
    assert clf.score(x, y) > 0.85


def test_model_options(moons):
    x, y = moons
    clf = MLPClassifier(
        hidden_layer_sizes=16, activation="elu", batchnorm=True, dropout=0.1, dtype="float64"
    )
    clf.set_params(**_no_size(FAST)).fit(x, y)
    assert clf.model_.sizes == (2, 16, 2) and clf.model_.batchnorm
    assert clf.model_.dtype == np.float64 and clf.model_.dropout == 0.1
    assert clf.predict_proba(x).dtype == np.float64
    # No hidden layer: multinomial logistic regression.
    linear = MLPClassifier(hidden_layer_sizes=(), **_no_size(FAST)).fit(x, y)
    assert linear.model_.sizes == (2, 2)


def test_alpha_shrinks_weights(moons):
    x, y = moons
    norms = [
        np.linalg.norm(MLPClassifier(**FAST, alpha=alpha).fit(x, y).model_[0].weight.data)
        for alpha in (0.0, 1.0)
    ]
    assert norms[1] < 0.75 * norms[0]


def test_batch_size(moons):
    x, y = moons
    clf = MLPClassifier(**dict(FAST, max_iter=2, batch_size=50)).fit(x, y)
    assert clf.n_iter_ == 2
    with pytest.warns(UserWarning, match="batch_size 1000 is larger than the 300"):
        MLPClassifier(**dict(FAST, max_iter=2, batch_size=1000)).fit(x, y)


# -- scikit-learn's common estimator checks ------------------------------------------------------
# In float32 a BLAS product's rounding depends on how many rows it gets, so predicting a subset
# differs from predicting all rows by ~1e-7, above the check's tolerance (float64 passes).
SUBSET = {"check_methods_subset_invariance": "float32 BLAS rounding depends on the batch size"}
# Weights of 0-4 against repeated rows: the two fits add the same terms in other orders, and
# in float32 the 200 epochs end 1e-5 apart, above the check's rtol of 1e-7. In float64 both
# estimators pass it (test_sample_weights_equal_repeated_samples_in_float64).
FLOAT32 = "float32: the weighted and the repeated sums round differently (1e-5 apart)"
WEIGHTS = {
    "check_sample_weight_equivalence_on_dense_data": FLOAT32,
    "check_sample_weight_equivalence_on_sparse_data": FLOAT32,
}

if parse_version(sklearn.__version__) >= parse_version("1.6"):
    from sklearn.utils.estimator_checks import parametrize_with_checks

    @parametrize_with_checks(
        [MLPClassifier(hidden_layer_sizes=(32,)), MLPRegressor(hidden_layer_sizes=(32,))],
        expected_failed_checks=lambda estimator: {**SUBSET, **WEIGHTS},
    )
    def test_sklearn_compatible(estimator, check):
        check(estimator)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_sample_weights_equal_repeated_samples_in_float64(cls):
    from sklearn.utils import estimator_checks as checks

    for check in (
        checks.check_sample_weight_equivalence_on_dense_data,
        checks.check_sample_weight_equivalence_on_sparse_data,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            check(cls.__name__, cls(hidden_layer_sizes=(32,), dtype="float64"))


# -- sample weights, multilabel, partial_fit, warm_start, scikit-learn's solver settings -------
def test_sample_weight_shifts_the_decision(moons):
    x, y = moons
    plain = MLPClassifier(**FAST).fit(x, y)
    w = np.where(y == 0, 20.0, 1.0)
    weighted = MLPClassifier(**FAST).fit(x, y, sample_weight=w)
    # Class 0 weighs 20 times more: the fit calls it more often where the classes meet.
    assert (weighted.predict(x) == 0).sum() > (plain.predict(x) == 0).sum()
    with pytest.raises(ValueError, match="at least one non-zero"):
        MLPClassifier(**FAST).fit(x, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="Negative values in data"):
        MLPClassifier(**FAST).fit(x, y, sample_weight=-np.ones(len(y)))


def test_zero_weights_equal_removed_samples_in_float64(blobs):
    x, y = blobs
    w = np.ones(len(y))
    w[::3] = 0
    params = dict(FAST, batch_size=len(y), shuffle=False, dtype="float64", max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = MLPClassifier(**params).fit(x, y, sample_weight=w)
        b = MLPClassifier(**dict(params, batch_size=int(w.sum()))).fit(x[w > 0], y[w > 0])
    assert_allclose(a.predict_proba(x), b.predict_proba(x), rtol=1e-9, atol=1e-12)
    assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-10)


def test_multilabel_against_scikit_learn():
    from sklearn.datasets import make_multilabel_classification
    from sklearn.neural_network import MLPClassifier as SkMLP

    x, y = make_multilabel_classification(400, n_features=10, n_classes=4, random_state=0)
    x = StandardScaler().fit_transform(x)
    train, test = slice(0, 300), slice(300, None)
    params = dict(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(**params).fit(x[train], y[train])
        theirs = SkMLP(**params).fit(x[train], y[train])
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.n_outputs_ == theirs.n_outputs_ == 4
    pred = ours.predict(x[test])
    assert pred.shape == (100, 4) and set(np.unique(pred)) <= {0, 1}
    proba = ours.predict_proba(x[test])
    logits = ours.model_.predict(x[test].astype(np.float32)).astype(np.float64)
    assert_allclose(proba, 1 / (1 + np.exp(-logits)), rtol=1e-12)
    assert_array_equal(pred, proba > 0.5)
    assert_allclose(ours.predict_log_proba(x[test]), np.log(proba), rtol=1e-10)
    # Per-label accuracy within a few points of scikit-learn's.
    ours_acc = (pred == y[test]).mean()
    theirs_acc = (theirs.predict(x[test]) == y[test]).mean()
    assert ours_acc > 0.7 and abs(ours_acc - theirs_acc) < 0.05, (ours_acc, theirs_acc)
    # The training loss is scikit-learn's binary log loss plus its L2 term: at the end of
    # training their per-epoch figures agree with a direct evaluation to within the
    # last epoch's movement.
    from sklearn.neural_network._base import binary_log_loss

    direct = binary_log_loss(y[train], ours.predict_proba(x[train]))
    direct += 0.5 * ours.alpha * sum((w.astype(float) ** 2).sum() for w in ours.coefs_) / 300
    assert ours.loss_curve_[-1] == pytest.approx(direct, rel=0.05)
    with pytest.raises(ValueError, match="multilabel y must hold only 0 and 1"):
        MLPClassifier(**FAST).fit(x[train], 2 * y[train])


def test_partial_fit_goes_on_with_the_optimizer_state(blobs):
    x, y = blobs
    params = dict(FAST, shuffle=False, dtype="float64")
    stepwise = MLPClassifier(**params)
    for _ in range(3):
        stepwise.partial_fit(x, y, classes=np.unique(y))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = MLPClassifier(**dict(params, max_iter=3)).fit(x, y)
    # Three one-epoch calls are three epochs of one fit: the same Adam moments carry on.
    assert_allclose(stepwise.predict_proba(x), whole.predict_proba(x), rtol=1e-10)
    assert_allclose(stepwise.loss_curve_, whole.loss_curve_, rtol=1e-10)
    assert stepwise.n_iter_ == 3 and stepwise.t_ == 3 * len(y)


def test_partial_fit_checks_classes(blobs):
    x, y = blobs
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        MLPClassifier(**FAST).partial_fit(x, y)
    clf = MLPClassifier(**FAST).partial_fit(x[y < 2], y[y < 2], classes=[0, 1, 2])
    assert_array_equal(clf.classes_, [0, 1, 2])
    clf.partial_fit(x, y)  # class 2 appears now: it was announced
    with pytest.raises(ValueError, match="classes not in `self.classes_`"):
        clf.partial_fit(x, y + 1)
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(x, y, classes=[0, 1])
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPClassifier(**FAST, early_stopping=True).partial_fit(x, y, classes=[0, 1, 2])
    reg = MLPRegressor(**FAST).partial_fit(x, y.astype(float))
    reg.partial_fit(x, y.astype(float))
    assert reg.n_iter_ == 2 and reg.predict(x).shape == (len(y),)


def test_warm_start_continues_from_the_fitted_weights(blobs):
    x, y = blobs
    clf = MLPClassifier(**dict(FAST, max_iter=5, tol=0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(x, y)
        first = clf.coefs_[0].copy()
        clf.fit(x, y)  # warm_start off: a new network
        assert_array_equal(clf.coefs_[0], first)
        clf.set_params(warm_start=True)
        clf.fit(x, y)
    assert clf.n_iter_ == 10 and len(clf.loss_curve_) == 10 and clf.t_ == 10 * len(y)
    assert clf.loss_curve_[5] < clf.loss_curve_[0]
    assert not np.array_equal(clf.coefs_[0], first)
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has the same"):
        clf.fit(x[y < 2], y[y < 2])
    with pytest.raises(ValueError, match="the fitted network is 6-32-3.*6-8-3"):
        clf.set_params(hidden_layer_sizes=(8,)).fit(x, y)


@pytest.mark.parametrize(
    "params, kind, settings",
    [
        (dict(solver="sgd"), "Nesterov", dict(momentum=0.9)),
        (dict(solver="sgd", nesterovs_momentum=False, momentum=0.5), "Momentum", {}),
        (dict(solver="sgd", momentum=0.0), "SGD", dict(momentum=0.0)),
        (dict(beta_1=0.8, beta_2=0.99, epsilon=1e-6), "Adam", dict(betas=(0.8, 0.99))),
    ],
)
def test_solver_settings_as_scikit_learn(blobs, params, kind, settings):
    x, y = blobs
    clf = MLPClassifier(**FAST, **params).partial_fit(x, y, classes=[0, 1, 2])
    opt = clf._optimizer_
    assert type(opt).__name__ == kind
    for name, value in settings.items():
        assert getattr(opt, name) == value


@pytest.mark.parametrize("schedule", ["constant", "invscaling", "adaptive"])
def test_learning_rate_schedules_stop_where_scikit_learn_stops(moons, schedule):
    from sklearn.neural_network import MLPClassifier as SkMLP

    x, y = moons
    # tol so large that no epoch counts as an improvement: "adaptive" divides the rate by 5
    # after each n_iter_no_change + 1 epochs until it is at most 1e-6, then stops.
    params = dict(
        hidden_layer_sizes=(16,),
        solver="sgd",
        learning_rate=schedule,
        learning_rate_init=0.01,
        tol=1e3,
        n_iter_no_change=2,
        max_iter=100,
        random_state=0,
    )
    ours, theirs = MLPClassifier(**params).fit(x, y), SkMLP(**params).fit(x, y)
    assert ours.n_iter_ == theirs.n_iter_ == {"adaptive": 22}.get(schedule, 4)


def test_invscaling_sets_the_rate_from_the_samples_seen(moons):
    x, y = moons
    clf = MLPClassifier(**dict(FAST, solver="sgd", learning_rate="invscaling", power_t=0.25))
    clf.partial_fit(x, y, classes=[0, 1]).partial_fit(x, y)
    assert clf._optimizer_.lr == pytest.approx(0.01 / (2 * len(y) + 1) ** 0.25, rel=1e-12)


def test_sparse_input_trains_as_dense(blobs):
    import scipy.sparse

    x, y = blobs
    dense = MLPClassifier(**FAST).fit(x, y)
    sparse = MLPClassifier(**FAST).fit(scipy.sparse.csr_matrix(x), y)
    assert_allclose(sparse.predict_proba(scipy.sparse.csr_matrix(x)), dense.predict_proba(x))
