"""Why initial weights must not all be equal: the hidden units stay identical.

Two copies of a 784-50-10 sigmoid network are trained on the same MNIST images with SGD:

- ``equal``: every weight starts at the same value (``fastnn.init.constant_``, 0.01);
- ``random``: weights drawn at random (``fastnn.MLP``'s default for sigmoid, Xavier).

With equal weights every hidden unit computes the same output for every image, so backprop
hands every unit the same gradient and the update keeps them equal: after training, all 50
hidden units still have the same weights, and the network is no better than one with a single
hidden unit. Random initial weights break this symmetry.

What to look for: the spread between hidden units (the largest difference between any unit's
weights and the first unit's) stays at rounding level, about 1e-15 of the weights' size, for
equal initial weights, while the weights themselves have moved by far more than that; the
number of distinct units is 1 of 50 against 50 of 50 with random weights, and the test
accuracy shows what that costs. The network is float64 so that the only asymmetry, the
matrix product summing different columns in different orders, stays at rounding level
(in float32 the same training leaves a spread of about 1e-6 relative).
"""

import numpy as np

from ... import nn, optim
from ..._checks import check_int, check_real
from ..._table import format_table
from ...errors import InvalidValueError
from ...training import evaluate
from . import _common

# Units count as distinct when their weights differ by more than this, relative to the
# largest weight: far above float64 rounding, far below any real difference.
DISTINCT = 1e-6


def check_settings(train_size, test_size, hidden, epochs, batch_size, lr, value):
    check_int(hidden, "hidden", low=2)  # two units at least, to compare
    _common.check_training(train_size, test_size, epochs, batch_size, lr)
    if check_real(value, "value") == 0:
        raise InvalidValueError("value must be a nonzero number, got 0")


def unit_spread(model):
    """(absolute, relative) largest difference between a hidden unit's weights (incoming
    weights, bias and outgoing weights) and the first unit's; relative to the largest
    weight."""
    first, second = model[0], model[1]
    units = np.vstack([first.weight.data, first.bias.data, second.weight.data.T])  # (., hidden)
    spread = float(np.abs(units - units[:, :1]).max())
    return spread, spread / float(np.abs(units).max())


def distinct_units(model):
    """How many hidden units differ (by more than ``DISTINCT`` relative) from all before."""
    units = np.vstack([model[0].weight.data, model[0].bias.data]).T  # (hidden, inputs + 1)
    scale = np.abs(units).max()
    kept = []
    for u in units:
        if all(np.abs(u - k).max() > DISTINCT * scale for k in kept):
            kept.append(u)
    return len(kept)


def symmetric_weights(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=1000,
    test_size=1000,
    hidden=50,
    epochs=30,
    batch_size=100,
    lr=0.1,
    value=0.01,
):
    """Train a 784-``hidden``-10 sigmoid network (float64, SGD at ``lr``) from all weights
    equal to ``value`` and from random weights. Returns, per init ("equal", "random"):
    ``spread`` and ``relative_spread`` between hidden units, ``distinct_units``, ``moved``
    (largest change of a first-layer weight), ``loss`` (per epoch) and ``test_accuracy``."""
    out = _common.check_common(quick, seed, out)
    if quick:
        train_size, test_size, epochs = 300, 300, 5
    check_settings(train_size, test_size, hidden, epochs, batch_size, lr, value)
    x, y, x_test, y_test = _common.mnist(train_size, test_size, seed)
    x, x_test = x.astype(np.float64), x_test.astype(np.float64)
    model_seq, fit_seq = np.random.SeedSequence(seed).spawn(2)
    fit_seed = int(fit_seq.generate_state(1)[0])

    def equal(a, rng):
        return nn.init.constant_(a, value)

    inits = {"equal": equal, "random": None}  # None: the MLP's default (Xavier for sigmoid)
    results, models, first = {}, {}, {}
    for label, init in inits.items():
        model = nn.MLP(
            [784, hidden, 10], activation="sigmoid", init=init, seed=model_seq, dtype=np.float64
        )
        first[label] = model[0].weight.data.copy()
        sgd = optim.SGD(model.parameters(), lr=lr)
        # fit_seed: the same mini-batches for both
        history = _common.fit_quietly(model, x, y, sgd, epochs, batch_size, fit_seed)
        spread, relative = unit_spread(model)
        results[label] = {
            "spread": spread,
            "relative_spread": relative,
            "distinct_units": distinct_units(model),
            "moved": float(np.abs(model[0].weight.data - first[label]).max()),
            "loss": history["loss"],
            "test_accuracy": evaluate(model, x_test, y_test)["accuracy"],
        }
        models[label] = model

    _common.echo(
        file,
        f"784-{hidden}-10 sigmoid network (float64), SGD lr {lr}, batch {batch_size}, "
        f"{epochs} epochs on {train_size} MNIST images; equal init: every weight {value:g}",
        *format_table(
            [
                "init",
                "spread",
                "relative",
                "distinct units",
                "weights moved",
                "final loss",
                "test acc",
            ],
            [
                [
                    label,
                    r["spread"],
                    r["relative_spread"],
                    f"{r['distinct_units']} of {hidden}",
                    r["moved"],
                    r["loss"][-1],
                    r["test_accuracy"],
                ]
                for label, r in results.items()
            ],
        ),
    )
    figures = []
    if out is not None:
        plot_units(models, out, figures)
        plot_loss(results, out, figures)
    return {**results, "figures": figures}


def plot_units(models, out, figures, shown=8):
    """The first ``shown`` hidden units' incoming weights as 28 x 28 images, one row per init."""
    plt = _common.pyplot()
    fig, axes = plt.subplots(len(models), shown, figsize=(1.5 * shown, 1.8 * len(models)))
    for row, (label, model) in zip(axes, models.items(), strict=True):
        w = model[0].weight.data
        for j, ax in enumerate(row):
            ax.imshow(w[:, j].reshape(28, 28), cmap="coolwarm")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label)
            ax.set_title(f"unit {j}", fontsize=8)
    fig.suptitle("incoming weights of hidden units after training (each on its own colour scale)")
    _common.save_figure(fig, out, "symmetric_weights_units.png", figures)


def plot_loss(results, out, figures):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, r in results.items():
        ax.plot(np.arange(1, len(r["loss"]) + 1), r["loss"], marker="o", markersize=3, label=label)
    _common.style(ax, "epoch", "training loss", "equal vs random initial weights", legend=True)
    _common.save_figure(fig, out, "symmetric_weights_loss.png", figures)
