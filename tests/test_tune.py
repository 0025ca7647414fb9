"""Hyperparameter search (fastnn.tune): the space, seeding, failures, narrowing, executors
(serial, process pool, MPIPoolExecutor) and the ``fastnn tune`` command."""

import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastnn import cli
from fastnn.tune import (
    Choice,
    LogUniform,
    SearchFailedError,
    Uniform,
    mlp_trial,
    random_search,
    sample,
    search_rounds,
    validation_split,
)

TIMEOUT = 180  # seconds for any subprocess


def blobs(n=240, features=10, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, features))
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(0, 1, (n, features))).astype(np.float32)
    return x, y


SPACE = {
    "lr": LogUniform(1e-4, 1e-1),
    "dropout": Uniform(0.0, 0.5),
    "layers": Choice([[8], [16, 8]]),
    "epochs": 2,
    "batch_size": 16,
}


# Module-level train functions, so that process pools can pickle them.
def bowl(params, data, seed):
    """Best at lr = 1e-3 and x = 0.5; a tiny seeded noise keeps scores distinct."""
    noise = np.random.default_rng(seed).uniform(0, 1e-6)
    return -((math.log10(params["lr"]) + 3) ** 2) - (params["x"] - 0.5) ** 2 + noise


def flaky(params, data, seed):
    if params["x"] > 0.7:
        raise RuntimeError(f"x too large: {params['x']:.3f}")
    if params["x"] < 0.2:
        return float("nan")
    return {"score": params["x"], "twice": 2 * params["x"]}


def dies(params, data, seed):
    if params["x"] > 0.5:
        os._exit(3)  # the worker process dies, as on a segfault or an out-of-memory kill
    return params["x"]


def always_fails(params, data, seed):
    raise ValueError("no luck")


def trial_summary(result):
    return [(t.index, t.params, t.seed, t.score, t.error, t.metrics) for t in result.trials]


# -- the space --------------------------------------------------------------------------------
def test_log_uniform_draws_each_decade_equally_often():
    rng = np.random.default_rng(0)
    dist = LogUniform(1e-6, 1e-2)
    draws = np.array([dist.sample(rng) for _ in range(4000)])
    assert draws.min() >= 1e-6 and draws.max() <= 1e-2
    decades = np.histogram(np.log10(draws), bins=[-6, -5, -4, -3, -2])[0] / len(draws)
    np.testing.assert_allclose(decades, 0.25, atol=0.03)
    uniform = np.array([Uniform(0, 0.5).sample(rng) for _ in range(4000)])
    assert uniform.min() >= 0 and uniform.max() <= 0.5
    assert abs(uniform.mean() - 0.25) < 0.01  # a log-uniform draw would sit far lower


