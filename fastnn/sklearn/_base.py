"""``_BaseMLP``: the parameters, checks and training run the classifier and the regressor
share."""

import numbers
import warnings

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

try:
    from sklearn.utils.validation import validate_data
except ImportError:  # scikit-learn < 1.6

    def validate_data(estimator, X, y="no_validation", reset=True, **kwargs):
        return estimator._validate_data(X, y, reset=reset, **kwargs)


from .. import files, nn, optim
from .._checks import check_choice, check_dtype, check_int, check_real
from ..errors import InvalidValueError
from ..nn import MLP
from ..training import fit as _fit
from ._training import (
    _glorot_uniform,
    _InverseScaling,
    _PenalisedLoss,
    _seed_sequence,
    _Stopping,
    _ValidationScores,
)

# scikit-learn's learning-rate schedules for the SGD solvers.
LEARNING_RATES = ("constant", "invscaling", "adaptive")
# The solvers whose steps scikit-learn's ``learning_rate`` schedules (its "sgd"; fastnn's
# "momentum" and "nesterov" are the same update with the momentum fixed on or off).
_SGD_SOLVERS = ("sgd", "momentum", "nesterov")

# The activations fastnn's MLP takes (``fastnn.nn.ACTIVATIONS``), under scikit-learn's name
# where it has its own ("logistic"). scikit-learn's "identity" has no fastnn MLP counterpart
# (its hidden layers always have a nonlinearity).
ACTIVATIONS = {"logistic": "sigmoid", **{name: name for name in nn.ACTIVATIONS}}
# The solvers: fastnn's optimizers, by their registry names.
SOLVERS = tuple(optim.OPTIMIZERS)


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
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
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
        if self.solver == "lbfgs":
            raise InvalidValueError(
                "solver 'lbfgs' is not available in fastnn (its optimizers are stochastic); "
                f"expected one of {', '.join(SOLVERS)}"
            )
        return check_choice(self.solver, "solver", SOLVERS)

    def _batch_size(self, n):
        if isinstance(self.batch_size, str) and self.batch_size == "auto":
            return min(200, n)
        size = check_int(self.batch_size, "batch_size", low=1)
        if size > n:
            warnings.warn(
                f"batch_size {size} is larger than the {n} training samples; using {n}",
                stacklevel=5,  # the caller of fit
            )
        return min(size, n)

    def _optimizer(self, model, solver, lr, decay):
        """The optimizer scikit-learn's settings describe, over ``model``'s parameters."""
        params = model.parameters()
        if solver in _SGD_SOLVERS:
            momentum = check_real(self.momentum, "momentum", 0.0, 1.0, "both")
            if solver == "sgd":  # scikit-learn's: momentum 0.9 with Nesterov's by default
                if momentum == 0:
                    return optim.SGD(params, lr=lr, weight_decay=decay)
                solver = "nesterov" if self.nesterovs_momentum else "momentum"
            elif momentum == 0:
                raise InvalidValueError(f"solver {solver!r} needs momentum > 0, got 0")
            return optim.get(solver, params, lr=lr, momentum=momentum, weight_decay=decay)
        if solver in ("adam", "adamw"):
            betas = (
                check_real(self.beta_1, "beta_1", 0.0, 1.0, "left"),
                check_real(self.beta_2, "beta_2", 0.0, 1.0, "left"),
            )
            eps = check_real(self.epsilon, "epsilon", low=0.0, closed="right")
            return optim.get(solver, params, lr=lr, betas=betas, eps=eps, weight_decay=decay)
        return optim.get(solver, params, lr=lr, weight_decay=decay)

    def _seeds(self, continues):
        """(model seed, fit seed, validation-split seed), all from ``random_state``. A call
        that goes on training the fitted model (partial_fit, warm_start) shuffles with a fit
        seed of its own, so that one call after another does not repeat the same order."""
        model_ss, fit_ss, split_ss = _seed_sequence(self.random_state).spawn(3)
        self._calls = getattr(self, "_calls", 0) + 1 if continues else 0
        if self._calls:
            fit_ss = np.random.SeedSequence([*fit_ss.generate_state(2), self._calls])
        return model_ss, int(fit_ss.generate_state(1)[0]), int(split_ss.generate_state(1)[0])

    def _continues(self, incremental):
        """Whether this call goes on training the fitted model (partial_fit, warm_start)."""
        return hasattr(self, "model_") and (incremental or bool(self.warm_start))

    def _validate(self, X, y, incremental, **kwargs):
        """X and y checked as scikit-learn does; sparse X becomes dense (fastnn's layers take
        dense arrays)."""
        reset = not self._continues(incremental)
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc", "coo"],
            dtype=check_dtype(self.dtype),
            multi_output=True,
            reset=reset,
            **kwargs,
        )
        if scipy.sparse.issparse(X):
            X = X.toarray()
        return X, y

    # -- training --------------------------------------------------------------------------
    def _fit(self, X, y, n_outputs, loss, stratify=None, sample_weight=None, incremental=False):
        """Train ``model_`` on validated X and encoded y (labels or float targets): a new one,
        or with ``incremental`` (partial_fit: one epoch) or ``warm_start`` the fitted one."""
        hidden = self._hidden_sizes()
        sizes = [X.shape[1], *hidden, n_outputs]
        activation = self._fastnn_activation()
        solver = self._solver()
        lr = check_real(self.learning_rate_init, "learning_rate_init", low=0.0, closed="right")
        alpha = check_real(self.alpha, "alpha", low=0.0)
        epochs = 1 if incremental else check_int(self.max_iter, "max_iter", low=1)
        patience = check_int(self.n_iter_no_change, "n_iter_no_change", low=1)
        tol = check_real(self.tol, "tol", low=0.0)
        schedule = check_choice(self.learning_rate, "learning_rate", LEARNING_RATES)
        power_t = check_real(self.power_t, "power_t", low=0.0)
        if incremental and self.early_stopping:
            raise InvalidValueError("partial_fit does not support early_stopping=True")
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            if not weights.any():
                raise InvalidValueError("Sample weights must contain at least one non-zero number.")
        continues = self._continues(incremental)
        if continues:
            self._check_same_network(sizes)
        model_seed, fit_seed, split_seed = self._seeds(continues)

        validation = None
        w_val = None
        if self.early_stopping:
            fraction = check_real(
                self.validation_fraction, "validation_fraction", 0.0, 1.0, "neither"
            )
            parts = (X, y) if weights is None else (X, y, weights)
            try:
                split = train_test_split(
                    *parts, test_size=fraction, random_state=split_seed, stratify=stratify
                )
            except ValueError:
                if stratify is None:
                    raise
                # Too few samples to give every class a place in both parts: split at random.
                split = train_test_split(*parts, test_size=fraction, random_state=split_seed)
            X, X_val, y, y_val = split[:4]
            if weights is not None:
                weights, w_val = split[4:]
            validation = (X_val, y_val)
            scores = _ValidationScores(X_val, y_val, w_val, self._validation_score)
            stopper = _Stopping(
                "validation_score",
                patience=patience,
                min_delta=tol,
                restore_best_weights=True,
                mode="max",
                adaptive=schedule == "adaptive" and solver in _SGD_SOLVERS,
            )
        else:
            scores = None
            stopper = _Stopping(
                "loss",
                patience=patience,
                min_delta=tol,
                adaptive=schedule == "adaptive" and solver in _SGD_SOLVERS,
            )
        if weights is not None and not weights.any():
            raise InvalidValueError(
                "every sample left for training after the early-stopping split weighs 0"
            )

        if continues:
            model = self.model_
            model.train()
        else:
            model = MLP(
                sizes,
                activation=activation,
                batchnorm=self.batchnorm,
                dropout=self.dropout,
                seed=model_seed,
                dtype=self.dtype,
            )
            _glorot_uniform(model, self.activation, model_seed)
        n = X.shape[0]
        batch_size = self._batch_size(n)
        # The rows' total weight; scikit-learn divides each batch's L2 term and its gradient
        # by the batch's total weight (its size when unweighted).
        total = float(n if weights is None else weights.sum())
        decay = alpha / (batch_size * total / n)
        if incremental and getattr(self, "_optimizer_", None) is not None:
            opt = self._optimizer_  # partial_fit goes on with the optimizer's state
        else:
            opt = self._optimizer(model, solver, lr, decay)
        penalised = _PenalisedLoss(alpha, -(-n // batch_size), total)
        callbacks = [penalised]
        seen = self.t_ if continues else 0
        if schedule == "invscaling" and solver in _SGD_SOLVERS:
            callbacks.append(_InverseScaling(lr, power_t, seen, n))
        if scores is not None:
            callbacks.append(scores)
        if not incremental:  # partial_fit runs its one epoch whatever the loss did
            callbacks.append(stopper)
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
            sample_weight=weights,
        )
        model.eval()

        self.model_ = model
        self._optimizer_ = opt if incremental else None
        self.history_ = history
        curve = list(penalised.values)  # with the L2 term, as scikit-learn's
        self.loss_curve_ = self.loss_curve_ + curve if continues else curve
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ = (self.n_iter_ if continues else 0) + history.epochs
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(sizes)
        self.t_ = seen + history.epochs * n  # training samples seen, as scikit-learn counts
        if scores is None:
            self.validation_scores_ = None
            self.best_loss_ = min(self.loss_curve_)
            self.best_validation_score_ = None
        else:
            earlier = (self.validation_scores_ or []) if continues else []
            self.validation_scores_ = earlier + list(scores.values)
            self.best_loss_ = None
            self.best_validation_score_ = self._validation_score(model.predict(X_val), y_val, w_val)
        if (
            not incremental
            and not history.stopped_early
            and not history.interrupted
            and history.epochs == epochs
        ):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({epochs}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return self

    def _check_same_network(self, sizes):
        """A model trained on goes on only with the network it has."""
        linears = [m for m in self.model_.modules() if isinstance(m, nn.Linear)]
        have = [linears[0].in_features] + [m.out_features for m in linears]
        if have != sizes:
            raise InvalidValueError(
                f"the fitted network is {'-'.join(map(str, have))}, this data and "
                f"hidden_layer_sizes make {'-'.join(map(str, sizes))}; partial_fit and "
                "warm_start go on training the same network"
            )
        if self.model_.dtype != check_dtype(self.dtype):
            raise InvalidValueError(
                f"the fitted network computes in {self.model_.dtype}, dtype is now {self.dtype}"
            )

    # Pickle the model as its architecture and weights: its parameters are views into one
    # buffer, which pickle would not keep, and its work buffers are not worth storing.
    def __getstate__(self):
        state = dict(super().__getstate__())
        # partial_fit's optimizer works on views of the model's buffer: not kept (a
        # partial_fit after unpickling starts a new one).
        state.pop("_optimizer_", None)
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
        X = validate_data(
            self, X, reset=False, dtype=self.model_.dtype, accept_sparse=["csr", "csc", "coo"]
        )
        return X.toarray() if scipy.sparse.issparse(X) else X
