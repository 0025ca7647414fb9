"""Hyperparameter search: random learning rates and weight decays, then a narrower second round.

The course's recipe for tuning: hold out part of the training data as a **validation set**
(the test set stays aside until the very end, or the search would tune to it), draw each
hyperparameter at random on a log scale, train briefly, and keep the ranges where the
validation accuracy is best:

1. Round 1: ``trials[0]`` networks 784-100x6-10 (ReLU, He init, plain SGD, batches of 100)
   trained for a few epochs on 400 images and scored on 100 validation images, with
   learning rate 10^U(-6, -2) and weight decay 10^U(-8, -4).
2. Round 2: the same with the ranges narrowed to the smallest and largest value (in log
   space) among the ``top`` best trials of round 1.
3. The best trial of both rounds is retrained on training + validation data (500 images)
   and tested once on the held-out test images.

The search is ``fastnn.tune``'s: ``search_rounds`` (a ``random_search`` per round, round 2 in
round 1's ``SearchResult.narrow(top)``) over ``LogUniform`` ranges, with the trial function
``train_fn`` run in this process (executor "serial"). Trials rank by validation accuracy,
ties in trial order (round 1 first); a trial whose training fails (diverges) is kept in the
round's list with NaN scores and left out of the ranking.

What to look for: the accuracy depends mostly on the learning rate. Below about 1e-4 a few
epochs of SGD barely move the weights and the accuracy stays near chance (10%); the best
trials sit in the upper part of the range, near 1e-2. Weight decay hardly matters this early
in training (1e-4 times a weight is small next to the gradient), so its best values are
spread out. The figure shows validation accuracy against each hyperparameter, one colour
per round. ``quick=True`` runs 16 + 6 trials of 5 epochs in batches of 10.
"""

import math

import numpy as np

from ... import nn, optim
from ..._checks import check_int, check_real
from ..._table import format_table
from ...data import preprocessing as pp
from ...errors import InvalidValueError
from ...training import evaluate
from ...tune import LogUniform, search_rounds
from . import _common


def check_settings(train_size, validation, test_size, hidden, epochs, batch_size, trials, top):
    """The settings as checked values: ``(validation, hidden, trials, top)``."""
    _common.check_mnist_sizes(train_size, test_size)
    _common.check_counts(epochs=epochs, batch_size=batch_size)
    validation = check_real(validation, "validation", low=0, high=1, closed="neither")
    hidden = _common.check_sizes(hidden, "hidden")
    trials = _common.check_list(trials, "trials", check_int, low=1)
    if len(trials) != 2:
        raise InvalidValueError(f"trials must be two integers (one per round), got {trials}")
    top = check_int(top, "top", low=2, high=trials[0])
    return validation, hidden, tuple(trials), top


def check_range(name, bounds):
    """``bounds`` = (low, high) exponents of ten, low < high (within +-300: 10^x a float)."""
    low, *high = _common.check_list(bounds, name, check_real, low=-300, high=300)
    if len(high) != 1 or not low < high[0]:
        raise InvalidValueError(
            f"{name} must be two exponents (low, high) with low < high, got {[low, *high]}"
        )
    return low, high[0]


def train_fn(params, data, seed):
    """One trial, as ``fastnn.tune`` runs it: train a fresh ReLU network with
    SGD(``params["lr"]``, ``params["weight_decay"]``) on ``data`` = (train, validation,
    settings), the first two (x, y) pairs and ``settings`` the network's ``hidden`` sizes,
    ``epochs`` and ``batch_size``. ``seed`` (an int) draws the initial weights and the order of
    the mini-batches. Returns ``{"score": validation accuracy, "val_loss": validation loss}``."""
    (x, y), validation, settings = data
    init_seq, order_seq = np.random.SeedSequence(seed).spawn(2)
    model = nn.MLP([784, *settings["hidden"], 10], activation="relu", seed=init_seq)
    optimizer = optim.SGD(model.parameters(), lr=params["lr"], weight_decay=params["weight_decay"])
    _common.fit_quietly(
        model, x, y, optimizer, settings["epochs"], settings["batch_size"], order_seq
    )
    scores = evaluate(model, *validation)
    return {"score": float(scores["accuracy"]), "val_loss": float(scores["loss"])}


