"""CSV tables: the reader (fastnn.data.tabular), the tabular entry of model files, and
``fastnn train/evaluate/predict --data table.csv`` end to end and on bad input."""

import csv
import math
import re
import tracemalloc

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastnn as fn
from fastnn.cli import main
from fastnn.data.tabular import (
    Tabular,
    fit_scaler,
    guess_task,
    read_header,
    read_table,
    regression_metrics,
    split_rows,
)
from fastnn.errors import FileFormatError, InvalidValueError
from fastnn.files import load_tabular, read, save, write_npz

FAST = ["--epochs", 8, "--layers", "32", "--batch-size", 16, "--lr", 0.01, "--dropout", 0, "-q"]


def write(path, text, mode="w"):
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, newline="")
    return path


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def write_table(path, x, y, names=None, target_at=None):
    """x (n, d) and y (n,) as a CSV, the target at column ``target_at`` (default: last)."""
    target_at = x.shape[1] if target_at is None else target_at
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if names is not None:
            w.writerow(names)
        for row, t in zip(x, y, strict=True):
            cells = [repr(float(v)) for v in row]
            cells.insert(target_at, repr(float(t)) if t != int(t) else str(int(t)))
            w.writerow(cells)
    return path


# -- the reader -------------------------------------------------------------------------------
def test_a_header_is_a_first_row_with_a_cell_that_is_not_a_number(tmp_path):
    t = read_table(write(tmp_path / "a.csv", "a,b,y\n1,2,3\n4,5,6\n"), target="y")
    assert t.header.names == ["a", "b", "y"] and t.target == 2 and t.features == [0, 1]
    np.testing.assert_array_equal(t.x, [[1, 2], [4, 5]])
    np.testing.assert_array_equal(t.y, [3, 6])
    assert t.x.dtype == np.float32 and t.y.dtype == np.float64
    # No header: every row is data, and the target is an index.
    t = read_table(write(tmp_path / "b.csv", "1,2,3\n4,5,6\n"), target="0", dtype=np.float64)
    assert t.header.names is None and t.header.columns == 3
    np.testing.assert_array_equal(t.x, [[2, 3], [5, 6]])
    np.testing.assert_array_equal(t.y, [1, 4])
    # Missing values do not make a header: the first row is data with a missing value.
    with pytest.raises(InvalidValueError, match=r"line 1, column 1: a missing value \(''\)"):
        read_table(write(tmp_path / "c.csv", "1,,3\n4,5,6\n"))
    # A header may leave a name empty (as pandas writes an index column).
    assert read_header(write(tmp_path / "d.csv", ",a\n1,2\n")).names == ["", "a"]


def test_bom_quotes_spaces_crlf_cr_blank_lines_and_no_final_newline(tmp_path):
    expected_x, expected_y = [[1.5, 2.0], [4.0, -5e-3]], [3.0, 6.0]
    for text in [
        '\ufeffa,b,y\r\n"1.5", 2 ,3\r\n\r\n4,-5e-3,"6"',
        "a,b,y\r1.5,2,3\r4,-0.005,6\r",
        "\n\na,b,y\n1.5,2,3\n   \n4,-0.005,6\n\n",
    ]:
        t = read_table(write(tmp_path / "t.csv", text), target="y", dtype=np.float64)
        np.testing.assert_array_equal(t.x, expected_x)
        np.testing.assert_array_equal(t.y, expected_y)


def test_the_target_by_name_index_or_negative_index(tmp_path):
    path = write(tmp_path / "t.csv", "0,2,y\n1,2,3\n")
    assert read_table(path, target="y").target == 2
    assert read_table(path, target="-1").target == 2
    assert read_table(path, target=-3).target == 0
    assert read_table(path, target="1").target == 1
    # A name wins over an index: the column named "2" is index 1.
    assert read_table(path, target="2").target == 1
    assert read_table(path).y is None and read_table(path).x.shape == (1, 3)


