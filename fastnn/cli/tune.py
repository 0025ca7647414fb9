"""``fastnn tune``: random hyperparameter search for an MLP, from the command line (the search
itself is ``fastnn.tune``)."""

import json
import math
import sys

import numpy as np

from ..data.sources import load_data
from ..nn import ACTIVATIONS
from ..optim import OPTIMIZERS
from ..tune import EXECUTORS, mlp_trial, random_search, validation_split
from ..tune.executors import Pool
from ..tune.search import SearchFailedError
from ..tune.space import Choice, LogUniform, Uniform, format_value
from .args import DefaultsHelp, UsageError, integer, real


def _parse_item(kind, text, flag):
    """One value of ``flag`` (``kind``: float, int, sizes or a tuple of accepted names)."""
    text = text.strip()
    try:
        if kind == "sizes":
            sizes = [int(s) for s in text.split(",") if s.strip()]
            if not sizes or min(sizes) < 1:
                raise ValueError
            return sizes
        if isinstance(kind, tuple):
            if text not in kind:
                raise ValueError
            return text
        value = kind(text)
    except ValueError:
        expected = (
            {
                "sizes": "layer sizes like 100,100",
                float: "a number",
                int: "an integer",
            }.get(kind)
            if not isinstance(kind, tuple)
            else "one of " + ", ".join(kind)
        )
        raise UsageError(f"{flag} {text!r}: expected {expected}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{flag} {text!r}: expected a finite number")
    return value


def _parse_flag(flag, text, kind, log=False, check=None):
    """A ``--flag`` value: "lo:hi" a range (log-uniform when ``log``), "a/b/c" a choice, or a
    fixed value. ``check(value)`` returns an error message for a bad fixed value or bound."""
    text = str(text)
    if ":" in text:
        if kind not in (float,):
            raise UsageError(f"{flag} {text!r}: a range lo:hi is for numbers; give a/b/c")
        parts = text.split(":")
        if len(parts) != 2:
            raise UsageError(f"{flag} {text!r}: expected a range lo:hi")
        lo, hi = (_parse_item(float, s, flag) for s in parts)
        if not lo < hi:
            raise UsageError(f"{flag} {text!r}: expected a range lo:hi with lo < hi")
        if log and lo <= 0:
            raise UsageError(f"{flag} {text!r}: a log range needs 0 < lo < hi")
        for v in (lo, hi):
            problem = check and check(v)
            if problem:
                raise UsageError(f"{flag} {text!r}: {problem}")
        return LogUniform(lo, hi) if log else Uniform(lo, hi)
    values = [_parse_item(kind, s, flag) for s in text.split("/")]
    for v in values:
        problem = check and check(v)
        if problem:
            raise UsageError(f"{flag} {text!r}: {problem}")
    return values[0] if len(values) == 1 else Choice(values)


def space_from_args(args):
    """The search space of ``fastnn tune``'s flags."""

    def positive(v):
        return None if v > 0 else f"expected values > 0, got {v:g}"

    def non_negative(v):
        return None if v >= 0 else f"expected values >= 0, got {v:g}"

    def fraction(v):
        return None if 0 <= v < 1 else f"expected values in [0, 1), got {v:g}"

    def at_least_one(v):
        return None if v >= 1 else f"expected values >= 1, got {v}"

    return {
        "lr": _parse_flag("--lr", args.lr, float, log=True, check=positive),
        "weight_decay": _parse_flag(
            "--weight-decay", args.weight_decay, float, log=True, check=non_negative
        ),
        "dropout": _parse_flag("--dropout", args.dropout, float, check=fraction),
        "layers": _parse_flag("--layers", args.layers, "sizes"),
        "epochs": _parse_flag("--epochs", args.epochs, int, check=at_least_one),
        "batch_size": _parse_flag("--batch-size", args.batch_size, int, check=at_least_one),
        "optimizer": _parse_flag("--optimizer", args.optimizer, tuple(OPTIMIZERS)),
        "activation": _parse_flag("--activation", args.activation, tuple(ACTIVATIONS)),
        "batchnorm": bool(args.batchnorm),
        "val": args.val,
        "split_seed": args.seed,
        "dtype": args.dtype,
    }


def _format_space(space):
    return ", ".join(
        f"{k} {v.lo:.3g}:{v.hi:.3g}{' (log)' if v.log else ''}"
        if isinstance(v, Uniform)
        else f"{k} {'/'.join(format_value(o) for o in v.options)}"
        if isinstance(v, Choice)
        else f"{k} {format_value(v)}"
        for k, v in space.items()
        if k not in ("split_seed",)
    )


