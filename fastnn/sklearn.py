"""scikit-learn estimators over fastnn: ``MLPClassifier`` and ``MLPRegressor``.

They take scikit-learn's ``MLPClassifier`` parameter names where the two overlap, so they drop
into pipelines, ``clone`` and grid searches:

    from fastnn.sklearn import MLPClassifier
    clf = MLPClassifier(hidden_layer_sizes=(64, 64), max_iter=50, random_state=0).fit(x, y)
    clf.predict_proba(x_test)   # (n, n_classes), columns in clf.classes_ order

Training is ``fastnn.fit`` on a ``fastnn.MLP`` (kept as ``model_``); its ``History`` is
``history_``. Needs the ``sklearn`` extra: ``pip install 'fastnn[sklearn]'``.
"""

import numbers
import warnings

try:
    import sklearn  # noqa: F401
except ImportError as e:
    raise ImportError("fastnn.sklearn needs scikit-learn: pip install 'fastnn[sklearn]'") from e

import numpy as np
from scipy.special import log_softmax
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6

    def validate_data(estimator, X, y="no_validation", reset=True, **kwargs):
        return estimator._validate_data(X, y, reset=reset, **kwargs)


from . import files, nn, optim
from ._checks import check_choice, check_dtype, check_int, check_real
from .errors import InvalidTypeError, InvalidValueError
from .nn import MLP
from .training import fit as _fit
from .training.callbacks import Callback, EarlyStopping

__all__ = ["MLPClassifier", "MLPRegressor"]

# The activations fastnn's MLP takes (``fastnn.nn.ACTIVATIONS``), under scikit-learn's name
# where it has its own ("logistic"). scikit-learn's "identity" has no fastnn MLP counterpart
# (its hidden layers always have a nonlinearity).
ACTIVATIONS = {"logistic": "sigmoid", **{name: name for name in nn.ACTIVATIONS}}
# The solvers: fastnn's optimizers, by their registry names.
SOLVERS = tuple(optim.OPTIMIZERS)
_MAX_SEED = np.iinfo(np.int32).max


def _seed_sequence(random_state):
    """A SeedSequence from None (fresh entropy), an int, a RandomState or a Generator."""
    if random_state is None:
        return np.random.SeedSequence()
    if isinstance(random_state, np.random.RandomState):
        return np.random.SeedSequence(int(random_state.randint(_MAX_SEED)))
    if isinstance(random_state, np.random.Generator):
        return np.random.SeedSequence(int(random_state.integers(_MAX_SEED)))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return np.random.SeedSequence(check_int(random_state, "random_state", low=0))
    raise InvalidTypeError(
        f"random_state must be None, an int, a numpy RandomState or Generator, got {random_state!r}"
    )


class _ValidationScores(Callback):
    """The estimator's score (accuracy, R^2) on the held-out rows after every epoch, as
    scikit-learn's ``validation_scores_``."""

    def __init__(self, x, y, score):
        self.x, self.y, self.score = x, y, score
        self.values = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.values.append(self.score(trainer.model.predict(self.x), self.y))


class _PenalisedLoss(Callback):
    """scikit-learn's training loss: each batch's mean loss plus alpha/2 ||W||^2 / batch, over
    the epoch's rows, i.e. the data loss plus alpha/2 ||W||^2 batches / rows (with the weights
    at the epoch's end). Put into the epoch's logs for the callbacks after it (early stopping
    on ``tol``, the verbose line); ``history_`` keeps the data loss."""

    def __init__(self, alpha, batches, rows):
        self.scale = 0.5 * alpha * batches / rows
        self.values = []

    def on_epoch_end(self, trainer, epoch, logs):
        squares = sum(
            float(np.dot(w, w))
            for m in trainer.model.modules()
            if isinstance(m, nn.Linear)
            for w in (m.weight.data.ravel().astype(np.float64),)
        )
        logs["loss"] = logs["loss"] + self.scale * squares
        self.values.append(logs["loss"])


class _Stopping(EarlyStopping):
    """scikit-learn's ``tol`` rule: an epoch that does not beat the best by ``tol`` counts
    toward ``n_iter_no_change``, and the best follows every improvement, however small
    (``EarlyStopping`` keeps the best of the last improvement by more than ``min_delta``, so
    two small steps in a row reset its count)."""

    def on_epoch_end(self, trainer, epoch, logs):
        value = float(logs[self.monitor])
        self.wait = 0 if self._improved(value) else self.wait + 1
        if value < self.best if self.mode == "min" else value > self.best:
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True


