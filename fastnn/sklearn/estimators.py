"""``MLPClassifier`` and ``MLPRegressor``: scikit-learn's MLP estimators over fastnn."""

import warnings

import numpy as np
from scipy.special import expit, log_expit, log_softmax, softmax
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels

from .._checks import check_choice
from ..errors import InvalidValueError
from ._base import _BaseMLP

__all__ = ["MLPClassifier", "MLPRegressor"]


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier trained with fastnn: softmax + cross-entropy, or
    for a multilabel y (a 0/1 indicator matrix) one logistic output per label with binary
    cross-entropy.

    Parameters: scikit-learn's ``MLPClassifier``'s, with its names and defaults (README's
    "scikit-learn" section has the table of what matches and what differs), plus fastnn's
    ``batchnorm``, ``dropout`` and ``dtype`` ("float32" or "float64"). In short:

    hidden_layer_sizes, activation : the network; the initial weights and biases are
        scikit-learn's (uniform in +-sqrt(6 / (fan_in + fan_out)), 2 instead of 6 for
        "logistic"). ``activation`` also takes fastnn's names; "identity" is refused.
    solver : "adam", "sgd" (with ``momentum`` and ``nesterovs_momentum``, as scikit-learn's),
        or a name of ``fastnn.optim.OPTIMIZERS``; "lbfgs" is refused.
    alpha : L2 penalty: ``alpha * W / (the batch's total sample weight)`` is added to the
        weight gradients (the optimizer's ``weight_decay``; a last, smaller batch gets the
        mean batch's). With "adamw" the decay is decoupled.
    learning_rate, learning_rate_init, power_t : "constant", "invscaling" or "adaptive"
        (the SGD solvers), as scikit-learn's.
    beta_1, beta_2, epsilon : Adam's.
    batch_size, max_iter, shuffle, random_state, verbose, warm_start : as scikit-learn's
        (``random_state``: None, an int, a RandomState or a Generator).
    tol, n_iter_no_change, early_stopping, validation_fraction : scikit-learn's stopping
        rule on the training loss (with the L2 term) or the validation score.
    max_fun : accepted and unused (lbfgs only).

    Attributes
    ----------
    classes_, n_features_in_, model_ (the trained ``fastnn.MLP``, in eval mode), history_
    (its ``fastnn.History``, whose "loss" is the data loss), loss_curve_ (training loss per
    epoch with scikit-learn's L2 term, alpha/2 ||W||^2 per batch; ``tol`` stopping watches it),
    loss_ (the last), best_loss_, n_iter_ (epochs run), n_outputs_ (output units: one per
    class, two for two classes, one per label), n_layers_, t_ (training samples seen),
    coefs_ and intercepts_ (the Linear layers' weights (in, out) and biases, copies),
    validation_scores_ (validation accuracy per epoch with early stopping, else None),
    best_validation_score_ (that of the kept weights), out_activation_ ("softmax" or
    "logistic").
    """

    def fit(self, X, y, sample_weight=None):
        """Train on X (n_samples, n_features) and labels y (n_samples,), or a 0/1 indicator
        matrix (n_samples, n_labels) for multilabel problems; ``sample_weight`` (n_samples,)
        weighs each sample's loss. Returns self."""
        return self._fit_classes(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """One epoch over (X, y), going on from the fitted model (and its optimizer's state).
        The first call needs ``classes``, every label there will be (for a multilabel y, not
        needed). Returns self."""
        if not hasattr(self, "model_"):
            if classes is None and type_of_target(y) != "multilabel-indicator":
                raise InvalidValueError("classes must be passed on the first call to partial_fit.")
        elif classes is not None and not np.array_equal(
            self.classes_, unique_labels(np.asarray(classes))
        ):
            raise InvalidValueError(
                f"`classes={list(classes)!r}` is not the same as on the first call to "
                f"partial_fit, which was {list(self.classes_)!r}"
            )
        return self._fit_classes(X, y, sample_weight, incremental=True, classes=classes)

    def _fit_classes(self, X, y, sample_weight, incremental, classes=None):
        X, y = self._validate(X, y, incremental)
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected. Please change "
                "the shape of y to (n_samples,), for example using ravel().",
                DataConversionWarning,
                stacklevel=3,
            )
            y = y.ravel()
        check_classification_targets(y)
        multilabel = y.ndim == 2
        continues = self._continues(incremental)
        if multilabel:
            found = np.arange(y.shape[1])
            if not np.isin(y, (0, 1)).all():
                raise InvalidValueError("a multilabel y must hold only 0 and 1")
        else:
            found = np.unique(y)
        if not continues:
            known = found if classes is None or multilabel else unique_labels(np.asarray(classes))
            if not multilabel and classes is not None and np.setdiff1d(found, known).size:
                raise InvalidValueError(
                    f"`y` has classes not in `classes`: {list(np.setdiff1d(found, known))!r}"
                )
            if len(known) < 2 and not multilabel:
                raise InvalidValueError(
                    f"MLPClassifier needs samples of at least 2 classes in the data, "
                    f"but the data contains only one class: {known[0]!r}"
                )
            self.classes_ = known
            self._multilabel = multilabel
        else:
            if multilabel != self._multilabel or (multilabel and len(found) != len(self.classes_)):
                raise InvalidValueError(
                    "y is not the kind of target the model was fitted on "
                    f"({'multilabel' if self._multilabel else 'one label per sample'}, "
                    f"{len(self.classes_)} classes)"
                )
            if self.warm_start and not incremental and set(found) != set(self.classes_):
                raise InvalidValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {found}"
                )
            if np.setdiff1d(found, self.classes_).size:
                raise InvalidValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {found}."
                )
        if multilabel:
            # Logistic outputs, one per label, trained with binary cross-entropy.
            self._fit(
                X,
                y.astype(X.dtype),
                y.shape[1],
                "binary_cross_entropy",
                None,
                sample_weight,
                incremental,
            )
            self.out_activation_ = "logistic"
        else:
            encoded = np.searchsorted(self.classes_, y).astype(np.int64).reshape(-1)
            self._fit(
                X, encoded, len(self.classes_), "cross_entropy", encoded, sample_weight, incremental
            )
            self.out_activation_ = "softmax"
        return self

    def _validation_score(self, outputs, labels, weights=None):
        if labels.ndim == 2:  # multilabel: the exact-match accuracy, as scikit-learn's score
            return float(
                accuracy_score(labels, (outputs > 0).astype(labels.dtype), sample_weight=weights)
            )
        return float(accuracy_score(labels, outputs.argmax(axis=1), sample_weight=weights))

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes), columns in ``classes_`` order (softmax);
        for a multilabel fit each label's probability (logistic), which need not sum to 1."""
        X = self._check_X(X)
        z = self.model_.predict(X).astype(np.float64)  # float64, as scikit-learn's
        return expit(z) if self._multilabel else softmax(z, axis=1)

    def predict_log_proba(self, X):
        """Log of ``predict_proba``, from the logits (no log(0) for tiny probabilities)."""
        X = self._check_X(X)
        z = self.model_.predict(X).astype(np.float64)
        return log_expit(z) if self._multilabel else log_softmax(z, axis=1)

    def predict(self, X):
        """The most probable class of each row, as labels of ``classes_``; for a multilabel
        fit the indicator matrix of the labels with probability above 1/2."""
        X = self._check_X(X)
        z = self.model_.predict(X)
        if self._multilabel:
            return (z > 0).astype(np.int64)
        return self.classes_[z.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multilabel": True}


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor trained with fastnn (mean squared error).

    Takes the parameters of ``MLPClassifier`` (see there) and ``loss`` ("squared_error");
    ``early_stopping`` monitors the validation R^2 (a random, unstratified split). The loss is
    fastnn's ``MSELoss``, the mean over all outputs (scikit-learn's is half of that). Targets
    are not scaled: standardise them (``TransformedTargetRegressor``) when they are far from
    unit scale.

    Attributes: as ``MLPClassifier``'s, less ``classes_``; ``n_outputs_`` is the number of
    targets and ``best_validation_score_`` the validation R^2 of the kept weights.
    """

    # scikit-learn's MLPRegressor also takes ``loss`` ("squared_error"; its "poisson" is not
    # here), so the regressor lists every parameter again (scikit-learn reads them from here).
    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        batchnorm=False,
        dropout=0.0,
        dtype="float32",
    ):
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            max_fun=max_fun,
            batchnorm=batchnorm,
            dropout=dropout,
            dtype=dtype,
        )
        self.loss = loss

    def fit(self, X, y, sample_weight=None):
        """Train on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_targets);
        ``sample_weight`` (n_samples,) weighs each sample's loss. Returns self."""
        return self._fit_targets(X, y, sample_weight, incremental=False)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), going on from the fitted model (and its optimizer's
        state). Returns self."""
        return self._fit_targets(X, y, sample_weight, incremental=True)

    def _fit_targets(self, X, y, sample_weight, incremental):
        check_choice(self.loss, "loss", ("squared_error",))
        X, y = self._validate(X, y, incremental, y_numeric=True)
        y = np.asarray(y, dtype=X.dtype)
        targets = y.reshape(len(y), -1)
        # One target, (n,) or (n, 1), predicts (n,), as scikit-learn's MLPRegressor.
        self._y_1d = targets.shape[1] == 1
        self._fit(X, targets, targets.shape[1], "mse", None, sample_weight, incremental)
        self.out_activation_ = "identity"
        return self

    def _validation_score(self, outputs, targets, weights=None):
        return float(r2_score(targets, outputs, sample_weight=weights))

    def predict(self, X):
        """Predictions (n_samples,) when fit with 1-D y, else (n_samples, n_targets); float64
        whatever the model's dtype, as scikit-learn's regressors."""
        X = self._check_X(X)
        out = self.model_.predict(X).astype(np.float64)
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
