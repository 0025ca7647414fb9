"""Logic gates from perceptrons, and why XOR needs a second layer.

A perceptron outputs 1 when w.x + b > 0, else 0: it splits the input plane with a straight
line. With the course's weights it is an AND, NAND or OR gate. XOR (1 when exactly one input
is 1) puts (0, 1) and (1, 0) on one side and (0, 0) and (1, 1) on the other, and no straight
line does that, so:

- the perceptron learning rule learns AND and OR in a few epochs but never gets all four XOR
  rows right (the best line it finds, kept by the pocket algorithm, gets 3 of 4);
- two layers do it: XOR(x) = AND(NAND(x), OR(x)), whose region is the band between two lines;
- a two-layer network trained by backpropagation (``fastnn.MLP`` + ``fastnn.fit``) finds a
  curved region of its own that also gets 4 of 4.

What to look for: in the figures, the single perceptron's region is a half-plane that always
misclassifies at least one corner; the two-layer regions separate the corners cleanly.
"""

import numpy as np

from ..._checks import check_real
from ..._table import format_table
from ..perceptron import (
    AND,
    GATE_INPUTS,
    NAND,
    OR,
    XOR,
    train_perceptron,
    train_xor_network,
)
from . import _common

GATES = {"AND": AND, "NAND": NAND, "OR": OR, "XOR": XOR}
TARGETS = {name: gate(GATE_INPUTS) for name, gate in GATES.items()}


def check_settings(epochs, lr, hidden, xor_epochs, xor_lr):
    _common.check_counts(epochs=epochs, hidden=hidden, xor_epochs=xor_epochs)
    check_real(lr, "lr", low=0, closed="neither")
    check_real(xor_lr, "xor_lr", low=0, closed="neither")


def accuracy(predict, targets):
    return float(np.mean(predict(GATE_INPUTS) == targets))


def perceptron_rule(epochs, lr, seed):
    """Train one perceptron per gate by the perceptron rule (pocket kept, for XOR)."""
    learned = {}
    for name in ("AND", "OR", "XOR"):
        p, mistakes = train_perceptron(
            GATE_INPUTS, TARGETS[name], lr=lr, epochs=epochs, seed=seed, pocket=True
        )
        learned[name] = (p, mistakes)
    return learned


def gates(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    epochs=50,
    lr=0.1,
    hidden=8,
    xor_epochs=300,
    xor_lr=0.05,
):
    """Truth tables of AND, NAND, OR, XOR; XOR by one perceptron (trained by the perceptron
    rule) versus two layers (NAND/OR/AND by hand, and a 2-``hidden``-2 tanh network trained
    by backprop for ``xor_epochs`` epochs of Adam at ``xor_lr``). Returns ``truth_tables``
    (gate -> outputs for rows (0,0), (1,0), (0,1), (1,1)), ``accuracy`` (model -> fraction of
    the four rows right) and ``rule_epochs`` (gate -> epochs the perceptron rule ran)."""
    out = _common.check_common(quick, seed, out)
    check_settings(epochs, lr, hidden, xor_epochs, xor_lr)

    rows = [
        [int(a), int(b), *(int(TARGETS[g][i]) for g in GATES)]
        for i, (a, b) in enumerate(GATE_INPUTS)
    ]
    _common.echo(file, "truth tables", *format_table(["x1", "x2", *GATES], rows), "")

    learned = perceptron_rule(epochs, lr, seed)
    network, _ = train_xor_network(seed=seed, hidden=hidden, epochs=xor_epochs, lr=xor_lr)
    models = {
        "AND, perceptron rule": (learned["AND"][0], "AND"),
        "OR, perceptron rule": (learned["OR"][0], "OR"),
        "XOR, one layer (perceptron rule)": (learned["XOR"][0], "XOR"),
        "XOR, two layers (NAND, OR -> AND)": (XOR, "XOR"),
        "XOR, two layers (backprop)": (network.predict_classes, "XOR"),
    }
    acc = {label: accuracy(model, TARGETS[gate]) for label, (model, gate) in models.items()}
    rule_epochs = {name: len(mistakes) for name, (_, mistakes) in learned.items()}
    _common.echo(
        file,
        f"perceptron rule: lr {lr}, at most {epochs} epochs; backprop: 2-{hidden}-2 tanh, "
        f"Adam lr {xor_lr}, {xor_epochs} epochs",
        *format_table(
            ["model", "correct of 4", "outputs"],
            [
                [label, int(round(a * 4)), str(models[label][0](GATE_INPUTS).tolist())]
                for label, a in acc.items()
            ],
        ),
        f"perceptron rule, epochs until an epoch without mistakes: AND {rule_epochs['AND']}, "
        f"OR {rule_epochs['OR']}, XOR none in {rule_epochs['XOR']}",
    )

    figures = []
    if out is not None:
        resolution = 101 if quick else 301
        plot_gates(out, figures, resolution)
        regions = {label: model for label, (model, gate) in models.items() if gate == "XOR"}
        plot_xor(regions, out, figures, resolution)
    return {
        "truth_tables": {name: t.tolist() for name, t in TARGETS.items()},
        "accuracy": acc,
        "rule_epochs": rule_epochs,
        "figures": figures,
    }


def grid(resolution):
    """Points of [-0.5, 1.5]^2: (xx, yy) for contour plots and the (n, 2) rows to classify."""
    axis = np.linspace(-0.5, 1.5, resolution)
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy, np.column_stack([xx.ravel(), yy.ravel()])


def draw_regions(ax, predict, targets, title, resolution):
    xx, yy, points = grid(resolution)
    zz = np.asarray(predict(points)).reshape(xx.shape)
    ax.contourf(xx, yy, zz, levels=[-0.5, 0.5, 1.5], colors=["#dde6f3", "#f6d5c6"])
    for value, marker, color in ((0, "o", "tab:blue"), (1, "^", "tab:red")):
        pts = GATE_INPUTS[targets == value]
        ax.scatter(pts[:, 0], pts[:, 1], marker=marker, s=90, color=color, label=f"target {value}")
    ax.set_xlim(-0.5, 1.5)
    ax.set_ylim(-0.5, 1.5)
    ax.set_aspect("equal")
    ax.set_xticks([0, 1])
    ax.set_yticks([0, 1])
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title(title, fontsize=9)


def plot_gates(out, figures, resolution):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (name, gate) in zip(axes, GATES.items(), strict=True):
        draw_regions(ax, gate, TARGETS[name], f"{name} (shaded: output 1)", resolution)
    axes[0].legend(loc="lower left", fontsize=7)
    _common.save_figure(fig, out, "gates.png", figures)


def plot_xor(regions, out, figures, resolution):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, len(regions), figsize=(4.2 * len(regions), 4))
    for ax, (label, predict) in zip(axes, regions.items(), strict=True):
        right = int(np.sum(predict(GATE_INPUTS) == TARGETS["XOR"]))
        draw_regions(ax, predict, TARGETS["XOR"], f"{label}: {right}/4", resolution)
    axes[0].legend(loc="lower left", fontsize=7)
    _common.save_figure(fig, out, "xor_regions.png", figures)
