"""What the experiments share: checking their common arguments, printing, saving figures, the
MNIST sample."""

import sys
from pathlib import Path

from ..._checks import check_bool, check_int


def check_common(quick, seed, out):
    """Validate the arguments every experiment takes; return ``out`` as a Path (or None)."""
    check_bool(quick, "quick")
    check_int(seed, "seed", low=0)
    return None if out is None else Path(out)


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


def save_figure(fig, out, filename, figures):
    """Write ``fig`` as ``out/filename`` (PNG, folder made if needed), close it, and append
    the path to the list ``figures``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / filename
    fig.savefig(path, dpi=100)
    pyplot().close(fig)
    figures.append(str(path))
    return str(path)


def mnist(train_size, test_size, seed):
    """``(x_train, y_train, x_test, y_test)``: disjoint, class-stratified parts of the MNIST
    sample that ships with fastnn (float32 in [0, 1], 784 features, int labels)."""
    from ...data.datasets import load_mnist_sample

    (x_train, y_train), (x_test, y_test) = load_mnist_sample(
        train_size=train_size, test_size=test_size, seed=seed
    )
    return x_train, y_train, x_test, y_test
