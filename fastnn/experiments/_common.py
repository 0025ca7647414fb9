"""What the experiments share: printing tables, saving figures, the MNIST sample."""

import math
import sys
from pathlib import Path

import numpy as np


def check_common(quick, seed, out):
    """Validate the arguments every experiment takes; return ``out`` as a Path (or None)."""
    if not isinstance(quick, bool | np.bool_):
        raise TypeError(f"quick must be True or False, got {quick!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return None if out is None else Path(out)


def echo(file, *lines):
    """Print ``lines`` to ``file`` (stdout when None; nothing when False)."""
    if file is False:
        return
    stream = sys.stdout if file is None else file
    for line in lines:
        print(line, file=stream)
    stream.flush()


def _cell(value, digits):
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    if value != 0 and (abs(value) < 10.0**-digits or abs(value) >= 1e6):
        return f"{value:.{digits}e}"
    return f"{value:.{digits}f}"


def table(headers, rows, digits=4):
    """The lines of a plain-text table: a header row, a rule, one line per row. Numbers are
    printed with ``digits`` decimals (scientific notation when very small or large)."""
    cells = [[str(h) for h in headers]] + [[_cell(v, digits) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def pyplot():
    from ..plotting import _pyplot

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
    from ..datasets import load_mnist_sample

    (x_train, y_train), (x_test, y_test) = load_mnist_sample(
        train_size=train_size, test_size=test_size, seed=seed
    )
    return x_train, y_train, x_test, y_test
