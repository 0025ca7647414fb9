"""How wide and how deep: test accuracy against hidden units and hidden layers on MNIST.

Two series of ReLU networks (He initial weights), each trained the same way: Adam (lr 0.001),
batches of 100, the same number of epochs on the same images in the same order, then tested
on held-out images of the MNIST sample:

- width: one hidden layer of 10, 50, 100 or 300 units;
- depth: 1 to 5 hidden layers of 100 units.

What to look for: 10 units is too narrow (it squeezes 784 pixels through 10 numbers) and is
clearly worst; from 50 units on, more units help a little, with diminishing returns. Extra
layers change little on this small problem with this short training: one hidden layer of 100
units already gets most of the way. The gap between training and test accuracy grows with
the size of the network.
"""

from ... import nn, optim
from ..._table import format_table
from ...training import evaluate
from . import _common


def train_and_test(hidden, data, epochs, batch_size, lr, seed):
    """Train a ReLU MLP (784, *hidden, 10) with Adam; return (train accuracy, test accuracy,
    number of parameters)."""
    x, y, x_test, y_test = data
    model = nn.MLP([784, *hidden, 10], activation="relu", seed=seed)
    adam = optim.Adam(model.parameters(), lr=lr)
    _common.fit_quietly(model, x, y, adam, epochs, batch_size, seed)
    train = evaluate(model, x, y)["accuracy"]
    test = evaluate(model, x_test, y_test)["accuracy"]
    return train, test, model.num_parameters()


def check_settings(units, layers, width, train_size, test_size, epochs, batch_size, lr):
    """``(units, layers, lr)`` checked."""
    units, layers = _common.check_sizes(units, "units"), _common.check_sizes(layers, "layers")
    _common.check_counts(width=width)
    return units, layers, _common.check_training(train_size, test_size, epochs, batch_size, lr)


def tuning(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    units=(10, 50, 100, 300),
    layers=(1, 2, 3, 4, 5),
    width=100,
    train_size=8000,
    test_size=2000,
    epochs=5,
    batch_size=100,
    lr=0.001,
):
    """Train one-hidden-layer networks of each size in ``units`` and networks of each number
    of hidden layers in ``layers`` (``width`` units each) for ``epochs`` epochs on
    ``train_size`` images; test them on ``test_size`` others.

    Returns ``units`` and ``layers`` (the settings), ``units_accuracy`` and
    ``layers_accuracy`` (test accuracy per setting), ``units_train_accuracy`` and
    ``layers_train_accuracy``, and ``units_parameters`` and ``layers_parameters``.
    """
    out = _common.check_common(quick, seed, out)
    if quick:
        train_size, test_size, epochs = 2000, 500, 3
    units, layers, lr = check_settings(
        units, layers, width, train_size, test_size, epochs, batch_size, lr
    )
    data = _common.mnist(train_size, test_size, seed)

    runs = {}  # hidden sizes -> (train accuracy, test accuracy, parameters)
    for hidden in [(n,) for n in units] + [(width,) * k for k in layers]:
        if hidden not in runs:  # one layer of ``width`` units is in both series
            runs[hidden] = train_and_test(hidden, data, epochs, batch_size, lr, seed)
    by_units = [runs[(n,)] for n in units]
    by_layers = [runs[(width,) * k] for k in layers]

    _common.echo(
        file,
        f"ReLU networks, He init, Adam lr {lr}, batch {batch_size}, {epochs} epochs on "
        f"{train_size} MNIST images, tested on {test_size} others",
        *format_table(
            ["hidden layers", "units per layer", "parameters", "train accuracy", "test accuracy"],
            [[1, n, r[2], r[0], r[1]] for n, r in zip(units, by_units, strict=True)]
            + [[k, width, r[2], r[0], r[1]] for k, r in zip(layers, by_layers, strict=True)],
        ),
    )
    result = {"units": units, "layers": layers, "width": width}
    for name, series in (("units", by_units), ("layers", by_layers)):
        result[f"{name}_train_accuracy"] = [r[0] for r in series]
        result[f"{name}_accuracy"] = [r[1] for r in series]
        result[f"{name}_parameters"] = [r[2] for r in series]
    figures = []
    if out is not None:
        plot(result, epochs, out, figures)
    result["figures"] = figures
    return result


def plot(result, epochs, out, figures):
    """Two panels: accuracy against hidden units (one layer) and against hidden layers."""
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    panels = (
        (axes[0], "units", "hidden units (one hidden layer)"),
        (axes[1], "layers", f"hidden layers ({result['width']} units each)"),
    )
    for ax, name, xlabel in panels:
        settings = result[name]
        ax.plot(settings, result[f"{name}_train_accuracy"], "o--", label="train")
        ax.plot(settings, result[f"{name}_accuracy"], "o-", label="test")
        ax.set_xticks(settings)
        _common.style(ax, xlabel)
    axes[0].set_xscale("log")
    axes[0].set_xticks(result["units"], [str(n) for n in result["units"]])
    axes[0].minorticks_off()
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    fig.suptitle(f"MNIST, ReLU networks, Adam, {epochs} epochs")
    _common.save_figure(fig, out, "tuning.png", figures)
