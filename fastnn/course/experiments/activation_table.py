"""Initialisation x activation: which deep networks train at all.

The course closes weight initialisation with the table of Mishkin & Matas, "All you need is a
good init" (ICLR 2016, table 3: CIFAR-10, FitNet4), whose LSUV row reads Maxout 93.94,
ReLU 92.11, VLReLU 92.97, tanh 89.28, sigmoid n/c. Here the same table is made on the MNIST
sample with a deep MLP, 784 -> ``depth`` x 100 -> 10 (10 hidden layers by default), trained
with SGD + momentum 0.9 at lr 0.01 (the paper's optimiser) for a few epochs. Rows are the
initialisations, columns the activations:

- LSUV: orthogonal weights, then each layer in turn rescaled so that its output (before the
  activation) has variance 1 on a batch of training images (``fastnn.init.lsuv_``);
- orthogonal: a random orthogonal matrix, gain 1 (``fastnn.init.orthogonal_``);
- Xavier: Glorot's std sqrt(2 / (fan_in + fan_out)) (``fastnn.init.xavier_normal_``);
- He: std sqrt(2 / fan_in) (``fastnn.init.he_normal_``, the paper's MSRA), whatever the
  activation;
- Maxout: the max of 2 linear pieces per unit (``fastnn.Maxout``); VLReLU: leaky ReLU
  with slope 1/3.

A cell is the test accuracy, or "n/c" when training did not converge: the mean training loss
of the last epoch is not below 90% of ln 10 (the loss of a uniform guess over the 10 digits),
or the loss became infinite or NaN.

What to look for: sigmoid does not train at this depth with any initialisation (its
derivative is at most 1/4, so the gradient shrinks at every layer and the loss stays at
ln 10), while the ReLU family, tanh and Maxout do. LSUV trains everything else well. He's
gain sqrt(2) makes up for ReLU zeroing half its inputs, but a maxout unit zeroes nothing, so
with He weights its output's second moment doubles at each layer and the 10-layer Maxout
network blows up (n/c, as in the paper; the 6 layers of the quick run still train).
Orthogonal weights (gain 1) do the opposite for ReLU, whose signal halves at each layer,
and train it more slowly.
"""

import math
import warnings

import numpy as np

from ... import nn, optim
from ..._checks import check_real
from ..._table import format_table
from ...training import TrainingDivergedError, evaluate
from . import _common

INITS = ("LSUV", "orthogonal", "Xavier", "He")
ACTIVATIONS = ("Maxout", "ReLU", "VLReLU", "tanh", "sigmoid")
# Mishkin & Matas, table 3, LSUV row (CIFAR-10 test accuracy, %; None: did not converge).
PAPER_LSUV = {"Maxout": 93.94, "ReLU": 92.11, "VLReLU": 92.97, "tanh": 89.28, "sigmoid": None}
# Converged: the last epoch's mean training loss is below this fraction of ln 10.
CONVERGED_FRACTION = 0.9

