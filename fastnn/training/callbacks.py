"""Callbacks for ``fastnn.fit``: early stopping, checkpoints and learning-rate schedules.

A callback gets ``on_train_begin(trainer)``, ``on_epoch_begin(trainer, epoch)``,
``on_step_end(trainer, step, loss, accuracy)``, ``on_epoch_end(trainer, epoch, logs)`` and
``on_train_end(trainer)``; epochs and steps count from 0. ``trainer`` gives ``model``,
``optimizer``, ``history``, ``epochs``, ``steps`` (per epoch) and ``stop_training`` (set it to
end training after the current epoch). ``on_step_end`` gets the epoch's running mean loss and
accuracy (None without the metric); only callbacks that define it are called each step.
``logs`` holds the epoch's figures: "loss", "accuracy", "val_loss", "val_accuracy", "lr",
"seconds". A callback whose behaviour depends on what it saw before keeps it in
``state_dict()`` so that a resumed fit carries on exactly.
"""

import math
import os

import numpy as np

from .._checks import check_bool, check_choice, check_int, check_real
from ..errors import InvalidValueError

__all__ = [
    "Callback",
    "CosineLR",
    "EarlyStopping",
    "ExponentialLR",
    "LearningRateSchedule",
    "ModelCheckpoint",
    "StepLR",
]


class Callback:
    """Base class: every hook does nothing."""

    def on_train_begin(self, trainer):
        pass

    def on_epoch_begin(self, trainer, epoch):
        pass

    def on_step_end(self, trainer, step, loss, accuracy):
        pass

    def on_epoch_end(self, trainer, epoch, logs):
        pass

    def on_train_end(self, trainer):
        pass

    def state_dict(self):
        """What a checkpoint keeps of this callback: str -> number, string or array."""
        return {}

    def load_state_dict(self, state):
        pass