def exponents(dist):
    """The (low, high) exponents of ten of a search range (a ``LogUniform``, or the one value
    narrowing left when the top trials all had it)."""
    if isinstance(dist, LogUniform):
        return math.log10(dist.lo), math.log10(dist.hi)
    return math.log10(dist), math.log10(dist)


def trial_dicts(result):
    """A round's trials in trial order as dicts (lr, weight_decay, val_accuracy, val_loss); a
    trial that failed (its training diverged or raised) has NaN for both scores."""
    return [
        {
            "lr": t.params["lr"],
            "weight_decay": t.params["weight_decay"],
            "val_accuracy": t.score if t.ok else math.nan,
            "val_loss": t.metrics["val_loss"] if t.ok else math.nan,
        }
        for t in result.trials
    ]


def hyperparameter_search(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=500,
    validation=0.2,
    test_size=2000,
    hidden=(100, 100, 100, 100, 100, 100),
    epochs=50,
    batch_size=100,
    trials=(40, 20),
    lr_range=(-6, -2),
    wd_range=(-8, -4),
    top=5,
):
    """Two rounds of random search over SGD's learning rate and weight decay (exponents of ten
    in ``lr_range`` and ``wd_range``) on a training/validation split of ``train_size`` MNIST
    images, then the best setting retrained on all ``train_size`` images and tested on
    ``test_size`` others. Returns ``rounds`` (per round: ``lr_range``, ``wd_range`` and its
    ``trials``, each a dict lr, weight_decay, val_accuracy, val_loss), ``best`` (the best
    trial, with its ``round``), ``test_accuracy`` and the split ``sizes``."""
    out = _common.check_common(quick, seed, out)
    if quick:
        # Smaller batches give the few epochs enough SGD steps to learn something.
        epochs, batch_size, trials = 5, 10, (16, 6)
    validation, hidden, trials, top = check_settings(
        train_size, validation, test_size, hidden, epochs, batch_size, trials, top
    )
    lr_range, wd_range = check_range("lr_range", lr_range), check_range("wd_range", wd_range)

    x_all, y_all, x_test, y_test = _common.mnist(train_size, test_size, seed)
    # The search sees the training and validation parts only; the test part waits to the end.
    (x_train, y_train), (x_val, y_val), _ = pp.train_val_test_split(
        x_all, y_all, val=validation, test=0, seed=seed
    )
    _common.check_fits(
        batch_size, "batch_size", len(x_train), f"the {len(x_train)} training images"
    )
    settings = dict(hidden=tuple(hidden), epochs=epochs, batch_size=batch_size)
    search_seq, final_seq = np.random.SeedSequence(seed).spawn(2)

    space = {
        "lr": LogUniform(10.0 ** lr_range[0], 10.0 ** lr_range[1]),
        "weight_decay": LogUniform(10.0 ** wd_range[0], 10.0 ** wd_range[1]),
    }
    # Round 2 searches space.narrow(top): each range from the smallest to the largest value
    # (on a log axis) among round 1's ``top`` best trials. "serial": in this process, in order.
    results = search_rounds(
        train_fn,
        space,
        list(trials),
        ((x_train, y_train), (x_val, y_val), settings),
        rounds=2,
        top=top,
        seed=search_seq,
        executor="serial",
    )
    rounds = [
        {
            "lr_range": lr_range if i == 0 else exponents(r.space["lr"]),
            "wd_range": wd_range if i == 0 else exponents(r.space["weight_decay"]),
            "trials": trial_dicts(r),
        }
        for i, r in enumerate(results)
    ]
    everything = ranked(rounds, results)
    best = everything[0]
    # Retrained on training + validation data: the validation set has done its job.
    final = train_fn(
        best, ((x_all, y_all), (x_test, y_test), settings), int(final_seq.generate_state(1)[0])
    )
    sizes = {"train": len(x_train), "validation": len(x_val), "test": len(x_test)}
    report(file, rounds, everything, best, final["score"], sizes, settings, top)
    figures = []
    if out is not None:
        plot(rounds, best, out, figures)
    return {
        "rounds": rounds,
        "best": best,
        "test_accuracy": final["score"],
        "sizes": sizes,
        "figures": figures,
    }


