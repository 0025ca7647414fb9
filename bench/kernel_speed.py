"""Time every kernel against its NumPy twin on one problem size, side by side.

    python bench/kernel_speed.py [--rows 256] [--cols 1024] [--dtype float32] [--threads N]
                                 [--repeat 7] [--min-time 0.02] [--json out.json]

Inputs come from ``benchmarks/cases.py`` (what rows x cols means for each kernel is said
there: affine multiplies (rows, cols) by (cols, cols); optimizers update rows * cols values).
Each kernel is called once before timing so compilation stays out. Then, ``--repeat`` times,
the kernel and its reference are each run in a loop of at least ``--min-time`` seconds,
alternating, and the median time per call of each is reported with the ratio
reference / kernel (how many times faster the kernel is).
"""

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from benchmarks.cases import CASES, kernel_and_reference  # noqa: E402

import fastnn  # noqa: E402


def _per_call(func, args, min_time):
    """Seconds per call of func(*args), over a loop that lasts at least min_time."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            func(*args)
        elapsed = time.perf_counter() - start
        if elapsed >= min_time:
            return elapsed / calls
        calls = max(calls * 2, int(calls * min_time / max(elapsed, 1e-9) * 1.2))


def measure(rows, cols, dtype, repeat, min_time, names=None):
    rng = np.random.default_rng(0)
    results = []
    for name in names or CASES:
        kernel, reference = kernel_and_reference(name)
        args = CASES[name](rows, cols, np.dtype(dtype), rng)
        kernel(*args)
        reference(*args)
        k_times, r_times = [], []
        for _ in range(repeat):
            k_times.append(_per_call(kernel, args, min_time))
            r_times.append(_per_call(reference, args, min_time))
        k, r = statistics.median(k_times), statistics.median(r_times)
        results.append(
            {"kernel": name, "kernel_us": k * 1e6, "reference_us": r * 1e6, "speedup": r / k}
        )
    return results


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=256)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument(
        "--threads", type=int, default=None, help="Numba and BLAS threads (default: all)"
    )
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--min-time", type=float, default=0.02, help="seconds per timing loop")
    p.add_argument("--kernels", nargs="*", help="only these kernels")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    results = measure(args.rows, args.cols, args.dtype, args.repeat, args.min_time, args.kernels)
    threads = fastnn.get_num_threads()
    print(
        f"# {args.rows} x {args.cols} {args.dtype}, {threads} threads, median of {args.repeat}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"{'kernel':32s} {'kernel us':>11s} {'numpy us':>11s} {'speed-up':>9s}")
    for r in results:
        k, ref = r["kernel_us"], r["reference_us"]
        print(f"{r['kernel']:32s} {k:11.1f} {ref:11.1f} {r['speedup']:8.2f}x")
    if args.json:
        meta = {
            "rows": args.rows,
            "cols": args.cols,
            "dtype": args.dtype,
            "threads": threads,
            "repeat": args.repeat,
            "numpy": np.__version__,
        }
        pathlib.Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