def test_sample_follows_the_seed_and_keeps_fixed_values():
    a = sample(SPACE, np.random.default_rng(3))
    b = sample(SPACE, np.random.default_rng(3))
    assert a == b
    assert a["epochs"] == 2 and a["batch_size"] == 16
    assert a["layers"] in ([8], [16, 8])
    assert isinstance(a["lr"], float)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Uniform(1, 1), "lo < hi"),
        (lambda: Uniform(2, 1), "lo < hi"),
        (lambda: LogUniform(0, 1), "0 < lo < hi"),
        (lambda: LogUniform(-1e-3, 1), "0 < lo < hi"),
        (lambda: Uniform(0, float("nan")), "finite"),
        (lambda: Choice([]), "at least one"),
    ],
)
def test_bad_ranges_raise(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown executor 'gpu'"):
        random_search(bowl, {"lr": 1e-3, "x": 0.5}, 2, executor="gpu")
    with pytest.raises(ValueError, match="number of trials"):
        random_search(bowl, {"lr": 1e-3, "x": 0.5}, 0, executor="serial")
    with pytest.raises(TypeError, match="executor must be"):
        random_search(bowl, {"lr": 1e-3, "x": 0.5}, 2, executor=42)
    with pytest.raises(TypeError, match="space must be a dict"):
        random_search(bowl, [("lr", 1e-3)], 2, executor="serial")


# -- seeds and executors ----------------------------------------------------------------------
def test_same_seed_same_trials_serial_and_process_pool():
    data = blobs()
    serial = random_search(mlp_trial, SPACE, 6, data, seed=7, executor="serial")
    pooled = random_search(mlp_trial, SPACE, 6, data, seed=7, executor="process", workers=2)
    assert all(t.ok for t in serial.trials), [t.error for t in serial.trials]
    assert trial_summary(serial) == trial_summary(pooled)
    assert pooled.executor == "process"
    # The trials differ from each other, and another seed gives other trials.
    assert len({t.params["lr"] for t in serial.trials}) == 6
    other = random_search(bowl, {"lr": SPACE["lr"], "x": 0.5}, 6, seed=8, executor="serial")
    assert {t.params["lr"] for t in other.trials}.isdisjoint(t.params["lr"] for t in serial.trials)
    # The trial seeds come from SeedSequence(seed).spawn(n_trials), one per trial.
    assert len({t.seed for t in serial.trials}) == 6


def test_an_executor_instance_is_used_and_left_running():
    from concurrent.futures import ThreadPoolExecutor

    space = {"lr": LogUniform(1e-5, 1e-1), "x": Uniform(0, 1)}
    reference = random_search(bowl, space, 5, seed=1, executor="serial")
    with ThreadPoolExecutor(2) as pool:
        result = random_search(bowl, space, 5, seed=1, executor=pool)
        assert pool.submit(abs, -1).result() == 1  # not shut down
    assert trial_summary(result) == trial_summary(reference)
    assert result.executor == "ThreadPoolExecutor"


def test_a_seed_of_none_is_recorded_and_reproduces_the_search():
    space = {"lr": LogUniform(1e-5, 1e-1), "x": Uniform(0, 1)}
    first = random_search(bowl, space, 4, executor="serial")
    again = random_search(bowl, space, 4, seed=first.seed, executor="serial")
    assert trial_summary(first) == trial_summary(again)


# -- failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("executor", ["serial", "process"])
def test_failing_trials_are_reported_and_the_search_goes_on(executor):
    space = {"x": Uniform(0, 1)}
    seen = []
    result = random_search(
        flaky, space, 16, seed=2, executor=executor, workers=2, callback=seen.append
    )
    # The callback sees every trial once, finished; a serial search reports them in order.
    assert sorted(t.index for t in seen) == list(range(16))
    assert all(t.ok or t.error for t in seen)
    if executor == "serial":
        assert [t.index for t in seen] == list(range(16))
    raised = [t for t in result.trials if t.params["x"] > 0.7]
    nan = [t for t in result.trials if t.params["x"] < 0.2]
    good = [t for t in result.trials if 0.2 <= t.params["x"] <= 0.7]
    assert raised and nan and good  # seed 2 gives all three kinds
    for t in raised:
        assert t.error == f"RuntimeError: x too large: {t.params['x']:.3f}" and t.score is None
    for t in nan:
        assert "invalid score returned by the train function: nan" in t.error and t.score is None
    for t in good:
        assert t.ok and t.score == t.params["x"] and t.metrics == {"twice": 2 * t.params["x"]}
    assert {t.index for t in result.failed} == {t.index for t in raised + nan}
    assert result.best.params["x"] == max(t.params["x"] for t in good)
    assert [t.index for t in result.ranked()] == [
        t.index for t in sorted(good, key=lambda t: -t.score)
    ]
    assert "RuntimeError" not in result.table()  # the table lists successful trials only


def test_a_worker_that_dies_fails_its_trials_without_hanging():
    space = {"x": Uniform(0, 1)}
    try:
        result = random_search(dies, space, 6, seed=0, executor="process", workers=1)
    except SearchFailedError as e:
        result = e.result
    crashed = [t for t in result.trials if t.params["x"] > 0.5]
    assert crashed and all("BrokenProcessPool" in t.error for t in crashed)
    assert all(t.ok or "BrokenProcessPool" in t.error for t in result.trials)


def test_all_trials_failing_is_a_clear_error():
    with pytest.raises(
        SearchFailedError, match="all 3 trials failed; trial 0: ValueError: no luck"
    ):
        random_search(always_fails, {"x": Uniform(0, 1)}, 3, seed=0, executor="serial")
    try:
        random_search(always_fails, {"x": Uniform(0, 1)}, 3, seed=0, executor="serial")
    except SearchFailedError as e:
        assert len(e.result.trials) == 3 and len(e.result.failed) == 3


# -- narrowing --------------------------------------------------------------------------------
def test_narrow_shrinks_each_range_to_the_top_trials():
    space = {
        "lr": LogUniform(1e-6, 1e-1),
        "x": Uniform(0, 1),
        "act": Choice(["relu", "tanh", "elu"]),
        "epochs": 3,
    }
    result = random_search(bowl, space, 40, seed=4, executor="serial")
    k = 5
    top = sorted(result.trials, key=lambda t: -t.score)[:k]
    assert [t.index for t in result.ranked()[:k]] == [t.index for t in top]
    lrs = [t.params["lr"] for t in top]
    xs = [t.params["x"] for t in top]

    narrowed = result.narrow(k)
    assert narrowed["lr"] == LogUniform(min(lrs), max(lrs))
    assert narrowed["x"] == Uniform(min(xs), max(xs))
    assert narrowed["epochs"] == 3
    used = {t.params["act"] for t in top}
    assert narrowed["act"] == (
        Choice([a for a in space["act"].options if a in used]) if len(used) > 1 else used.pop()
    )
    for name in ("lr", "x"):
        old, new = space[name], narrowed[name]
        assert old.lo <= new.lo < new.hi <= old.hi
        assert all(new.lo <= t.params[name] <= new.hi for t in top)
    # The top trials gather near lr = 1e-3: the range shrank to a small part of the old one.
    assert math.log10(narrowed["lr"].hi / narrowed["lr"].lo) < 2.5

    # With a margin the widening is on the log axis for log ranges, on the line otherwise.
    m = 0.25
    wide = result.narrow(k, margin=m)
    a, b = math.log(min(lrs)), math.log(max(lrs))
    assert wide["lr"].lo == pytest.approx(max(1e-6, math.exp(a - m * (b - a))), rel=1e-12)
    assert wide["lr"].hi == pytest.approx(min(1e-1, math.exp(b + m * (b - a))), rel=1e-12)
    linear_lo = min(lrs) - m * (max(lrs) - min(lrs))
    assert not math.isclose(wide["lr"].lo, max(1e-6, linear_lo), rel_tol=1e-3)
    w = max(xs) - min(xs)
    assert wide["x"] == Uniform(max(0, min(xs) - m * w), min(1, max(xs) + m * w))
    # Never beyond the old ranges, whatever the margin.
    huge = result.narrow(k, margin=100)
    assert huge["lr"] == space["lr"] and huge["x"] == space["x"]


def test_narrow_collapses_to_a_fixed_value_and_checks_k():
    result = random_search(
        bowl, {"lr": LogUniform(1e-5, 1e-1), "x": 0.5}, 6, seed=0, executor="serial"
    )
    assert result.narrow(1)["lr"] == result.best.params["lr"]
    assert result.narrow(100)["lr"] == LogUniform(
        min(t.params["lr"] for t in result.trials), max(t.params["lr"] for t in result.trials)
    )
    with pytest.raises(ValueError, match="invalid k"):
        result.narrow(0)
    with pytest.raises(ValueError, match="invalid margin"):
        result.narrow(2, margin=-1)


def test_search_rounds_search_inside_the_narrowed_space():
    space = {"lr": LogUniform(1e-6, 1e-1), "x": Uniform(0, 1)}
    rounds = search_rounds(bowl, space, 12, rounds=3, top=4, seed=5, executor="serial")
    assert len(rounds) == 3
    for before, after in zip(rounds, rounds[1:], strict=False):
        assert after.space == before.narrow(4)
        for t in after.trials:
            lo, hi = before.narrow(4)["lr"].lo, before.narrow(4)["lr"].hi
            assert lo <= t.params["lr"] <= hi
    assert rounds[-1].best.score >= rounds[0].ranked()[3].score


# -- the validation split and mlp_trial -------------------------------------------------------
def test_validation_split_is_disjoint_stratified_and_fixed_by_its_seed():
    _, y = blobs(n=300)
    train, valid = validation_split(y, 0.2, seed=3)
    assert len(valid) == 60 and len(train) == 240
    assert np.intersect1d(train, valid).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(300))
    share = np.bincount(y[valid], minlength=3) / 60
    np.testing.assert_allclose(share, np.bincount(y) / 300, atol=1 / 60 + 1e-12)
    again = validation_split(y, 0.2, seed=3)
    assert np.array_equal(train, again[0]) and np.array_equal(valid, again[1])
    with pytest.raises(ValueError, match="empty part"):
        validation_split(y, 0.0001)


