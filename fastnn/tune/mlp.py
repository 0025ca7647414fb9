"""A ready-made trial: an MLP trained on part of (x, y) and scored on the rest."""

import numbers
from functools import lru_cache

import numpy as np

from .. import optim
from ..data.preprocessing import _split_size, split_indices
from ..data.sources import flatten, load_data
from ..errors import InvalidValueError
from ..nn import MLP
from ..training import evaluate, fit

MLP_DEFAULTS = {
    "layers": [100, 100],
    "activation": "relu",
    "batchnorm": False,
    "dropout": 0.0,
    "init": None,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "epochs": 3,
    "batch_size": 64,
    "val": 0.2,
    "split_seed": 0,
    "dtype": "float32",
}


def validation_split(y, val=0.2, seed=0):
    """(train indices, validation indices) into ``y`` (n,): a stratified random split with
    ``val`` a fraction in (0, 1) or a count; the same ``seed`` gives the same split, so every
    trial is scored on the same rows."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidValueError(f"validation_split: expected labels of shape (n,), got {y.shape}")
    n = len(y)
    n_val = _split_size(val, n, "val")
    if not 1 <= n_val < n:
        raise InvalidValueError(f"a validation split of {val} out of {n} rows leaves an empty part")
    train, valid = split_indices(y, [n - n_val, n_val], stratify=True, rng=seed)
    return train, valid


@lru_cache(maxsize=2)
def _load_training_part(spec):
    """The training part of the ``--data`` value ``spec`` (its test part is never returned),
    loaded once per process."""
    (x, y), _ = load_data(spec)
    return flatten(x), np.asarray(y)


def mlp_trial(params, data, seed):
    """Train an ``MLP`` with ``params`` on part of ``data``; return the accuracy on the rest.

    ``data``: (x, y) with x (n, features) and integer labels y (n,), the rows to search on (keep
    the test set out of them), or a ``fastnn train --data`` value ("sample", an .npz, ...), of
    which only the training part is loaded (once per worker process). ``params`` (defaults in
    ``MLP_DEFAULTS``): layers (hidden sizes), activation, batchnorm, dropout, init, optimizer,
    lr, weight_decay, epochs, batch_size, dtype, and val / split_seed: the validation
    fraction held out of (x, y) and the seed of that split, the same for every trial. ``seed``
    draws the initial weights, dropout masks and batch order. Returns ``{"score": validation
    accuracy, "val_loss": validation loss}``.
    """
    unknown = set(params) - set(MLP_DEFAULTS)
    if unknown:
        raise InvalidValueError(
            f"mlp_trial: unknown parameters {sorted(unknown)}; expected some of "
            f"{', '.join(MLP_DEFAULTS)}"
        )
    p = {**MLP_DEFAULTS, **params}
    if isinstance(data, str):
        x, y = _load_training_part(data)
    else:
        x, y = data
        x, y = np.asarray(x), np.asarray(y)
    train, valid = validation_split(y, p["val"], p["split_seed"])
    if isinstance(p["layers"], numbers.Integral):
        p["layers"] = [p["layers"]]
    classes = int(y.max()) + 1
    init_seed, fit_seed = np.random.SeedSequence(seed).spawn(2)
    model = MLP(
        [x.shape[1], *p["layers"], classes],
        activation=p["activation"],
        batchnorm=p["batchnorm"],
        dropout=p["dropout"],
        init=p["init"],
        seed=init_seed,
        dtype=p["dtype"],
    )
    opt = optim.get(p["optimizer"], model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    fit(
        model,
        x[train],
        y[train],
        optimizer=opt,
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        verbose=0,
        seed=int(fit_seed.generate_state(1)[0]),
    )
    result = evaluate(model, x[valid], y[valid])
    return {"score": result["accuracy"], "val_loss": result["loss"]}
