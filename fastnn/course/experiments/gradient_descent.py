"""Gradient descent on f(x0, x1) = x0^2 + x1^2, and what the learning rate does to it.

``fastnn.gradient_descent`` repeats x <- x - lr * grad f(x), with the gradient taken by
central differences (``fastnn.numerical_gradient``). Here grad f = 2x, so one step multiplies
x by (1 - 2 lr). From (-3, 4), 100 steps:

- lr = 0.1: x shrinks by 0.8 per step and ends at (-3, 4) * 0.8^100, about (-6e-10, 8e-10):
  the minimum at (0, 0);
- lr = 10: each step multiplies x by -19, so it jumps from side to side ever further out and
  diverges. After about eight steps x is near 1e10, where x + eps and x - eps round to the same
  float and the numerical gradient becomes zero, so x stops there (the course's run stops at
  about -2.6e13 for the same reason);
- lr = 1e-10: each step multiplies x by 1 - 2e-10, so after 100 steps x has moved by about
  1e-8: it has barely left (-3, 4).

What to look for: the lr = 0.1 path runs straight down the contours to the centre; lr = 10 in
the right panel climbs many orders of magnitude; lr = 1e-10 stays a flat line at 5.
"""

import math

import numpy as np

from ..._checks import check_int, check_real
from ..._table import format_table
from .. import gradcheck
from . import _common


def function_2(x):
    """The course's f(x0, x1) = x0^2 + x1^2."""
    return x[0] ** 2 + x[1] ** 2


def check_settings(start, lrs, steps):
    """``(start, lrs)`` checked: a float64 point and a list of floats."""
    check_int(steps, "steps", low=1)
    start = _common.check_point(start, "start")
    return start, _common.check_list(lrs, "lrs", check_real, low=0, closed="neither")


def gradient_descent(
    *,
    quick=False,
    seed=0,
    out=None,
    file=None,
    start=(-3.0, 4.0),
    lrs=(0.1, 10.0, 1e-10),
    steps=100,
):
    """Run ``steps`` steps of gradient descent on x0^2 + x1^2 from ``start`` for each learning
    rate in ``lrs``. Nothing is random (``seed`` is accepted for the common signature; quick
    mode runs the same, already fast, computation). Returns ``final`` (lr -> final point,
    [x0, x1]), ``final_f`` (lr -> f at the final point) and ``paths`` (lr -> (steps + 1, 2))."""
    out = _common.check_common(quick, seed, out)
    start, lrs = check_settings(start, lrs, steps)
    paths = {}
    for lr in lrs:
        _, paths[float(lr)] = gradcheck.gradient_descent(
            function_2, start, lr=lr, steps=steps, return_path=True
        )
    final = {lr: path[-1].tolist() for lr, path in paths.items()}
    final_f = {lr: float(function_2(path[-1])) for lr, path in paths.items()}
    _common.echo(
        file,
        f"gradient descent on x0^2 + x1^2 from ({start[0]:g}, {start[1]:g}), {steps} steps "
        f"(each step multiplies x by 1 - 2 lr)",
        *format_table(
            ["lr", "final x0", "final x1", "final f", "closed form x0"],
            [
                [f"{lr:g}", *final[lr], final_f[lr], closed_form(start[0], lr, steps)]
                for lr in paths
            ],
        ),
    )
    figures = []
    if out is not None:
        plot(paths, out, figures)
    return {"final": final, "final_f": final_f, "paths": paths, "figures": figures}


def closed_form(x, lr, steps):
    """x (1 - 2 lr)^steps, or inf when that overflows."""
    try:
        return x * (1 - 2 * lr) ** steps
    except OverflowError:
        return math.copysign(math.inf, x)


def plot(paths, out, figures):
    plt = _common.pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5))
    axis = np.linspace(-4.5, 4.5, 201)
    xx, yy = np.meshgrid(axis, axis)
    contours = left.contour(xx, yy, xx**2 + yy**2, levels=[0.5, 2, 4, 8, 12, 16, 25], colors="gray")
    left.clabel(contours, fontsize=7)
    for lr, path in paths.items():
        if np.abs(path).max() < 5:  # the diverging run leaves the picture at once
            left.plot(path[:, 0], path[:, 1], "o-", markersize=3, label=f"lr = {lr:g}")
    left.plot(0, 0, "k+", markersize=12)
    left.set_xlim(-4.5, 4.5)
    left.set_ylim(-4.5, 4.5)
    left.set_aspect("equal")
    left.set_xlabel("x0")
    left.set_ylabel("x1")
    left.set_title("paths on the contours of x0^2 + x1^2")
    left.legend()
    for lr, path in paths.items():
        right.semilogy(np.linalg.norm(path, axis=1), label=f"lr = {lr:g}")
    _common.style(right, "step", "distance from the minimum |x|", "distance from (0, 0)", True)
    _common.save_figure(fig, out, "gradient_descent.png", figures)
