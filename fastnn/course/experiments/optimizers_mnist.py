"""The update rules on MNIST: one network, seven optimizers, the same mini-batches.

A 784-100-100-100-100-10 ReLU network with He initial weights is trained from the same start
(same seed) on the same 2,000 mini-batches of 128 images (drawn from 8,000 images of the
embedded MNIST sample) by each of ``fastnn.optim``'s optimizers:

- SGD lr 0.01, Momentum lr 0.01 (momentum 0.9), AdaGrad lr 0.01 and Adam lr 0.001 (betas
  0.9, 0.999): the course's learning rates for this comparison;
- Nesterov lr 0.01 (momentum 0.9) and RMSprop lr 0.001 (decay 0.99): the course's
  optimizer classes default to lr 0.01, which is too large for RMSprop here (its first steps
  are lr / sqrt(1 - 0.99) = 10 times lr in every coordinate and the loss jumps), so RMSprop
  gets Adam's 0.001;
- AdaDelta with Zeiler's settings: no learning rate (lr 1), rho 0.95, eps 1e-6.

What to look for: plain SGD is the slowest; the six others are all well below it after the
same number of steps (the course finds AdaGrad fastest in
the first hundreds of steps, with Adam and Momentum close behind). The loss is recorded at
every step with an explicit training loop, as in ``weight_init_mnist``.
"""

import numpy as np

from ... import nn, optim
from . import _common, _steps
from ._steps import smooth

# label -> (optimizer class, keyword arguments)
OPTIMIZERS = {
    "SGD": (optim.SGD, dict(lr=0.01)),
    "Momentum": (optim.Momentum, dict(lr=0.01, momentum=0.9)),
    "Nesterov": (optim.Nesterov, dict(lr=0.01, momentum=0.9)),
    "AdaGrad": (optim.AdaGrad, dict(lr=0.01, eps=1e-7)),
    "RMSprop": (optim.RMSprop, dict(lr=0.001, alpha=0.99, eps=1e-7)),
    "AdaDelta": (optim.AdaDelta, dict(lr=1.0, rho=0.95, eps=1e-6)),
    "Adam": (optim.Adam, dict(lr=0.001, betas=(0.9, 0.999))),
}


def optimizers_mnist(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=8000,
    steps=2000,
    batch_size=128,
    hidden=(100, 100, 100, 100),
):
    """Loss curves of a He-initialised ReLU MLP (784, *hidden, 10) trained by each optimizer
    of ``OPTIMIZERS``. Returns ``losses`` (label -> loss at each step), ``initial`` (the loss of
    the first mini-batch, the same for all) and ``final`` (label -> mean loss over the last
    ``smoothing_window(steps)`` steps)."""
    out = _common.check_common(quick, seed, out)
    if quick:
        train_size, steps = 2000, 200
    hidden = _steps.check_settings(train_size, steps, batch_size, hidden)
    batch_seq, model_seq = np.random.SeedSequence(seed).spawn(2)
    # An int, not the SeedSequence: MLP spawns from a SeedSequence, which changes it.
    model_seed = int(model_seq.generate_state(1)[0])
    x, y, batches = _steps.images_and_batches(train_size, batch_size, steps, seed, batch_seq)

    losses = {}
    for label, (optimizer_class, settings) in OPTIMIZERS.items():
        # The same seed gives every optimizer the same initial weights.
        model = nn.MLP([784, *hidden, 10], activation="relu", init="he_normal", seed=model_seed)
        optimizer = optimizer_class(model.parameters(), **settings)
        losses[label] = _steps.train_steps(model, optimizer, x, y, batches)

    initial = float(next(iter(losses.values()))[0])
    columns = (["optimizer", "settings"], lambda label: [label, describe(OPTIMIZERS[label][1])])
    sizes = (train_size, batch_size, hidden)
    window, final = _steps.report(file, "He initial weights", sizes, losses, columns)
    figures = []
    if out is not None:
        plot(losses, window, out, figures)
    return _steps.results(losses, final, figures, initial=initial)


def describe(settings):
    """``lr=0.01 momentum=0.9``: the settings in a table cell."""
    return " ".join(
        f"{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for k, v in settings.items()
    )


def plot(losses, window, out, figures):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for label, curve in losses.items():
        ax.plot(np.arange(1, curve.size + 1), smooth(curve, window), label=label)
    ax.set_yscale("log")  # the adaptive methods end orders of magnitude below SGD
    ylabel = f"training loss (mean of the last {window} steps)"
    title = "MNIST, 5-layer ReLU network, He initial weights"
    _common.style(ax, "iteration", ylabel, title, legend=True)
    _common.save_figure(fig, out, "optimizers_mnist.png", figures)
