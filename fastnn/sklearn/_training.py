"""What the estimators add to ``fastnn.fit`` to train as scikit-learn's MLPs do: its seeds,
its initial weights, its training loss with the L2 term, its stopping rule, its learning-rate
schedules and its validation scores, as callbacks and helpers."""

import numbers

import numpy as np

from .. import nn
from .._checks import check_int
from ..errors import InvalidTypeError
from ..training.callbacks import Callback, EarlyStopping

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
    """The estimator's score (accuracy, R^2; weighted by the held-out rows' sample weights)
    on the held-out rows after every epoch, as scikit-learn's ``validation_scores_``; put into
    the epoch's logs as "validation_score" for early stopping, which watches it."""

    def __init__(self, x, y, weights, score):
        self.x, self.y, self.weights, self.score = x, y, weights, score
        self.values = []

    def on_epoch_end(self, trainer, epoch, logs):
        value = self.score(trainer.model.predict(self.x), self.y, self.weights)
        logs["validation_score"] = value
        self.values.append(value)


class _InverseScaling(Callback):
    """scikit-learn's ``learning_rate="invscaling"``: after each epoch the learning rate is
    learning_rate_init / (t + 1) ** power_t, t the training samples seen so far."""

    def __init__(self, lr, power_t, seen, rows):
        self.lr, self.power_t, self.seen, self.rows = lr, power_t, seen, rows

    def on_epoch_end(self, trainer, epoch, logs):
        self.seen += self.rows
        trainer.optimizer.lr = self.lr / (self.seen + 1) ** self.power_t


class _PenalisedLoss(Callback):
    """scikit-learn's training loss: each batch's mean loss plus alpha/2 ||W||^2 / batch, over
    the epoch's rows, i.e. the data loss plus alpha/2 ||W||^2 batches / rows (with the weights
    at the epoch's end; with sample weights, / their sum instead of / rows). Put into the
    epoch's logs for the callbacks after it (early stopping on ``tol``, the verbose line);
    ``history_`` keeps the data loss."""

    def __init__(self, alpha, batches, weight):
        # weight: the rows' total sample weight (their number when unweighted).
        self.scale = 0.5 * alpha * batches / weight
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
    two small steps in a row reset its count). With ``adaptive`` (scikit-learn's
    ``learning_rate="adaptive"``), running out of patience divides the learning rate by 5 and
    starts counting again, and stops only once the rate is at most 1e-6."""

    def __init__(self, *args, adaptive=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.adaptive = adaptive

    def on_train_begin(self, trainer):
        # What it watches may be "validation_score", which _ValidationScores puts into the
        # logs (fit's own checks know only fit's figures).
        self._reset()

    def on_epoch_end(self, trainer, epoch, logs):
        value = float(logs[self.monitor])
        self.wait = 0 if self._improved(value) else self.wait + 1
        if value < self.best if self.mode == "min" else value > self.best:
            self.best, self.best_epoch = value, epoch
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()
        if self.wait > self.patience:
            if self.adaptive and trainer.optimizer.lr > 1e-6:
                trainer.optimizer.lr = trainer.optimizer.lr / 5
                self.wait = 0
                return
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
