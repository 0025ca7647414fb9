"""Data by name, as the command line and the tuner take it (``--data``): the embedded sample,
the full MNIST sets, a folder of IDX files or an ``.npz`` file of arrays."""

import math
import os

import numpy as np

from ..errors import FileFormatError, InvalidValueError
from . import datasets
from .preprocessing import train_val_test_split

__all__ = ["as_images", "flatten", "load_data"]


def load_data(spec, seed=0):
    """``(x_train, y_train), (x_test, y_test)`` for the ``--data`` value ``spec``.

    "sample": the MNIST sample shipped with fastnn (8,000 / 2,000 images, offline);
    "mnist" / "fashion-mnist": the full sets (downloaded once into the data cache);
    a folder: the four MNIST-format IDX files in it;
    an ``.npz`` file: arrays ``x_train, y_train, x_test, y_test``, or ``x, y`` (split 80/20,
    stratified, with ``seed``).
    """
    if spec == "sample":
        return datasets.load_mnist(sample=True)
    if spec == "mnist":
        return datasets.load_mnist()
    if spec == "fashion-mnist":
        return datasets.load_fashion_mnist()
    if os.path.isdir(spec):
        return datasets.load_mnist(path=spec, download=False)
    if spec.endswith(".npz") and os.path.isfile(spec):
        return _load_npz(spec, seed)
    raise InvalidValueError(
        f"--data {spec!r}: expected sample, mnist, fashion-mnist, a folder of IDX files or an "
        ".npz file with x and y"
    )


def _load_npz(path, seed):
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as e:  # np.load raises many kinds for a bad file
        raise FileFormatError(f"{path}: not a readable .npz file ({e})") from None
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    if {"x", "y"} <= arrays.keys():
        x, y = arrays["x"], arrays["y"]
        train, _, test = train_val_test_split(x, y, val=0, test=0.2, stratify=True, seed=seed)
        return train, test
    raise FileFormatError(
        f"{path}: expected arrays x and y (or x_train, y_train, x_test, y_test), "
        f"found {', '.join(arrays) or 'none'}"
    )


def flatten(x):
    """``x`` with every axis after the first folded into one: images (n, 28, 28) become rows
    (n, 784)."""
    x = np.asarray(x)
    return x.reshape(len(x), -1) if x.ndim > 2 else x


def as_images(x, what="--data"):
    """``x`` as images (n, channels, height, width): rows of a square number of features
    (784 -> one 28x28 channel) or (n, height, width) get one channel; (n, c, h, w) stays."""
    x = np.asarray(x)
    if x.ndim == 4:
        return x
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 2:
        side = math.isqrt(x.shape[1])
        if side * side == x.shape[1] and side > 0:
            return x.reshape(len(x), 1, side, side)
        raise InvalidValueError(
            f"{what}: a convolutional network needs images; rows of {x.shape[1]} features "
            "are not a square image (give (n, height, width) or (n, channels, height, width) "
            "arrays)"
        )
    raise InvalidValueError(f"{what}: expected images, got an array of shape {x.shape}")
