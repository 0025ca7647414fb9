"""Convolutional networks by name: the course's ``SimpleConvNet`` and LeNet-5, as
``Sequential`` models of fastnn's layers (so they save, load, train and export as any
``Sequential`` does; a saved one loads back as that ``Sequential``).

    model = fastnn.nn.simple_conv_net(seed=0)        # for (n, 1, 28, 28) images, 10 classes
    fastnn.fit(model, x.reshape(-1, 1, 28, 28), y, epochs=5, batch_size=100)
"""

import numpy as np

from .._checks import check_dtype, check_int, check_seed
from ..errors import InvalidValueError
from .containers import Sequential
from .conv import Conv2D, out_size
from .dropout import Dropout
from .linear import Linear
from .pooling import Flatten, MaxPool2D

__all__ = ["CONV_NETS", "lenet5", "simple_conv_net"]


def _image_shape(in_shape):
    shape = tuple(in_shape) if isinstance(in_shape, (tuple, list)) else None
    if shape is None or len(shape) != 3:
        raise InvalidValueError(f"in_shape must be (channels, height, width), got {in_shape!r}")
    return tuple(check_int(s, "in_shape", low=1) for s in shape)


def simple_conv_net(
    in_shape=(1, 28, 28),
    classes=10,
    *,
    filters=30,
    kernel_size=5,
    hidden=100,
    dropout=0.0,
    seed=None,
    dtype=np.float32,
):
    """The course's SimpleConvNet: conv ``filters`` x ``kernel_size``^2 (stride 1, no
    padding) - ReLU - max-pool 2x2 - affine ``hidden`` - ReLU - affine ``classes`` (logits).
    The ReLUs are fused into the layer before them; He initialisation; ``dropout`` > 0 adds
    a ``Dropout`` before the last affine layer (the course's network has none; on the 8,000
    images of the MNIST sample 0.2 keeps the test accuracy above 98 % where without it it
    wavers around 98 %); ``seed`` seeds every layer (None: fresh)."""
    c, h, w = _image_shape(in_shape)
    classes, filters, kernel_size, hidden = (
        check_int(v, name, low=1)
        for v, name in (
            (classes, "classes"),
            (filters, "filters"),
            (kernel_size, "kernel_size"),
            (hidden, "hidden"),
        )
    )
    oh, ow = out_size(h, kernel_size, 1, 0) // 2, out_size(w, kernel_size, 1, 0) // 2
    if oh < 1 or ow < 1:
        raise InvalidValueError(
            f"simple_conv_net: a {h}x{w} image is too small for a {kernel_size}x{kernel_size} "
            "convolution and a 2x2 pooling"
        )
    dtype = check_dtype(dtype)
    streams = check_seed(seed, "seed").spawn(4)
    return Sequential(
        Conv2D(c, filters, kernel_size, activation="relu", rng=streams[0], dtype=dtype),
        MaxPool2D(2, dtype=dtype),
        Flatten(dtype=dtype),
        Linear(filters * oh * ow, hidden, activation="relu", rng=streams[1], dtype=dtype),
        *_dropout(dropout, streams[3], dtype),
        Linear(hidden, classes, rng=streams[2], dtype=dtype),
    )


def _dropout(p, rng, dtype):
    """[Dropout(p)] for p > 0, else []."""
    return [Dropout(p, rng=rng, dtype=dtype)] if p else []


def lenet5(in_shape=(1, 28, 28), classes=10, *, dropout=0.0, seed=None, dtype=np.float32):
    """LeNet-5 (LeCun et al., 1998) as it is built today: conv 6 x 5x5 (padding 2 on 28x28
    images, as the 32x32 inputs of the original) - ReLU - max-pool 2 - conv 16 x 5x5 - ReLU -
    max-pool 2 - affine 120 - ReLU - affine 84 - ReLU - affine ``classes``. The original had
    scaled tanh units and trainable subsampling where this has ReLU and max pooling.
    ``dropout`` > 0 adds a ``Dropout`` before the last affine layer."""
    c, h, w = _image_shape(in_shape)
    classes = check_int(classes, "classes", low=1)
    oh, ow = (out_size(out_size(s, 5, 1, 2) // 2, 5, 1, 0) // 2 for s in (h, w))
    if oh < 1 or ow < 1:
        raise InvalidValueError(f"lenet5: a {h}x{w} image is too small (at least 12x12)")
    dtype = check_dtype(dtype)
    streams = check_seed(seed, "seed").spawn(6)
    return Sequential(
        Conv2D(c, 6, 5, padding=2, activation="relu", rng=streams[0], dtype=dtype),
        MaxPool2D(2, dtype=dtype),
        Conv2D(6, 16, 5, activation="relu", rng=streams[1], dtype=dtype),
        MaxPool2D(2, dtype=dtype),
        Flatten(dtype=dtype),
        Linear(16 * oh * ow, 120, activation="relu", rng=streams[2], dtype=dtype),
        Linear(120, 84, activation="relu", rng=streams[3], dtype=dtype),
        *_dropout(dropout, streams[5], dtype),
        Linear(84, classes, rng=streams[4], dtype=dtype),
    )


# The networks by the names the command line and the benchmarks use.
CONV_NETS = {"simple-cnn": simple_conv_net, "lenet5": lenet5}