def _mode(monitor, mode):
    mode = check_choice(mode, "mode", ("auto", "min", "max"))
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _check_monitor(trainer, monitor, who):
    if monitor.startswith("val_") and not trainer.has_validation:
        raise InvalidValueError(
            f"{who}: monitor={monitor!r} needs validation data; pass validation_data= or "
            "validation_split= to fit, or monitor a training figure such as 'loss'"
        )
    known = trainer.log_names()
    if monitor not in known:
        raise InvalidValueError(
            f"{who}: unknown monitor {monitor!r}; expected one of {', '.join(known)}"
        )


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs.

    ``restore_best_weights=True`` puts back the weights of the best epoch when training ends,
    whatever ended it (this callback, another one, the last epoch, or Ctrl-C). ``mode`` "min"
    (losses), "max" (accuracies) or "auto" (max for names containing "acc").
    """

    def __init__(
        self, monitor="val_loss", patience=5, min_delta=0.0, restore_best_weights=False, mode="auto"
    ):
        self.monitor = str(monitor)
        self.patience = check_int(patience, "patience", low=0)
        self.min_delta = check_real(min_delta, "min_delta", low=0.0)
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        self.mode = _mode(self.monitor, mode)
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0
        self.stopped_epoch = None
        self.best_weights = None

    def on_train_begin(self, trainer):
        _check_monitor(trainer, self.monitor, "EarlyStopping")
        if not trainer.resumed:
            self._reset()

    def _improved(self, value):
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, epoch, logs):
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            if self.restore_best_weights:
                self.best_weights = trainer.model.state_dict()
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            trainer.stop_training = True

    def on_train_end(self, trainer):
        if self.restore_best_weights and self.best_weights is not None:
            trainer.model.load_state_dict(self.best_weights)
            if trainer.verbose:
                trainer.log(
                    f"EarlyStopping: restored the weights of epoch {self.best_epoch + 1} "
                    f"({self.monitor} {self.best:.4f})"
                )

    def state_dict(self):
        out = {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}
        for k, v in (self.best_weights or {}).items():
            out["best_weights/" + k] = v
        return out

    def load_state_dict(self, state):
        self.best = float(state["best"])
        self.best_epoch = int(state["best_epoch"])
        self.wait = int(state["wait"])
        prefix = "best_weights/"
        weights = {k[len(prefix) :]: np.array(v) for k, v in state.items() if k.startswith(prefix)}
        self.best_weights = weights or None


class ModelCheckpoint(Callback):
    """Write a checkpoint (model, optimizer state, epoch, random-generator states, history) to
    ``path`` every ``every`` epochs, atomically; ``fit(..., resume=path)`` continues from it.

    ``path`` may hold ``{epoch}`` (1-based) to keep one file per epoch. With
    ``save_best_only=True`` a file is written only when ``monitor`` improves.
    """

    def __init__(self, path, every=1, save_best_only=False, monitor="val_loss", mode="auto"):
        self.path = os.fspath(path)
        self.every = check_int(every, "every", low=1)
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.monitor = str(monitor)
        self.mode = _mode(self.monitor, mode)
        self.best = math.inf if self.mode == "min" else -math.inf
        self.last_path = None

    def on_train_begin(self, trainer):
        if self.save_best_only:
            _check_monitor(trainer, self.monitor, "ModelCheckpoint")

    def on_epoch_end(self, trainer, epoch, logs):
        if (epoch + 1) % self.every:
            return
        if self.save_best_only:
            value = logs[self.monitor]
            better = value < self.best if self.mode == "min" else value > self.best
            if not better:
                return
            self.best = float(value)
        path = self.path.format(epoch=epoch + 1)
        # The checkpoint holds this callback's state too, so update it before writing.
        self.last_path = path
        trainer.save_checkpoint(path)

    def state_dict(self):
        return {"best": self.best}

    def load_state_dict(self, state):
        self.best = float(state["best"])


class LearningRateSchedule(Callback):
    """Set the optimizer's learning rate at the start of each epoch to
    ``lr_at(epoch, epochs)``: ``base_lr * factor(epoch, epochs)``, ``base_lr`` being the rate
    when training first began. A schedule defines ``factor`` (or ``lr_at`` itself)."""

    def __init__(self):
        self.base_lr = None

    def factor(self, epoch, epochs):
        raise NotImplementedError

    def lr_at(self, epoch, epochs):
        return self.base_lr * self.factor(epoch, epochs)

    def on_train_begin(self, trainer):
        if self.base_lr is None or not trainer.resumed:
            self.base_lr = trainer.optimizer.lr

    def on_epoch_begin(self, trainer, epoch):
        trainer.optimizer.lr = self.lr_at(epoch, trainer.epochs)

    def state_dict(self):
        return {"base_lr": self.base_lr}

    def load_state_dict(self, state):
        self.base_lr = float(state["base_lr"])


def _check_gamma(gamma):
    return check_real(gamma, "gamma", low=0.0, closed="right")


class StepLR(LearningRateSchedule):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, step_size, gamma=0.1):
        super().__init__()
        self.step_size = check_int(step_size, "step_size", low=1)
        self.gamma = _check_gamma(gamma)

    def factor(self, epoch, epochs):
        return self.gamma ** (epoch // self.step_size)


class ExponentialLR(LearningRateSchedule):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, gamma):
        super().__init__()
        self.gamma = _check_gamma(gamma)

    def factor(self, epoch, epochs):
        return self.gamma**epoch


class CosineLR(LearningRateSchedule):
    """Cosine annealing from base_lr to ``min_lr`` over ``period`` epochs (default: the fit's
    epochs): lr = min_lr + (base_lr - min_lr) * factor, with
    factor = (1 + cos(pi * min(epoch, period) / period)) / 2 going from 1 to 0."""

    def __init__(self, period=None, min_lr=0.0):
        super().__init__()
        self.period = None if period is None else check_int(period, "period", low=1)
        self.min_lr = check_real(min_lr, "min_lr", low=0.0)

    def factor(self, epoch, epochs):
        period = self.period or epochs
        t = min(epoch, period) / period
        return (1 + math.cos(math.pi * t)) / 2

    def lr_at(self, epoch, epochs):
        return self.min_lr + (self.base_lr - self.min_lr) * self.factor(epoch, epochs)