def test_mlp_trial_scores_on_the_validation_rows_only(tmp_path):
    x, y = blobs(n=300)
    params = {"lr": 1e-2, "layers": [16], "epochs": 3, "batch_size": 16, "val": 0.25}
    out = mlp_trial(params, (x, y), seed=1)
    assert out["score"] > 0.9 and out["val_loss"] > 0
    assert mlp_trial(params, (x, y), seed=1) == out  # reproducible
    # The score is measured on the rows validation_split(y, val, split_seed) holds out: moving
    # just those rows to the centre of the next class makes the same model get them wrong.
    _, valid = validation_split(y, 0.25, 0)
    means = np.stack([x[y == c].mean(axis=0) for c in range(3)])
    x_bad = x.copy()
    x_bad[valid] = means[(y[valid] + 1) % 3]
    assert mlp_trial(params, (x_bad, y), seed=1)["score"] < 0.1
    # Given a --data spec, only its training part is loaded: a test part full of NaN (which fit
    # would refuse) does not get in.
    path = tmp_path / "d.npz"
    x_test = np.full((50, 10), np.nan, dtype=np.float32)
    np.savez(path, x_train=x, y_train=y, x_test=x_test, y_test=np.zeros(50, dtype=np.int64))
    assert mlp_trial(params, str(path), seed=1) == out
    with pytest.raises(ValueError, match="unknown parameters"):
        mlp_trial({"learning_rate": 1e-2}, (x, y), seed=1)


