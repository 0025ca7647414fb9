"""``evaluate``: the mean loss and the metrics of a model on data, in eval mode."""

import numpy as np

from .._checks import check_int
from ..errors import InvalidTypeError
from ..nn import Module, using
from .inputs import check_xy
from .options import resolve_loss, resolve_metrics


def evaluate_rows(model, loss, x, t, labels, width, metrics, batch_size):
    """``{"loss": mean loss, "accuracy": ...}`` of ``model`` on checked rows (``check_xy``'s
    x, t, labels and output width), in eval mode (the model goes back to the mode it was
    in)."""
    outputs = model._predict(x, batch_size)  # compiled when it can be; back in its mode after
    total = 0.0
    correct = 0
    for lo in range(0, x.shape[0], batch_size):
        z = outputs[lo : lo + batch_size]
        tb = t[lo : lo + batch_size]
        total += loss._forward_checked_once(z, tb, width) * z.shape[0]
        if "accuracy" in metrics:
            correct += int(np.count_nonzero(z.argmax(axis=1) == labels[lo : lo + batch_size]))
    out = {"loss": total / x.shape[0]}
    if "accuracy" in metrics:
        out["accuracy"] = correct / x.shape[0]
    return out


def checked_evaluation(model, x, y, loss, metrics, batch_size, check_finite):
    """``evaluate``'s arguments checked: (loss object, metrics, batch_size, (x, t, labels,
    width))."""
    if not isinstance(model, Module):
        raise InvalidTypeError(f"evaluate: expected a fastnn model, got {type(model).__name__}")
    loss = resolve_loss(loss)
    metrics = resolve_metrics(metrics, loss)
    batch_size = check_int(batch_size, "batch_size", low=1)
    return loss, metrics, batch_size, check_xy(model, loss, x, y, "evaluate", check_finite)


def evaluate(model, x, y, loss="cross_entropy", metrics=None, batch_size=1024, check_finite=True):
    """The mean loss and the metrics of ``model`` on (x, y) in eval mode, as a dict
    (``{"loss": ..., "accuracy": ...}``). ``y``: labels (n,) or targets (n, outputs)."""
    loss, metrics, batch_size, rows = checked_evaluation(
        model, x, y, loss, metrics, batch_size, check_finite
    )
    with using(model):  # as predict: several threads may evaluate one model, in turn
        return evaluate_rows(model, loss, *rows, metrics, batch_size)