# init -> the filler the layers are drawn with (LSUV starts from orthogonal weights)
_FILLS = {"LSUV": "orthogonal", "orthogonal": "orthogonal", "Xavier": "xavier", "He": "he"}
_LAYERS = {
    "ReLU": nn.ReLU,
    "VLReLU": lambda: nn.LeakyReLU(negative_slope=1 / 3),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


def deep_mlp(activation, init, depth, width, seq):
    """784 -> ``depth`` hidden layers of ``width`` units -> 10, as a Sequential.

    Each hidden layer is Linear then the activation layer (kept apart, not fused, so LSUV
    scales the Linear output, before the activation, as in the paper), or one Maxout layer
    of 2 pieces. ``seq`` (a SeedSequence) draws the weights; LSUV still needs ``lsuv_``."""
    seqs = seq.spawn(depth + 1)
    fill = _FILLS[init]
    layers, n_in = [], 784
    for layer_seq in seqs[:-1]:
        if activation == "Maxout":
            layers.append(nn.Maxout(n_in, width, pieces=2, init=fill, rng=layer_seq))
        else:
            layers += [nn.Linear(n_in, width, init=fill, rng=layer_seq), _LAYERS[activation]()]
        n_in = width
    layers.append(nn.Linear(n_in, 10, init=fill, rng=seqs[-1]))
    return nn.Sequential(*layers)


def train_cell(activation, init, data, settings, seq):
    """Build, initialise and train one network; return (test accuracy, last epoch's mean
    training loss). A diverged run gives (nan, inf)."""
    (x_train, y_train), (x_test, y_test) = data
    model_seq, lsuv_seq, order_seq = seq.spawn(3)
    model = deep_mlp(activation, init, settings["depth"], settings["width"], model_seq)
    if init == "LSUV":
        rng = np.random.default_rng(lsuv_seq)
        batch = x_train[rng.choice(len(x_train), settings["lsuv_batch"], replace=False)]
        with warnings.catch_warnings():
            # A layer short of unit variance after lsuv_'s 10 rescalings is still usable.
            warnings.simplefilter("ignore", RuntimeWarning)
            nn.init.lsuv_(model, batch, rng=rng)
    optimizer = optim.Momentum(model.parameters(), lr=settings["lr"], momentum=settings["momentum"])
    try:
        # A run that blows up overflows in the matrix products before fit stops it.
        with np.errstate(over="ignore", invalid="ignore"):
            history = _common.fit_quietly(
                model,
                x_train,
                y_train,
                optimizer,
                settings["epochs"],
                settings["batch_size"],
                order_seq,
            )
    except TrainingDivergedError:
        return math.nan, math.inf
    return evaluate(model, x_test, y_test)["accuracy"], history["loss"][-1]


def check_settings(settings):
    s = settings
    _common.check_counts(depth=s["depth"], width=s["width"], lsuv_batch=s["lsuv_batch"])
    _common.check_training(s["train_size"], s["test_size"], s["epochs"], s["batch_size"], s["lr"])
    _common.check_fits(s["lsuv_batch"], "lsuv_batch", s["train_size"])
    check_real(s["momentum"], "momentum", low=0, high=1, closed="left")


def activation_table(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    depth=10,
    width=100,
    train_size=3000,
    test_size=1000,
    epochs=10,
    batch_size=100,
    lr=0.01,
    momentum=0.9,
    lsuv_batch=500,
):
    """Test accuracy of a deep MLP (784, ``depth`` x ``width``, 10) for every initialisation
    in ``INITS`` and activation in ``ACTIVATIONS``, trained with SGD + momentum.

    Returns ``inits`` and ``activations`` (the row and column labels), ``accuracy`` (rows of
    test accuracies, None where training did not converge), ``converged`` (rows of bools),
    ``final_loss`` (the last epoch's mean training loss, array (inits, activations)),
    ``threshold`` (the loss below which a run counts as converged) and ``settings``."""
    out = _common.check_common(quick, seed, out)
    if quick:
        # Shallower and shorter: sigmoid already fails at 6 layers; 120 steps suffice for
        # the others.
        depth, train_size, epochs, batch_size, lsuv_batch = 6, 1000, 6, 50, 200
    settings = dict(
        depth=depth,
        width=width,
        train_size=train_size,
        test_size=test_size,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        momentum=momentum,
        lsuv_batch=lsuv_batch,
    )
    check_settings(settings)
    x_train, y_train, x_test, y_test = _common.mnist(train_size, test_size, seed)
    data = ((x_train, y_train), (x_test, y_test))
    threshold = CONVERGED_FRACTION * math.log(10)

    cell_seqs = iter(np.random.SeedSequence(seed).spawn(len(INITS) * len(ACTIVATIONS)))
    accuracy = np.empty((len(INITS), len(ACTIVATIONS)))
    final_loss = np.empty_like(accuracy)
    for i, init in enumerate(INITS):
        for j, activation in enumerate(ACTIVATIONS):
            accuracy[i, j], final_loss[i, j] = train_cell(
                activation, init, data, settings, next(cell_seqs)
            )
    converged = final_loss < threshold  # False for NaN and inf too
    report(file, accuracy, converged, final_loss, threshold, settings)
    figures = []
    if out is not None:
        plot(accuracy, converged, settings, out, figures)
    return {
        "inits": list(INITS),
        "activations": list(ACTIVATIONS),
        "accuracy": [
            [float(a) if c else None for a, c in zip(row, ok, strict=True)]
            for row, ok in zip(accuracy, converged, strict=True)
        ],
        "converged": converged.tolist(),
        "final_loss": final_loss,
        "threshold": threshold,
        "settings": settings,
        "figures": figures,
    }


def report(file, accuracy, converged, final_loss, threshold, settings):
    def cell(a, ok):
        return f"{100 * a:.2f}" if ok else "n/c"

    s = settings
    _common.echo(
        file,
        f"MLP 784-{s['depth']}x{s['width']}-10, SGD + momentum {s['momentum']}, lr {s['lr']}, "
        f"batch {s['batch_size']}, {s['epochs']} epochs on {s['train_size']} MNIST images; "
        f"test accuracy (%) on {s['test_size']} others",
        *format_table(
            ["init", *ACTIVATIONS],
            [
                [init, *(cell(a, ok) for a, ok in zip(accuracy[i], converged[i], strict=True))]
                for i, init in enumerate(INITS)
            ],
        ),
        f"n/c (not converged): the last epoch's mean training loss is not below "
        f"{CONVERGED_FRACTION:g} x ln 10 = {threshold:.3f}, or it became infinite or NaN",
        "paper (CIFAR-10, FitNet4), LSUV row: "
        + ", ".join(f"{k} {'n/c' if v is None else v}" for k, v in PAPER_LSUV.items()),
        "",
        "last epoch's mean training loss:",
        *format_table(
            ["init", *ACTIVATIONS],
            [[init, *final_loss[i]] for i, init in enumerate(INITS)],
            digits=3,
        ),
    )


def plot(accuracy, converged, settings, out, figures):
    plt = _common.pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    shown = np.where(converged, accuracy, np.nan)
    image = ax.imshow(100 * shown, cmap="viridis", vmin=0, vmax=100)
    for i in range(len(INITS)):
        for j in range(len(ACTIVATIONS)):
            text = f"{100 * accuracy[i, j]:.1f}" if converged[i, j] else "n/c"
            color = "black" if converged[i, j] else "red"
            ax.text(j, i, text, ha="center", va="center", color=color)
    ax.set_xticks(range(len(ACTIVATIONS)), ACTIVATIONS)
    ax.set_yticks(range(len(INITS)), INITS)
    ax.set_title(f"Test accuracy (%), MLP with {settings['depth']} hidden layers, MNIST")
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    _common.save_figure(fig, out, "activation_table.png", figures)