def test_mlp_trial_float64():
    x, y = blobs(n=120)
    out = mlp_trial({"dtype": "float64", "layers": [8], "epochs": 1, "lr": 1e-2}, (x, y), 0)
    assert 0 <= out["score"] <= 1


# -- the command line -------------------------------------------------------------------------
def run_cli(argv, capsys, monkeypatch):
    """``cli.main`` on ``argv``: its exit code, stdout and stderr."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def blob_file(tmp_path):
    x, y = blobs(n=300)
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path


def test_tune_command_two_rounds_and_json(tmp_path, blob_file, capsys, monkeypatch):
    record = tmp_path / "tune.json"
    argv = ["tune", "--data", blob_file, "--trials", 6, "--rounds", 2, "--top", 3]
    argv += ["--lr", "1e-4:1e-1", "--dropout", "0:0.3", "--layers", "8/16,8", "--epochs", 2]
    argv += ["--batch-size", 16, "--executor", "serial", "--json", record]
    code, out, err = run_cli(argv, capsys, monkeypatch)
    assert code == 0, err
    assert "240 rows searched on (192 training, 48 validation); the 60 test rows" in out
    assert "round 1: lr 0.0001:0.1 (log), weight_decay 1e-08:0.0001 (log), dropout 0:0.3" in out
    assert "round 2: narrowed to lr " in out
    assert len(re.findall(r"rank +trial +score", out)) == 2
    assert "best: validation accuracy" in out
    saved = json.loads(record.read_text())
    assert len(saved["rounds"]) == 2 and len(saved["rounds"][0]["trials"]) == 6
    lo1, hi1 = saved["rounds"][0]["space"]["lr"]["log_uniform"]
    lo2, hi2 = saved["rounds"][1]["space"]["lr"]["log_uniform"]
    assert lo1 <= lo2 < hi2 <= hi1
    scores = [t["score"] for r in saved["rounds"] for t in r["trials"]]
    assert saved["best"]["score"] == max(scores)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--lr", "1e-2:1e-6"], "--lr '1e-2:1e-6': expected a range lo:hi with lo < hi"),
        (["--lr", "0:1e-2"], "--lr '0:1e-2': a log range needs 0 < lo < hi"),
        (["--weight-decay=-1e-4:1e-4"], "a log range needs 0 < lo < hi"),
        (["--lr", "1e-3:1e-3"], "lo < hi"),
        (["--lr", "fast"], "--lr 'fast': expected a number"),
        (["--lr=-0.1"], "expected values > 0"),
        (["--dropout", "0:1.5"], "--dropout '0:1.5': expected values in [0, 1)"),
        (["--layers", "0,5"], "--layers '0,5': expected layer sizes like 100,100"),
        (["--epochs", "1:3"], "a range lo:hi is for numbers"),
        (["--optimizer", "adamm"], "--optimizer 'adamm': expected one of sgd, momentum"),
        (["--executor", "gpu"], "argument --executor: invalid choice: 'gpu'"),
        (["--top", "9", "--trials", "3"], "--top 9 is more than --trials 3"),
        (["--val", "1.5"], "invalid --val: 1.5; expected a finite number > 0 and < 1"),
        (["--margin=-1"], "invalid --margin: -1.0; expected a finite number >= 0"),
        (["--seed=-1"], "invalid --seed: -1; expected an integer >= 0"),
    ],
)
def test_bad_flags_give_one_line_and_exit_2(flags, message, blob_file, capsys, monkeypatch):
    code, out, err = run_cli(["tune", "--data", blob_file, *flags], capsys, monkeypatch)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("fastnn tune: error: ")
    assert message in err


def test_all_trials_failing_exits_1(blob_file, capsys, monkeypatch):
    # A batch larger than the training rows makes every fit refuse to start.
    argv = ["tune", "--data", blob_file, "--trials", 2, "--batch-size", 100000]
    code, out, err = run_cli([*argv, "--executor", "serial"], capsys, monkeypatch)
    assert code == 1
    assert err.startswith("fastnn tune: error: all 2 trials failed; trial 0: ")


# -- MPI --------------------------------------------------------------------------------------
MPI_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from fastnn.tune import Choice, LogUniform, Uniform, mlp_trial, random_search

    if __name__ == "__main__":
        rng = np.random.default_rng(0)
        centers = rng.normal(0, 3, (3, 10))
        y = rng.integers(0, 3, 240)
        x = (centers[y] + rng.normal(0, 1, (240, 10))).astype(np.float32)
        space = {"lr": LogUniform(1e-4, 1e-1), "dropout": Uniform(0.0, 0.5),
                 "layers": Choice([[8], [16, 8]]), "epochs": 2, "batch_size": 16}
        workers = int(sys.argv[2]) if len(sys.argv) > 2 else None
        result = random_search(mlp_trial, space, 4, (x, y), seed=7, executor="mpi",
                               workers=workers)
        with open(sys.argv[1], "w") as f:
            json.dump(result.to_dict(), f)
    """
)


