"""``fit``'s options as one value: ``FitOptions``, checked once before training starts."""

import dataclasses

from .. import optim
from .._checks import check_bool, check_choice, check_int, check_real
from ..errors import InvalidTypeError, InvalidValueError
from ..nn import LOSSES, BinaryCrossEntropy, MSELoss, SoftmaxCrossEntropy
from ..optim.clip import check_max_norm
from .callbacks import Callback

METRICS = ("accuracy",)


@dataclasses.dataclass
class FitOptions:
    """Everything ``fit`` takes besides the model and the data, in ``fit``'s order (see
    ``fastnn.fit`` for what each means). ``checked(model)`` validates them all at once."""

    loss: object = "cross_entropy"
    optimizer: object = "adam"
    epochs: int = 10
    batch_size: int = 32
    validation_data: object = None
    validation_split: object = None
    metrics: object = None
    callbacks: object = ()
    verbose: object = 1
    seed: object = None
    resume: object = None
    shuffle: bool = True
    check_finite: bool = True
    log_every: int = 1
    clip_norm: object = None
    sample_weight: object = None

    def checked(self, model):
        """A copy with every option checked and resolved for ``model``: ``loss`` a new loss
        object, ``optimizer`` an optimizer over the model's parameters, ``metrics`` a tuple,
        ``callbacks`` a list, the numbers and flags of their plain types."""
        loss = resolve_loss(self.loss)
        callbacks = list(self.callbacks)
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise InvalidTypeError(
                    f"callbacks must be fastnn.callbacks.Callback objects, got {cb!r}"
                )
        if self.validation_data is not None and self.validation_split is not None:
            raise InvalidValueError("pass validation_data or validation_split, not both")
        if self.validation_data is not None and (
            not isinstance(self.validation_data, (tuple, list)) or len(self.validation_data) != 2
        ):
            raise InvalidValueError("validation_data must be a pair (x_val, y_val)")
        return dataclasses.replace(
            self,
            loss=loss,
            optimizer=resolve_optimizer(self.optimizer, model),
            epochs=check_int(self.epochs, "epochs", low=1),
            batch_size=check_int(self.batch_size, "batch_size", low=1),
            validation_split=None
            if self.validation_split is None
            else check_real(self.validation_split, "validation_split", 0.0, 1.0, "neither"),
            metrics=resolve_metrics(self.metrics, loss),
            callbacks=callbacks,
            verbose=check_verbose(self.verbose),
            seed=None if self.seed is None else check_int(self.seed, "seed", low=0),
            resume=self.resume,
            shuffle=check_bool(self.shuffle, "shuffle"),
            check_finite=check_bool(self.check_finite, "check_finite"),
            log_every=check_int(self.log_every, "log_every", low=1),
            clip_norm=check_max_norm(self.clip_norm, "clip_norm"),
        )


def check_verbose(verbose):
    """0 (silent) or more; True and False count as 1 and 0."""
    if isinstance(verbose, bool):
        return int(verbose)
    return check_int(verbose, "verbose", low=0)


def resolve_loss(loss):
    """A new loss object from a name of ``LOSSES`` or a loss object (its class is used)."""
    if isinstance(loss, str):
        return LOSSES[check_choice(loss, "loss", LOSSES)]()
    if isinstance(loss, (SoftmaxCrossEntropy, MSELoss, BinaryCrossEntropy)):
        return type(loss)()
    raise InvalidTypeError(
        "loss must be 'cross_entropy', 'mse', 'binary_cross_entropy', SoftmaxCrossEntropy(), "
        f"MSELoss() or BinaryCrossEntropy(), got {loss!r}"
    )


def resolve_metrics(metrics, loss):
    """The metric names: accuracy for cross-entropy and none for mse and binary cross-entropy
    by default (accuracy is the argmax's, which is not what a multilabel output means)."""
    if metrics is None:
        return ("accuracy",) if isinstance(loss, SoftmaxCrossEntropy) else ()
    if isinstance(metrics, str):
        metrics = (metrics,)
    out = tuple(metrics)
    for m in out:
        if m not in METRICS:
            raise InvalidValueError(f"unknown metric {m!r}; expected one of {', '.join(METRICS)}")
    return out


def resolve_optimizer(optimizer, model):
    """An optimizer by name over the model's parameters, or one made over them, in order."""
    if isinstance(optimizer, str):
        return optim.get(optimizer, model.parameters())
    if not isinstance(optimizer, optim.Optimizer):
        raise InvalidTypeError(f"optimizer must be a name or a fastnn optimizer, got {optimizer!r}")
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:
        raise InvalidValueError("the optimizer was not made over this model's parameters, in order")
    return optimizer
