"""What the experiments share: checking their arguments, training quietly, printing, the look
of their figures and saving them, the MNIST sample.

The checks are ``fastnn._checks``'s vocabulary (a wrong type raises ``InvalidTypeError``, a
wrong value ``InvalidValueError``, in the library's wording) plus the few checks that
involve several of an experiment's values.
"""

import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..._checks import check_array, check_bool, check_int, check_real
from ...data.datasets import SAMPLE_SIZE, load_mnist_sample
from ...errors import InvalidTypeError, InvalidValueError
from ...training import fit


def check_common(quick, seed, out):
    """Validate the arguments every experiment takes; return ``out`` as a Path (or None)."""
    check_bool(quick, "quick")
    check_int(seed, "seed", low=0)
    return None if out is None else Path(out)


def check_counts(**values):
    """Each keyword's value as an int >= 1 (``check_int(value, name, low=1)``), in order."""
    return tuple(check_int(value, name, low=1) for name, value in values.items())


def check_list(values, name, check, **bounds):
    """``values`` as a non-empty list, each element checked by ``check`` (``check_int`` or
    ``check_real``) with ``bounds`` and named ``name[i]`` in its errors."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidTypeError(f"{name} must be a list, got {type(values).__name__}")
    values = list(values)
    if not values:
        raise InvalidValueError(f"{name} must be a non-empty list, got []")
    return [check(v, f"{name}[{i}]", **bounds) for i, v in enumerate(values)]


def check_sizes(values, name):
    """``values`` as a non-empty list of ints >= 1 (layer sizes, unit counts)."""
    return check_list(values, name, check_int, low=1)


def check_point(value, name):
    """``value`` as a float64 array of two finite numbers: a point of the plane."""
    point = check_array(value, name, dtype=np.float64)
    if point.shape != (2,) or not np.isfinite(point).all():
        raise InvalidValueError(f"{name} must be two finite numbers (x, y), got {point.tolist()!r}")
    return point


def check_mnist_sizes(train_size, test_size):
    """``(train_size, test_size)`` as ints >= 1 that the MNIST sample can hold together."""
    train_size, test_size = check_counts(train_size=train_size, test_size=test_size)
    if train_size + test_size > SAMPLE_SIZE:
        raise InvalidValueError(
            f"train_size + test_size must be at most {SAMPLE_SIZE} (the MNIST sample), "
            f"got {train_size + test_size}"
        )
    return train_size, test_size


def check_fits(value, name, limit, what=None):
    """``InvalidValueError`` when ``value`` (a batch size) is larger than ``limit`` (a number
    of images; ``what`` names it in the message, by default "train_size LIMIT")."""
    if value > limit:
        raise InvalidValueError(f"{name} {value} is larger than {what or f'train_size {limit}'}")


def check_training(train_size, test_size, epochs, batch_size, lr):
    """The settings of a network trained on ``train_size`` MNIST images and tested on
    ``test_size`` others with mini-batches of ``batch_size`` at learning rate ``lr`` (> 0);
    returns ``lr`` as a float."""
    train_size, _ = check_mnist_sizes(train_size, test_size)
    _, batch_size = check_counts(epochs=epochs, batch_size=batch_size)
    check_fits(batch_size, "batch_size", train_size)
    return check_real(lr, "lr", low=0, closed="neither")


def fit_quietly(model, x, y, optimizer, epochs, batch_size, seed, **options):
    """``fastnn.fit`` as the experiments train: ``epochs`` epochs of ``optimizer`` on (x, y)
    in mini-batches of ``batch_size``, shuffled with ``seed`` (an int, or a SeedSequence that
    gives one), printing nothing; ``options`` go to ``fit``. Returns its History."""
    if isinstance(seed, np.random.SeedSequence):
        seed = int(seed.generate_state(1)[0])
    return fit(
        model,
        x,
        y,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        seed=seed,
        **options,
    )


def echo(file, *lines):
    """Print ``lines`` to ``file`` (stdout when None; nothing when False)."""
    if file is False:
        return
    stream = sys.stdout if file is None else file
    for line in lines:
        print(line, file=stream)
    stream.flush()


def pyplot():
    from ...plotting import _pyplot

    return _pyplot()


def style(ax, xlabel=None, ylabel=None, title=None, legend=False):
    """The experiments' look for one panel: labels and title where given, a light grid, and
    the legend when ``legend``."""
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend()


def save_figure(fig, out, filename, figures):
    """Lay ``fig`` out tightly, write it as ``out/filename`` (PNG, folder made if needed),
    close it, and append the path to the list ``figures``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    figures.append(str(path))
    return str(path)


def mnist(train_size, test_size, seed):
    """``(x_train, y_train, x_test, y_test)``: disjoint, class-stratified parts of the MNIST
    sample that ships with fastnn (float32 in [0, 1], 784 features, int labels)."""
    (x_train, y_train), (x_test, y_test) = load_mnist_sample(
        train_size=train_size, test_size=test_size, seed=seed
    )
    return x_train, y_train, x_test, y_test
