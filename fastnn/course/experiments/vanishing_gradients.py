"""Vanishing and exploding gradients in a deep network: the gradient norm of every layer.

A 784-100x10-10 network (10 hidden layers of 100 units) is built five ways, and the
gradient of the cross-entropy loss on a fixed batch of MNIST images is measured layer by
layer, at initialisation and, for the first three, after a short training with plain SGD:

- sigmoid, Xavier (std 1/sqrt(n), the course's Xavier value, ``fastnn.init.lecun_normal_``):
  the sigmoid's slope is at most 1/4, so each layer backward multiplies the gradient by
  roughly 1/4 and the first layers get a gradient many orders of magnitude smaller than the
  last: they hardly learn, and with SGD the whole network stays near chance;
- tanh, Xavier: tanh's slope is 1 at 0, so the gradient keeps its size across layers;
- ReLU, He (std sqrt(2/n)): ReLU passes the gradient unchanged where it is active, and He's
  scale makes up for the half it blocks: the norms stay within a small factor;
- tanh, std 1 and ReLU, std 1 (too large): backward, every layer multiplies the gradient
  by about ||W|| times the activation's slope, here more than 1, so it explodes toward the
  input. (ReLU's forward activations grow as fast, so its weight gradients, outer products of
  the two, are huge in every layer; the gradient reaching each hidden layer grows about
  sqrt(100/2) = 7 times per layer toward the input.) These two are not trained.

"Gradient norm" is ||dL/dW|| (Frobenius) of each Linear layer's weight, the gradient the
optimizer uses; the table also gives ||dL/dh||, the gradient reaching each hidden layer's
output h. What to look for: on the log scale of the figure, the sigmoid line falls steeply
toward the input, ReLU/He and tanh/Xavier stay flat, and the std 1 lines rise toward it.
"""

import numpy as np

from ... import nn, optim
from ..._table import format_table
from ...training import evaluate
from . import _common

# label -> (activation, initialiser: a number is a normal std), and whether it is trained
CASES = {
    "sigmoid, Xavier": ("sigmoid", "lecun_normal"),
    "tanh, Xavier": ("tanh", "lecun_normal"),
    "ReLU, He": ("relu", "he_normal"),
    "tanh, std 1": ("tanh", 1.0),
    "ReLU, std 1": ("relu", 1.0),
}
TRAINED = ("sigmoid, Xavier", "tanh, Xavier", "ReLU, He")


def gradient_norms(model, x, y):
    """Back-propagate the loss on (x, y) one layer at a time; return ``(weight, hidden)``:
    ||dL/dW|| of each Linear layer, and ||dL/dh|| for the output h of each hidden layer."""
    loss = nn.SoftmaxCrossEntropy()
    loss.forward(model.forward(x), y)
    dout = loss.backward()
    hidden = []
    for layer in reversed(model.layers[1:]):
        dout = layer.backward(dout)  # gradient w.r.t. this layer's input: the hidden output
        hidden.append(float(np.linalg.norm(dout)))
    model.layers[0].backward(dout, input_grad=False)
    weight = [float(np.linalg.norm(layer.weight.grad)) for layer in model.layers]
    return np.array(weight), np.array(hidden[::-1])


def train(model, x, y, epochs, batch_size, lr, seed):
    """Plain SGD: the optimizer that feels vanishing gradients fully (Adam would rescale them)."""
    sgd = optim.SGD(model.parameters(), lr=lr)
    _common.fit_quietly(model, x, y, sgd, epochs, batch_size, seed)


def check_settings(depth, width, train_size, test_size, epochs, batch_size, lr, grad_batch):
    _common.check_counts(depth=depth, width=width, grad_batch=grad_batch)
    _common.check_training(train_size, test_size, epochs, batch_size, lr)
    _common.check_fits(grad_batch, "grad_batch", train_size)


