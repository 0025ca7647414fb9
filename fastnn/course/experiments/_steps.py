"""Loss curves on MNIST, one value per step: what weight-init-mnist and optimizers-mnist share.

Both train several copies of one ReLU network on the same random mini-batches of the MNIST
sample with an explicit loop (forward, loss, backward, optimizer step), since ``fastnn.fit``
reports one figure per epoch, then print the smoothed loss at a few steps and plot the
curves.
"""

import math

import numpy as np

from ... import nn
from ..._checks import check_int
from ..._table import format_table
from . import _common


def check_settings(train_size, steps, batch_size, hidden):
    """``hidden`` checked, as a list."""
    # All but one image of the MNIST sample (``_common.mnist`` holds one back as a test set).
    train_size = check_int(train_size, "train_size", low=1, high=_common.SAMPLE_SIZE - 1)
    _, batch_size = _common.check_counts(steps=steps, batch_size=batch_size)
    _common.check_fits(batch_size, "batch_size", train_size)
    return _common.check_sizes(hidden, "hidden")


def draw_batches(n, batch_size, steps, rng):
    """``steps`` random mini-batches of ``batch_size`` row indices out of ``n`` (as the course
    does: each batch drawn afresh, without replacement within the batch)."""
    return [np.sort(rng.choice(n, batch_size, replace=False)) for _ in range(steps)]


def images_and_batches(train_size, batch_size, steps, seed, batch_seq):
    """``(x, y, batches)``: ``train_size`` images of the MNIST sample (drawn with ``seed``)
    and ``steps`` mini-batches of them (drawn from the SeedSequence ``batch_seq``)."""
    x, y, _, _ = _common.mnist(train_size, 1, seed)
    return x, y, draw_batches(train_size, batch_size, steps, np.random.default_rng(batch_seq))


def train_steps(model, optimizer, x, y, batches):
    """Train ``model`` on the rows ``x[idx], y[idx]`` of each ``idx`` in ``batches``;
    return the mini-batch loss before each step, shape (len(batches),)."""
    loss = nn.SoftmaxCrossEntropy()
    losses = np.empty(len(batches))
    for i, idx in enumerate(batches):
        losses[i] = loss.forward(model.forward(x[idx]), y[idx])
        model.backward(loss.backward(), input_grad=False)  # fills every parameter's .grad
        optimizer.step()
    return losses


def smoothing_window(steps):
    """Steps averaged in the tables and curves: a fiftieth of the run, at least 5."""
    return min(steps, max(5, steps // 50))


def smooth(values, window):
    """Moving average of ``values`` over the last ``window`` steps (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    lo = np.maximum(np.arange(1, values.size + 1) - window, 0)
    return (sums[1:] - sums[lo]) / (np.arange(1, values.size + 1) - lo)


def table_steps(steps):
    """The steps shown in the table: five points from the first to the last."""
    return sorted({0, *(round(steps * k / 4) - 1 for k in range(1, 5))})


def report(file, training, sizes, losses, columns):
    """Print the loss table: a line saying how the networks were ``training`` ("SGD lr 0.01")
    on ``sizes`` = (train_size, batch_size, hidden), then one row per curve of ``losses``
    (label -> loss at each step), opened by ``columns`` = (headers, label -> cells), with the
    smoothed loss at the ``table_steps``. Returns ``(window, final)``: the smoothing window and
    label -> mean loss over the last ``window`` steps."""
    train_size, batch_size, hidden = sizes
    steps = len(next(iter(losses.values())))
    window, shown = smoothing_window(steps), table_steps(steps)
    headers, cells = columns
    _common.echo(
        file,
        f"{training}, batch {batch_size}, {steps} steps on {train_size} MNIST images; "
        f"network 784-{'-'.join(map(str, hidden))}-10 ReLU",
        f"mini-batch loss, averaged over the {window} steps up to the one shown "
        f"(chance: ln 10 = {math.log(10):.3f})",
        *format_table(
            [*headers, *[f"step {s + 1}" for s in shown]],
            [[*cells(label), *smooth(curve, window)[shown]] for label, curve in losses.items()],
            digits=3,
        ),
    )
    return window, {label: float(curve[-window:].mean()) for label, curve in losses.items()}


def results(losses, final, figures, **more):
    """The dict the two experiments return: ``steps``, ``losses`` (label -> float32 curve),
    the figures in ``more``, ``final`` and ``figures``."""
    return {
        "steps": len(next(iter(losses.values()))),
        "losses": {label: curve.astype(np.float32) for label, curve in losses.items()},
        **more,
        "final": final,
        "figures": figures,
    }
