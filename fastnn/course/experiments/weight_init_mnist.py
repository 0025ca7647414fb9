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
from ..._checks import check_real
from . import _common, _steps
from ._steps import smooth

# label -> initialiser given to the Linear layers (a number is a normal std)
INITS = {"std=0.01": 0.01, "Xavier": "lecun_normal", "He": "he_normal"}


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
    hidden = _steps.check_settings(train_size, steps, batch_size, hidden)
    lr = check_real(lr, "lr", low=0, closed="neither")
    batch_seq, *model_seqs = np.random.SeedSequence(seed).spawn(1 + len(INITS))
    x, y, batches = _steps.images_and_batches(train_size, batch_size, steps, seed, batch_seq)

    losses = {}
    for (label, init), model_seq in zip(INITS.items(), model_seqs, strict=True):
        model = nn.MLP([784, *hidden, 10], activation="relu", init=init, seed=model_seq)
        optimizer = optim.SGD(model.parameters(), lr=lr)
        losses[label] = _steps.train_steps(model, optimizer, x, y, batches)

    sizes = (train_size, batch_size, hidden)
    window, final = _steps.report(file, f"SGD lr {lr}", sizes, losses, (["init"], lambda k: [k]))
    figures = []
    if out is not None:
        plot(losses, window, out, figures)
    return _steps.results(losses, final, figures)


def plot(losses, window, out, figures):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, curve in losses.items():
        steps = np.arange(1, curve.size + 1)
        (line,) = ax.plot(steps, smooth(curve, window), label=label)
        ax.plot(steps, curve, color=line.get_color(), alpha=0.2, linewidth=0.5)
    ax.axhline(math.log(10), color="gray", linestyle=":", linewidth=1, label="ln 10")
    ax.set_ylim(0, 2.6)
    title = "MNIST, 5-layer ReLU network, SGD: initial weights"
    _common.style(ax, "iteration", "training loss", title, legend=True)
    _common.save_figure(fig, out, "weight_init_mnist.png", figures)
