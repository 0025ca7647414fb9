"""Overfitting, and two cures: weight decay and dropout.

The course's setup: only 300 MNIST training images and a large network for them, 784 -> six
hidden ReLU layers of 100 units -> 10 (He initial weights), SGD lr 0.01, batches of 100, 200
epochs. It is trained three times from the same initial weights on the same mini-batches:

- with no regularisation;
- with weight decay lambda = 0.1: the loss gets lambda/2 * sum ||W||^2 over the weight
  matrices, whose gradient lambda * W is what ``fastnn.optim.SGD(weight_decay=0.1)`` adds to
  each weight's gradient (biases are not decayed, as in the course);
- with dropout 0.2 after every hidden ReLU (``fastnn.MLP(dropout=0.2)``).

The curves are the accuracy on the 300 training images and on held-out test images after each
epoch, both in eval mode (no dropout).

What to look for: without regularisation the training accuracy reaches 1.0 within about 100
epochs while the test accuracy stops far below it: the network has memorised the 300 images.
Weight decay keeps the weights small, so the training accuracy stays below 1 and the gap
between the two curves narrows; dropout narrows it too.

Dropout differs from the course's code, by design. fastnn's ``Dropout`` is inverted dropout: in
training the kept units are scaled by 1/(1 - p), and at test time nothing is done. The
course's layer drops units without scaling and multiplies by (1 - p) at test time instead. The
two agree at test time on average, but in training inverted dropout's activations, and so its
gradients, are larger by 1/(1 - p) for every dropout layer they pass through (1.25 a layer
here, six layers), which with plain SGD at lr 0.01 is a larger step: with the defaults and
seed 0 the dropout case ends at 0.891 training accuracy, where the course's code reaches about
0.44 at 200 epochs. The table says so under its last row.
"""

import numpy as np

from ... import nn, optim
from ..._checks import check_real
from ..._table import format_table
from ...training import evaluate
from ...training.callbacks import Callback
from . import _common

CASES = ("none", "weight decay", "dropout")


class TrainAccuracy(Callback):
    """Records the accuracy on (x, y) after every epoch, in eval mode. (``fit``'s own
    "accuracy" is the running figure over the epoch's steps, with dropout on.)"""

    def __init__(self, x, y):
        self.x, self.y = x, y
        self.values = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.values.append(evaluate(trainer.model, self.x, self.y)["accuracy"])


def train(case, data, epochs, batch_size, lr, weight_decay, dropout, hidden, seed):
    """Train one network; return (train accuracy, test accuracy), one value per epoch each."""
    x, y, x_test, y_test = data
    model = nn.MLP(
        [784, *hidden, 10],
        activation="relu",
        init="he_normal",
        dropout=dropout if case == "dropout" else 0.0,
        seed=seed,
    )
    decay = weight_decay if case == "weight decay" else 0.0
    train_accuracy = TrainAccuracy(x, y)
    sgd = optim.SGD(model.parameters(), lr=lr, weight_decay=decay)
    options = dict(validation_data=(x_test, y_test), callbacks=[train_accuracy])
    history = _common.fit_quietly(model, x, y, sgd, epochs, batch_size, seed, **options)
    return np.array(train_accuracy.values), np.array(history["val_accuracy"])


def check_settings(train_size, test_size, epochs, batch_size, lr, weight_decay, dropout, hidden):
    """``hidden`` checked, as a list."""
    _common.check_training(train_size, test_size, epochs, batch_size, lr)
    check_real(weight_decay, "weight_decay", low=0, closed="neither")
    check_real(dropout, "dropout", low=0, high=1, closed="neither")
    return _common.check_sizes(hidden, "hidden")


def overfitting(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=300,
    test_size=2000,
    epochs=200,
    batch_size=100,
    lr=0.01,
    weight_decay=0.1,
    dropout=0.2,
    hidden=(100, 100, 100, 100, 100, 100),
):
    """Train and test accuracy per epoch without regularisation, with weight decay and with
    dropout. Returns ``train`` and ``test`` (case -> accuracy after each epoch) and ``gap``
    (case -> train minus test accuracy, averaged over the last tenth of the epochs)."""
    out = _common.check_common(quick, seed, out)
    if quick:
        test_size, epochs = 300, 100
    hidden = check_settings(
        train_size, test_size, epochs, batch_size, lr, weight_decay, dropout, hidden
    )
    data = _common.mnist(train_size, test_size, seed)
    # One int seed for all three cases: the same initial weights and the same mini-batches.
    model_seed = int(np.random.SeedSequence(seed).generate_state(1)[0])
    settings = (epochs, batch_size, lr, weight_decay, dropout, hidden, model_seed)

    train_acc, test_acc = {}, {}
    for case in CASES:
        train_acc[case], test_acc[case] = train(case, data, *settings)
    last = max(1, epochs // 10)
    final_train = {c: float(train_acc[c][-last:].mean()) for c in CASES}
    final_test = {c: float(test_acc[c][-last:].mean()) for c in CASES}
    gap = {c: final_train[c] - final_test[c] for c in CASES}

    labels = {"none": "none", "weight decay": f"weight decay {weight_decay}"}
    labels["dropout"] = f"dropout {dropout}"
    _common.echo(
        file,
        f"{train_size} training and {test_size} test MNIST images, "
        f"784-{'-'.join(map(str, hidden))}-10 ReLU, SGD lr {lr}, batch {batch_size}, "
        f"{epochs} epochs; accuracy averaged over the last {last} epochs",
        *format_table(
            ["regularisation", "train", "test", "gap"],
            [[labels[c], final_train[c], final_test[c], gap[c]] for c in CASES],
            digits=3,
        ),
        "dropout here is inverted (kept units scaled by 1/(1-p) in training); the course scales "
        "by (1-p) at test time instead, which trains more slowly with SGD (see the docstring)",
    )
    figures = []
    if out is not None:
        plot(train_acc, test_acc, labels, out, figures)
    return {
        "train": train_acc,
        "test": test_acc,
        "final_train": final_train,
        "final_test": final_test,
        "gap": gap,
        "figures": figures,
    }


def plot(train_acc, test_acc, labels, out, figures):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, len(CASES), figsize=(4.2 * len(CASES), 3.6), sharey=True)
    for ax, case in zip(axes, CASES, strict=True):
        epochs = np.arange(1, train_acc[case].size + 1)
        ax.plot(epochs, train_acc[case], label="train")
        ax.plot(epochs, test_acc[case], label="test")
        ax.set_title(f"regularisation: {labels[case]}", fontsize=10)
        ax.set_ylim(0, 1.02)
        _common.style(ax, "epoch")
    axes[0].set_ylabel("accuracy")
    axes[0].legend()
    _common.save_figure(fig, out, "overfitting.png", figures)
