"""The data checks ``fit`` and ``evaluate`` make once, before any step: shapes against the
model, labels in range, finite values, and the dtype the model computes in."""

import numpy as np

from .._checks import check_array, check_bool
from ..errors import InvalidValueError
from ..nn import (
    SAME,
    BinaryCrossEntropy,
    MSELoss,
    SoftmaxCrossEntropy,
    check_labels,
    check_unit_targets,
    using,
)


def model_widths(model, x):
    """(input width or None, output width) of ``model`` for the checked input ``x``.

    From ``model.io_widths()``; where the model cannot tell its output width (a module of
    your own that does not say), one row of ``x`` is run through it in eval mode to see."""
    n_in, n_out = model.io_widths()
    if n_out == SAME:
        n_out = n_in if n_in is not None else x.shape[1] if x.ndim == 2 else None
    if n_out is None:
        with using(model):
            was_training = model.training
            model.eval()
            try:
                z = np.asarray(model.forward(x[:1]))
            finally:
                model.train(was_training)
        if z.ndim != 2:
            raise InvalidValueError(
                f"{type(model).__name__}: expected outputs of shape (batch, outputs), got "
                f"{z.shape} for one row"
            )
        n_out = z.shape[1]
    return n_in, n_out


def check_xy(model, loss, x, y, what, check_finite):
    """(x, y for the loss, labels for accuracy, the model's output width), checked and
    converted once.

    ``x`` becomes a C-contiguous array of the model's dtype of shape (n, inputs) (or (n, ...)
    for a model that takes no fixed input width, such as images for a convolution); ``y`` int64
    labels in [0, outputs) for cross-entropy with labels, else targets (n, outputs) of the
    model's dtype (mse and binary cross-entropy with one output also take (n,); binary
    cross-entropy's targets must be in [0, 1]). NaN and infinity are refused unless
    ``check_finite`` is False.
    """
    check_finite = check_bool(check_finite, "check_finite")
    x = check_array(x, f"{what} x", model.dtype)
    n_in = model.io_widths()[0]
    # Rows (n, inputs); a model whose first layer does not take rows of a fixed width (a
    # convolution: images (n, channels, height, width)) checks the rest of the shape itself.
    if x.ndim < 2 or x.shape[0] == 0 or (n_in is not None and (x.ndim != 2 or x.shape[1] != n_in)):
        width = "inputs" if n_in is None else n_in
        raise InvalidValueError(
            f"{what}: expected x of shape (n, {width}) with n >= 1, got {x.shape}"
        )
    n = x.shape[0]
    if check_finite and not np.isfinite(x).all():
        raise InvalidValueError(
            f"{what}: x holds NaN or infinite values (check_finite=False allows them)"
        )
    n_out = model_widths(model, x)[1]
    y_arr = np.asarray(y)
    if isinstance(loss, SoftmaxCrossEntropy) and y_arr.ndim == 1:
        labels = check_labels(y_arr, n, n_out, f"{what} y")
        if np.shares_memory(labels, y_arr):
            # The loss kernels index with the labels checked here: a private copy, so that
            # another thread changing the caller's array cannot take them out of range.
            labels = labels.copy()
        return x, labels, labels, n_out
    if isinstance(loss, (MSELoss, BinaryCrossEntropy)) and y_arr.ndim == 1 and n_out == 1:
        y_arr = y_arr.reshape(-1, 1)
    t = check_array(y_arr, f"{what} y", model.dtype)
    if t.shape != (n, n_out):
        kind = "labels of shape (n,) or targets" if isinstance(loss, SoftmaxCrossEntropy) else "y"
        raise InvalidValueError(f"{what}: expected {kind} of shape ({n}, {n_out}), got {t.shape}")
    if check_finite and not np.isfinite(t).all():
        raise InvalidValueError(f"{what}: y holds NaN or infinite values")
    if isinstance(loss, BinaryCrossEntropy):
        check_unit_targets(t, f"{what} y")
    return x, t, t.argmax(axis=1).astype(np.int64), n_out


def check_sample_weight(w, n, what):
    """``w`` as float64 weights (n,), finite, >= 0 and not all zero, or a clear error."""
    w = check_array(w, f"{what} sample_weight", np.float64)
    if w.shape != (n,):
        raise InvalidValueError(f"{what}: expected sample_weight of shape ({n},), got {w.shape}")
    if not np.isfinite(w).all() or (w < 0).any():
        bad = w[~np.isfinite(w) | (w < 0)][0]
        raise InvalidValueError(f"{what}: sample weights must be finite and >= 0, got {bad}")
    if not w.any():
        raise InvalidValueError(f"{what}: sample weights must not all be zero")
    return w.copy()  # the caller's array may change while training runs


def split_validation(x, t, labels, width, fraction, rng, weights=None):
    """((x, t, labels, width) to train on, the same held out, the training rows' weights or
    None): a random ``fraction`` of the rows is held out."""
    n = x.shape[0]
    n_val = int(round(n * fraction))
    if not 1 <= n_val < n:
        raise InvalidValueError(f"validation_split={fraction} of {n} rows leaves an empty split")
    order = rng.permutation(n)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (
        (x[train], t[train], labels[train], width),
        (x[val], t[val], labels[val], width),
        None if weights is None else weights[train],
    )