def vanishing_gradients(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    depth=10,
    width=100,
    train_size=5000,
    test_size=1000,
    epochs=3,
    batch_size=100,
    lr=0.1,
    grad_batch=1000,
):
    """Gradient norms per layer of a network with ``depth`` hidden layers of ``width``
    units for each case of ``CASES``, on ``grad_batch`` training images; the ``TRAINED``
    cases again after ``epochs`` epochs of SGD (``lr``, ``batch_size``) on ``train_size``
    images of the MNIST sample.

    Returns ``weight_norms`` and ``hidden_norms`` (label -> array of ||dL/dW|| per Linear
    layer, the last being the output layer, and of ||dL/dh|| per hidden layer) at
    initialisation, ``trained_weight_norms`` and ``trained_hidden_norms`` after training,
    and ``accuracy`` (label -> test accuracy after training).
    """
    out = _common.check_common(quick, seed, out)
    if quick:
        train_size, test_size, epochs, grad_batch = 1000, 500, 1, 500
    check_settings(depth, width, train_size, test_size, epochs, batch_size, lr, grad_batch)
    x, y, x_test, y_test = _common.mnist(train_size, test_size, seed)
    xg, yg = x[:grad_batch], y[:grad_batch]  # the split is shuffled, so these are random
    sizes = [784, *[width] * depth, 10]

    weight, hidden, trained_weight, trained_hidden, accuracy = {}, {}, {}, {}, {}
    for label, (activation, init) in CASES.items():
        # One seed for all: the cases with normal weights draw the same ones, scaled.
        model = nn.MLP(sizes, activation=activation, init=init, seed=seed)
        weight[label], hidden[label] = gradient_norms(model, xg, yg)
        if label in TRAINED:
            train(model, x, y, epochs, batch_size, lr, seed)
            trained_weight[label], trained_hidden[label] = gradient_norms(model, xg, yg)
            accuracy[label] = evaluate(model, x_test, y_test)["accuracy"]

    print_tables(file, sizes, weight, hidden, trained_weight, accuracy, epochs, train_size, lr)
    figures = []
    if out is not None:
        plot(weight, trained_weight, hidden, epochs, out, figures)
    return {
        "weight_norms": weight,
        "hidden_norms": hidden,
        "trained_weight_norms": trained_weight,
        "trained_hidden_norms": trained_hidden,
        "accuracy": accuracy,
        "figures": figures,
    }


def layer_names(n):
    return [*map(str, range(1, n)), "out"]


def print_tables(file, sizes, weight, hidden, trained, accuracy, epochs, train_size, lr):
    n = len(sizes) - 1
    names = layer_names(n)
    _common.echo(
        file,
        f"network {sizes[0]}-{sizes[1]}x{len(sizes) - 2}-{sizes[-1]}; gradients of the loss on "
        "one batch of MNIST images; layer 1 is next to the input",
        "",
        "||dL/dW|| per layer at initialisation",
        *format_table(
            ["layer", *weight],
            [[name, *[v[i] for v in weight.values()]] for i, name in enumerate(names)],
            digits=3,
        ),
        "",
        f"||dL/dW|| per layer after {epochs} epoch{'s' * (epochs != 1)} of SGD (lr {lr}) "
        f"on {train_size} images",
        *format_table(
            ["layer", *trained],
            [[name, *[v[i] for v in trained.values()]] for i, name in enumerate(names)],
            digits=3,
        ),
        "",
        "||dL/dh||, the gradient reaching each hidden layer's output, at initialisation",
        *format_table(
            ["layer", *hidden],
            [[i + 1, *[v[i] for v in hidden.values()]] for i in range(n - 1)],
            digits=3,
        ),
        "",
        *format_table(
            ["case", f"||dW1|| / ||dW{n - 1}||", "after training", "test accuracy"],
            [
                [
                    label,
                    weight[label][0] / weight[label][n - 2],
                    trained[label][0] / trained[label][n - 2] if label in trained else "-",
                    accuracy.get(label, "-"),
                ]
                for label in weight
            ],
            digits=3,
        ),
    )


def plot(weight, trained, hidden, epochs, out, figures):
    """Three log-scale panels: ||dL/dW|| per layer at initialisation and after training, and
    ||dL/dh|| per hidden layer at initialisation; one line per case."""
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    panels = (
        (axes[0], weight, "||dL/dW|| at initialisation"),
        (axes[1], trained, f"||dL/dW|| after {epochs} epoch{'s' * (epochs != 1)} of SGD"),
        (axes[2], hidden, "||dL/dh|| at initialisation"),
    )
    colors = dict(zip(weight, plt.rcParams["axes.prop_cycle"].by_key()["color"], strict=False))
    for ax, norms, title in panels:
        for label, values in norms.items():
            style = "--" if "std 1" in label else "-"
            layers = np.arange(1, values.size + 1)
            ax.plot(
                layers, values, style, marker="o", markersize=3, color=colors[label], label=label
            )
        n = max(v.size for v in norms.values())
        ax.set_xticks(np.arange(1, n + 1))
        ax.set_xticklabels(layer_names(n) if norms is not hidden else range(1, n + 1))
        ax.set_yscale("log")
        _common.style(ax, "layer (1 = next to the input)", title=title)
    axes[0].set_ylabel("gradient norm")
    axes[0].legend(fontsize=8)
    _common.save_figure(fig, out, "vanishing_gradients.png", figures)