def tune_cmd(args):
    """``fastnn tune``: print each round's best trials and the narrowed ranges."""
    if args.top is None:
        args.top = min(5, args.trials)
    if args.top > args.trials:
        raise UsageError(f"--top {args.top} is more than --trials {args.trials}")
    space = space_from_args(args)
    (x, y), (x_test, _) = load_data(args.data)  # checked here, loaded again in each worker
    n_val = len(validation_split(np.asarray(y), args.val, args.seed)[1])
    print(
        f"data: {args.data}, {len(x)} rows searched on ({len(x) - n_val} training, {n_val} "
        f"validation); the {len(x_test)} test rows are kept aside"
    )
    workers = args.workers
    where = f"{args.executor} executor" + (f", {workers} workers" if workers else "")
    print(f"{args.trials} trials x {args.rounds} round(s) on the {where}; seed {args.seed}")
    done = [0]

    def progress(t):
        done[0] += 1
        if args.quiet:
            return
        what = f"score {t.score:.4f}" if t.ok else f"failed: {t.error}"
        print(f"  trial {t.index:3d} ({done[0]}/{args.trials})  {what}  {t.seconds:.1f} s")

    results = []
    space_now = space
    try:
        with Pool(args.executor, workers, args.threads) as pool:
            for r, round_seed in enumerate(np.random.SeedSequence(args.seed).spawn(args.rounds)):
                if results:
                    space_now = results[-1].narrow(args.top, args.margin)
                    print(f"\nround {r + 1}: narrowed to {_format_space(space_now)}")
                else:
                    print(f"\nround 1: {_format_space(space_now)}")
                done[0] = 0
                result = random_search(
                    mlp_trial,
                    space_now,
                    args.trials,
                    args.data,
                    seed=round_seed,
                    executor=pool.executor,
                    callback=progress,
                )
                result.executor = pool.name
                results.append(result)
                print(f"round {r + 1}: {result.seconds:.1f} s; the best {args.top} trials:")
                print(result.table(args.top))
                for t in result.failed:
                    print(f"trial {t.index} failed: {t.error}")
    except SearchFailedError as e:
        print(f"fastnn tune: error: {e}", file=sys.stderr)
        return 1
    best = max((res.best for res in results), key=lambda t: t.score)
    print(
        f"\nbest: validation accuracy {best.score:.4f} with "
        + ", ".join(f"{k} {format_value(best.params[k])}" for k in space if k != "split_seed")
    )
    if args.json:
        record = {
            "data": args.data,
            "seed": args.seed,
            "rounds": [res.to_dict() for res in results],
            "best": best.to_dict(),
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def add_parser(subparsers):
    """Add ``fastnn tune`` to the CLI's subparsers; return its parser."""
    p = subparsers.add_parser(
        "tune",
        help="random hyperparameter search for an MLP on a validation split",
        description=(
            "Random search over MLP hyperparameters, scored by validation accuracy on part of "
            "the training data (the test set is kept aside). A value lo:hi is a range "
            "(log-uniform for --lr and --weight-decay, uniform for --dropout), a/b/c a choice, "
            "anything else fixed. On a cluster: mpiexec -n N python -m mpi4py.futures -m "
            "fastnn tune --executor mpi ..."
        ),
        formatter_class=DefaultsHelp,
    )
    p.add_argument("--data", default="sample", help="as for fastnn train; its test part unused")
    p.add_argument("--trials", type=integer("--trials", low=1), default=20, help="trials per round")
    p.add_argument("--lr", default="1e-5:1e-2", help="learning rate: lo:hi (log), a/b, or a")
    p.add_argument(
        "--weight-decay", default="1e-8:1e-4", help="weight decay: lo:hi (log), a/b, or a"
    )
    p.add_argument("--dropout", default="0", help="dropout: lo:hi (uniform), a/b, or a")
    p.add_argument("--layers", default="100,100", help="hidden sizes; choices as 50/100,100")
    p.add_argument("--epochs", default="3", help="epochs per trial (or a/b)")
    p.add_argument("--batch-size", default="64", help="batch size (or a/b/c)")
    p.add_argument("--optimizer", default="adam", help="optimizer (or a/b)")
    p.add_argument("--activation", default="relu", help="activation (or a/b)")
    p.add_argument("--batchnorm", action="store_true", help="batch norm in every trial")
    p.add_argument(
        "--val",
        type=real("--val", 0.0, 1.0, "neither"),
        default=0.2,
        help="validation fraction of the training data",
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--executor", choices=EXECUTORS, default="process", help="where trials run")
    counts = (
        ("--workers", None, "pool size (default: one per core; mpi: the ranks given by mpiexec)"),
        ("--threads", 1, "threads per worker"),
        ("--rounds", 1, "search rounds"),
        ("--top", None, "best trials shown and narrowed around (default: 5, at most --trials)"),
    )
    for flag, default, text in counts:
        p.add_argument(flag, type=integer(flag, low=1), default=default, help=text)
    p.add_argument(
        "--margin",
        type=real("--margin", low=0.0),
        default=0.0,
        help="widen narrowed ranges by this fraction of their width on each side",
    )
    p.add_argument(
        "--seed", type=integer("--seed", low=0), default=0, help="seeds the trials and the split"
    )
    p.add_argument("--json", default=None, help="write every trial to this JSON file")
    p.add_argument("--quiet", "-q", action="store_true", help="no line per trial")
    p.set_defaults(run=tune_cmd)
    return p