def _glorot_uniform(model, activation, seed):
    """scikit-learn's MLP initialisation: every Linear's weights and biases uniform in
    +-sqrt(6 / (fan_in + fan_out)) (2 instead of 6 for "logistic"), drawn in layer order."""
    factor = 2.0 if activation == "logistic" else 6.0
    rng = np.random.default_rng(seed.spawn(1)[0])
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            fan_in, fan_out = layer.in_features, layer.out_features
            bound = np.sqrt(factor / (fan_in + fan_out))
            layer.weight.data[...] = rng.uniform(-bound, bound, (fan_in, fan_out))
            if layer.bias is not None:
                layer.bias.data[...] = rng.uniform(-bound, bound, fan_out)


class _BaseMLP(BaseEstimator):
    """What the classifier and the regressor share: parameters, checks and the training run."""

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        batchnorm=False,
        dropout=0.0,
        dtype="float32",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.dtype = dtype

    # -- checks, done in fit (scikit-learn's convention: __init__ only stores) ----------------
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = list(sizes)
        except TypeError:
            raise InvalidValueError(
                f"hidden_layer_sizes must be an int or a sequence of ints, got {sizes!r}"
            ) from None
        return [check_int(s, "hidden layer size", low=1) for s in sizes]

    def _fastnn_activation(self):
        if self.activation == "identity":
            raise InvalidValueError(
                "unknown activation 'identity' (fastnn's MLP has no linear hidden layers); "
                f"expected one of {', '.join(ACTIVATIONS)}"
            )
        return ACTIVATIONS[check_choice(self.activation, "activation", ACTIVATIONS)]

    def _solver(self):
        return check_choice(self.solver, "solver", SOLVERS)

    def _batch_size(self, n):
        if isinstance(self.batch_size, str) and self.batch_size == "auto":
            return min(200, n)
        size = check_int(self.batch_size, "batch_size", low=1)
        if size > n:
            warnings.warn(
                f"batch_size {size} is larger than the {n} training samples; using {n}",
                stacklevel=4,  # the caller of fit
            )
        return min(size, n)

    def _seeds(self):
        """(model seed, fit seed, validation-split seed), all from ``random_state``."""
        model_ss, fit_ss, split_ss = _seed_sequence(self.random_state).spawn(3)
        return model_ss, int(fit_ss.generate_state(1)[0]), int(split_ss.generate_state(1)[0])

    # -- training --------------------------------------------------------------------------
    def _fit(self, X, y, n_outputs, loss, stratify=None):
        """Train a new ``model_`` on validated X and encoded y (labels or float targets)."""
        sizes = [X.shape[1], *self._hidden_sizes(), n_outputs]
        activation = self._fastnn_activation()
        solver = self._solver()
        lr = check_real(self.learning_rate_init, "learning_rate_init", low=0.0, closed="right")
        alpha = check_real(self.alpha, "alpha", low=0.0)
        epochs = check_int(self.max_iter, "max_iter", low=1)
        patience = check_int(self.n_iter_no_change, "n_iter_no_change", low=1)
        tol = check_real(self.tol, "tol", low=0.0)
        model_seed, fit_seed, split_seed = self._seeds()

        validation = None
        if self.early_stopping:
            fraction = check_real(
                self.validation_fraction, "validation_fraction", 0.0, 1.0, "neither"
            )
            try:
                X, X_val, y, y_val = train_test_split(
                    X, y, test_size=fraction, random_state=split_seed, stratify=stratify
                )
            except ValueError:
                if stratify is None:
                    raise
                # Too few samples to give every class a place in both parts: split at random.
                X, X_val, y, y_val = train_test_split(
                    X, y, test_size=fraction, random_state=split_seed
                )
            validation = (X_val, y_val)
            stopper = _Stopping(
                self._monitor, patience=patience, min_delta=tol, restore_best_weights=True
            )
            scores = _ValidationScores(X_val, y_val, self._validation_score)
        else:
            stopper = _Stopping("loss", patience=patience, min_delta=tol)
            scores = None

        model = MLP(
            sizes,
            activation=activation,
            batchnorm=self.batchnorm,
            dropout=self.dropout,
            seed=model_seed,
            dtype=self.dtype,
        )
        _glorot_uniform(model, self.activation, model_seed)
        batch_size = self._batch_size(X.shape[0])
        penalised = _PenalisedLoss(alpha, -(-X.shape[0] // batch_size), X.shape[0])
        callbacks = [penalised, stopper] if scores is None else [penalised, scores, stopper]
        # scikit-learn adds alpha * W / batch_size to the batch-mean loss's gradient.
        opt = optim.get(solver, model.parameters(), lr=lr, weight_decay=alpha / batch_size)
        history = _fit(
            model,
            X,
            y,
            loss=loss,
            optimizer=opt,
            epochs=epochs,
            batch_size=batch_size,
            validation_data=validation,
            callbacks=callbacks,
            verbose=1 if self.verbose else 0,
            seed=fit_seed,
            shuffle=self.shuffle,
        )
        model.eval()

        self.model_ = model
        self.history_ = history
        self.loss_curve_ = list(penalised.values)  # with the L2 term, as scikit-learn's
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = history.epochs
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.t_ = self.n_iter_ * X.shape[0]  # training samples seen, as scikit-learn counts
        self.validation_scores_ = None if scores is None else list(scores.values)
        if validation is None:
            self.best_loss_ = min(self.loss_curve_)
            self.best_validation_score_ = None
        else:
            self.best_loss_ = None
            self.best_validation_score_ = self._validation_score(model.predict(X_val), y_val)
        if not history.stopped_early and not history.interrupted and self.n_iter_ == epochs:
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({epochs}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    # Pickle the model as its architecture and weights: its parameters are views into one
    # buffer, which pickle would not keep, and its work buffers are not worth storing.
    def __getstate__(self):
        state = dict(super().__getstate__())
        model = state.get("model_")
        if model is not None:
            state["model_"] = {
                "architecture": files.architecture(model),
                "dtype": str(model.dtype),
                "state_dict": model.state_dict(),
            }
        return state

    def __setstate__(self, state):
        saved = state.get("model_")
        if isinstance(saved, dict):
            model = files.build(saved["architecture"], saved["dtype"])
            model.load_state_dict(saved["state_dict"])
            state = {**state, "model_": model.eval()}
        super().__setstate__(state)

    # The weights and biases of the Linear layers, as scikit-learn's lists (copies).
    @property
    def coefs_(self):
        check_is_fitted(self, "model_")
        return [m.weight.data.copy() for m in self.model_.modules() if isinstance(m, nn.Linear)]

    @property
    def intercepts_(self):
        check_is_fitted(self, "model_")
        return [m.bias.data.copy() for m in self.model_.modules() if isinstance(m, nn.Linear)]

    def _check_X(self, X):
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=self.model_.dtype)


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier trained with fastnn (softmax + cross-entropy).

    Parameters (scikit-learn's names and defaults; the differences are noted)
    ----------
    hidden_layer_sizes : tuple of int, default (100,). Widths of the hidden layers. The
        initial weights and biases are scikit-learn's: uniform in +-sqrt(6 / (fan_in +
        fan_out)), 2 instead of 6 for "logistic" (not fastnn's He or Xavier normal).
    activation : "logistic" (scikit-learn's name for "sigmoid") or a name of
        ``fastnn.nn.ACTIVATIONS``: "relu", "sigmoid", "tanh", "leaky_relu", "elu", "step".
        scikit-learn's "identity" is refused.
    solver : a name of ``fastnn.optim.OPTIMIZERS``: "sgd", "momentum", "nesterov", "adagrad",
        "rmsprop", "adadelta", "adam" or "adamw" (torch.optim's updates and defaults; "sgd" is
        plain SGD).
    alpha : L2 penalty, as scikit-learn's: ``alpha * W / batch_size`` is added to the
        gradient of the batch-mean loss for weight matrices, not biases (the optimizer's
        ``weight_decay`` is ``alpha / batch_size``; a last, smaller batch gets the same decay,
        where scikit-learn divides by its size). With "adamw" the decay is decoupled.
    batch_size : int or "auto" (min(200, n_samples)).
    learning_rate_init : the optimizer's learning rate (constant; no schedule).
    max_iter : the number of epochs at most.
    shuffle, random_state : reshuffle every epoch; seeds weights, dropout, shuffling and the
        validation split (None, an int, a RandomState or a Generator).
    tol, n_iter_no_change : stop when the training loss (``early_stopping=False``) or the
        validation accuracy (``early_stopping=True``) has not improved by ``tol`` for
        ``n_iter_no_change`` epochs in a row.
    early_stopping, validation_fraction : hold out a stratified ``validation_fraction`` of the
        data, monitor its accuracy and keep the weights of the first best epoch.
    verbose : print one line per epoch (a progress bar on a terminal).
    batchnorm, dropout, dtype : fastnn's ``MLP`` options (``dtype`` "float32" or "float64").

    Attributes
    ----------
    classes_, n_features_in_, model_ (the trained ``fastnn.MLP``, in eval mode), history_
    (its ``fastnn.History``, whose "loss" is the data loss), loss_curve_ (training loss per
    epoch with scikit-learn's L2 term, alpha/2 ||W||^2 per batch; ``tol`` stopping watches it),
    loss_ (the last),
    best_loss_, n_iter_ (epochs run), n_outputs_ (output units: one per class), n_layers_,
    t_ (training samples seen: epochs x rows), coefs_ and intercepts_ (the Linear layers'
    weights (in, out) and biases, copies), validation_scores_ (validation accuracy per epoch
    with early stopping, else None), best_validation_score_ (that of the kept weights).
    """

    _monitor = "val_accuracy"  # what early stopping watches, as scikit-learn's score

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and labels y (n_samples,); returns self."""
        X, y = validate_data(self, X, y, dtype=check_dtype(self.dtype))
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise InvalidValueError(
                f"MLPClassifier needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {classes[0]!r}"
            )
        self.classes_ = classes
        encoded = encoded.astype(np.int64).reshape(-1)
        self._fit(X, encoded, len(classes), "cross_entropy", stratify=encoded)
        self.out_activation_ = "softmax"
        return self

    def _validation_score(self, outputs, labels):
        return float(np.mean(outputs.argmax(axis=1) == labels))

    def predict_proba(self, X):
        """Class probabilities (n_samples, n_classes); columns in ``classes_`` order."""
        X = self._check_X(X)
        return self.model_.predict_proba(X).astype(np.float64)  # as scikit-learn's

    def predict_log_proba(self, X):
        """Log of ``predict_proba``, from the logits (no log(0) for tiny probabilities)."""
        X = self._check_X(X)
        return log_softmax(self.model_.predict(X), axis=1)

    def predict(self, X):
        """The most probable class of each row, as labels of ``classes_``."""
        X = self._check_X(X)
        return self.classes_[self.model_.predict(X).argmax(axis=1)]


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor trained with fastnn (mean squared error).

    Takes the parameters of ``MLPClassifier`` (see there); ``early_stopping`` monitors the
    validation MSE (a random, unstratified split). The loss is fastnn's ``MSELoss``, the mean
    over all outputs (scikit-learn's is half of that). Targets are not scaled: standardise
    them (``TransformedTargetRegressor``) when they are far from unit scale.

    Attributes: as ``MLPClassifier``'s, less ``classes_``; ``n_outputs_`` is the number of
    targets and ``best_validation_score_`` the validation R^2 of the kept weights.
    """

    # Early stopping watches the validation MSE where scikit-learn watches R^2: for one target
    # R^2 = 1 - MSE / var(y), so both pick the same epochs.
    _monitor = "val_loss"

    def fit(self, X, y):
        """Train on X (n_samples, n_features) and y (n_samples,) or (n_samples, n_targets)."""
        dtype = check_dtype(self.dtype)
        X, y = validate_data(self, X, y, dtype=dtype, multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=dtype)
        targets = y.reshape(len(y), -1)
        # One target, (n,) or (n, 1), predicts (n,), as scikit-learn's MLPRegressor.
        self._y_1d = targets.shape[1] == 1
        self._fit(X, targets, targets.shape[1], "mse")
        self.out_activation_ = "identity"
        return self

    def _validation_score(self, outputs, targets):
        return float(r2_score(targets, outputs))

    def predict(self, X):
        """Predictions (n_samples,) when fit with 1-D y, else (n_samples, n_targets); float64
        whatever the model's dtype, as scikit-learn's regressors."""
        X = self._check_X(X)
        out = self.model_.predict(X).astype(np.float64)
        return out.ravel() if self._y_1d else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _more_tags(self):  # scikit-learn < 1.6
        return {"multioutput": True}
