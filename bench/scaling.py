"""Data-parallel scaling: time per epoch of ``fastnn.distributed.fit`` for 1, 2, ... ranks, and
the time each step spends in the gradient ``Allreduce``.

    python bench/scaling.py --ranks 1 2 --config T1 T3 [--epochs 5] [--json out.json]
    mpiexec -n 2 python bench/scaling.py --config T1      # one rank count, launched by hand

With ``--ranks`` the script launches itself under ``mpiexec -n N`` for each N and prints one
table; otherwise it measures the ranks it was started with. Each configuration (``T1``, ``T3``,
... from ``bench/compare.py``) trains on the first ``--rows`` MNIST images that ship with fastnn:
one warm-up epoch (compilation, caches), then ``--epochs`` timed epochs; the table gives the
median epoch time on rank 0 and, per step, the median and mean time rank 0 spent in the
``Allreduce`` of the flat gradient (waiting for a slower rank counts as Allreduce time), its share
of the epoch, and the bare transfer (the same Allreduce after a Barrier, median of 50). Threads
per rank: ``--threads`` or, by default, each rank's share of the cores
(``fastnn.distributed.share_of_cores``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import MAIN, load_data, network  # noqa: E402


class TimedComm:
    """A communicator that times the Allreduce calls over buffers of ``grad_size`` values."""

    def __init__(self, comm, grad_size):
        self._comm = comm
        self.grad_size = grad_size
        self.seconds = []

    def Allreduce(self, sendbuf, recvbuf, *args, **kwargs):  # noqa: N802 (mpi4py's name)
        began = time.perf_counter()
        self._comm.Allreduce(sendbuf, recvbuf, *args, **kwargs)
        if getattr(recvbuf, "size", None) == self.grad_size:
            self.seconds.append(time.perf_counter() - began)

    def __getattr__(self, name):
        return getattr(self._comm, name)


def measure(config, epochs, rows, threads, comm):
    """Time ``config`` on the ranks of ``comm``; rank 0's figures as a dict."""
    import numba

    import fastnn as fn
    from fastnn import distributed

    x, y = load_data(rows)
    model = fn.MLP(list(config.sizes), batchnorm=config.batchnorm, dropout=config.dropout, seed=0)
    opt = fn.optim.get(config.optimizer, model.parameters(), lr=config.lr)
    timed = TimedComm(comm, model.num_parameters())
    kwargs = dict(optimizer=opt, batch_size=config.batch_size, seed=0, verbose=0)
    distributed.fit(model, x, y, epochs=1, comm=timed, threads=threads, **kwargs)  # warm-up
    timed.seconds.clear()
    history = distributed.fit(model, x, y, epochs=epochs, comm=timed, threads=threads, **kwargs)
    steps = -(-rows // config.batch_size)
    allreduce = timed.seconds
    # The transfer alone: Allreduce of the same buffer with the ranks lined up by a Barrier.
    from mpi4py import MPI

    grad = opt.flat_buffers()[1].copy()
    bare = []
    for _ in range(50):
        comm.Barrier()
        began = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, grad, op=MPI.SUM)
        bare.append(time.perf_counter() - began)
    return {
        "config": config.name,
        "network": network(config.sizes),
        "batch_size": config.batch_size,
        "parameters": model.num_parameters(),
        "ranks": comm.Get_size(),
        "threads_per_rank": numba.get_num_threads(),
        "rows": rows,
        "steps_per_epoch": steps,
        "epoch_seconds": history["seconds"],
        "median_epoch_seconds": statistics.median(history["seconds"]),
        "allreduce_ms_median": 1e3 * statistics.median(allreduce),
        "allreduce_ms_mean": 1e3 * statistics.fmean(allreduce),
        "allreduce_share": sum(allreduce) / sum(history["seconds"]),
        "allreduce_bare_ms_median": 1e3 * statistics.median(bare),
    }


def table(results):
    """A text table; speedups relative to the 1-rank row of the same config, when present."""
    from fastnn._table import format_table

    base = {r["config"]: r["median_epoch_seconds"] for r in results if r["ranks"] == 1}
    rows = []
    for r in results:
        speedup = base.get(r["config"])
        rows.append(
            [
                f"{r['config']} {r['network']} b{r['batch_size']}",
                r["ranks"],
                r["threads_per_rank"],
                f"{r['median_epoch_seconds']:.3f}",
                f"{speedup / r['median_epoch_seconds']:.2f}x" if speedup else "-",
                f"{r['allreduce_ms_median']:.3f} (mean {r['allreduce_ms_mean']:.3f})",
                f"{100 * r['allreduce_share']:.1f}%",
                f"{r['allreduce_bare_ms_median']:.3f}",
            ]
        )
    headers = [
        "config",
        "ranks",
        "thr/rank",
        "epoch s",
        "speedup",
        "allreduce ms/step",
        "in allreduce",
        "bare allreduce ms",
    ]
    return "\n".join(format_table(headers, rows))


def run_here(args):
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    results = [
        measure(MAIN[name], args.epochs, args.rows, args.threads, comm) for name in args.config
    ]
    if comm.Get_rank() == 0:
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
        if not args.quiet:
            print(table(results), flush=True)
    return 0


def launch(args):
    """Run this script under ``mpiexec -n N`` for each N in ``args.ranks``; print one table."""
    mpiexec = Path(sys.executable).with_name("mpiexec")
    mpiexec = str(mpiexec) if mpiexec.exists() else "mpiexec"
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.ranks:
            out = os.path.join(tmp, f"{n}.json")
            command = [mpiexec, "-n", str(n), sys.executable, __file__, "--quiet", "--json", out]
            command += ["--config", *args.config, "--epochs", str(args.epochs)]
            command += ["--rows", str(args.rows)]
            if args.threads != "auto":
                command += ["--threads", str(args.threads)]
            subprocess.run(command, check=True, timeout=args.timeout)
            results += json.loads(Path(out).read_text())
    results.sort(key=lambda r: (args.config.index(r["config"]), r["ranks"]))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="+", default=["T1", "T3"], choices=sorted(MAIN))
    p.add_argument("--ranks", nargs="+", type=int, help="launch mpiexec -n N for each N")
    p.add_argument("--epochs", type=int, default=5, help="timed epochs (after one warm-up)")
    p.add_argument("--rows", type=int, default=8000, help="training rows (at most 10000)")
    p.add_argument("--threads", default="auto", help="threads per rank (default: a share)")
    p.add_argument("--json", help="also write the figures to this JSON file")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per mpiexec launch")
    p.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.threads != "auto":
        args.threads = int(args.threads)
    return launch(args) if args.ranks else run_here(args)


if __name__ == "__main__":
    sys.exit(main())