def ranked(rounds, results):
    """The successful trials of all rounds, best first, each with its ``round``: by validation
    accuracy, ties in trial order (round 1 first), as ``SearchResult.ranked`` orders a round."""
    everything = [
        dict(rounds[i]["trials"][t.index], round=i + 1)
        for i, r in enumerate(results)
        for t in r.ranked()
    ]
    return sorted(everything, key=lambda t: -t["val_accuracy"])  # stable: ties keep the order


def _exp_range(bounds):
    return f"10^[{bounds[0]:.2f}, {bounds[1]:.2f}]"


def _failed(trials):
    failed = sum(math.isnan(t["val_accuracy"]) for t in trials)
    return f" ({failed} failed: training diverged or raised)" if failed else ""


def report(file, rounds, everything, best, test_accuracy, sizes, settings, top):
    shown = everything[: max(top, 10)]
    hidden = settings["hidden"]
    _common.echo(
        file,
        f"network 784-{'x'.join(map(str, (len(hidden), hidden[0])))}-10 ReLU (He init), "
        f"SGD, batch {settings['batch_size']}, {settings['epochs']} epochs; "
        f"{sizes['train']} training, {sizes['validation']} validation images",
        *[
            f"round {i + 1}: {len(r['trials'])} trials{_failed(r['trials'])}, lr in "
            f"{_exp_range(r['lr_range'])}, weight decay in {_exp_range(r['wd_range'])}"
            for i, r in enumerate(rounds)
        ],
        "",
        f"best {len(shown)} trials (validation accuracy; round 2's ranges: min..max of "
        f"round 1's top {top}):",
        *format_table(
            ["rank", "round", "lr", "weight decay", "val accuracy"],
            [
                [k + 1, t["round"], f"{t['lr']:.2e}", f"{t['weight_decay']:.2e}", t["val_accuracy"]]
                for k, t in enumerate(shown)
            ],
            digits=3,
        ),
        "",
        f"best: lr {best['lr']:.2e}, weight decay {best['weight_decay']:.2e} "
        f"(round {best['round']}, val accuracy {best['val_accuracy']:.3f})",
        f"retrained on training + validation ({sizes['train'] + sizes['validation']} images): "
        f"test accuracy {test_accuracy:.3f} on {sizes['test']} held-out images",
    )


def plot(rounds, best, out, figures):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    panels = ((axes[0], "lr", "learning rate"), (axes[1], "weight_decay", "weight decay"))
    for ax, key, label in panels:
        for i, r in enumerate(rounds):
            values = [t[key] for t in r["trials"]]
            scores = [t["val_accuracy"] for t in r["trials"]]
            ax.scatter(values, scores, s=18, color=f"C{i}", label=f"round {i + 1}")
        bounds = "lr_range" if key == "lr" else "wd_range"
        low, high = rounds[-1][bounds]
        ax.axvspan(10.0**low, 10.0**high, color="C1", alpha=0.1, label="round 2's range")
        low, high = rounds[0][bounds]
        ax.set_xlim(10.0**low, 10.0**high)
        ax.scatter(
            [best[key]],
            [best["val_accuracy"]],
            s=120,
            marker="*",
            color="k",
            label="best",
            zorder=3,
        )
        ax.set_xscale("log")
        ax.axhline(0.1, color="gray", linestyle=":", linewidth=1)  # chance
        _common.style(ax, label)
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend(loc="upper left")
    fig.suptitle("Random search for SGD's learning rate and weight decay (MNIST)")
    _common.save_figure(fig, out, "hyperparameter_search.png", figures)
