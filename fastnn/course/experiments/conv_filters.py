"""The first convolution's filters before and after training, and what each responds to.

The course's SimpleConvNet (conv 30 filters 5x5 - ReLU - max-pool 2x2 - affine 100 - ReLU -
affine 10, ``fastnn.nn.simple_conv_net``) is trained on the MNIST sample, its filters starting
as the course's do, from noise of std 0.01. Before training the filters are that noise; after
it, most have become edge and stroke detectors: a bright band beside a dark one, at some angle.

"What each filter responds to" is measured, not eyeballed. Each filter (its mean removed, so
that one that only grows brighter everywhere does not count) is compared with eight 5x5 test
patterns, edges (dark on one side, bright on the other) in four directions and both
polarities: its preferred pattern is the one it matches best, and its edge match the cosine
similarity with that pattern (noise matches its best of eight at about 0.3; a filter that is
an edge detector at about 0.6 or more). The smoothness is the correlation of neighbouring
weights (0 for noise). The feature maps (the filters applied to one test digit, after the
ReLU) show where in the digit each filter fires: an edge detector lights up along the strokes
of its direction, as in the course's figure.

What to look for: in the figure, structure (light and dark bands) in the trained filters,
none in the initial ones; in the table, each filter's preferred pattern and edge match before
and after, and the mean edge match and smoothness rising (defaults, seed 0, 5 epochs: match
0.28 -> 0.61, smoothness -0.03 -> 0.62).
"""

import numpy as np

from ... import nn, optim
from ..._table import format_table
from . import _common

# The test patterns: name -> 5x5 array, dark (-1) on one side, bright (+1) on the other.
_ys, _xs = np.mgrid[-2:3, -2:3].astype(np.float64)
_DIRECTIONS = {
    "vertical edge, bright right": _xs,
    "horizontal edge, bright below": _ys,
    "diagonal edge, bright lower right": _xs + _ys,
    "diagonal edge, bright lower left": _ys - _xs,
}
PATTERNS = {}
for _name, _field in _DIRECTIONS.items():
    _edge = np.sign(_field)
    PATTERNS[_name] = _edge
    PATTERNS[_name.replace("bright", "dark")] = -_edge


def edge_matches(filters):
    """(filters, patterns): the cosine similarity of each centered filter with each pattern
    (``PATTERNS`` order)."""
    w = filters.reshape(len(filters), -1).astype(np.float64)
    w = w - w.mean(axis=1, keepdims=True)
    w /= np.maximum(np.linalg.norm(w, axis=1, keepdims=True), 1e-30)
    p = np.stack([a.ravel() / np.linalg.norm(a) for a in PATTERNS.values()])
    return w @ p.T


def preferences(filters):
    """Per filter: (the pattern it matches best, that match)."""
    m = edge_matches(filters)
    names = list(PATTERNS)
    return [(names[b], float(m[i, b])) for i, b in enumerate(m.argmax(axis=1))]


def smoothness(filters):
    """The mean, over filters, of the correlation of horizontally and vertically neighbouring
    weights."""

    def corr(a, b):
        a, b = a - a.mean(), b - b.mean()
        return float((a * b).sum() / max(np.sqrt((a * a).sum() * (b * b).sum()), 1e-30))

    f = filters.astype(np.float64)
    return float(np.mean([(corr(w[:, :-1], w[:, 1:]) + corr(w[:-1], w[1:])) / 2 for w in f]))