def _mpi_env():
    env = dict(os.environ)
    bindir = os.path.dirname(sys.executable)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _mpiexec():
    pytest.importorskip("mpi4py")
    path = shutil.which("mpiexec", path=_mpi_env()["PATH"])
    if path is None:
        pytest.skip("no mpiexec on PATH")
    return path


def _check_against_serial(record):
    x, y = blobs()
    reference = random_search(mlp_trial, SPACE, 4, (x, y), seed=7, executor="serial")
    trials = record["trials"]
    assert [t["error"] for t in trials] == [None] * 4
    assert [(t["params"], t["seed"], t["score"]) for t in trials] == [
        (t.params, t.seed, t.score) for t in reference.trials
    ]


@pytest.mark.parametrize("launch", ["mpiexec", "spawn"])
def test_search_on_mpi_pool_executor_matches_serial(launch, tmp_path):
    mpiexec = _mpiexec()
    script = tmp_path / "search.py"
    script.write_text(MPI_SCRIPT)
    out = tmp_path / "out.json"
    if launch == "mpiexec":
        # The cluster form: rank 0 runs the script, the other ranks serve as workers.
        cmd = [mpiexec, "-n", "2", sys.executable, "-m", "mpi4py.futures", str(script), str(out)]
    else:
        # A single process spawning its worker (MPI_Comm_spawn).
        cmd = [sys.executable, str(script), str(out), "1"]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, env=_mpi_env(), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads(out.read_text())
    assert record["executor"] == "mpi"
    _check_against_serial(record)


def test_tune_command_under_mpiexec(tmp_path, blob_file):
    mpiexec = _mpiexec()
    record = tmp_path / "tune.json"
    cmd = [mpiexec, "-n", "3", sys.executable, "-m", "mpi4py.futures", "-m", "fastnn", "tune"]
    cmd += ["--executor", "mpi", "--data", str(blob_file), "--trials", "4", "--layers", "8"]
    cmd += ["--epochs", "1", "--batch-size", "16", "--top", "2", "--json", str(record)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=TIMEOUT, env=_mpi_env(), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "mpi executor" in proc.stdout and re.search(r"rank +trial +score", proc.stdout)
    saved = json.loads(record.read_text())
    assert [t["error"] for t in saved["rounds"][0]["trials"]] == [None] * 4
    assert saved["rounds"][0]["executor"] == "mpi"