@pytest.mark.parametrize(
    "text, target, message",
    [
        ("", "y", r"t.csv: empty file: no header and no rows"),
        ("\n \n", "y", r"t.csv: empty file"),
        ("a,y\n", "y", r"t.csv: a header row and no data rows"),
        ("a,y\n1,2\n3,x\n", "y", r"t.csv, line 3, column 'y' \(index 1\): 'x' is not a number"),
        ("a,y\n1,2\nNA,3\n", "y", r"line 3, column 'a' \(index 0\): a missing value \('NA'\)"),
        ("a,y\n1,2\n\n5,nan\n", "y", r"line 4, column 'y' \(index 1\): a missing value"),
        ("a,y\n1,2\n3,\n", "y", r"line 3, column 'y' \(index 1\): a missing value \(''\)"),
        ("a,y\n1,-inf\n", "y", r"line 2, column 'y' \(index 1\): '-inf' is not a finite"),
        ("a,y\n1,2\n3,4,5\n", "y", r"t.csv, line 3: 3 cells, expected 2 as in the header"),
        ("1,2\n3\n", "1", r"t.csv, line 2: 1 cells, expected 2 as in line 1"),
        ("a,y\n1,2\n", "z", r"--target z: .*t.csv has no column named 'z' \(its columns: a, y\)"),
        ("a,y\n1,2\n", "2", r"--target 2: .*t.csv has 2 columns \(indices 0 to 1, or -2 to -1\)"),
        ("a,y\n1,2\n", "-3", r"--target -3: .*has 2 columns"),
        ("1,2\n", "y", r"--target y: .*t.csv has no header row"),
        ("y,y\n1,2\n", "y", r"--target y: .*has 2 columns named 'y' \(indices 0, 1\)"),
        ("a,y\n1e39,2\n", "y", r"line 2, column 'a' \(index 0\): 1e\+39 is too large for float32"),
    ],
)
def test_bad_tables_are_one_line_errors_naming_the_line_and_column(tmp_path, text, target, message):
    path = write(tmp_path / "t.csv", text)
    with pytest.raises(InvalidValueError, match=message) as e:
        read_table(path, target=target)
    assert "\n" not in str(e.value)


def test_text_that_is_not_utf8_is_refused(tmp_path):
    path = write(tmp_path / "t.csv", b"a,y\n1,\xff\n", mode="wb")
    with pytest.raises(InvalidValueError, match="not UTF-8 text"):
        read_table(path, target="y")


@settings(max_examples=40, deadline=None)
@given(
    rows=st.integers(1, 30),
    cols=st.integers(1, 4),
    chunk=st.integers(1, 40),
    header=st.booleans(),
    ending=st.sampled_from(["\n", "\r\n"]),
    blank=st.integers(0, 30),
    seed=st.integers(0, 2**16),
)
def test_chunk_boundaries_anywhere_give_the_same_table(
    tmp_path_factory, rows, cols, chunk, header, ending, blank, seed
):
    rng = np.random.default_rng(seed)
    data = np.round(rng.normal(0, 100, (rows, cols)), rng.integers(0, 6))
    lines = [",".join(f"c{i}" for i in range(cols))] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in data]
    if blank < len(lines):
        lines.insert(blank, "")  # a blank line somewhere
    path = tmp_path_factory.mktemp("chunks") / "t.csv"
    write(path, ending.join(lines) + (ending if seed % 2 else ""))
    t = read_table(path, dtype=np.float64, chunk_chars=chunk)
    np.testing.assert_array_equal(t.x, data)
    # An error in the last row names its line whatever the chunks.
    bad = [*lines, ",".join(["1"] * (cols - 1) + ["oops"])]
    write(path, ending.join(bad))
    with pytest.raises(InvalidValueError, match=rf"line {len(bad)}, column .*'oops'"):
        read_table(path, chunk_chars=chunk)


