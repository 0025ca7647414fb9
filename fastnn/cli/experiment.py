"""``fastnn experiment NAME``: one of the course's experiments (``--list`` lists them)."""

import time
from pathlib import Path

from ..course import experiments
from ..plotting import _pyplot
from .args import UsageError, integer


def add_parser(subparsers):
    p = subparsers.add_parser(
        "experiment",
        help="run one of the course's experiments (--list lists them)",
        description="Run one of the course's experiments: print its table, write its figures.",
    )
    p.add_argument("name", nargs="?", help="the experiment, e.g. gates or optimizer-paths")
    flags = (
        ("--list", "list the experiments and stop"),
        ("--no-figures", "print the table only"),
        ("--quick", "a smaller run, in seconds"),
    )
    for flag, text in flags:
        p.add_argument(flag, action="store_true", help=text)
    p.add_argument("--out", default="experiments", help="folder for the PNG figures (./out/NAME)")
    p.add_argument(
        "--seed", type=integer("--seed", low=0), default=0, help="random seed (default 0)"
    )
    p.set_defaults(run=experiment_cmd)


def experiment_cmd(args):
    if args.list:
        names = experiments.list_experiments()
        width = max(len(name) for name, _ in names)
        for name, description in names:
            print(f"{name.ljust(width)}  {description}")
        return 0
    if args.name is None:
        raise UsageError("name an experiment, or give --list to see them")
    key = args.name.replace("_", "-")
    if key not in experiments.EXPERIMENTS:
        names = ", ".join(experiments.EXPERIMENTS)
        raise UsageError(f"unknown experiment {args.name!r}; expected one of {names}")
    out = None if args.no_figures else Path(args.out) / key
    if out is not None:
        try:
            _pyplot()  # a clear error now, not after the run, when matplotlib is missing
        except ImportError as e:
            raise UsageError(f"{e}; or run with --no-figures") from None
    start = time.perf_counter()
    result = experiments.run(key, quick=args.quick, seed=args.seed, out=out)
    seconds = time.perf_counter() - start
    for path in result.get("figures", []):
        print(f"wrote {path}")
    print(f"{key}: {seconds:.1f} s")
    return 0
