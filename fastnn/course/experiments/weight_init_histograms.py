"""Activation histograms of a 5-layer network for four initial weight scales.

1,000 standard-normal inputs of 100 features go through 5 fully connected layers of 100 units
without bias (``fastnn.Linear(100, 100, init=..., bias=False, activation=...)``); each
layer's outputs are histogrammed. Every case draws the same standard-normal weights, scaled,
so only the scale of the initial weights differs between them:

- sigmoid, std 1: the weighted sums are large (std about 6), so the sigmoid saturates and
  its outputs pile up at 0 and 1, where its slope, and with it the gradient, vanishes;
- sigmoid, std 0.01: the sums are tiny and every output sits near 0.5: the units all say the
  same thing, which wastes them ("limited expressive power");
- sigmoid, Xavier: std 1/sqrt(n) with n = 100 inputs per unit (the course's Xavier value,
  ``fastnn.init.lecun_normal_``; for a 100 x 100 layer Glorot's fan-averaged
  ``xavier_normal_`` gives the same 0.1): the outputs stay spread out in every layer;
- ReLU, std 0.01: each layer multiplies the scale of the activations by about
  0.01 * sqrt(100 / 2) = 0.07, so they shrink toward 0 layer by layer;
- ReLU, Xavier: by about sqrt(1/2) per layer, a slower shrink;
- ReLU, He: std sqrt(2/n), which makes up for ReLU zeroing half of its inputs: the scale
  stays the same in every layer.

What to look for: in the figures, where the mass of each layer's histogram sits (sigmoid:
range 0 to 1, as in the course). The ReLU histograms show the positive outputs only (about
half are exactly 0) on one range per case, so a shrinking scale shows as mass piling into the
first bins. The table gives each layer's mean and std and the fractions below 0.1 and above
0.9.
"""

import numpy as np

from ... import nn
from ..._table import format_table
from . import _common

# label -> (activation, initialiser given to the Linear layers: a number is a normal std)
CASES = {
    "sigmoid, std 1": ("sigmoid", 1.0),
    "sigmoid, std 0.01": ("sigmoid", 0.01),
    "sigmoid, Xavier": ("sigmoid", "lecun_normal"),
    "ReLU, std 0.01": ("relu", 0.01),
    "ReLU, Xavier": ("relu", "lecun_normal"),
    "ReLU, He": ("relu", "he_normal"),
}
FILE_NAMES = {
    "sigmoid, std 1": "weight_init_sigmoid_std1.png",
    "sigmoid, std 0.01": "weight_init_sigmoid_std0.01.png",
    "sigmoid, Xavier": "weight_init_sigmoid_xavier.png",
    "ReLU, std 0.01": "weight_init_relu_std0.01.png",
    "ReLU, Xavier": "weight_init_relu_xavier.png",
    "ReLU, He": "weight_init_relu_he.png",
}


def layer_outputs(x, activation, init, layer_seeds):
    """The outputs of each layer of a chain of ``Linear(n, n, bias=False)`` layers, one per
    seed in ``layer_seeds``, for the input ``x`` (batch, n)."""
    n = x.shape[1]
    model = nn.Sequential(
        *[nn.Linear(n, n, init=init, bias=False, rng=s, activation=activation) for s in layer_seeds]
    )
    outputs = []
    for layer in model:
        x = layer(x)  # a copy: the layer reuses its output buffer on its next call
        outputs.append(x)
    return outputs


def value_range(activation, outputs):
    """The histogram range: (0, 1) for sigmoid; for ReLU (0, largest 99th percentile of the
    positive outputs over the layers), one range per case so the layers compare."""
    if activation == "sigmoid":
        return 0.0, 1.0
    top = max(float(np.percentile(a[a > 0], 99)) if (a > 0).any() else 0.0 for a in outputs)
    return 0.0, top if top > 0 else 1.0


def summary(a):
    """Mean, std and the fractions of values below 0.1 and above 0.9."""
    return {
        "mean": float(a.mean(dtype=np.float64)),
        "std": float(a.std(dtype=np.float64)),
        "below_0.1": float(np.mean(a < 0.1)),
        "above_0.9": float(np.mean(a > 0.9)),
    }


def weight_init_histograms(
    *, quick=False, seed=0, out=None, file=None, samples=1000, features=100, layers=5, bins=30
):
    """Push ``samples`` standard-normal inputs through ``layers`` layers of ``features``
    units for each case of ``CASES`` and histogram every layer's outputs (``bins`` bins).
    Quick mode runs the same, already fast, computation.

    Returns, per case label: ``histograms`` (a (layers, bins) int array of counts; ReLU:
    positive outputs only), ``ranges`` ((low, high) of the bins), and ``stats`` (one dict
    per layer: mean, std, below_0.1, above_0.9).
    """
    out = _common.check_common(quick, seed, out)
    _common.check_counts(samples=samples, features=features, layers=layers, bins=bins)
    input_seq, weight_seq = np.random.SeedSequence(seed).spawn(2)
    x = np.random.default_rng(input_seq).standard_normal((samples, features), dtype=np.float32)
    # The same seeds for every case: each draws the same standard-normal weights, scaled.
    layer_seeds = weight_seq.spawn(layers)

    histograms, ranges, stats = {}, {}, {}
    for label, (activation, init) in CASES.items():
        outputs = layer_outputs(x, activation, init, layer_seeds)
        ranges[label] = value_range(activation, outputs)
        shown = outputs if activation == "sigmoid" else [a[a > 0] for a in outputs]
        histograms[label] = np.array(
            [np.histogram(a, bins, range=ranges[label])[0] for a in shown], dtype=np.int64
        )
        stats[label] = [summary(a) for a in outputs]

    _common.echo(
        file,
        f"{samples} standard-normal inputs through {layers} layers of {features} units, no bias",
        *format_table(
            ["case", "layer", "mean", "std", "< 0.1", "> 0.9"],
            [
                [label, i + 1, s["mean"], s["std"], s["below_0.1"], s["above_0.9"]]
                for label, per_layer in stats.items()
                for i, s in enumerate(per_layer)
            ],
        ),
    )
    figures = []
    if out is not None:
        for label in CASES:
            plot(label, histograms[label], ranges[label], out, figures)
    return {"histograms": histograms, "ranges": ranges, "stats": stats, "figures": figures}


def plot(label, counts, value_range, out, figures):
    """The histograms of one case side by side, one panel per layer."""
    plt = _common.pyplot()
    layers, bins = counts.shape
    edges = np.linspace(*value_range, bins + 1)
    fig, axes = plt.subplots(1, layers, figsize=(3 * layers, 3), sharey=True)
    for i, ax in enumerate(np.atleast_1d(axes)):
        ax.stairs(counts[i], edges, fill=True)
        ax.set_title(f"{i + 1}-layer")
        ax.set_xlim(*value_range)
    shown = "outputs" if label.startswith("sigmoid") else "positive outputs"
    fig.suptitle(f"{label}: {shown} of each layer")
    _common.save_figure(fig, out, FILE_NAMES[label], figures)
