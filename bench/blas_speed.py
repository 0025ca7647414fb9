"""Matrix products through ``kernels.blas.gemm`` against ``np.matmul``, and 1 against 2 BLAS
threads per product.

    unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
    python bench/blas_speed.py [--repeat 7] [--min-time 0.01] [--settle 0.15]
                               [--busy 0.1] [--attempts 3]
                               [--sections calls threads crossover step]

Float32 throughout. Shapes are written m x k x n: op(a) is (m, k), op(b) (k, n), c (m, n);
"work" is m * k * n. Each figure is the median over ``--repeat`` rounds; in a round the
contenders alternate (order flipped every round), each running a loop of at least
``--min-time`` seconds. Sections:

- calls: microseconds per call of np.matmul into a preallocated ``out`` (from a Python loop),
  gemm from a Python loop, and gemm from a loop inside one compiled function, on 1 and 2
  threads (``fastnn.set_num_threads``). NumPy and SciPy have separate OpenBLAS copies whose
  idle threads spin for a while after each call; with 2 threads the script pauses
  ``--settle`` seconds whenever the library changes, so neither copy's spinning threads run
  into the other's timing.
- threads: what ``set_blas_threads`` costs, from compiled code and from Python.
- crossover: gemm with 1 and with 2 threads over the products of T1, T2, T3 and a sweep of
  sizes per kind of product (x @ W, x.T @ dz, dz @ W.T), with the number of threads
  OpenBLAS actually used when allowed 2 (from its helper thread's CPU time, Linux only).
- step: the products of one training step of T1, T2 and T3 (forward, dW, dx) run back to back
  in one compiled function, with 2 threads, 1 thread, or 1 thread below a work threshold and
  2 above it (``set_blas_threads`` before each product whose count differs).

Which OpenBLAS kernels run (threadpoolctl's ``architecture``) is printed first; this workplace
may pin them with OPENBLAS_CORETYPE, which benchmarks must not inherit. The "others" column
is how many cores other processes kept busy meanwhile (from /proc/stat, steal time included):
on a 2-core machine a row measured while a neighbour held a core says more about the
neighbour than about 2 BLAS threads (a waiting OpenBLAS thread that loses its core stalls the
product: 10-30x slower). Such a row is measured again, up to ``--attempts`` times, and
marked '*' if no attempt was quiet (``--busy`` cores at most).
"""

import argparse
import os
import statistics
import sys
import threading
import time

import numpy as np
from numba import njit
from threadpoolctl import threadpool_info

import fastnn
from fastnn.kernels.blas import OPENBLAS, blas_threads, gemm, set_blas_threads

CONFIGS = {
    "T1": ([784, 100, 100, 100, 100, 100, 10], 100),
    "T2": ([784, 50, 10], 100),
    "T3": ([784, 1024, 1024, 10], 512),
}
KINDS = {  # (trans_a, trans_b) of each kind of product in a Linear layer
    "x@W": (False, False),
    "x.T@dz": (True, False),
    "dz@W.T": (False, True),
}


# -- operands -----------------------------------------------------------------------------------
def _operands(m, k, n, kind, rng):
    ta, tb = KINDS[kind]
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    return a, b, np.zeros((m, n), np.float32), ta, tb


