"""Activation functions and their derivatives, as fastnn's layers compute them.

Each activation layer (``fastnn.Step``, ``Sigmoid``, ``Tanh``, ``ReLU``, ``LeakyReLU``,
``ELU``) is run forward over x in [-5, 5], then backward with an upstream gradient of ones,
which gives its derivative at every x (the chain rule with dL/dy = 1).

What to look for:

- step jumps from 0 to 1 at x = 0 and its derivative is 0 everywhere (undefined at 0): no
  gradient flows through it, which is why networks trained by backprop use smooth
  activations instead;
- sigmoid is a smooth step; its derivative peaks at 0.25 at x = 0 and vanishes for large
  |x| (the vanishing-gradient problem of deep sigmoid networks); tanh has the same shape
  centred on 0, with a derivative peaking at 1;
- ReLU's derivative is 0 or 1; Leaky ReLU keeps a small slope for x < 0 and ELU a smooth
  exponential tail down to -alpha, so their negative inputs still receive gradient.
"""

import numpy as np

from ... import nn
from ..._checks import check_int, check_real
from ..._table import format_table
from ...errors import InvalidValueError
from . import _common

SAMPLE_POINTS = (-3.0, -1.0, 0.0, 1.0, 3.0)


def layers(negative_slope, alpha):
    """name -> a float64 activation layer."""
    return {
        "step": nn.Step(dtype=np.float64),
        "sigmoid": nn.Sigmoid(dtype=np.float64),
        "tanh": nn.Tanh(dtype=np.float64),
        "ReLU": nn.ReLU(dtype=np.float64),
        "Leaky ReLU": nn.LeakyReLU(negative_slope, dtype=np.float64),
        "ELU": nn.ELU(alpha, dtype=np.float64),
    }


def forward_backward(layer, x):
    """(y, dy/dx) of ``layer`` at the points ``x``: forward, then backward with ones."""
    y = layer.forward(x).copy()  # copies: the layer reuses its buffers
    dx = layer.backward(np.ones_like(x)).copy()
    return y, dx


def check_settings(low, high, points, negative_slope, alpha):
    check_int(points, "points", low=3)
    check_real(negative_slope, "negative_slope")
    check_real(alpha, "alpha")
    if not check_real(low, "low") < check_real(high, "high"):
        raise InvalidValueError(f"expected low < high, got low={low!r}, high={high!r}")


def activations(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    low=-5.0,
    high=5.0,
    points=1001,
    negative_slope=0.1,
    alpha=1.0,
):
    """Values and derivatives of step, sigmoid, tanh, ReLU, Leaky ReLU (``negative_slope``;
    0.1 here so the slope shows in the plot) and ELU (``alpha``) at ``points`` evenly spaced x
    in [low, high]. Nothing is random (``seed`` is accepted for the common signature).
    Returns ``x``, ``values`` and ``derivatives`` (name -> float64 array like x) and
    ``samples`` (name -> {x: (value, derivative)} at a few x)."""
    out = _common.check_common(quick, seed, out)
    if quick:
        points = 201
    check_settings(low, high, points, negative_slope, alpha)
    x = np.linspace(low, high, points)
    values, derivatives = {}, {}
    for name, layer in layers(negative_slope, alpha).items():
        values[name], derivatives[name] = forward_backward(layer, x)

    shown = [p for p in SAMPLE_POINTS if low <= p <= high]
    index = [int(np.argmin(np.abs(x - p))) for p in shown]
    samples = {
        name: {float(x[i]): (float(values[name][i]), float(derivatives[name][i])) for i in index}
        for name in values
    }
    rows = []
    for name in values:
        rows.append([name, *values[name][index]])
        rows.append([name + "'", *derivatives[name][index]])
    _common.echo(
        file,
        f"activation layers (float64), forward and backward with dout = 1; "
        f"Leaky ReLU slope {negative_slope}, ELU alpha {alpha}",
        *format_table(["function", *[f"x={x[i]:g}" for i in index]], rows),
    )

    figures = []
    if out is not None:
        plot(x, values, "activation functions", "y", out, "activations.png", figures)
        title = "their derivatives (backward with dout = 1)"
        plot(x, derivatives, title, "dy/dx", out, "activation_derivatives.png", figures)
    return {
        "x": x,
        "values": values,
        "derivatives": derivatives,
        "samples": samples,
        "figures": figures,
    }


def plot(x, curves, title, ylabel, out, filename, figures):
    plt = _common.pyplot()
    fig, axes = plt.subplots(2, 3, figsize=(11, 6.5), sharex=True)
    for ax, (name, y) in zip(axes.ravel(), curves.items(), strict=True):
        ax.plot(x, y, color="tab:blue")
        ax.axhline(0, color="gray", linewidth=0.5)
        ax.axvline(0, color="gray", linewidth=0.5)
        _common.style(ax, ylabel=ylabel, title=name)
    for ax in axes[1]:
        ax.set_xlabel("x")
    fig.suptitle(title)
    _common.save_figure(fig, out, filename, figures)
