"""The exp-based kernels against NumPy and against a copy, side by side (issue 15, item 4).

    python bench/exp_speed.py [--n 1000000] [--dtype float32] [--threads 1] [--repeat 31]
                              [--min-time 0.02]

Each row times a fastnn kernel and a baseline on the same input (n values, or n values in
rows of 1000 and of 10 classes for the row-wise kernels) and prints the median time per call
of each and their ratio, baseline / kernel (above 1: the kernel is faster). Every function is
called once first so compilation stays out; then, ``--repeat`` rounds, each function runs in
a loop of at least ``--min-time`` seconds, all of them one after the other in every round, so
that load from other processes falls on all of them alike. ``target`` is the ratio the issue
asks for ("~1" for "within reach of a copy": a ratio near 1 means as fast as copying the
data). Run it without OPENBLAS_* tuning variables and on an otherwise idle machine if you can.
"""

import argparse
import platform
import statistics
import sys
import time

import numpy as np

import fastnn
from fastnn.kernels import activations as act
from fastnn.kernels import reference
from fastnn.kernels import softmax_cross_entropy as sce

try:
    from fastnn.kernels import fastexp
except ImportError:  # a fastnn from before kernels/fastexp.py: its rows are left out
    fastexp = None


def _per_call(func, min_time):
    """Seconds per call of func(), over a loop that lasts at least min_time."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            func()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls
        calls = max(calls * 2, int(calls * min_time / max(elapsed, 1e-9) * 1.2))


def rows(n, dtype, rng):
    """(label, kernel, baseline label, baseline, target) for every comparison."""
    x = (rng.standard_normal(n) * 2).astype(dtype)
    out, tmp = np.empty_like(x), np.empty_like(x)
    copy = ("np.copyto", lambda: np.copyto(tmp, x))
    found = []

    def add(label, kernel, base, target):
        found.append((label, kernel, base[0], base[1], target))

    if fastexp is not None:
        add(
            "exp_forward",
            lambda: fastexp.exp_forward(x, out),
            ("np.exp", lambda: np.exp(x, out=tmp)),
            "1",
        )
    tanh = lambda: act.tanh_forward(x, out)  # noqa: E731
    add("tanh_forward", tanh, ("np.tanh", lambda: np.tanh(x, out=tmp)), ">= 1")
    add("tanh_forward", tanh, ("twin", lambda: reference.tanh_forward(x, tmp)), ">= 3")
    sig = lambda: act.sigmoid_forward(x, out)  # noqa: E731
    add("sigmoid_forward", sig, ("1/(1+np.exp(-x))", lambda: 1 / (1 + np.exp(-x))), ">= 2")
    add("sigmoid_forward", sig, ("twin", lambda: reference.sigmoid_forward(x, tmp)), ">= 3")
    elu = lambda: act.elu_forward(x, 1.0, out)  # noqa: E731
    add("elu_forward", elu, copy, "~1")
    add("elu_forward", elu, ("twin", lambda: reference.elu_forward(x, 1.0, tmp)), ">= 3")
    add("relu_forward", lambda: act.relu_forward(x, out), copy, "(floor)")
    for cols in (1000, 10):
        z = (rng.standard_normal((n // cols, cols)) * 3).astype(dtype)
        zo, zt = np.empty_like(z), np.empty_like(z)
        t = rng.integers(0, cols, n // cols)
        zcopy = ("np.copyto", lambda z=z, zt=zt: np.copyto(zt, z))
        soft = lambda z=z, zo=zo: sce.softmax_forward(z, zo)  # noqa: E731
        label = f"softmax_forward[{cols} cols]"
        add(label, soft, zcopy, "~1")
        add(label, soft, ("twin", lambda z=z, zt=zt: reference.softmax_forward(z, zt)), ">= 3")
        add(
            f"softmax_cross_entropy_labels[{cols} cols]",
            lambda z=z, t=t, zo=zo: sce.softmax_cross_entropy_labels(z, t, zo),
            ("twin", lambda z=z, t=t, zt=zt: reference.softmax_cross_entropy_labels(z, t, zt)),
            "",
        )
    return found


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1_000_000, help="values per call")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--threads", type=int, default=1, help="Numba and BLAS threads")
    p.add_argument("--repeat", type=int, default=31)
    p.add_argument("--min-time", type=float, default=0.02, help="seconds per timing loop")
    args = p.parse_args(argv)
    fastnn.set_num_threads(args.threads)
    found = rows(args.n, np.dtype(args.dtype), np.random.default_rng(0))
    # Each distinct function once (a kernel appears in several rows), keyed by identity.
    funcs = {}
    for _, kernel, _, base, _ in found:
        funcs.setdefault(id(kernel), kernel)
        funcs.setdefault(id(base), base)
    times = {key: [] for key in funcs}
    with np.errstate(all="ignore"):
        for f in funcs.values():
            f()  # compile or load from cache
        for _ in range(args.repeat):
            for key, f in funcs.items():
                times[key].append(_per_call(f, args.min_time))
    med = {key: statistics.median(v) for key, v in times.items()}
    print(
        f"# n = {args.n} {args.dtype}, {fastnn.get_num_threads()} thread(s), median of "
        f"{args.repeat} rounds, {platform.machine()}, NumPy {np.__version__}"
    )
    print(f"{'kernel':40s} {'us':>8s}  {'baseline':18s} {'us':>8s} {'ratio':>7s}  target")
    for label, kernel, base_label, base, target in found:
        k, b = med[id(kernel)] * 1e6, med[id(base)] * 1e6
        print(f"{label:40s} {k:8.1f}  {base_label:18s} {b:8.1f} {b / k:6.2f}x  {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
