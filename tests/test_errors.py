"""One family of errors (fastnn.errors) and one error policy for the command line: a user's
mistake is a ``FastnnError`` (and still the ValueError or TypeError it always was), printed
as one line with exit code 2; anything else is a bug: its traceback, a request to report it,
exit code 1."""

import re
from pathlib import Path

import numpy as np
import pytest

import fastnn as fn
from fastnn import cli, errors
from fastnn.errors import FastnnError

PACKAGE = Path(fn.__file__).parent


@pytest.mark.parametrize(
    "cls, builtin",
    [
        (errors.InvalidValueError, ValueError),
        (errors.InvalidTypeError, TypeError),
        (errors.StateError, RuntimeError),
        (errors.FileFormatError, ValueError),
        (errors.ChecksumError, ValueError),
        (errors.DatasetNotFoundError, FileNotFoundError),
        (errors.MissingDependencyError, ImportError),
        (fn.TrainingDivergedError, FloatingPointError),
        (fn.tune.SearchFailedError, RuntimeError),
        (cli.UsageError, ValueError),
    ],
)
def test_each_error_is_a_fastnn_error_and_what_it_always_was(cls, builtin):
    assert issubclass(cls, FastnnError) and issubclass(cls, builtin)


def test_the_library_raises_no_bare_value_or_type_errors():
    # Every error raised on purpose names its kind from fastnn.errors. The two left are
    # programming errors inside fastnn (a bad argument to an internal helper), not a user's.
    allowed = {("_checks.py", "closed must be one of"), ("_table.py", "table row")}
    found = []
    for path in PACKAGE.rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"raise (ValueError|TypeError|RuntimeError)\(", line):
                rel = str(path.relative_to(PACKAGE))
                if not any(rel == f and text in line for f, text in allowed):
                    found.append(f"{rel}: {line.strip()}")
    assert not found, "\n".join(found)


BAD_CALLS = [
    lambda: fn.Linear(0, 3),
    lambda: fn.Linear(4, 3, activation="swish"),
    lambda: fn.Linear(4, 3).forward(np.ones((2, 5))),
    lambda: fn.Linear(4, 3).backward(np.ones((2, 3))),
    lambda: fn.BatchNorm(3, eps=0),
    lambda: fn.Dropout(1.0),
    lambda: fn.MLP([4], seed=0),
    lambda: fn.MLP([4, 2], activation=3),
    lambda: fn.Sequential(fn.Linear(4, 3), fn.Linear(5, 2)),
    lambda: fn.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), [0, 3]),
    lambda: fn.optim.Adam(fn.MLP([2, 2]).parameters(), lr=-1),
    lambda: fn.optim.get("lbfgs", fn.MLP([2, 2]).parameters()),
    lambda: fn.init.resolve("bogus"),
    lambda: fn.fit(fn.MLP([2, 2]), np.ones((4, 2)), [0, 1, 0, 1], epochs=0),
    lambda: fn.fit(fn.MLP([2, 2]), np.ones((4, 2)), [0, 1, 0, 1], shuffle="no", verbose=0),
    lambda: fn.evaluate(fn.MLP([2, 2]), np.ones((4, 3)), [0, 1, 0, 1]),
    lambda: fn.load(Path(fn.__file__)),
    lambda: fn.preprocessing.one_hot([0, -1]),
    lambda: fn.preprocessing.train_val_test_split(np.ones((4, 1)), [0, 1, 0, 1], val=0.9),
    lambda: fn.datasets.load_mnist_sample(train_size=10_000, test_size=1),
    lambda: fn.callbacks.EarlyStopping(patience=-1),
    lambda: fn.callbacks.ModelCheckpoint("x.npz", save_best_only="yes"),
    lambda: fn.tune.LogUniform(0, 1),
    lambda: fn.tune.random_search(lambda p, d, s: 1.0, {}, 0),
    lambda: fn.perceptron.Perceptron([1, 1], "b"),
    lambda: fn.graph.Value("x"),
    lambda: fn.gradient_descent(lambda x: 0.0, [1.0], lr=0),
    lambda: fn.set_num_threads(0),
]


@pytest.mark.parametrize("call", BAD_CALLS, ids=range(len(BAD_CALLS)))
def test_a_users_mistake_raises_a_fastnn_error(call):
    with pytest.raises(FastnnError) as info:
        call()
    assert isinstance(info.value, (ValueError, TypeError, RuntimeError))
    assert str(info.value)


def test_cli_a_users_error_is_one_line_exit_2(tmp_path, capsys):
    code = cli.main(["evaluate", str(tmp_path / "missing.npz")])  # an OSError: no such file
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("fastnn evaluate: error: ")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    code = cli.main(["evaluate", str(tmp_path / "bad.npz")])  # a FileFormatError
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not a fastnn file" in err


def test_cli_a_bug_shows_its_traceback_and_exit_1(monkeypatch, capsys, tmp_path):
    def broken(path):
        raise KeyError("a bug in fastnn itself")

    monkeypatch.setattr(cli.models, "load_tabular", broken)
    code = cli.main(["evaluate", str(tmp_path / "model.npz")])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback (most recent call last)" in err and "KeyError" in err
    assert "this is a bug in fastnn" in err and "please report it" in err


def test_cli_a_plain_value_error_from_inside_is_a_bug_too(monkeypatch, capsys, tmp_path):
    # A ValueError that fastnn did not raise on purpose is not turned into a one-line "bad
    # input" message any more: it is shown as the bug it is.
    monkeypatch.setattr(cli.models, "load_tabular", lambda path: int("not a number"))
    code = cli.main(["evaluate", str(tmp_path / "model.npz")])
    err = capsys.readouterr().err
    assert code == 1 and "ValueError: invalid literal" in err and "bug in fastnn" in err
