"""Weight initialisation on MNIST: the same 5-layer ReLU network started three ways.

A 784-100-100-100-100-10 ReLU network is trained with plain SGD (lr 0.01, batches of 128,
2,000 steps) from three initial weight scales, on the same mini-batches in the same order.
The course draws its batches from the 60,000 MNIST training images; here they come from 8,000
images of the sample that ships with fastnn, so the run makes about 32 passes over them.

- ``std=0.01``: every weight drawn from N(0, 0.01^2). The activations shrink more than tenfold
  at each layer, so the output is almost zero, the softmax is almost uniform and
  the gradients reaching the early layers are tiny: the loss sits at ln 10 = 2.30 and barely
  moves.
- ``Xavier``: the course's Xavier value, std 1/sqrt(n) with n the inputs of the layer
  (``fastnn.init.lecun_normal_``; fastnn's ``xavier`` is Glorot's fan-averaged version).
- ``He``: std sqrt(2/n), made for ReLU, which zeroes half of its inputs
  (``fastnn.init.he_normal_``).

What to look for: the std 0.01 curve stays flat near 2.30 while Xavier and He fall quickly,
He faster. The loss is recorded at every step with an explicit training loop (forward, loss,
backward, optimizer step), since ``fastnn.fit`` reports one figure per epoch.
"""

import math

import numpy as np

from ... import nn, optim
from ..._table import format_table
from . import _common

# label -> initialiser given to the Linear layers (a number is a normal std)
INITS = {"std=0.01": 0.01, "Xavier": "lecun_normal", "He": "he_normal"}


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


def draw_batches(n, batch_size, steps, rng):
    """``steps`` random mini-batches of ``batch_size`` row indices out of ``n`` (as the course
    does: each batch drawn afresh, without replacement within the batch)."""
    return [np.sort(rng.choice(n, batch_size, replace=False)) for _ in range(steps)]


def smoothing_window(steps):
    """Steps averaged in the tables and curves: a fiftieth of the run, at least 5."""
    return min(steps, max(5, steps // 50))


def smooth(values, window):
    """Moving average of ``values`` over the last ``window`` steps (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.cumsum(np.concatenate([[0.0], values]))
    lo = np.maximum(np.arange(1, values.size + 1) - window, 0)
    return (sums[1:] - sums[lo]) / (np.arange(1, values.size + 1) - lo)


def check_settings(train_size, steps, batch_size, hidden):
    for name, value in (("train_size", train_size), ("steps", steps), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if train_size > 9999:
        raise ValueError(f"train_size must be at most 9999 (the MNIST sample), got {train_size}")
    if batch_size > train_size:
        raise ValueError(f"batch_size {batch_size} is larger than train_size {train_size}")
    if not hidden or any(
        isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1 for h in hidden
    ):
        raise ValueError(f"hidden must be a non-empty list of layer sizes >= 1, got {hidden!r}")


def table_steps(steps):
    """The steps shown in the table: five points from the first to the last."""
    return sorted({0, *(round(steps * k / 4) - 1 for k in range(1, 5))})


def weight_init_mnist(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=8000,
    steps=2000,
    batch_size=128,
    lr=0.01,
    hidden=(100, 100, 100, 100),
):
    """Loss curves of a ReLU MLP (784, *hidden, 10) trained with SGD from std 0.01, Xavier and
    He initial weights. Returns ``losses`` (label -> loss at each step) and ``final`` (label ->
    mean loss over the last ``smoothing_window(steps)`` steps)."""
    out = _common.check_common(quick, seed, out)
    if quick:
        train_size, steps = 2000, 400
    check_settings(train_size, steps, batch_size, hidden)
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    batch_seq, *model_seqs = np.random.SeedSequence(seed).spawn(1 + len(INITS))
    x, y, _, _ = _common.mnist(train_size, 1, seed)
    batches = draw_batches(train_size, batch_size, steps, np.random.default_rng(batch_seq))

    losses = {}
    for (label, init), model_seq in zip(INITS.items(), model_seqs, strict=True):
        model = nn.MLP([784, *hidden, 10], activation="relu", init=init, seed=model_seq)
        optimizer = optim.SGD(model.parameters(), lr=lr)
        losses[label] = train_steps(model, optimizer, x, y, batches)

    window = smoothing_window(steps)
    final = {label: float(curve[-window:].mean()) for label, curve in losses.items()}
    shown = table_steps(steps)
    _common.echo(
        file,
        f"SGD lr {lr}, batch {batch_size}, {steps} steps on {train_size} MNIST images; "
        f"network 784-{'-'.join(map(str, hidden))}-10 ReLU",
        f"mini-batch loss, averaged over the {window} steps up to the one shown "
        f"(chance: ln 10 = {math.log(10):.3f})",
        *format_table(
            ["init", *[f"step {s + 1}" for s in shown]],
            [[label, *smooth(curve, window)[shown]] for label, curve in losses.items()],
            digits=3,
        ),
    )
    figures = []
    if out is not None:
        plot(losses, window, out, figures)
    return {
        "steps": steps,
        "losses": {label: curve.astype(np.float32) for label, curve in losses.items()},
        "final": final,
        "figures": figures,
    }


def plot(losses, window, out, figures):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, curve in losses.items():
        steps = np.arange(1, curve.size + 1)
        (line,) = ax.plot(steps, smooth(curve, window), label=label)
        ax.plot(steps, curve, color=line.get_color(), alpha=0.2, linewidth=0.5)
    ax.axhline(math.log(10), color="gray", linestyle=":", linewidth=1, label="ln 10")
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss")
    ax.set_ylim(0, 2.6)
    ax.set_title("MNIST, 5-layer ReLU network, SGD: initial weights")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    _common.save_figure(fig, out, "weight_init_mnist.png", figures)