def conv_filters(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    train_size=8000,
    test_size=2000,
    epochs=5,
    batch_size=100,
    lr=1e-3,
):
    """Train SimpleConvNet (Adam, ``lr``) for ``epochs`` epochs on ``train_size`` images of
    the MNIST sample; compare its first layer's 30 filters before and after. Quick mode:
    2,000 training and 500 test images, two epochs.

    Returns: ``before`` and ``after`` (the filters, (30, 5, 5) float32 arrays), ``preferences``
    ({"before": [(pattern, edge match), ...], "after": [...]}), ``mean_match`` and
    ``smoothness`` ({"before": float, "after": float} each), ``test_accuracy`` and
    ``figures``.
    """
    out = _common.check_common(quick, seed, out)
    if quick:
        train_size, test_size, epochs = 2000, 500, 2
    lr = _common.check_training(train_size, test_size, epochs, batch_size, lr)
    data_seed, model_seed, fit_seed = np.random.SeedSequence(seed).spawn(3)
    x_train, y_train, x_test, y_test = _common.mnist(
        train_size, test_size, int(data_seed.generate_state(1)[0])
    )
    x_train, x_test = x_train.reshape(-1, 1, 28, 28), x_test.reshape(-1, 1, 28, 28)
    model = nn.simple_conv_net(seed=model_seed)
    conv = model[0]
    # The course's SimpleConvNet starts from std 0.01 weights (its weight_init_std): what the
    # filters become is then what training put there.
    init_rng = np.random.default_rng(model_seed.spawn(1)[0])
    conv.weight.data[...] = init_rng.normal(0.0, 0.01, conv.weight.data.shape)
    before = conv.weight.data[:, 0].copy()
    opt = optim.Adam(model.parameters(), lr=lr)
    _common.fit_quietly(model, x_train, y_train, opt, epochs, batch_size, fit_seed)
    after = conv.weight.data[:, 0].copy()
    accuracy = float(np.mean(model.predict_classes(x_test) == y_test))

    prefs = {"before": preferences(before), "after": preferences(after)}
    mean = {k: float(np.mean([m for _, m in v])) for k, v in prefs.items()}
    smooth = {"before": smoothness(before), "after": smoothness(after)}
    _common.echo(
        file,
        f"SimpleConvNet, {train_size} training images, {epochs} epochs of Adam lr {lr:g}: "
        f"test accuracy {accuracy:.4f} on {test_size} images",
        "each filter's best-matching 5x5 edge pattern and the match (cosine similarity; "
        "noise about 0.3)",
        *format_table(
            ["filter", "before: matches", "match", "after: matches", "match"],
            [
                [i, b[0], b[1], a[0], a[1]]
                for i, (b, a) in enumerate(zip(prefs["before"], prefs["after"], strict=True))
            ],
        ),
        f"mean edge match: before {mean['before']:.3f}, after {mean['after']:.3f}; "
        f"smoothness (neighbouring weights' correlation): before {smooth['before']:.3f}, "
        f"after {smooth['after']:.3f}",
    )
    figures = []
    if out is not None:
        plot_filters(before, after, out, figures)
        plot_feature_maps(model, x_test[0], out, figures)
    return {
        "before": before,
        "after": after,
        "preferences": prefs,
        "mean_match": mean,
        "smoothness": smooth,
        "test_accuracy": accuracy,
        "figures": figures,
    }


def plot_filters(before, after, out, figures):
    """The 30 filters before (top) and after (bottom) training, gray scale, each scaled to
    its own range."""
    plt = _common.pyplot()
    n = len(before)
    cols = 10
    rows = -(-n // cols)
    fig, axes = plt.subplots(2 * rows, cols, figsize=(cols, 2 * rows + 0.6))
    for block, (label, filters) in enumerate((("before", before), ("after", after))):
        for i in range(rows * cols):
            ax = axes[block * rows + i // cols, i % cols]
            ax.set_axis_off()
            if i < n:
                ax.imshow(filters[i], cmap="gray", interpolation="nearest")
                if i == 0:
                    ax.set_title(f"{label} training", loc="left", fontsize=9)
    fig.suptitle("SimpleConvNet's first-layer filters (5x5)")
    _common.save_figure(fig, out, "conv_filters.png", figures)


def plot_feature_maps(model, image, out, figures):
    """One test digit and the first layer's 30 feature maps of it (after ReLU)."""
    plt = _common.pyplot()
    maps = model[0](image[None])[0]  # the Conv2D with its fused ReLU: (30, 24, 24)
    cols = 10
    rows = -(-len(maps) // cols) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(cols, rows + 0.4))
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].imshow(image[0], cmap="gray")
    axes[0, 0].set_title("input", fontsize=9)
    for i, m in enumerate(maps):
        axes[1 + i // cols, i % cols].imshow(m, cmap="gray")
    fig.suptitle("what each trained filter responds to in one digit (feature maps after ReLU)")
    _common.save_figure(fig, out, "conv_feature_maps.png", figures)