def _layer_products(sizes, batch):
    """(label, m, k, n, kind) of a training step's products: forward x @ W per layer, then
    backward x.T @ dz (dW) per layer and dz @ W.T (dx) for all but the first layer."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    out = [(f"x@W {batch}x{i}x{o}", batch, i, o, "x@W") for i, o in pairs]
    for j, (i, o) in reversed(list(enumerate(pairs))):
        out.append((f"x.T@dz {i}x{batch}x{o}", i, batch, o, "x.T@dz"))
        if j > 0:
            out.append((f"dz@W.T {batch}x{o}x{i}", batch, o, i, "dz@W.T"))
    return out


@njit(cache=True)
def _gemm_loop(a, b, c, ta, tb, calls):
    for _ in range(calls):
        gemm(a, b, c, ta, tb, 0.0)


@njit(cache=True)
def _toggle_threads(calls, low, high):
    for i in range(calls):
        set_blas_threads(low if i & 1 else high)


@njit(cache=True)
def _step_products(xs, ys, tas, tbs, threshold, max_threads, steps):
    """Run the products (xs[i][0] op xs[i][1] -> ys[i]) ``steps`` times; a product of work
    below ``threshold`` on 1 thread, the others on ``max_threads``."""
    current = -1
    for _ in range(steps):
        for i in range(len(ys)):
            a, b = xs[i]
            c = ys[i]
            m, n = c.shape
            k = a.shape[0] if tas[i] else a.shape[1]
            want = 1 if m * n * k < threshold else max_threads
            if want != current:
                set_blas_threads(want)
                current = want
            gemm(a, b, c, tas[i], tbs[i], 0.0)


# -- timing -----------------------------------------------------------------------------------
def _per_call(run, calls):
    start = time.perf_counter()
    run(calls)
    return (time.perf_counter() - start) / calls


def _calls_for(run, min_time):
    """Calls of ``run`` that take at least ``min_time`` seconds (after one warm-up call)."""
    run(1)
    calls = 1
    while True:
        t = _per_call(run, calls) * calls
        if t >= min_time:
            return calls
        calls = max(calls * 2, int(calls * min_time / max(t, 1e-9) * 1.2))


def _side_by_side(runs, calls, repeat, settle=0.0, library=None):
    """Median seconds per call of each ``runs[name](calls)``, alternating, order flipped each
    round. ``library[name]`` says which BLAS copy a contender uses: when it changes from one
    timed loop to the next, sleep ``settle`` seconds first."""
    times = {name: [] for name in runs}
    last = None
    for r in range(repeat):
        names = list(runs) if r % 2 == 0 else list(reversed(runs))
        for name in names:
            lib = (library or {}).get(name)
            if settle and last is not None and lib != last:
                time.sleep(settle)
            last = lib
            times[name].append(_per_call(runs[name], calls))
    return {name: statistics.median(t) for name, t in times.items()}


def _helper_cpu():
    """CPU seconds used so far by this process's threads other than the calling one."""
    me = threading.get_native_id()
    total = 0.0
    for tid in os.listdir("/proc/self/task"):
        if int(tid) == me:
            continue
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0]) * 1e-9
        except (OSError, ValueError, IndexError):
            pass
    return total


class _Others:
    """CPU time other processes used while this object was alive (in cores, from
    /proc/stat's busy time minus this process's CPU time): how much of the machine this
    process did not have. None where /proc/stat is missing."""

    def __init__(self):
        self.start = self._now()

    @staticmethod
    def _now():
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
        return busy, time.process_time(), time.perf_counter()

    def cores(self):
        end = self._now()
        if end is None or self.start is None:
            return None
        (b0, p0, w0), (b1, p1, w1) = self.start, end
        return max(0.0, (b1 - b0) - (p1 - p0)) / max(w1 - w0, 1e-9)

    def text(self):
        c = self.cores()
        return "-" if c is None else f"{c:.2f}"


def _quietly(measure, args):
    """``measure()``, retried up to ``args.attempts`` times while other processes kept more
    than ``args.busy`` cores busy during it: (result of the quietest attempt, its "others"
    text, with a '*' when even that one was busy)."""
    best = None
    for attempt in range(args.attempts):
        if attempt:
            time.sleep(1.0)  # let a neighbour's burst pass
        others = _Others()
        result = measure()
        cores = others.cores()
        if best is None or (cores is not None and cores < best[1]):
            best = (result, cores if cores is not None else 0.0, others.text())
        if cores is None or cores <= args.busy:
            break
    result, cores, text = best
    return result, text + ("*" if cores > args.busy else "")


def _threads_used(run, calls, settle):
    """About how many threads a product ran on when allowed 2: 1 + the helper threads' CPU
    time over the wall time of a loop of calls (after ``settle`` seconds for idle helpers to
    fall asleep). None where /proc has no per-thread CPU times."""
    if not os.path.exists("/proc/self/task"):
        return None
    time.sleep(settle)
    cpu0, t0 = _helper_cpu(), time.perf_counter()
    run(calls)
    return 1 + (_helper_cpu() - cpu0) / (time.perf_counter() - t0)


# -- sections --------------------------------------------------------------------------------
def environment():
    print(f"# fastnn blas_speed: NumPy {np.__version__}, {os.cpu_count()} CPUs")
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS"):
        if name in os.environ:
            print(f"# WARNING: {name}={os.environ[name]} is set (unset it to measure as users run)")
    mine = OPENBLAS.filepath if OPENBLAS is not None else None
    for info in threadpool_info():
        if info.get("internal_api") == "openblas":
            used = " <- gemm" if info["filepath"] == mine else ""
            print(
                f"# OpenBLAS {info['version']} {info['architecture']} kernels, "
                f"{info['threading_layer']}: {info['filepath']}{used}"
            )


