"""Seven optimizers on f(x, y) = x^2/20 + y^2, from (-7, 2), 30 steps each.

The function is a long, shallow valley: its gradient (x/10, 2y) is 20 times steeper across
the valley (y) than along it (x), and the minimum is at (0, 0). Each optimizer of
``fastnn.optim`` updates one ``Parameter`` holding (x, y), with the exact gradient written
into its ``grad`` before every step, as a network's backward pass would.

Learning rates: the course's for SGD (0.95), Momentum (0.1), AdaGrad (1.5) and Adam (0.3).
The others are chosen here: Nesterov 0.1, as Momentum; RMSprop 0.15, whose first step
(10 lr per coordinate, since its average of g^2 starts at 0.01 g^2 with alpha = 0.99) is then
1.5, as AdaGrad's; AdaDelta 1.0, Zeiler's method as published (it has no learning rate).

What to look for:

- SGD zig-zags across the valley: each step multiplies y by 1 - 2 * 0.95 = -0.9, so y flips
  sign every step, while x creeps along the valley by a factor 1 - 0.095 per step.
- Momentum and Nesterov roll like a ball: they build up speed along the valley and overshoot
  the minimum in x; Nesterov's look-ahead damps the swing.
- AdaGrad, RMSprop and Adam divide each coordinate by its own gradient size, so their first
  step has the same length in x and in y (lr * sign(g) for AdaGrad and Adam) and they head
  for the minimum without SGD's zig-zag.
- AdaDelta starts with steps of about sqrt(eps) = 0.001 and speeds up only as its record of
  past updates grows: in 30 steps it has barely left the start.
"""

import math
from collections.abc import Mapping

import numpy as np

from ... import optim
from ..._checks import check_choice, check_int, check_real
from ..._table import format_table
from ...errors import InvalidTypeError
from ...nn import Parameter
from . import _common

# name -> optimizer class of fastnn.optim, in the course's order
OPTIMIZERS = {
    "SGD": optim.SGD,
    "Momentum": optim.Momentum,
    "Nesterov": optim.Nesterov,
    "AdaGrad": optim.AdaGrad,
    "RMSprop": optim.RMSprop,
    "AdaDelta": optim.AdaDelta,
    "Adam": optim.Adam,
}
# The course's learning rates for SGD, Momentum, AdaGrad and Adam; see the module docstring.
LEARNING_RATES = {
    "SGD": 0.95,
    "Momentum": 0.1,
    "Nesterov": 0.1,
    "AdaGrad": 1.5,
    "RMSprop": 0.15,
    "AdaDelta": 1.0,
    "Adam": 0.3,
}


def f(x, y):
    """The course's function: x^2 / 20 + y^2."""
    return x**2 / 20.0 + y**2


def df(x, y):
    """Its gradient, (x / 10, 2y)."""
    return x / 10.0, 2.0 * y


def descend(name, lr, start, steps):
    """The path of optimizer ``name`` from ``start``: an array (steps + 1, 2) of (x, y)."""
    # float64: the path is two numbers, so precision costs nothing and the tests can compare
    # it with the textbook formulas to many digits.
    point = Parameter(np.array(start, dtype=np.float64))
    optimizer = OPTIMIZERS[name]([point], lr=lr)
    path = np.empty((steps + 1, 2))
    path[0] = point.data
    for t in range(1, steps + 1):
        point.grad[:] = df(*point.data)
        optimizer.step()
        path[t] = point.data
    return path


def check_settings(start, steps, lrs):
    """``(start, lrs)`` checked: a float64 point, and the learning rate of every optimizer
    (``LEARNING_RATES`` with those of ``lrs``, a mapping name -> lr, in their place)."""
    check_int(steps, "steps", low=1)
    start = _common.check_point(start, "start")
    if lrs is not None and not isinstance(lrs, Mapping):
        raise InvalidTypeError(f"lrs must be a dict of optimizer -> lr, got {type(lrs).__name__}")
    rates = dict(LEARNING_RATES)
    for name, lr in (lrs or {}).items():
        name = check_choice(name, "optimizer", OPTIMIZERS)
        rates[name] = check_real(lr, f"lr of {name}", low=0, closed="neither")
    return start, rates


def optimizer_paths(
    *, quick=False, seed=0, out=None, file=None, start=(-7.0, 2.0), steps=30, lrs=None
):
    """Run every optimizer of ``OPTIMIZERS`` for ``steps`` steps on x^2/20 + y^2 from
    ``start``. ``lrs`` maps optimizer names to learning rates replacing those of
    ``LEARNING_RATES``. Nothing is random (``seed`` is accepted for the common signature) and
    quick mode runs the same, already fast, computation.

    Returns ``paths`` (name -> (steps + 1, 2) array of (x, y)), ``lr`` (name -> learning
    rate), ``final`` (name -> [x, y]), ``final_f`` (name -> f there) and ``distance``
    (name -> distance from the minimum (0, 0)).
    """
    out = _common.check_common(quick, seed, out)
    start, lrs = check_settings(start, steps, lrs)
    paths = {name: descend(name, lr, start, steps) for name, lr in lrs.items()}
    final = {name: path[-1].tolist() for name, path in paths.items()}
    final_f = {name: float(f(*path[-1])) for name, path in paths.items()}
    distance = {name: float(np.hypot(*path[-1])) for name, path in paths.items()}
    _common.echo(
        file,
        f"f(x, y) = x^2/20 + y^2 from ({start[0]:g}, {start[1]:g}), {steps} steps "
        f"(start: f = {f(*start):.4g}, distance {np.hypot(*start):.4g} from the minimum)",
        *format_table(
            ["optimizer", "lr", "final x", "final y", "final f", "distance"],
            [
                [name, f"{lrs[name]:g}", *final[name], final_f[name], distance[name]]
                for name in paths
            ],
        ),
    )
    figures = []
    if out is not None:
        title = f"f(x, y) = x^2/20 + y^2: {steps} steps from ({start[0]:g}, {start[1]:g})"
        plot(paths, lrs, title, out, figures)
    return {
        "start": start.tolist(),
        "steps": steps,
        "paths": paths,
        "lr": lrs,
        "final": final,
        "final_f": final_f,
        "distance": distance,
        "figures": figures,
    }


def plot(paths, lrs, title, out, figures):
    """One panel per optimizer: its path over the contours of f, as in the course."""
    plt = _common.pyplot()
    x, y = np.meshgrid(np.linspace(-10, 10, 201), np.linspace(-5, 5, 101))
    z = f(x, y)
    columns = 4
    rows = math.ceil(len(paths) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for ax, (name, path) in zip(axes.flat, paths.items(), strict=False):
        ax.contour(x, y, z, levels=np.linspace(0.25, 7, 12), colors="0.7", linewidths=0.8)
        ax.plot(path[:, 0], path[:, 1], "o-", color="red", markersize=3, linewidth=1)
        ax.plot(0, 0, "+", color="black", markersize=10)
        ax.set_xlim(-10, 10)
        ax.set_ylim(-5, 5)
        ax.set_title(f"{name} (lr {lrs[name]:g})")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    for ax in axes.flat[len(paths) :]:
        ax.axis("off")
    fig.suptitle(title)
    _common.save_figure(fig, out, "optimizer_paths.png", figures)
