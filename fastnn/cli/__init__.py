"""The ``fastnn`` command line (also ``python -m fastnn``).

fastnn train [options]           train an MLP (default: on the embedded MNIST sample; a CSV
                                 table with --data FILE.csv --target COLUMN) and save it
fastnn evaluate MODEL [--data]   loss and accuracy (R^2 and RMSE for regression) of a model
fastnn predict MODEL INPUT       predicted classes (or values) for the rows of INPUT (or of
                                 --data FILE.csv)
fastnn export MODEL OUTPUT       write a saved model as an ONNX graph (needs fastnn[onnx])
fastnn warmup                    compile every kernel into the cache ahead of time
fastnn info                      versions, threads, BLAS and cache folders
fastnn demo                      an MLP learns XOR, then three interleaved spirals
fastnn experiment NAME           one of the course's experiments (--list lists them)
fastnn tune [options]            random hyperparameter search on a validation split

One module per command (``train.py``, ``models.py`` for evaluate and predict, ``export.py``,
``system.py`` for warmup and info, ``demo.py``, ``experiment.py``, ``tune.py``); ``args.py``
holds what they share, ``tabular.py`` what train, evaluate and predict do with a CSV table.
The error policy is ``main``'s: a user's error (a ``fastnn.errors.FastnnError``, or an
operating-system error such as a missing file) is one line on stderr and exit code 2; a
diverged training run exit code 1; anything else is a bug in fastnn: its traceback, a line
asking to report it, and exit code 1.
"""

import argparse
import sys
import traceback

from ..errors import FastnnError
from ..training import TrainingDivergedError
from . import demo as _demo
from . import experiment, export, models, system, train, tune
from .args import Parser, UsageError
from .demo import demo
from .train import DEFAULT_OUTPUT

__all__ = ["DEFAULT_OUTPUT", "UsageError", "build_parser", "demo", "main"]


def build_parser():
    parser = Parser(
        prog="fastnn",
        description="Train multilayer neural networks fast on the CPU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 1)[1].split("\n\n", 1)[0],
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parser(sub)
    models.add_parsers(sub)
    export.add_parser(sub)
    system.add_parsers(sub)
    _demo.add_parser(sub)
    experiment.add_parser(sub)
    tune.add_parser(sub)
    return parser


def _one_line(e):
    """An error's message on one line: an OSError as "file: reason", a message's own lines
    joined with "; "."""
    message = (
        str(e) if not isinstance(e, OSError) or not e.filename else f"{e.filename}: {e.strerror}"
    )
    parts = [part.strip() for part in message.splitlines() if part.strip()]
    return "".join(
        p + ("" if i == len(parts) - 1 else " " if p.endswith(":") else "; ")
        for i, p in enumerate(parts)
    )


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0), or a bad argument reported by Parser.error (2)
        return 0 if e.code is None else e.code
    try:
        return args.run(args)
    except TrainingDivergedError as e:
        print(f"fastnn {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 1
    except (FastnnError, OSError) as e:
        # Bad flag values, bad files, bad data: one line, no traceback.
        print(f"fastnn {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            f"fastnn {args.command}: this is a bug in fastnn, not a problem with what you gave "
            "it; please report it to the fastnn developers with the traceback above",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
