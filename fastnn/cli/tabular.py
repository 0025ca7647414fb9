"""CSV tables on the command line: ``fastnn train/evaluate/predict --data table.csv``.

``train`` reads the table (``fastnn.data.tabular.read_table``), takes the ``--target`` column
out, guesses the task when ``--task`` is not given, holds out 20% of the rows for the test
(stratified for classification, with ``--seed``), standardizes the features with
``--standardize`` (fitted on the training rows) and, for regression, always standardizes the
target (the network learns z-scores with MSE; predictions are given back in the target's
units). The model file keeps all of it (``fastnn.files.save(..., tabular=...)``), so
``evaluate`` and ``predict`` apply the same steps to new rows.
"""

import os
from dataclasses import dataclass, field

import numpy as np

from .._atomic import atomic_write
from ..data.tabular import (
    TASKS,
    Tabular,
    fit_scaler,
    guess_task,
    read_header,
    read_table,
    regression_metrics,
    scale_rows,
    split_rows,
)
from .args import UsageError, check_folder

TEST_FRACTION = 0.2


def is_table(spec):
    """Whether ``--data spec`` names a CSV file."""
    return isinstance(spec, str) and spec.lower().endswith(".csv") and not os.path.isdir(spec)


def add_train_arguments(p):
    p.add_argument(
        "--target",
        default=None,
        metavar="COLUMN",
        help="with --data FILE.csv: the column to predict, by its name in the header row or "
        "its 0-based index (-1: the last column; a name wins over an index)",
    )
    p.add_argument(
        "--task",
        choices=TASKS,
        default=None,
        help="with --data FILE.csv (default: guessed from the target: classification for "
        "at most 20 distinct integer values, no more than half the rows; else regression)",
    )
    p.add_argument(
        "--standardize",
        action="store_true",
        help="with --data FILE.csv: z-score the features (fitted on the training rows, "
        "saved in the model file and applied by evaluate and predict)",
    )


def add_evaluate_arguments(p):
    p.add_argument(
        "--target",
        default=None,
        metavar="COLUMN",
        help="with --data FILE.csv: the target column, by name or 0-based index (default: "
        "the one the model was trained on)",
    )
    p.add_argument(
        "--all-rows",
        action="store_true",
        help="with --data FILE.csv: every row, not only the test split train held out",
    )


def refuse_table_flags(args):
    """``UsageError`` for a table's flags given with other data."""
    for flag, on in (
        ("--target", getattr(args, "target", None) is not None),
        ("--task", getattr(args, "task", None) is not None),
        ("--standardize", getattr(args, "standardize", False)),
        ("--all-rows", getattr(args, "all_rows", False)),
    ):
        if on:
            raise UsageError(f"{flag}: only for CSV tables (--data FILE.csv), not {args.data}")


