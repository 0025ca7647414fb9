"""Tables of numbers from CSV files, and what a model trained on one keeps of it.

``read_table(path, target)`` reads a comma-separated file of numbers into a float array of
features (n, columns - 1) and the target column (n,), in one pass over the text after a
cheap count of its lines:

- **Header.** The first non-blank row is a header when any of its cells is neither a number
  nor a missing-value marker (an empty cell, NA, N/A, nan, null, None); otherwise it is data.
- **Cells.** Numbers as Python's ``float`` reads them, with spaces around them or quoted
  (``"1.5"``). A cell that is not a number, a missing value (see above), NaN or infinity is an
  error naming the column (name and 0-based index) and the line (1-based, as an editor counts
  them). Every row must have as many cells as the header (or the first row).
- **Text.** UTF-8 (a byte-order mark is skipped); lines end with ``\\n``, ``\\r\\n`` or ``\\r``;
  blank lines are skipped; the delimiter is a comma.

Memory: the lines are counted first (reading 1 MiB at a time), the arrays allocated once at
their final size, and the text parsed ``CHUNK_CHARS`` (2 Mi) characters at a time (NumPy's
``loadtxt`` on the chunk, a cell-by-cell parse only to name a bad cell), so the file is never
held whole, as text or as Python objects: the peak is the arrays themselves,
``n * (features * itemsize + 8)`` bytes (4 bytes a number with float32, 8 with float64; the
target is float64), plus one chunk's text, lines and float64 parse, at most about 35 MB
whatever the file's size. A 1 GB CSV of numbers written with 10 characters each
("0.1234567,") holds 100 M numbers: 400 MB as float32 (800 MB as float64) plus the chunk; no
1 GB file can hold more than 500 M numbers ("0,"), 2 GB as float32. Measured with
tracemalloc: a 55 MB file of 5.5 M numbers peaks at 37 MB (24 MB of arrays), a 40 MB file
of 20 M one-digit numbers at 122 MB (88 MB of arrays); ``tests/test_tabular.py`` checks
the bound with a small chunk.

``Tabular`` is what a model trained on a table keeps in its file (``fastnn.files.save(...,
tabular=...)``): the task, the target and feature columns, the class values, and the
scalers of the features and (for regression) of the target.
"""

import csv
import math
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import FileFormatError, InvalidValueError

__all__ = [
    "CHUNK_CHARS",
    "Header",
    "Table",
    "Tabular",
    "fit_scaler",
    "guess_task",
    "read_header",
    "read_table",
    "regression_metrics",
    "scale_rows",
    "split_rows",
]

CHUNK_CHARS = 1 << 21  # characters of text parsed at a time (2 MiB of ASCII)
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
MAX_CLASSES_GUESSED = 20  # the most distinct values --task's guess takes for classes
TASKS = ("classification", "regression")
_COUNT_BLOCK = 1 << 20


