"""``fastnn evaluate`` and ``fastnn predict``: use a saved model."""

import sys

import numpy as np

from .._atomic import atomic_write
from ..data.idx import read_idx
from ..data.sources import load_data
from ..files import load_tabular
from ..training import evaluate
from . import tabular
from .args import UsageError, check_folder, integer, model_input


def add_parsers(subparsers):
    p = subparsers.add_parser("evaluate", help="loss and accuracy of a saved model")
    p.add_argument("model", help="a file written by fastnn train or fastnn.save")
    p.add_argument("--data", default="sample", help="as for train; its test split is used")
    p.add_argument("--seed", type=integer("--seed", low=0), default=0)
    tabular.add_evaluate_arguments(p)
    p.set_defaults(run=evaluate_cmd)

    p = subparsers.add_parser("predict", help="predicted classes of the rows of INPUT")
    p.add_argument("model", help="a file written by fastnn train or fastnn.save")
    p.add_argument(
        "input",
        nargs="?",
        default=None,
        help="an .npz with x, an .npy array, an IDX images file, or a CSV table",
    )
    p.add_argument(
        "--data",
        default=None,
        metavar="FILE.csv",
        help="a CSV table of rows to predict for (instead of INPUT): the model's feature "
        "columns, by header name or position; its target column, if there, is ignored",
    )
    p.add_argument(
        "--proba", action="store_true", help="class probabilities instead (a column a class)"
    )
    p.add_argument(
        "--output",
        "-o",
        default=None,
        help="write to exactly this file instead of stdout: .csv as text (for a CSV table "
        "with a header row), any other name as .npy",
    )
    p.set_defaults(run=predict_cmd)


def evaluate_cmd(args):
    model, tab = load_tabular(args.model)
    if tabular.is_table(args.data):
        return tabular.evaluate_table(args, model, tab)
    tabular.refuse_table_flags(args)
    tabular.model_check(tab, f"--data {args.data}")
    _, (x, y) = load_data(args.data, args.seed)
    result = evaluate(model, model_input(model, x), y)
    print("  ".join(f"{k} {v:.4f}" for k, v in result.items()) + f"  ({len(x)} rows)")
    return 0


def _read_input(path):
    if path.endswith(".npz"):
        try:
            with np.load(path, allow_pickle=False) as f:
                key = "x" if "x" in f.files else ("x_test" if "x_test" in f.files else None)
                if key is None:
                    raise UsageError(
                        f"{path}: expected an array named x, found {', '.join(f.files)}"
                    )
                return f[key]
        except UsageError:
            raise
        except Exception as e:
            raise UsageError(f"{path}: not a readable .npz file ({e})") from None
    if path.endswith(".npy"):
        try:
            return np.load(path, allow_pickle=False)
        except Exception as e:
            raise UsageError(f"{path}: not a readable .npy file ({e})") from None
    images = read_idx(path)
    return images.astype(np.float32) / 255.0


def predict_cmd(args):
    if (args.input is None) == (args.data is None):
        raise UsageError("give the rows to predict for: INPUT or --data FILE.csv (one of them)")
    path = args.input if args.data is None else args.data
    model, tab = load_tabular(args.model)
    if tabular.is_table(path):
        return tabular.predict_table(args, path, model, tab)
    if args.data is not None:
        raise UsageError(
            f"--data {path}: expected a CSV table (FILE.csv); give other files as INPUT"
        )
    tabular.model_check(tab, path)
    x = model_input(model, _read_input(args.input), args.input)
    if args.output:
        check_folder(args.output, "--output")
    if x.ndim >= 2 and x.dtype.kind in "biuf" and not np.isfinite(x).all():
        rows = int(np.count_nonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1)))
        raise UsageError(f"{args.input}: the input holds NaN or infinite values (in {rows} rows)")
    if args.proba:
        out = model.predict_proba(x)
        lines = (" ".join(f"{p:.6f}" for p in row) for row in out)
    else:
        out = model.predict_classes(x)
        lines = (str(c) for c in out)
    if args.output:
        # Written to the very path given (np.save alone would add ".npy" to another name).
        with atomic_write(args.output) as f:
            if args.output.endswith(".csv"):
                np.savetxt(f, out, delimiter=",", fmt="%.6g" if args.proba else "%d")
            else:
                np.save(f, out, allow_pickle=False)
        print(f"wrote {len(out)} predictions to {args.output}")
    else:
        sys.stdout.write("\n".join(lines) + "\n")
    return 0