# -- train ------------------------------------------------------------------------------------
@dataclass
class TrainingData:
    """What ``fastnn train`` trains on: the splits, the network's output width, the loss, a
    description, and for a table its ``Tabular`` and the test targets in their units."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    outputs: int
    loss: str = "cross_entropy"
    lines: list = field(default_factory=list)
    unit: str = "rows"
    tabular: Tabular | None = None
    y_test_values: np.ndarray | None = None


def values_text(values):
    """Class values as text: integers without a decimal point."""
    return [_value_text(v) for v in values]


def _value_text(v):
    v = float(v)
    return str(int(v)) if v == int(v) and abs(v) < 2**53 else repr(v)


def training_data(args):
    """``TrainingData`` for ``--data FILE.csv``: the table read, split and scaled."""
    path = args.data
    if args.target is None:
        raise UsageError(
            f"--data {path}: a CSV table needs --target COLUMN, the column to predict (its "
            "name in the header row, or its 0-based index)"
        )
    header = read_header(path)
    if header.columns < 2:
        raise UsageError(
            f"--data {path}: one column; a table needs a target and at least one feature column"
        )
    table = read_table(path, target=args.target, dtype=np.dtype(args.dtype))
    x, y, label = table.x, table.y, header.label(table.target)
    n = len(y)
    if n < 2:
        raise UsageError(
            f"--data {path}: 1 data row; training needs at least 2 (one to train on, one to test)"
        )
    values = np.unique(y)
    if len(values) == 1:
        raise UsageError(
            f"--data {path}: the target {label} is {_value_text(values[0])} in every row; "
            "there is nothing to learn"
        )
    task, why = args.task, None
    if task is None:
        task, why = guess_task(y)
    tab = Tabular(task, header.columns, table.target, table.features, header.names)
    n_test = max(1, round(TEST_FRACTION * n))
    lines = []
    if task == "classification":
        tab.classes = values
        labels = np.searchsorted(values, y)
        (x_train, y_train), (x_test, y_test) = split_rows(x, labels, n_test, True, args.seed)
        if len(values) > len(y_train):
            raise UsageError(
                f"--data {path}: the target {label} has {len(values)} distinct values, more "
                f"classes than the {len(y_train)} training rows (--task regression?)"
            )
        shown = ", ".join(values_text(values[:10])) + (", ..." if len(values) > 10 else "")
        what = f"{len(values)} classes: {shown}"
        y_values = tab.classes[y_test]
    else:
        (x_train, y_values_train), (x_test, y_values) = split_rows(x, y, n_test, False, args.seed)
        mean, std = float(y_values_train.mean()), float(y_values_train.std())
        tab.target_mean, tab.target_scale = mean, std if std > 0 else 1.0
        y_train = (y_values_train - tab.target_mean) / tab.target_scale
        y_test = (y_values - tab.target_mean) / tab.target_scale
        what = (
            f"the target is standardized for training (mean {mean:.4g}, std {std:.4g}); "
            "predictions are in its units"
        )
    lines.append(
        f"data: {path}, {len(x_train)} training and {len(x_test)} test rows of "
        f"{x.shape[1]} features, target {label}"
    )
    guessed = f" (guessed from the target: {why}; give --task to choose)" if why else ""
    lines.append(f"task: {task}{guessed}; {what}")
    if args.standardize:
        tab.mean, tab.scale = fit_scaler(x_train)
        scale_rows(x_train, tab.mean, tab.scale)
        scale_rows(x_test, tab.mean, tab.scale)
        lines.append("features: standardized (z-scores fitted on the training rows)")
    return TrainingData(
        x_train,
        y_train,
        x_test,
        y_test,
        tab.outputs,
        "cross_entropy" if task == "classification" else "mse",
        lines,
        "rows",
        tab,
        y_values,
    )


def regression_report(model, data):
    """ "test R^2 ...  test RMSE ..." of a regression model on the test rows, in the
    target's units."""
    got = regression_metrics(predict_values(model, data.tabular, data.x_test), data.y_test_values)
    return f"test R^2 {got['r2']:.4f}  test RMSE {got['rmse']:.4g}"


def predict_values(model, tab, x):
    """A regression model's predictions for the scaled rows x, in the target's units."""
    z = model.predict(x)[:, 0].astype(np.float64)
    return z * tab.target_scale + tab.target_mean


# -- evaluate and predict ---------------------------------------------------------------------
def _columns(header, tab, inputs, target_spec, need_target):
    """(feature column indices in the model's order, target index or None) of a table read
    for a model (``tab``: its ``Tabular`` or None; ``inputs``: its input width)."""
    path = header.path
    target = None if target_spec is None else header.column(target_spec)
    if tab is None:
        if target is None and need_target:
            raise UsageError(
                f"--data {path}: give --target COLUMN (the model file does not say which "
                "column it predicts)"
            )
        features = [i for i in range(header.columns) if i != target]
    elif tab.columns is not None and header.names is not None:
        # By name: the file's columns may come in any order.
        if target is None and tab.target_name in header.names:
            target = _named(header, tab.target_name, "target")
        features = [_named(header, name, "feature") for name in tab.feature_names]
        extra = [i for i in range(header.columns) if i not in features and i != target]
        if extra:
            raise UsageError(
                f"--data {path}: {header.label(extra[0])} is neither a feature the model was "
                f"trained on nor its target {tab.target_name!r}"
            )
    elif header.columns == tab.n_columns:
        # By position, as in the training file.
        target = tab.target if target is None else target
        features = list(tab.features)
    elif header.columns == len(tab.features) and target is None:
        features = list(range(header.columns))
    else:
        raise UsageError(
            f"--data {path}: {header.columns} columns; the model was trained on "
            f"{len(tab.features)} features (and the target at index {tab.target}), so "
            f"expected {len(tab.features)} or {tab.n_columns} columns"
        )
    if target in features:
        raise UsageError(f"--data {path}: {header.label(target)} is one of the model's features")
    if need_target and target is None:
        raise UsageError(
            f"--data {path}: no column named {tab.target_name!r} (the model's target); give "
            "--target COLUMN"
        )
    if inputs is not None and len(features) != inputs:
        raise UsageError(
            f"--data {path}: {len(features)} feature columns for a model of {inputs} inputs"
        )
    return features, target