LIBS = {"matmul": "numpy", "py": "scipy", "jit": "scipy"}  # which OpenBLAS copy each uses
CALL_SHAPES = [
    ("x@W 4x4x4 (fixed cost)", 4, 4, 4, "x@W"),
    ("x@W 100x100x100", 100, 100, 100, "x@W"),
    ("T2 x@W 100x784x50", 100, 784, 50, "x@W"),
    ("T2 x@W 100x50x10", 100, 50, 10, "x@W"),
    ("T2 x.T@dz 784x100x50", 784, 100, 50, "x.T@dz"),
    ("T2 x.T@dz 50x100x10", 50, 100, 10, "x.T@dz"),
    ("T2 dz@W.T 100x10x50", 100, 10, 50, "dz@W.T"),
]


def section_calls(args, rng):
    print("\n## Per call: np.matmul(out=) vs gemm, from Python and from a compiled loop (us)")
    print(
        f"{'product':26s} {'thr':>3s} {'matmul':>8s} {'gemm py':>8s} {'gemm jit':>8s} "
        f"{'matmul/py':>9s} {'matmul/jit':>10s} {'py-jit':>7s} {'others':>6s}"
    )
    for threads in (1, 2):
        fastnn.set_num_threads(threads)
        for label, m, k, n, kind in CALL_SHAPES:
            a, b, c, ta, tb = _operands(m, k, n, kind, rng)
            av, bv = (a.T if ta else a), (b.T if tb else b)

            def run_matmul(calls, av=av, bv=bv, c=c, matmul=np.matmul):
                for _ in range(calls):
                    matmul(av, bv, out=c)

            def run_py(calls, a=a, b=b, c=c, ta=ta, tb=tb):
                for _ in range(calls):
                    gemm(a, b, c, ta, tb, 0.0)

            def run_jit(calls, a=a, b=b, c=c, ta=ta, tb=tb):
                _gemm_loop(a, b, c, ta, tb, calls)

            runs = {"matmul": run_matmul, "py": run_py, "jit": run_jit}
            for run in runs.values():
                run(3)
            calls = _calls_for(run_matmul, args.min_time)
            settle = args.settle if threads > 1 else 0.0
            t, busy = _quietly(
                lambda r=runs, c=calls, s=settle: _side_by_side(r, c, args.repeat, s, LIBS), args
            )
            us = {name: v * 1e6 for name, v in t.items()}
            print(
                f"{label:26s} {threads:3d} {us['matmul']:8.2f} {us['py']:8.2f} {us['jit']:8.2f} "
                f"{us['matmul'] / us['py']:8.2f}x {us['matmul'] / us['jit']:9.2f}x "
                f"{us['py'] - us['jit']:7.2f} {busy:>6s}",
                flush=True,
            )


def section_threads(args):
    print("\n## Setting the thread count of gemm's OpenBLAS")
    if OPENBLAS is None:
        print("no OpenBLAS found behind scipy.linalg.cython_blas: nothing to set")
        return
    top = max(2, blas_threads())
    calls = 200_000
    _toggle_threads(10, 1, top)
    _toggle_threads(10, top, top)
    t = _side_by_side(
        {
            "toggle": lambda n: _toggle_threads(n, 1, top),
            "same": lambda n: _toggle_threads(n, top, top),
        },
        calls,
        args.repeat,
    )
    py = _side_by_side({"py": lambda n: [set_blas_threads(top) for _ in range(n)]}, 20_000, 3)
    lib = OPENBLAS
    tpc = _side_by_side({"tpc": lambda n: [lib.set_num_threads(top) for _ in range(n)]}, 2000, 3)
    print(
        f"set_blas_threads from compiled code, alternating 1 and {top}: {t['toggle'] * 1e9:.1f} ns"
    )
    print(f"set_blas_threads from compiled code, the same count: {t['same'] * 1e9:.1f} ns")
    print(f"set_blas_threads from Python: {py['py'] * 1e6:.2f} us")
    print(f"threadpoolctl's set_num_threads on that library: {tpc['tpc'] * 1e6:.2f} us")
    set_blas_threads(top)


def _sweep():
    shapes = []
    for w in (32, 48, 64, 80, 128, 200, 256, 512):
        shapes.append((f"x@W 100x{w}x{w}", 100, w, w, "x@W"))
        shapes.append((f"x.T@dz {w}x100x{w}", w, 100, w, "x.T@dz"))
        shapes.append((f"dz@W.T 100x{w}x{w}", 100, w, w, "dz@W.T"))
    for s in (48, 64, 80, 128, 200):
        shapes.append((f"x@W {s}x{s}x{s}", s, s, s, "x@W"))
    return shapes


