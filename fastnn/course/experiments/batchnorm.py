"""Batch normalisation makes training insensitive to the initial weight scale.

The course's setup: 1,000 MNIST training images, a 784-100-100-100-100-100-10 ReLU network,
SGD lr 0.01, batches of 100, 20 epochs, trained from 16 initial weight scales (the std of
every weight, log-spaced from 1 down to 1e-4), once as a plain network and once with batch
normalisation between each hidden Linear layer and its ReLU. The curves are the accuracy on
the 1,000 training images before training and after each epoch, in eval mode.

What to look for: the plain network learns only in a narrow band of scales, about 0.1 to
0.3 (He's sqrt(2/n) is 0.14 for the 100-input layers). Smaller scales shrink the signal at
every layer, so the output and the gradients vanish and the accuracy stays at chance (about
0.11, the share of the commonest digit); at std 0.5 and above the activations blow up and
training diverges. With batch norm the activations are rescaled to zero mean and unit
variance at every layer whatever the weights, so the network learns at every scale, and from
std 0.1 down much faster than the plain one. Above that it learns more slowly than at
smaller scales (batch norm makes a layer's output independent of its weights' scale, so
large weights get relatively small updates), and in the band where the plain network works
best (0.15 to 0.3) the plain network is ahead after 20 epochs.
"""

import math

import numpy as np

from ... import nn, optim
from ..._checks import check_int, check_real
from ..._table import format_table
from ...training import TrainingDivergedError, evaluate
from . import _common


def network(std, batchnorm, hidden, seed):
    """The course's network: ``Linear -> [BatchNorm] -> ReLU`` per hidden layer, then a
    Linear output layer; every weight drawn from N(0, std^2). The same ``seed`` gives the same
    weights with and without batch norm (its layers draw nothing)."""
    rng = np.random.default_rng(seed)
    sizes = [784, *hidden]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        if batchnorm:
            # No bias: batch norm's shift takes its place. eps 1e-6 as in the course; the
            # common 1e-5 is larger than the variance that std 1e-4 weights give (about 1e-6
            # in the first layer), so batch norm could not rescale it.
            layers.append(nn.Linear(n_in, n_out, init=std, bias=False, rng=rng))
            layers.append(nn.BatchNorm(n_out, eps=1e-6))
            layers.append(nn.ReLU())
        else:
            layers.append(nn.Linear(n_in, n_out, init=std, rng=rng, activation="relu"))
    layers.append(nn.Linear(sizes[-1], 10, init=std, rng=rng))
    return nn.Sequential(*layers)


def train(x, y, std, batchnorm, epochs, batch_size, lr, hidden, seed):
    """Train one network; return its accuracy on (x, y) before training and after each epoch
    (NaN for the epochs after a divergence)."""
    model = network(std, batchnorm, hidden, seed)
    before = evaluate(model, x, y)["accuracy"]
    # Large weights without batch norm can overflow float32: fit then stops with
    # TrainingDivergedError, and the history holds the epochs before.
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            sgd = optim.SGD(model.parameters(), lr=lr)
            # The course's curve: accuracy on the training images themselves, in eval mode
            # (batch norm with its running statistics), after every epoch.
            history = _common.fit_quietly(
                model, x, y, sgd, epochs, batch_size, seed, validation_data=(x, y)
            )
        except TrainingDivergedError as e:
            history = e.history
    after = list(history["val_accuracy"]) if history.epochs else []
    return np.array([before, *after, *[math.nan] * (epochs - len(after))])


def check_settings(train_size, epochs, batch_size, lr, scales, hidden):
    """``hidden`` checked, as a list."""
    # All but one image of the MNIST sample (``_common.mnist`` holds one back as a test set).
    train_size = check_int(train_size, "train_size", low=1, high=_common.SAMPLE_SIZE - 1)
    _common.check_counts(epochs=epochs, scales=scales)
    check_int(batch_size, "batch_size", low=2, high=train_size)  # batch norm needs 2 rows
    check_real(lr, "lr", low=0, closed="neither")
    return _common.check_sizes(hidden, "hidden")


def batchnorm(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=1000,
    epochs=20,
    batch_size=100,
    lr=0.01,
    scales=16,
    hidden=(100, 100, 100, 100, 100),
):
    """Training accuracy with and without batch norm for ``scales`` initial weight stds
    ``np.logspace(0, -4, scales)``. Returns ``stds``, ``accuracy`` and ``accuracy_bn``
    (arrays of shape (scales, epochs + 1): before training, then after each epoch) and
    ``final`` / ``final_bn`` (the last column)."""
    out = _common.check_common(quick, seed, out)
    if quick:
        epochs, scales = 10, 5  # stds 1, 0.1, 0.01, 0.001, 0.0001
    hidden = check_settings(train_size, epochs, batch_size, lr, scales, hidden)

    x, y, _, _ = _common.mnist(train_size, 1, seed)
    stds = np.logspace(0, -4, scales)
    seeds = np.random.SeedSequence(seed).generate_state(scales)
    # The same seed for both networks of a scale: the same initial weights (batch norm
    # starts as the identity) and the same mini-batches.
    plain, with_bn = (
        np.array(
            [
                train(x, y, std, batchnorm, epochs, batch_size, lr, hidden, int(k))
                for std, k in zip(stds, seeds, strict=True)
            ]
        )
        for batchnorm in (False, True)
    )

    _common.echo(
        file,
        f"{train_size} MNIST images, 784-{'-'.join(map(str, hidden))}-10 ReLU, SGD lr {lr}, "
        f"batch {batch_size}; training accuracy after {epochs} epochs (chance: 0.1)",
        *format_table(
            ["weight std", "plain", "batch norm"],
            [
                [s, "diverged" if math.isnan(a) else a, b]
                for s, a, b in zip(stds, plain[:, -1], with_bn[:, -1], strict=True)
            ],
            digits=3,
        ),
    )
    figures = []
    if out is not None:
        plot(stds, plain, with_bn, out, figures)
    return {
        "stds": stds,
        "accuracy": plain,
        "accuracy_bn": with_bn,
        "final": plain[:, -1],
        "final_bn": with_bn[:, -1],
        "figures": figures,
    }


def plot(stds, plain, with_bn, out, figures):
    plt = _common.pyplot()
    cols = math.ceil(math.sqrt(len(stds)))
    rows = math.ceil(len(stds) / cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.6 * cols, 2.2 * rows), sharex=True, sharey=True, squeeze=False
    )
    epochs = np.arange(plain.shape[1])
    for i, ax in enumerate(axes.flat):
        if i >= len(stds):
            ax.axis("off")
            continue
        ax.plot(epochs, with_bn[i], label="batch norm")
        ax.plot(epochs, plain[i], linestyle="--", label="plain")
        ax.set_title(f"w std {stds[i]:.2g}", fontsize=9)
        ax.set_ylim(0, 1)
        _common.style(ax)
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Training accuracy with and without batch normalisation")
    _common.save_figure(fig, out, "batchnorm.png", figures)