def _named(header, name, what):
    where = [i for i, n in enumerate(header.names) if n == name]
    if len(where) != 1:
        found = "no column" if not where else f"{len(where)} columns"
        raise UsageError(
            f"--data {header.path}: {found} named {name!r}, a {what} column of the model"
        )
    return where[0]


def read_rows(path, model, tab, target_spec=None, need_target=False):
    """(x scaled as the model was trained, target values (n,) or None) of the CSV ``path``."""
    header = read_header(path)
    features, target = _columns(header, tab, model.io_widths()[0], target_spec, need_target)
    table = read_table(path, target=target, features=features, dtype=model.dtype)
    x = table.x
    if tab is not None and tab.mean is not None:
        scale_rows(x, tab.mean, tab.scale)
    return x, table.y, header


def evaluate_table(args, model, tab):
    """``fastnn evaluate MODEL --data FILE.csv``: its figures, printed."""
    x, y, header = read_rows(args.data, model, tab, args.target, need_target=True)
    classification = tab is None or tab.task == "classification"
    if classification:
        classes = tab.classes if tab is not None else np.arange(model.io_widths()[1])
        labels = np.searchsorted(classes, y).clip(0, len(classes) - 1)
        unknown = classes[labels] != y
        if unknown.any():
            r = int(np.argmax(unknown))
            raise UsageError(
                f"--data {args.data}: the target holds {_value_text(y[r])} (data row "
                f"{r + 1}), not one of the model's classes "
                f"({', '.join(values_text(classes[:10]))})"
            )
        y = labels
    total = len(y)
    if not args.all_rows:
        n_test = max(1, round(TEST_FRACTION * total))
        if total < 2:
            raise UsageError(
                f"--data {args.data}: 1 data row, no test split; give --all-rows to use it"
            )
        _, (x, y) = split_rows(x, y, n_test, classification, args.seed)
        where = f"the test split of {args.data}; --all-rows for all {total}"
    else:
        where = f"every row of {args.data}"
    if classification:
        from ..training import evaluate

        result = evaluate(model, x, y)
        figures = "  ".join(f"{k} {v:.4f}" for k, v in result.items())
    else:
        got = regression_metrics(predict_values(model, tab, x), y)
        figures = f"r2 {got['r2']:.4f}  rmse {got['rmse']:.4g}"
    print(f"{figures}  ({len(x)} rows: {where})")
    return 0


def predict_table(args, path, model, tab):
    """``fastnn predict MODEL --data FILE.csv``: one prediction per row, printed or written
    (``-o``: .csv as text with a header row, any other name as .npy)."""
    x, _, _ = read_rows(path, model, tab)
    regression = tab is not None and tab.task == "regression"
    if args.output:
        check_folder(args.output, "--output")
    if regression and args.proba:
        raise UsageError("--proba: the model predicts a number (regression), not classes")
    name = (tab.target_name if tab is not None else None) or "prediction"
    if args.proba:
        out = model.predict_proba(x).astype(np.float64)
        classes = tab.classes if tab is not None else np.arange(out.shape[1])
        head = ",".join(_csv_cell(c) for c in values_text(classes))
        rows = (",".join(f"{p:.6f}" for p in row) for row in out)
        shown = (" ".join(f"{p:.6f}" for p in row) for row in out)
    elif regression:
        out = predict_values(model, tab, x)
        head = _csv_cell(name)
        rows = shown = (f"{v:.9g}" for v in out)
    else:
        out = model.predict_classes(x)
        if tab is not None:
            out = tab.classes[out]
            if (out == np.round(out)).all() and np.abs(out).max() < 2**53:
                out = out.astype(np.int64)
        head = _csv_cell(name)
        rows = shown = values_text(out)
    if not args.output:
        for line in shown:
            print(line)
        return 0
    with atomic_write(args.output) as f:
        if args.output.lower().endswith(".csv"):
            f.write((head + "\n").encode())
            for line in rows:
                f.write((line + "\n").encode())
        else:
            np.save(f, out, allow_pickle=False)
    print(f"wrote {len(out)} predictions to {args.output}")
    return 0


def _csv_cell(text):
    """``text`` as one CSV cell (quoted when it holds a comma, a quote or a line break)."""
    if any(c in text for c in ',"\n\r') or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def model_check(tab, data):
    """``UsageError`` for a model trained on a table given other data."""
    if tab is not None:
        raise UsageError(
            f"{data}: the model was trained on a CSV table; give its rows as a CSV file "
            "(--data FILE.csv)"
        )