def section_crossover(args, rng):
    print("\n## gemm on 1 vs 2 threads (us per call); 'used': threads OpenBLAS ran when allowed 2")
    fastnn.set_num_threads(2)
    seen, rows = set(), []
    shapes = []
    for name, (sizes, batch) in CONFIGS.items():
        shapes += [(f"{name} {label}", *rest) for label, *rest in _layer_products(sizes, batch)]
    shapes += [(f"sweep {label}", *rest) for label, *rest in _sweep()]
    print(
        f"{'product':32s} {'work':>11s} {'1 thread':>10s} {'2 threads':>10s} {'1/2':>6s} "
        f"{'used':>5s} {'others':>6s}"
    )
    for label, m, k, n, kind in shapes:
        key = (m, k, n, kind)
        if key in seen:
            continue
        seen.add(key)
        a, b, c, ta, tb = _operands(m, k, n, kind, rng)

        def run(calls, a=a, b=b, c=c, ta=ta, tb=tb):
            _gemm_loop(a, b, c, ta, tb, calls)

        def one(calls):
            set_blas_threads(1)
            run(calls)

        def two(calls):
            set_blas_threads(2)
            run(calls)

        calls = _calls_for(one, args.min_time)
        t, busy = _quietly(
            lambda o=one, w=two, c=calls: _side_by_side({"1": o, "2": w}, c, args.repeat), args
        )
        set_blas_threads(2)
        used = _threads_used(run, calls, settle=0.2)
        work = m * k * n
        ratio = t["1"] / t["2"]
        if not busy.endswith("*"):  # rows measured beside a busy neighbour prove nothing
            rows.append((kind, work, ratio))
        used_s = "-" if used is None else f"{used:.1f}"
        print(
            f"{label:32s} {work:11d} {t['1'] * 1e6:10.1f} {t['2'] * 1e6:10.1f} {ratio:6.2f} "
            f"{used_s:>5s} {busy:>6s}",
            flush=True,
        )
    print(
        "\nPer kind, over the quiet rows (no '*'): largest work where 1 thread won by >5 %, "
        "smallest where 2 won by >5 %"
    )
    for kind in KINDS:
        mine = sorted((w, r) for k, w, r in rows if k == kind)
        one_wins = [w for w, r in mine if r < 0.95]
        two_wins = [w for w, r in mine if r > 1.05]
        print(
            f"{kind:8s} 1 thread wins up to: {max(one_wins) if one_wins else '-'}; "
            f"2 threads win from: {min(two_wins) if two_wins else '-'}"
        )


def section_step(args, rng):
    print("\n## A training step's products back to back in one compiled function (us per step)")
    fastnn.set_num_threads(2)
    thresholds = {
        "2 threads": 0,
        "1 below 1.0e6": 1_000_001,
        "1 below 4.0e6": 4_000_000,
        "1 below 1.0e7": 10_000_000,
        "1 thread": 2**62,
    }
    print(f"{'config':6s} " + " ".join(f"{name:>14s}" for name in thresholds) + "  others")
    for name, (sizes, batch) in CONFIGS.items():
        xs, ys, tas, tbs = [], [], [], []
        for _, m, k, n, kind in _layer_products(sizes, batch):
            a, b, c, ta, tb = _operands(m, k, n, kind, rng)
            xs.append((a, b))
            ys.append(c)
            tas.append(ta)
            tbs.append(tb)
        args_ = (tuple(xs), tuple(ys), np.array(tas), np.array(tbs))
        runs = {
            label: (lambda s, t=t, a=args_: _step_products(*a[:4], t, 2, s))
            for label, t in thresholds.items()
        }
        for run in runs.values():
            run(1)
        steps = _calls_for(runs["2 threads"], args.min_time * 3)
        t, busy = _quietly(lambda r=runs, s=steps: _side_by_side(r, s, args.repeat), args)
        row = " ".join(f"{t[label] * 1e6:14.1f}" for label in thresholds)
        print(f"{name:6s} {row}  {busy:>6s}")
    set_blas_threads(2)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.01, help="seconds per timed loop")
    p.add_argument("--settle", type=float, default=0.15, help="pause when the BLAS copy changes")
    p.add_argument(
        "--busy",
        type=float,
        default=0.1,
        help="retry a row when other processes kept more cores than this busy during it",
    )
    p.add_argument("--attempts", type=int, default=3, help="tries per row (see --busy)")
    p.add_argument(
        "--sections",
        nargs="*",
        default=["calls", "threads", "crossover", "step"],
        choices=["calls", "threads", "crossover", "step"],
    )
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    environment()
    if "calls" in args.sections:
        section_calls(args, rng)
    if "threads" in args.sections:
        section_threads(args)
    if "crossover" in args.sections:
        section_crossover(args, rng)
    if "step" in args.sections:
        section_step(args, rng)
    return 0


if __name__ == "__main__":
    sys.exit(main())