# -- the header -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    """A CSV file's first row: ``names`` (list of str, or None when the first row is data),
    ``columns`` (how many cells a row has) and ``line``, the line number of the first row."""

    path: str
    names: list | None
    columns: int
    line: int

    def label(self, index):
        """How errors name column ``index``: "column 'age' (index 2)" or "column 2"."""
        if self.names is None:
            return f"column {index}"
        return f"column {self.names[index]!r} (index {index})"

    def column(self, spec, flag="--target"):
        """The 0-based index of the column ``spec`` names: an int is an index (negative
        counting from the end); a str a header name, else an integer index (the name wins
        when a column is called "3")."""
        if isinstance(spec, int | np.integer) and not isinstance(spec, bool):
            if not -self.columns <= spec < self.columns:
                raise InvalidValueError(
                    f"{flag} {spec}: {self.path} has {self.columns} columns (indices 0 to "
                    f"{self.columns - 1}, or -{self.columns} to -1)"
                )
            return int(spec) % self.columns
        spec = str(spec).strip()
        if self.names is not None and spec in self.names:
            where = [i for i, name in enumerate(self.names) if name == spec]
            if len(where) > 1:
                raise InvalidValueError(
                    f"{flag} {spec}: {self.path} has {len(where)} columns named {spec!r} "
                    f"(indices {', '.join(map(str, where))}); give the index of one"
                )
            return where[0]
        try:
            index = int(spec)
        except ValueError:
            if self.names is None:
                raise InvalidValueError(
                    f"{flag} {spec}: {self.path} has no header row (its first row is all "
                    f"numbers); give the column's 0-based index (0 to {self.columns - 1}, "
                    "or -1 for the last)"
                ) from None
            shown = ", ".join(self.names[:10]) + (", ..." if self.columns > 10 else "")
            raise InvalidValueError(
                f"{flag} {spec}: {self.path} has no column named {spec!r} (its columns: {shown})"
            ) from None
        if not -self.columns <= index < self.columns:
            raise InvalidValueError(
                f"{flag} {spec}: {self.path} has {self.columns} columns (indices 0 to "
                f"{self.columns - 1}, or -{self.columns} to -1)"
            )
        return index % self.columns


def _cells(line):
    """The cells of one line of CSV text (quotes removed, spaces stripped)."""
    return [cell.strip() for cell in next(csv.reader([line]), [])]


def _number(text):
    """``text`` as a float, or None."""
    try:
        return float(text)
    except ValueError:
        return None


def _is_header(cells):
    return any(_number(c) is None and c.lower() not in MISSING for c in cells)


def _open(path):
    # newline=None: "\r\n" and a lone "\r" end lines as "\n" does; utf-8-sig skips a BOM.
    return open(path, encoding="utf-8-sig", newline=None)


def _first_row(f, path):
    """(cells of the first non-blank line, its line number, the line); f is left after it."""
    number = 0
    for line in iter(f.readline, ""):
        number += 1
        if line.strip():
            return _cells(line), number, line
    raise InvalidValueError(f"{path}: empty file: no header and no rows")


def read_header(path):
    """The ``Header`` of the CSV file ``path``."""
    path = os.fspath(path)
    with _open(path) as f:
        cells, line, _ = _decoded(lambda: _first_row(f, path), path)
    return Header(path, cells if _is_header(cells) else None, len(cells), line)


def _decoded(read, path):
    try:
        return read()
    except UnicodeDecodeError as e:
        raise InvalidValueError(
            f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x}); save the table as UTF-8 CSV"
        ) from None


# -- the rows ---------------------------------------------------------------------------------
@dataclass
class Table:
    """What ``read_table`` read: features ``x`` (n, len(features)), the target ``y`` (n,)
    float64 or None, the ``header``, and the column indices of ``features`` and ``target``."""

    x: np.ndarray
    y: np.ndarray | None
    header: Header
    features: list
    target: int | None


def _count_lines(path):
    """An upper bound on the lines of ``path``: its newlines (or carriage returns) + 1."""
    newlines = returns = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_COUNT_BLOCK), b""):
            newlines += block.count(b"\n")
            returns += block.count(b"\r")
    return (newlines or returns) + 1


def read_table(path, target=None, features=None, dtype=np.float32, chunk_chars=CHUNK_CHARS):
    """The numbers of the CSV file ``path`` as a ``Table``.

    target: a column name or index (see ``Header.column``), or None for no target.
    features: the column indices to keep as x, in order (default: every column but the
    target). ``x`` has ``dtype``, ``y`` float64. Peak memory: the two arrays plus one chunk
    of ``chunk_chars`` characters of text and its parse (see the module's docstring).
    """
    path = os.fspath(path)
    header = read_header(path)
    t = None if target is None else header.column(target)
    if features is None:
        features = [i for i in range(header.columns) if i != t]
    features = list(features)
    capacity = _count_lines(path)
    x = np.empty((capacity, len(features)), dtype=dtype)
    y = None if t is None else np.empty(capacity, dtype=np.float64)
    n = 0
    with _open(path) as f:
        _, line, first = _decoded(lambda: _first_row(f, path), path)
        pending = [] if header.names is not None else [first]
        start = line if header.names is None else line + 1
        while True:
            text = _decoded(lambda: f.read(chunk_chars), path)
            if text and not text.endswith("\n"):
                text += _decoded(f.readline, path)  # the chunk ends at the end of a line
            lines = pending + text.split("\n") if text else pending
            if not lines:
                break
            if lines[-1] == "":
                lines.pop()  # after the chunk's last "\n"
            pending = []
            rows = _parse(lines, header, start)
            if len(rows):
                if n + len(rows) > capacity:  # the file grew since it was counted
                    capacity = max(2 * capacity, n + len(rows))
                    x = _grown(x, capacity)
                    y = None if y is None else _grown(y, capacity)
                _check_range(rows, features, x.dtype, header, lines, start)
                x[n : n + len(rows)] = rows[:, features]
                if y is not None:
                    y[n : n + len(rows)] = rows[:, t]
                n += len(rows)
            start += len(lines)
            if not text:
                break
    if n == 0:
        raise InvalidValueError(f"{path}: a header row and no data rows")
    return Table(x[:n], None if y is None else y[:n], header, features, t)


def _grown(a, rows):
    out = np.empty((rows, *a.shape[1:]), dtype=a.dtype)
    out[: len(a)] = a
    return out


def _parse(lines, header, start):
    """The rows of ``lines`` (line ``start`` of the file first) as float64 (rows, columns):
    NumPy's parser, and a cell-by-cell one to name the first bad cell when it fails."""
    if not any(line.strip() for line in lines):
        return np.empty((0, header.columns))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows = np.loadtxt(
                lines, delimiter=",", dtype=np.float64, ndmin=2, quotechar='"', comments=None
            )
    except ValueError:
        rows = None
    if rows is not None and rows.shape[1] == header.columns and np.isfinite(rows).all():
        return rows
    return _parse_cells(lines, header, start)


def _parse_cells(lines, header, start):
    """``_parse``'s slow path: each cell with ``float``, the first bad one an error."""
    out = []
    for number, line in enumerate(lines, start):
        if not line.strip():
            continue
        cells = _cells(line)
        if len(cells) != header.columns:
            source = "the header" if header.names is not None else f"line {header.line}"
            raise InvalidValueError(
                f"{header.path}, line {number}: {len(cells)} cells, expected "
                f"{header.columns} as in {source}"
            )
        row = []
        for i, cell in enumerate(cells):
            value = _number(cell)
            where = f"{header.path}, line {number}, {header.label(i)}"
            if cell.lower() in MISSING or (value is not None and math.isnan(value)):
                raise InvalidValueError(f"{where}: a missing value ({cell!r})")
            if value is None:
                raise InvalidValueError(f"{where}: {cell[:40]!r} is not a number")
            if math.isinf(value):
                raise InvalidValueError(f"{where}: {cell[:40]!r} is not a finite number")
            row.append(value)
        out.append(row)
    return np.array(out, dtype=np.float64).reshape(len(out), header.columns)


def _check_range(rows, features, dtype, header, lines, start):
    """``InvalidValueError`` naming the first feature value too large for ``dtype``."""
    largest = np.finfo(dtype).max
    if dtype == np.float64 or not len(features) or np.abs(rows[:, features]).max() <= largest:
        return
    r, c = np.argwhere(np.abs(rows[:, features]) > largest)[0]
    line = start + [i for i, text in enumerate(lines) if text.strip()][r]
    raise InvalidValueError(
        f"{header.path}, line {line}, {header.label(features[c])}: {rows[r, features[c]]:g} "
        f"is too large for {np.dtype(dtype)} (at most {largest:.3g}); use float64"
    )


# -- what training does with a table ----------------------------------------------------------
def guess_task(y):
    """("classification" or "regression", why): classification when the target holds
    integers only, at most ``MAX_CLASSES_GUESSED`` distinct values and no more than half as
    many distinct values as rows."""
    values = np.unique(y)
    k = len(values)
    integers = bool(np.all(values == np.round(values)))
    if integers and k <= MAX_CLASSES_GUESSED and 2 * k <= len(y):
        return "classification", f"{k} distinct integer values"
    if not integers:
        return "regression", "it holds non-integer values"
    return "regression", f"{k} distinct integer values in {len(y)} rows"


def split_rows(x, y, test, stratify, seed):
    """((x_train, y_train), (x_test, y_test)): ``test`` rows held out at random (stratified
    by y's values when ``stratify``), with ``seed``.

    The test rows are copied out and the training rows moved to the front of ``x`` in place,
    so the split costs the test rows' memory, not a second copy of x; each part keeps the
    file's row order (``fit`` shuffles)."""
    from .preprocessing import split_indices

    train, held = split_indices(y, [len(y) - test, test], stratify=stratify, rng=seed)
    train, held = np.sort(train), np.sort(held)
    x_test, y_test = x[held], y[held]
    block = max(1, (1 << 22) // max(1, x.itemsize * x.shape[1]))
    for lo in range(0, len(train), block):
        # train is increasing and train[i] >= i, so no row is overwritten before it moves.
        hi = min(lo + block, len(train))
        x[lo:hi] = x[train[lo:hi]]
    y_train = y[train]
    return (x[: len(train)], y_train), (x_test, y_test)


def fit_scaler(x):
    """(mean, scale) of the columns of x (n, d), float64, as ``Standardizer.fit`` takes them
    (population std; a constant column gets its value and scale 1), summed a block of rows at
    a time so that x is never copied whole."""
    n, d = x.shape
    block = max(1, (1 << 22) // max(1, 8 * d))
    total = np.zeros(d)
    constant = np.ones(d, dtype=bool)
    for lo in range(0, n, block):
        part = x[lo : lo + block].astype(np.float64)
        total += part.sum(axis=0)
        constant &= (part == part[0]).all(axis=0) & (part[0] == x[0])
    mean = total / n
    squares = np.zeros(d)
    for lo in range(0, n, block):
        squares += ((x[lo : lo + block] - mean) ** 2).sum(axis=0)
    std = np.sqrt(squares / n)
    constant |= std == 0
    return np.where(constant, x[0].astype(np.float64), mean), np.where(constant, 1.0, std)


def scale_rows(x, mean, scale):
    """x = (x - mean) / scale in place (computed in float64, a block of rows at a time);
    returns x."""
    block = max(1, (1 << 22) // max(1, 8 * x.shape[1]))
    for lo in range(0, len(x), block):
        x[lo : lo + block] = (x[lo : lo + block] - mean) / scale
    return x


def regression_metrics(predicted, y):
    """{"r2": 1 - SS_res / SS_tot (NaN for a constant y), "rmse": root mean squared error}
    of predictions against targets, both (n,)."""
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    residual = float(np.sum((y - predicted) ** 2))
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - residual / total if total > 0 else math.nan
    return {"r2": r2, "rmse": math.sqrt(residual / len(y))}


# -- what a model file keeps ------------------------------------------------------------------
@dataclass(eq=False)
class Tabular:
    """What a model trained on a table needs to read and answer for new rows of it.

    task: "classification" or "regression"; columns: the training file's header names (or
    None); target: the target column's index; features: the feature columns' indices, in the
    model's input order; mean, scale: the features' standardizer (None without
    ``--standardize``); classes: the class values (k,) in the order of the model's outputs;
    target_mean, target_scale: regression's target standardizer (the model predicts
    ``(y - target_mean) / target_scale``)."""

    task: str
    n_columns: int
    target: int
    features: list
    columns: list | None = None
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    classes: np.ndarray | None = None
    target_mean: float = 0.0
    target_scale: float = 1.0

    @property
    def target_name(self):
        return None if self.columns is None else self.columns[self.target]

    @property
    def feature_names(self):
        return None if self.columns is None else [self.columns[i] for i in self.features]

    @property
    def outputs(self):
        return 1 if self.task == "regression" else len(self.classes)

    def to_file(self):
        """(JSON-able header entry, {name: array}) as ``fastnn.files`` stores them."""
        entry = {
            "task": self.task,
            "n_columns": self.n_columns,
            "target": self.target,
            "features": list(map(int, self.features)),
            "columns": self.columns,
            "standardize": self.mean is not None,
        }
        arrays = {}
        if self.mean is not None:
            arrays["mean"] = np.asarray(self.mean, dtype=np.float64)
            arrays["scale"] = np.asarray(self.scale, dtype=np.float64)
        if self.task == "classification":
            arrays["classes"] = np.asarray(self.classes, dtype=np.float64)
        else:
            arrays["target_mean"] = np.array(self.target_mean, dtype=np.float64)
            arrays["target_scale"] = np.array(self.target_scale, dtype=np.float64)
        return entry, arrays


MAX_COLUMNS = 1 << 20


def check_entry(entry, name):
    """``FileFormatError`` unless ``entry`` (a file's "tabular" header) has the form
    ``Tabular.to_file`` writes; returns {array name: shape} the file must hold."""

    def bad(what):
        raise FileFormatError(f"{name}: invalid tabular entry: {what}")

    def integer(value):
        return isinstance(value, int) and not isinstance(value, bool)

    if not isinstance(entry, dict):
        bad(f"expected an object, got {entry!r:.80}")
    known = {"task", "n_columns", "target", "features", "columns", "standardize"}
    if set(entry) != known:
        bad(f"expected the keys {', '.join(sorted(known))}, got {', '.join(sorted(entry))}")
    if entry["task"] not in TASKS:
        bad(f"task {entry['task']!r:.80}")
    n = entry["n_columns"]
    if not integer(n) or not 2 <= n <= MAX_COLUMNS:
        bad(f"n_columns {n!r:.80}")
    target, features, columns = entry["target"], entry["features"], entry["columns"]
    if not integer(target) or not 0 <= target < n:
        bad(f"target {target!r:.80}")
    if (
        not isinstance(features, list)
        or not features
        or not all(integer(i) and 0 <= i < n and i != target for i in features)
        or len(set(features)) != len(features)
    ):
        bad(f"features {features!r:.80}")
    if columns is not None and (
        not isinstance(columns, list)
        or len(columns) != n
        or not all(isinstance(c, str) for c in columns)
    ):
        bad(f"columns {columns!r:.80}")
    if not isinstance(entry["standardize"], bool):
        bad(f"standardize {entry['standardize']!r:.80}")
    shapes = {}
    if entry["standardize"]:
        shapes["mean"] = shapes["scale"] = (len(features),)
    if entry["task"] == "classification":
        shapes["classes"] = None  # (k,), k >= 2: checked against the model
    else:
        shapes["target_mean"] = shapes["target_scale"] = ()
    return shapes


def from_file(entry, arrays, outputs, name):
    """The ``Tabular`` of a file's checked ``entry`` and its "tabular/" ``arrays`` (float64,
    of the shapes ``check_entry`` gave), for a model of ``outputs`` outputs."""

    def bad(what):
        raise FileFormatError(f"{name}: invalid tabular entry: {what}")

    for key, a in arrays.items():
        if a.dtype != np.float64 or not np.isfinite(a).all():
            bad(f"{key} must hold finite float64 values")
    for key in ("scale", "target_scale"):
        if key in arrays and not (arrays[key] > 0).all():
            bad(f"{key} must be positive")
    classes = arrays.get("classes")
    if classes is not None:
        if classes.ndim != 1 or len(classes) < 2 or not (np.diff(classes) > 0).all():
            bad("classes must be 2 or more increasing values")
    expected = 1 if classes is None else len(classes)
    if outputs != expected:
        bad(f"the model has {outputs} outputs, the tabular entry declares {expected}")
    return Tabular(
        task=entry["task"],
        n_columns=entry["n_columns"],
        target=entry["target"],
        features=list(entry["features"]),
        columns=entry["columns"],
        mean=arrays.get("mean"),
        scale=arrays.get("scale"),
        classes=classes,
        target_mean=float(arrays.get("target_mean", 0.0)),
        target_scale=float(arrays.get("target_scale", 1.0)),
    )
