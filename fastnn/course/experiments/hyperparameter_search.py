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
from ..._table import format_table
from ...data import preprocessing as pp
from ...training import evaluate, fit
from . import _common


def check_settings(train_size, validation, test_size, hidden, epochs, batch_size, trials, top):
    for name, value in (
        ("train_size", train_size),
        ("test_size", test_size),
        ("epochs", epochs),
        ("batch_size", batch_size),
        ("top", top),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if train_size + test_size > 10_000:
        raise ValueError(
            f"train_size + test_size must be at most 10000 (the MNIST sample), got "
            f"{train_size + test_size}"
        )
    if not (isinstance(validation, float) and 0 < validation < 1):
        raise ValueError(f"validation must be a fraction between 0 and 1, got {validation!r}")
    if not hidden or any(
        isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1 for h in hidden
    ):
        raise ValueError(f"hidden must be a non-empty list of layer sizes >= 1, got {hidden!r}")
    if (
        not isinstance(trials, tuple)
        or len(trials) != 2
        or any(isinstance(t, bool) or not isinstance(t, int | np.integer) for t in trials)
        or min(trials) < 1
    ):
        raise ValueError(f"trials must be two integers >= 1 (one per round), got {trials!r}")
    if not 2 <= top <= trials[0]:
        raise ValueError(f"top must be between 2 and trials[0] = {trials[0]}, got {top}")


def check_range(name, bounds):
    """``bounds`` = (low, high) exponents of ten, low < high."""
    if (
        len(bounds) != 2
        or not all(isinstance(b, int | float) and math.isfinite(b) for b in bounds)
        or not bounds[0] < bounds[1]
    ):
        raise ValueError(f"{name} must be two exponents (low, high) with low < high, got {bounds}")
    return float(bounds[0]), float(bounds[1])


def train_and_score(lr, weight_decay, train, validation, hidden, epochs, batch_size, seq):
    """Train a fresh ReLU network with SGD(lr, weight_decay) on ``train`` = (x, y); return its
    ``{"loss", "accuracy"}`` on ``validation`` = (x, y). ``seq`` (a SeedSequence) draws the
    initial weights and the order of the mini-batches."""
    init_seq, order_seq = seq.spawn(2)
    model = nn.MLP([784, *hidden, 10], activation="relu", seed=init_seq)
    optimizer = optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    x, y = train
    shuffle_seed = int(order_seq.generate_state(1)[0])
    fit(
        model,
        x,
        y,
        optimizer=optimizer,
        epochs=epochs,
        batch_size=batch_size,
        verbose=0,
        seed=shuffle_seed,
    )
    return evaluate(model, *validation)


def search_round(n, lr_range, wd_range, train, validation, settings, seq):
    """``n`` random trials with log10(lr) ~ U(lr_range) and log10(weight decay) ~ U(wd_range);
    a list of dicts (lr, weight_decay, val_accuracy, val_loss)."""
    draw_seq, *trial_seqs = seq.spawn(1 + n)
    rng = np.random.default_rng(draw_seq)
    lrs = 10.0 ** rng.uniform(*lr_range, size=n)
    wds = 10.0 ** rng.uniform(*wd_range, size=n)
    trials = []
    for lr, wd, trial_seq in zip(lrs, wds, trial_seqs, strict=True):
        scores = train_and_score(lr, wd, train, validation, seq=trial_seq, **settings)
        trials.append(
            {
                "lr": float(lr),
                "weight_decay": float(wd),
                "val_accuracy": float(scores["accuracy"]),
                "val_loss": float(scores["loss"]),
            }
        )
    return trials


def ranked(trials):
    """``trials`` best first: highest validation accuracy, ties broken by the lower loss."""
    return sorted(trials, key=lambda t: (-t["val_accuracy"], t["val_loss"]))


def narrowed(trials, top):
    """New (lr, weight decay) exponent ranges: from the smallest to the largest log10 value
    among the ``top`` best ``trials``."""
    best = ranked(trials)[:top]
    lr = np.log10([t["lr"] for t in best])
    wd = np.log10([t["weight_decay"] for t in best])
    return (float(lr.min()), float(lr.max())), (float(wd.min()), float(wd.max()))


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
    trials = tuple(trials) if isinstance(trials, list | tuple) else trials
    check_settings(train_size, validation, test_size, hidden, epochs, batch_size, trials, top)
    lr_range, wd_range = check_range("lr_range", lr_range), check_range("wd_range", wd_range)

    x_all, y_all, x_test, y_test = _common.mnist(train_size, test_size, seed)
    # The search sees the training and validation parts only; the test part waits to the end.
    (x_train, y_train), (x_val, y_val), _ = pp.train_val_test_split(
        x_all, y_all, val=validation, test=0, seed=seed
    )
    if batch_size > len(x_train):
        raise ValueError(f"batch_size {batch_size} is larger than the {len(x_train)} images")
    settings = dict(hidden=tuple(hidden), epochs=epochs, batch_size=batch_size)
    *round_seqs, final_seq = np.random.SeedSequence(seed).spawn(3)

    rounds = []
    ranges = (lr_range, wd_range)
    for n, seq in zip(trials, round_seqs, strict=True):
        found = search_round(n, *ranges, (x_train, y_train), (x_val, y_val), settings, seq)
        rounds.append({"lr_range": ranges[0], "wd_range": ranges[1], "trials": found})
        ranges = narrowed(found, top)

    everything = [dict(t, round=i + 1) for i, r in enumerate(rounds) for t in r["trials"]]
    best = ranked(everything)[0]
    # Retrained on training + validation data: the validation set has done its job.
    final = train_and_score(
        best["lr"],
        best["weight_decay"],
        (x_all, y_all),
        (x_test, y_test),
        seq=final_seq,
        **settings,
    )
    sizes = {"train": len(x_train), "validation": len(x_val), "test": len(x_test)}
    report(file, rounds, everything, best, final["accuracy"], sizes, settings, top)
    figures = []
    if out is not None:
        plot(rounds, best, out, figures)
    return {
        "rounds": rounds,
        "best": best,
        "test_accuracy": float(final["accuracy"]),
        "sizes": sizes,
        "figures": figures,
    }


def _exp_range(bounds):
    return f"10^[{bounds[0]:.2f}, {bounds[1]:.2f}]"


def report(file, rounds, everything, best, test_accuracy, sizes, settings, top):
    shown = ranked(everything)[: max(top, 10)]
    hidden = settings["hidden"]
    _common.echo(
        file,
        f"network 784-{'x'.join(map(str, (len(hidden), hidden[0])))}-10 ReLU (He init), "
        f"SGD, batch {settings['batch_size']}, {settings['epochs']} epochs; "
        f"{sizes['train']} training, {sizes['validation']} validation images",
        *[
            f"round {i + 1}: {len(r['trials'])} trials, lr in {_exp_range(r['lr_range'])}, "
            f"weight decay in {_exp_range(r['wd_range'])}"
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
        ax.set_xlabel(label)
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("validation accuracy")
    axes[0].legend(loc="upper left")
    fig.suptitle("Random search for SGD's learning rate and weight decay (MNIST)")
    fig.tight_layout()
    _common.save_figure(fig, out, "hyperparameter_search.png", figures)
