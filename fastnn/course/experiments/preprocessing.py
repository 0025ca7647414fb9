"""Data preprocessing: 100 two-dimensional points before and after scaling.

100 points are drawn from N(3, 2.5^2) in each coordinate, then

- standardised with ``fastnn.preprocessing.Standardizer`` (per feature: subtract the mean,
  divide by the standard deviation), which centres the cloud on the origin with spread 1 in
  every direction, so no feature dominates a network's first layer by its scale alone;
- L2-normalised with ``fastnn.preprocessing.normalize`` (each point divided by its length),
  which puts every point on the unit circle: only its direction is kept.

What to look for: the standardised cloud has the original's shape, moved to (0, 0) and
rescaled (means 0, standard deviations 1); the normalised points all have length 1 and, since
the original cloud sits mostly in the positive quadrant, they crowd onto that quarter of the
circle.
"""

import numpy as np

from ..._checks import check_int, check_real
from ..._table import format_table
from ...data import preprocessing as pp
from . import _common


def check_settings(n, mean, std):
    check_int(n, "n", low=2)
    check_real(mean, "mean")
    check_real(std, "std", low=0, closed="neither")


def stats(x):
    """Per-feature mean and std (float64) and the mean, min and max row length."""
    x64 = x.astype(np.float64)
    norms = np.linalg.norm(x64, axis=1)
    return {
        "mean": x64.mean(axis=0).tolist(),
        "std": x64.std(axis=0).tolist(),
        "norm_mean": float(norms.mean()),
        "norm_min": float(norms.min()),
        "norm_max": float(norms.max()),
    }


def preprocessing(*, quick=False, seed=0, out=None, file=None, n=100, mean=3.0, std=2.5):
    """Draw ``n`` points in 2-D from N(``mean``, ``std``^2) per coordinate (float32), then
    standardise and L2-normalise them. Quick mode is the same (it takes milliseconds).
    Returns ``points`` (stage -> (n, 2) array) and ``stats`` (stage -> mean, std per feature
    and the mean, min and max length of the points)."""
    out = _common.check_common(quick, seed, out)
    check_settings(n, mean, std)
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, std, size=(n, 2)).astype(np.float32)
    points = {
        "original": x,
        "standardised": pp.Standardizer().fit_transform(x),
        "L2-normalised": pp.normalize(x, ord=2, axis=1),
    }
    summary = {stage: stats(p) for stage, p in points.items()}
    _common.echo(
        file,
        f"{n} points in 2-D drawn from N({mean:g}, {std:g}^2) per coordinate (float32)",
        *format_table(
            [
                "stage",
                "mean x0",
                "mean x1",
                "std x0",
                "std x1",
                "norm mean",
                "norm min",
                "norm max",
            ],
            [
                [stage, *s["mean"], *s["std"], s["norm_mean"], s["norm_min"], s["norm_max"]]
                for stage, s in summary.items()
            ],
        ),
    )
    figures = []
    if out is not None:
        plot(points, out, figures)
    return {"points": points, "stats": summary, "figures": figures}


def plot(points, out, figures):
    plt = _common.pyplot()
    fig, axes = plt.subplots(1, len(points), figsize=(4.2 * len(points), 4.4))
    for ax, (stage, p) in zip(axes, points.items(), strict=True):
        ax.scatter(p[:, 0], p[:, 1], s=12, alpha=0.8)
        ax.axhline(0, color="gray", linewidth=0.6)
        ax.axvline(0, color="gray", linewidth=0.6)
        if stage == "L2-normalised":
            t = np.linspace(0, 2 * np.pi, 200)
            ax.plot(np.cos(t), np.sin(t), color="gray", linestyle=":", linewidth=1)
        reach = 1.1 * max(np.abs(p).max(), 1.0)
        ax.set_xlim(-reach, reach)
        ax.set_ylim(-reach, reach)
        ax.set_aspect("equal")
        _common.style(ax, "x0", "x1", stage)
    _common.save_figure(fig, out, "preprocessing.png", figures)