def test_reading_costs_the_arrays_and_one_chunk_not_the_file(tmp_path):
    rng = np.random.default_rng(0)
    n, d = 60_000, 9
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write(",".join(f"x{i}" for i in range(d)) + ",y\n")
        for row in rng.random((n, d + 1)).round(6):
            f.write(",".join(map(str, row)) + "\n")
    size = path.stat().st_size  # about 5 MB of text
    chunk = 1 << 16
    tracemalloc.start()
    try:
        t = read_table(path, target="y", chunk_chars=chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    arrays = t.x.nbytes + t.y.nbytes + (d * 4 + 8) * 2  # (n + the header line + 1 spare rows)
    assert t.x.shape == (n, d)
    # The arrays, plus one chunk: its text, its lines and its float64 parse (each a small
    # multiple of the chunk), never anything the size of the file.
    assert peak < arrays + 16 * chunk + (1 << 20), (peak, arrays, size)
    assert peak < size


def test_guess_task():
    assert guess_task(np.array([3.0, 5, 7, 3, 5, 7]))[0] == "classification"
    assert guess_task(np.array([0.5, 1, 2, 3]))[0] == "regression"
    assert guess_task(np.arange(100.0))[0] == "regression"  # 100 distinct values
    assert guess_task(np.array([1.0, 2, 3, 4]))[0] == "regression"  # as many values as rows
    assert guess_task(np.repeat(np.arange(20.0), 2))[0] == "classification"
    assert guess_task(np.repeat(np.arange(21.0), 2))[0] == "regression"


def test_split_rows_in_place_keeps_rows_with_their_targets():
    rng = np.random.default_rng(0)
    x = np.arange(200.0).reshape(100, 2).astype(np.float32)
    y = rng.integers(0, 3, 100)
    key = {tuple(r): t for r, t in zip(x.tolist(), y, strict=True)}
    (xt, yt), (xs, ys) = split_rows(x, y, 20, True, seed=1)
    assert len(xt) == 80 and len(xs) == 20 and np.shares_memory(xt, x)
    for xx, yy in ((xt, yt), (xs, ys)):
        assert all(key[tuple(r)] == t for r, t in zip(xx.tolist(), yy, strict=True))
    assert len({tuple(r) for r in np.concatenate([xt, xs]).tolist()}) == 100
    # Stratified: each class keeps its share in the test rows.
    for c in range(3):
        assert abs(np.sum(ys == c) - 20 * np.mean(y == c)) <= 1


def test_fit_scaler_is_the_standardizers():
    rng = np.random.default_rng(0)
    x = (rng.normal(3, 2, (500, 4)) * [1, 10, 0.1, 0]).astype(np.float32)
    mean, scale = fit_scaler(x)
    ref = fn.preprocessing.Standardizer().fit(x)
    np.testing.assert_allclose(mean, ref.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scale, ref.scale_, rtol=1e-10)
    assert scale[3] == 1.0 and mean[3] == 0.0


def test_regression_metrics():
    y = np.array([1.0, 2, 3, 4])
    got = regression_metrics(y + [0.5, -0.5, 0.5, -0.5], y)
    assert got["rmse"] == pytest.approx(0.5) and got["r2"] == pytest.approx(1 - 1 / 5)
    assert math.isnan(regression_metrics([1.0], [2.0])["r2"])


# -- the model file -----------------------------------------------------------------------------
def tabular_model(task="classification", standardize=True):
    model = fn.MLP([3, 4, 3 if task == "classification" else 1], seed=0)
    tab = Tabular(task, 4, 1, [0, 2, 3], ["a", "y", "b", "c"])
    if standardize:
        tab.mean, tab.scale = np.array([1.0, 2, 3]), np.array([0.5, 1, 2])
    if task == "classification":
        tab.classes = np.array([3.0, 5, 7])
    else:
        tab.target_mean, tab.target_scale = 10.0, 2.5
    return model, tab


@pytest.mark.parametrize("task", ["classification", "regression"])
@pytest.mark.parametrize("standardize", [True, False])
def test_tabular_entry_round_trips_and_load_still_gives_the_model(tmp_path, task, standardize):
    model, tab = tabular_model(task, standardize)
    save(model, tmp_path / "m.npz", tabular=tab)
    same = fn.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(same.predict(np.ones((2, 3))), model.predict(np.ones((2, 3))))
    _, got = load_tabular(tmp_path / "m.npz")
    assert (got.task, got.columns, got.features, got.target) == (
        tab.task,
        tab.columns,
        tab.features,
        tab.target,
    )
    assert got.target_name == "y" and got.feature_names == ["a", "b", "c"]
    for key in ("mean", "scale", "classes"):
        np.testing.assert_array_equal(getattr(got, key), getattr(tab, key))
    assert (got.target_mean, got.target_scale) == (tab.target_mean, tab.target_scale)


def test_files_without_a_table_are_as_before(tmp_path):
    model = fn.MLP([3, 4, 2], seed=0)
    save(model, tmp_path / "m.npz")
    with read(tmp_path / "m.npz") as f:
        assert "tabular" not in f.header
        assert not [k for k in f._archive.names if k.startswith("tabular")]
    assert load_tabular(tmp_path / "m.npz")[1] is None


def _rewrite(path, tmp_path, header=None, arrays=None):
    with read(path) as f:
        h, a = dict(f.header), dict(f.arrays)
    h.update(header or {})
    a.update(arrays or {})
    a = {k: v for k, v in a.items() if v is not None}
    out = tmp_path / "bad.npz"
    write_npz(out, {k: v for k, v in h.items() if v is not None}, a)
    return out


@pytest.mark.parametrize(
    "header, arrays, message",
    [
        ({"tabular": None}, {}, "tabular arrays without a tabular entry"),
        ({"tabular": "yes"}, {}, "expected an object"),
        ({"tabular": {"task": "x"}}, {}, "expected the keys"),
        ("task", {}, "task 'clustering'"),
        ("n_columns", {}, "n_columns"),
        ("target", {}, "target 9"),
        ("features", {}, "features"),
        ("columns", {}, "columns"),
        ({}, {"tabular/mean": None}, "expected the arrays classes, mean, scale, found"),
        ({}, {"tabular/extra": np.zeros(3)}, "unknown member 'tabular/extra'"),
        ({}, {"tabular/mean": np.zeros(4)}, r"tabular/mean is float64 \(4,\)"),
        ({}, {"tabular/mean": np.zeros(3, np.float32)}, "tabular/mean is float32"),
        ({}, {"tabular/scale": np.array([1.0, 0, 1])}, "scale must be positive"),
        ({}, {"tabular/mean": np.array([1.0, np.nan, 1])}, "finite float64"),
        ({}, {"tabular/classes": np.array([3.0, 5, 5])}, "2 or more increasing"),
        ({}, {"tabular/classes": np.array([3.0, 5])}, "3 outputs, the tabular entry declares 2"),
    ],
)
def test_bad_tabular_entries_are_refused(tmp_path, header, arrays, message):
    model, tab = tabular_model()
    save(model, tmp_path / "m.npz", tabular=tab)
    if isinstance(header, str):
        entry = dict(tab.to_file()[0])
        entry[header] = {
            "task": "clustering",
            "n_columns": 1,
            "target": 9,
            "features": [0, 1, 1],
            "columns": ["a"],
        }[header]
        header = {"tabular": entry}
    bad = _rewrite(tmp_path / "m.npz", tmp_path, header, arrays)
    with pytest.raises(FileFormatError, match=message):
        load_tabular(bad)


# -- the command line -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 4))
    k = rng.integers(0, 3, 300)
    x = centers[k] + rng.normal(0, 1, (300, 4))
    return x, np.array([3, 5, 7])[k]


def test_classification_end_to_end(tmp_path, blobs, capsys):
    x, y = blobs
    data = write_table(tmp_path / "t.csv", x, y, ["a", "b", "label", "c", "d"], target_at=2)
    model_path = tmp_path / "m.npz"
    code, out, err = run(
        ["train", "--data", data, "--target", "label", "-o", model_path, *FAST], capsys
    )
    assert code == 0, err
    assert "240 training and 60 test rows of 4 features, target column 'label' (index 2)" in out
    assert (
        "task: classification (guessed from the target: 3 distinct integer values; give "
        "--task to choose); 3 classes: 3, 5, 7" in out
    )
    accuracy = float(re.search(r"test accuracy (\S+)", out).group(1))
    assert accuracy > 0.9

    code, out, _ = run(["evaluate", model_path, "--data", data], capsys)
    assert code == 0
    assert float(re.search(r"accuracy (\S+)", out).group(1)) == pytest.approx(accuracy, abs=1e-4)
    assert "(60 rows: the test split of" in out
    code, out, _ = run(["evaluate", model_path, "--data", data, "--all-rows"], capsys)
    assert "(300 rows: every row of" in out

    model, tab = load_tabular(model_path)
    assert tab.task == "classification" and tab.mean is None
    np.testing.assert_array_equal(tab.classes, [3, 5, 7])
    expected = np.array([3, 5, 7])[model.predict_classes(x.astype(np.float32))]
    assert (expected == y).mean() > 0.9
    out_csv = tmp_path / "predictions.csv"
    code, out, _ = run(["predict", model_path, "--data", data, "-o", out_csv], capsys)
    assert code == 0 and f"wrote 300 predictions to {out_csv}" in out
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "label"
    np.testing.assert_array_equal(np.array(lines[1:], dtype=int), expected)
    # Printed: one class value a line; the same positionally (INPUT) as with --data.
    code, out, _ = run(["predict", model_path, data], capsys)
    np.testing.assert_array_equal(np.array(out.split(), dtype=int), expected)
    code, _, _ = run(["predict", model_path, data, "-o", out_csv, "--proba"], capsys)
    rows = list(csv.reader(out_csv.open()))
    assert rows[0] == ["3", "5", "7"]
    proba = np.array(rows[1:], dtype=float)
    np.testing.assert_allclose(proba, model.predict_proba(x.astype(np.float32)), atol=1e-6)
    # -o writes exactly the path it names: another suffix gets the .npy format, no suffix added.
    other = tmp_path / "preds.out"
    assert run(["predict", model_path, "--data", data, "-o", other], capsys)[0] == 0
    np.testing.assert_array_equal(np.load(other), expected)
    assert not (tmp_path / "preds.out.npy").exists()


def test_predict_matches_columns_by_name_and_ignores_the_target(tmp_path, blobs, capsys):
    x, y = blobs
    data = write_table(tmp_path / "t.csv", x, y, ["a", "b", "c", "d", "y"])
    model_path = tmp_path / "m.npz"
    code, _, err = run(
        ["train", "--data", data, "--target", "y", "--standardize", "-o", model_path, *FAST],
        capsys,
    )
    assert code == 0, err
    model, tab = load_tabular(model_path)
    code, out, _ = run(["predict", model_path, data], capsys)
    first = out.split()
    # The columns in another order, without the target: the same predictions.
    with open(tmp_path / "new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["d", "b", "a", "c"])
        w.writerows(x[:, [3, 1, 0, 2]].tolist())
    code, out, _ = run(["predict", model_path, tmp_path / "new.csv"], capsys)
    assert code == 0 and out.split() == first
    # Without a header: by position, with or without the target column.
    with open(tmp_path / "plain.csv", "w", newline="") as f:
        csv.writer(f).writerows(x.tolist())
    code, out, _ = run(["predict", model_path, tmp_path / "plain.csv"], capsys)
    assert code == 0 and out.split() == first
    # --standardize: the saved scaler is the training rows', and predict applies it.
    assert tab.mean is not None and tab.mean.shape == (4,)
    z = ((x - tab.mean) / tab.scale).astype(np.float32)
    np.testing.assert_array_equal(
        np.array(first, dtype=int), tab.classes[model.predict_classes(z)].astype(int)
    )
    (xt, _), _ = split_rows(x.copy(), np.searchsorted(tab.classes, y), 60, True, 0)
    np.testing.assert_allclose(tab.mean, xt.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(tab.scale, xt.std(axis=0), rtol=1e-6)


def test_regression_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 1, (400, 3))
    y = 50 + 20 * x[:, 0] - 10 * x[:, 1] + 5 * np.tanh(x[:, 2]) + rng.normal(0, 1, 400)
    data = write_table(tmp_path / "r.csv", x, y, ["a", "b", "c", "price"])
    model_path = tmp_path / "m.npz"
    code, out, err = run(
        ["train", "--data", data, "--target", "-1", "-o", model_path, *FAST], capsys
    )
    assert code == 0, err
    assert "task: regression (guessed from the target: it holds non-integer values" in out
    r2 = float(re.search(r"test R\^2 (\S+)", out).group(1))
    rmse = float(re.search(r"test RMSE (\S+)", out).group(1))
    assert r2 > 0.9 and rmse < 0.3 * y.std()
    # Least squares on the same data explains about as much.
    design = np.column_stack([x, np.ones(len(x))])
    fit = design @ np.linalg.lstsq(design, y, rcond=None)[0]
    assert r2 > regression_metrics(fit, y)["r2"] - 0.1

    code, out, _ = run(["evaluate", model_path, "--data", data], capsys)
    assert code == 0
    assert float(re.search(r"r2 (\S+)", out).group(1)) == pytest.approx(r2, abs=1e-4)

    out_csv = tmp_path / "p.csv"
    assert run(["predict", model_path, "--data", data, "-o", out_csv], capsys)[0] == 0
    lines = out_csv.read_text().splitlines()
    assert lines[0] == "price"
    got = np.array(lines[1:], dtype=float)
    model, tab = load_tabular(model_path)
    assert tab.task == "regression" and tab.classes is None
    own = model.predict(x.astype(np.float32))[:, 0].astype(float) * tab.target_scale
    own += tab.target_mean
    np.testing.assert_allclose(got, own, rtol=1e-6)
    assert regression_metrics(got, y)["r2"] > 0.9  # in the target's units
    code, _, err = run(["predict", model_path, "--data", data, "--proba"], capsys)
    assert code == 2 and "--proba: the model predicts a number" in err


def test_task_flag_overrides_the_guess(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1, (60, 2))
    y = (x[:, 0] > 0).astype(int)
    data = write_table(tmp_path / "t.csv", x, y, ["a", "b", "y"])
    code, out, err = run(
        [
            "train",
            "--data",
            data,
            "--target",
            "y",
            "--task",
            "regression",
            "-o",
            tmp_path / "m.npz",
            "--epochs",
            1,
            "-q",
        ],
        capsys,
    )
    assert code == 0, err
    assert "task: regression;" in out and "test R^2" in out
    assert "batch: 48, every training row (--batch-size 64)" in out


def test_resume_a_csv_run(tmp_path, blobs, capsys):
    x, y = blobs
    data = write_table(tmp_path / "t.csv", x, y, ["a", "b", "c", "d", "y"])
    base = ["train", "--data", data, "--target", "y", "--standardize", "--threads", 1, *FAST]
    once = tmp_path / "once.npz"
    assert run([*base, "--epochs", 4, "-o", once], capsys)[0] == 0
    twice = tmp_path / "twice.npz"
    assert run([*base, "--epochs", 2, "-o", twice], capsys)[0] == 0
    assert run([*base, "--epochs", 4, "-o", twice, "--resume"], capsys)[0] == 0
    a, ta = load_tabular(once)
    b, tb = load_tabular(twice)
    for (_, p), (_, q) in zip(a.named_state(), b.named_state(), strict=True):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(ta.mean, tb.mean)


@pytest.mark.parametrize(
    "text, argv, message",
    [
        ("a,y\n" + "1,2\n" * 5, ["--target", "z"], "no column named 'z'"),
        ("a,y\n1,2\n3,x\n", ["--target", "y"], r"line 3, column 'y' \(index 1\): 'x' is not"),
        ("a,y\n1,2\n3,\n", ["--target", "y"], r"line 3, column 'y' \(index 1\): a missing"),
        ("", ["--target", "y"], "empty file"),
        ("a,y\n", ["--target", "y"], "a header row and no data rows"),
        ("a,y\n1,2\n", ["--target", "y"], "1 data row; training needs at least 2"),
        ("a,y\n1,2\n3,2\n4,2\n", ["--target", "y"], r"the target column 'y' \(index 1\) is 2 in"),
        ("a,y\n1,2\n3,4,5\n", ["--target", "y"], "line 3: 3 cells, expected 2"),
        ("a,y\n1,2\n", ["--target", "5"], r"--target 5: .* has 2 columns"),
        ("1,2\n3,4\n", ["--target", "y"], "no header row"),
        ("a,y\n1,2\n", [], "needs --target COLUMN"),
        ("y\n1\n2\n", ["--target", "y"], "one column"),
    ],
)
def test_bad_tables_give_one_line_and_exit_2(tmp_path, capsys, text, argv, message):
    data = write(tmp_path / "t.csv", text)
    code, _, err = run(["train", "--data", data, *argv, "-o", tmp_path / "m.npz", "-q"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fastnn train: error: ")
    assert re.search(message, err), err


def test_table_flags_need_a_table_and_predict_needs_one_input(tmp_path, blobs, capsys):
    x, y = blobs
    np.savez(tmp_path / "d.npz", x=x, y=y % 3)
    code, _, err = run(["train", "--data", tmp_path / "d.npz", "--target", "y"], capsys)
    assert code == 2 and "--target: only for CSV tables" in err
    model_path = tmp_path / "m.npz"
    data = write_table(tmp_path / "t.csv", x, y, ["a", "b", "c", "d", "y"])
    assert (
        run(
            ["train", "--data", data, "--target", "y", "-o", model_path, "--epochs", 1, "-q"],
            capsys,
        )[0]
        == 0
    )
    code, _, err = run(["predict", model_path], capsys)
    assert code == 2 and "INPUT or --data FILE.csv" in err
    code, _, err = run(["predict", model_path, data, "--data", data], capsys)
    assert code == 2 and err.count("\n") == 1
    # A model trained on a table wants a table.
    code, _, err = run(["predict", model_path, tmp_path / "d.npz"], capsys)
    assert code == 2 and "trained on a CSV table" in err
    # Columns the model does not know, or a class it never saw.
    write(tmp_path / "extra.csv", "a,b,c,d,e\n1,2,3,4,5\n")
    code, _, err = run(["predict", model_path, tmp_path / "extra.csv"], capsys)
    assert code == 2 and "column 'e' (index 4) is neither a feature" in err
    write(tmp_path / "nine.csv", "a,b,c,d,y\n1,2,3,4,9\n")
    code, _, err = run(
        ["evaluate", model_path, "--data", tmp_path / "nine.csv", "--all-rows"], capsys
    )
    assert code == 2 and "the target holds 9 (data row 1), not one of the model's classes" in err
