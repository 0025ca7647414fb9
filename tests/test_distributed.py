"""Data-parallel training (fastnn.distributed): 2 ranks launched with mpiexec on loopback.

The reference is single-process ``fastnn.fit`` in the test process: without dropout and batch
norm, 2 ranks with global batch B must give its parameters within float rounding. Every
mpiexec run has a timeout, so a hang fails the test instead of stalling the suite.
"""

import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn as fn
from fastnn import distributed
from fastnn.distributed import _slice_bounds

TIMEOUT = 180


def _mpiexec():
    pytest.importorskip("mpi4py")
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    path = here if os.path.exists(here) else shutil.which("mpiexec")
    if path is None:
        pytest.skip("mpiexec not found")
    return path


def run_mpi(args, tmp_path, n=2, timeout=TIMEOUT):
    """Run ``mpiexec -n n python ARGS...`` (or a module's CLI) in tmp_path; return the result."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [_mpiexec(), "-n", str(n), sys.executable, *map(str, args)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def write_script(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def blobs(n, features, classes, seed):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2, (classes, features))
    y = rng.integers(0, classes, n)
    x = (centers[y] + rng.normal(0, 1, (n, features))).astype(np.float32)
    return x, y


# -- without MPI -----------------------------------------------------------------------------
@pytest.mark.parametrize("m", [1, 2, 3, 7, 64, 65])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_slices_cover_the_batch_and_differ_by_at_most_one(m, size):
    bounds = [_slice_bounds(m, r, size) for r in range(size)]
    assert bounds[0][0] == 0 and bounds[-1][1] == m
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    lengths = [hi - lo for lo, hi in bounds]
    assert max(lengths) - min(lengths) <= 1


def test_missing_mpi4py_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "fastnn\[mpi\]"'):
        distributed.world()


# -- equivalence with one process ------------------------------------------------------------
EQUIVALENCE = """
    import sys
    import numba
    import numpy as np
    from mpi4py import MPI
    import fastnn as fn
    from fastnn import distributed

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    data = np.load("data.npz")
    out = {}
    for name, (dtype, optimizer, batch, rows, val) in {
        "adam32": ("float32", "adam", 20, 203, 0.2),  # training rows 162: last batch 2 = 1 + 1
        "sgd64": ("float64", "momentum", 7, 161, None),  # last batch 0 + 1: an empty slice
        "empty": ("float32", "sgd", 20, 161, None),  # 161 = 8 * 20 + 1: rank 0 gets 0 rows
    }.items():
        x, y = data["x"][:rows].astype(dtype), data["y"][:rows]
        model = fn.MLP([12, 16, 8, 4], seed=3, dtype=dtype)
        opt = fn.optim.get(optimizer, model.parameters(), lr=0.05)
        h = distributed.fit(model, x, y, optimizer=opt, epochs=3, batch_size=batch, seed=5,
                            validation_split=val, verbose=0)
        out["threads"] = np.array(numba.get_num_threads())
        flat = np.concatenate([p.data.ravel() for p in model.parameters()])
        every = comm.gather(flat, root=0)
        agree = distributed.parameters_agree(model)
        if rank == 0:
            out[name + "/rank0"], out[name + "/rank1"] = every
            out[name + "/agree"] = np.array(agree)
            for k in h.keys():
                if k != "seconds":
                    out[name + "/" + k] = np.array(h[k])
    if rank == 0:
        np.savez(sys.argv[1], **out)
"""

CASES = {
    "adam32": ("float32", "adam", 20, 203, 0.2),
    "sgd64": ("float64", "momentum", 7, 161, None),
    "empty": ("float32", "sgd", 20, 161, None),
}


@pytest.fixture(scope="module")
def equivalence_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("equivalence")
    x, y = blobs(203, 12, 4, seed=1)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = write_script(tmp_path, "equivalence.py", EQUIVALENCE)
    result = run_mpi([script, "out.npz"], tmp_path)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "out.npz") as f:
        return (x, y), {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", list(CASES))
def test_two_ranks_give_the_parameters_of_one_process(equivalence_run, case):
    (x, y), out = equivalence_run
    dtype, optimizer, batch, rows, val = CASES[case]
    model = fn.MLP([12, 16, 8, 4], seed=3, dtype=dtype)
    opt = fn.optim.get(optimizer, model.parameters(), lr=0.05)
    h = fn.fit(
        model,
        x[:rows].astype(dtype),
        y[:rows],
        optimizer=opt,
        epochs=3,
        batch_size=batch,
        seed=5,
        validation_split=val,
        verbose=0,
    )
    reference = np.concatenate([p.data.ravel() for p in model.parameters()])
    tol = {"float32": 2e-5, "float64": 1e-12}[dtype]
    np.testing.assert_allclose(out[case + "/rank0"], reference, rtol=tol, atol=tol)
    assert out[case + "/rank0"].dtype == np.dtype(dtype)
    for k in h.keys():
        if k != "seconds":
            np.testing.assert_allclose(out[f"{case}/{k}"], h[k], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("case", list(CASES))
def test_every_rank_ends_with_the_same_parameters(equivalence_run, case):
    _, out = equivalence_run
    np.testing.assert_array_equal(out[case + "/rank0"], out[case + "/rank1"])
    assert bool(out[case + "/agree"])


def test_each_rank_uses_its_share_of_the_cores(equivalence_run):
    _, out = equivalence_run
    import numba

    expected = min(max(1, (os.cpu_count() or 1) // 2), numba.config.NUMBA_NUM_THREADS)
    assert int(out["threads"]) == expected


# -- batch norm, dropout, resume -------------------------------------------------------------
STOCHASTIC = """
    import sys
    import numpy as np
    from mpi4py import MPI
    import fastnn as fn
    from fastnn import callbacks, distributed

    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    data = np.load("data.npz")
    x, y = data["x"], data["y"]

    def train(seed, epochs=4, resume=None, checkpoint=None):
        model = fn.MLP([12, 16, 8, 4], batchnorm=True, dropout=0.3, seed=3)
        cbs = [callbacks.ModelCheckpoint(checkpoint)] if checkpoint else []
        distributed.fit(model, x, y, epochs=epochs, batch_size=32, seed=seed, verbose=0,
                        callbacks=cbs, resume=resume, validation_split=0.25)
        assert distributed.parameters_agree(model)
        return model

    def flat(model):
        arrays = [p.data for p in model.parameters()]
        arrays += [m.running_mean for m in model.modules() if hasattr(m, "running_mean")]
        return np.concatenate([a.ravel() for a in arrays])

    a, b, c = train(seed=7), train(seed=7), train(seed=8)
    # Per-rank dropout streams: the ranks' generators draw different numbers.
    first_dropout = [m for m in a.modules() if isinstance(m, fn.Dropout)][0]
    draws = comm.gather(first_dropout.rng.random(), root=0)
    # The reduced evaluation equals one process evaluating all rows.
    reduced = distributed.evaluate(a, x, y)
    # Resume: 2 epochs with a checkpoint (written by rank 0 only), then 2 more from it.
    train(seed=7, epochs=2, checkpoint="ckpt.npz")
    resumed = train(seed=7, epochs=4, resume="ckpt.npz")
    if rank == 0:
        np.savez(sys.argv[1], a=flat(a), b=flat(b), c=flat(c), resumed=flat(resumed),
                 draws=np.array(draws), reduced_loss=reduced["loss"],
                 reduced_accuracy=reduced["accuracy"], **{f"p{i}": p.data
                 for i, p in enumerate(a.parameters())}, **{f"bn{i}_{k}": getattr(m, k)
                 for i, m in enumerate(a.modules()) if hasattr(m, "running_mean")
                 for k in ("running_mean", "running_var")})
"""


@pytest.fixture(scope="module")
def stochastic_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("stochastic")
    x, y = blobs(200, 12, 4, seed=2)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = write_script(tmp_path, "stochastic.py", STOCHASTIC)
    result = run_mpi([script, "out.npz"], tmp_path)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "out.npz") as f:
        return (x, y), {k: f[k] for k in f.files}


def test_dropout_and_batchnorm_runs_are_reproducible(stochastic_run):
    _, out = stochastic_run
    np.testing.assert_array_equal(out["a"], out["b"])
    assert not np.allclose(out["a"], out["c"])


def test_each_rank_draws_its_own_dropout_masks(stochastic_run):
    _, out = stochastic_run
    assert out["draws"][0] != out["draws"][1]


def test_resuming_a_checkpoint_continues_exactly(stochastic_run):
    _, out = stochastic_run
    np.testing.assert_array_equal(out["resumed"], out["a"])


def test_reduced_evaluation_equals_one_process(stochastic_run):
    (x, y), out = stochastic_run
    model = fn.MLP([12, 16, 8, 4], batchnorm=True, dropout=0.3, seed=3)
    for i, p in enumerate(model.parameters()):
        p.data[...] = out[f"p{i}"]
    for i, m in enumerate(model.modules()):
        if hasattr(m, "running_mean"):
            m.running_mean[...] = out[f"bn{i}_running_mean"]
            m.running_var[...] = out[f"bn{i}_running_var"]
    expected = fn.evaluate(model, x, y)
    np.testing.assert_allclose(float(out["reduced_loss"]), expected["loss"], rtol=1e-5)
    assert float(out["reduced_accuracy"]) == pytest.approx(expected["accuracy"])


# -- failures --------------------------------------------------------------------------------
FAILING = """
    import numpy as np
    from mpi4py import MPI
    import fastnn as fn
    from fastnn import callbacks, distributed

    class Boom(callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if MPI.COMM_WORLD.Get_rank() == 1 and epoch == 1:
                raise RuntimeError("boom on rank 1")

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 5)).astype(np.float32), rng.integers(0, 3, 64)
    # Rank 0 goes on into the next epoch's Allreduce: without the abort it would wait forever.
    distributed.fit(fn.MLP([5, 8, 3], seed=0), x, y, epochs=50, batch_size=8, seed=0,
                    verbose=0, callbacks=[Boom()])
"""


def test_a_rank_that_raises_ends_the_whole_job(tmp_path):
    script = write_script(tmp_path, "failing.py", FAILING)
    result = run_mpi([script], tmp_path, timeout=120)
    assert result.returncode != 0
    assert "boom on rank 1" in result.stderr
    assert "RuntimeError" in result.stderr


MISMATCH = """
    import numpy as np
    from mpi4py import MPI
    import fastnn as fn
    from fastnn import distributed

    rows = 64 + MPI.COMM_WORLD.Get_rank()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(rows, 5)).astype(np.float32), rng.integers(0, 3, rows)
    distributed.fit(fn.MLP([5, 8, 3], seed=0), x, y, epochs=2, batch_size=8, seed=0, verbose=0)
"""


def test_ranks_with_different_data_are_refused(tmp_path):
    script = write_script(tmp_path, "mismatch.py", MISMATCH)
    result = run_mpi([script], tmp_path, timeout=120)
    assert result.returncode != 0
    assert "the ranks disagree on training rows: [64, 65]" in result.stderr


# -- the command line ------------------------------------------------------------------------
def test_cli_distributed_matches_the_single_process_run(tmp_path):
    from fastnn.cli import main

    x, y = blobs(300, 10, 3, seed=4)
    np.savez(tmp_path / "blobs.npz", x=x, y=y)
    flags = ["--data", "blobs.npz", "--layers", "32", "--epochs", "2", "--batch-size", "25"]
    flags += ["--dropout", "0", "--validation-split", "0.2", "--quiet"]
    result = run_mpi(["-m", "fastnn", "train", "--distributed", *flags, "-o", "two.npz"], tmp_path)
    assert result.returncode == 0, result.stderr
    # Only rank 0 prints.
    assert result.stdout.count("test accuracy") == 1
    assert "distributed: 2 ranks, global batch 25" in result.stdout
    assert (tmp_path / "two.ckpt.npz").exists()

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert main(["train", *flags, "-o", "one.npz"]) == 0
    finally:
        os.chdir(cwd)
    one, two = fn.load(tmp_path / "one.npz"), fn.load(tmp_path / "two.npz")
    for p, q in zip(one.parameters(), two.parameters(), strict=True):
        np.testing.assert_allclose(q.data, p.data, rtol=2e-5, atol=2e-5)


def test_cli_distributed_error_exits_with_the_message(tmp_path):
    result = run_mpi(
        ["-m", "fastnn", "train", "--distributed", "--data", "missing.npz"], tmp_path, timeout=120
    )
    assert result.returncode == 2
    assert re.search(r"fastnn train: error \(rank \d\): --data 'missing.npz'", result.stderr)


# -- the ranks agree on everything that shapes training (issue 14, item 14) -------------------
DISAGREE = """
    import sys
    import numpy as np
    import fastnn as fn
    from fastnn import distributed
    from mpi4py import MPI

    rank = MPI.COMM_WORLD.Get_rank()
    case = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model = fn.MLP([6, 8, 3], seed=0)
    lr = 0.01 if case == "lr" and rank == 1 else 0.1
    opt = fn.optim.SGD(model.parameters(), lr=lr)
    callbacks = []
    if case == "early stopping" and rank == 0:
        callbacks = [fn.callbacks.EarlyStopping("loss", patience=0, min_delta=10.0)]

    class StopOnRank0(fn.callbacks.Callback):
        def on_epoch_end(self, trainer, epoch, logs):
            if MPI.COMM_WORLD.Get_rank() == 0 and epoch == 1:
                trainer.stop_training = True

    if case == "stop":
        callbacks = [StopOnRank0()]
    clip = 1.0 if case == "clip" and rank == 0 else None
    history = distributed.fit(model, x, y, optimizer=opt, epochs=6, batch_size=16, seed=0,
                              verbose=0, callbacks=callbacks, clip_norm=clip, threads=1)
    print(f"rank {rank}: {history.epochs} epochs, agree {distributed.parameters_agree(model)}")
"""


@pytest.mark.parametrize(
    "case, message",
    [
        ("lr", "the ranks disagree on optimizer hyperparameters"),
        ("clip", "the ranks disagree on clip_norm"),
        ("early stopping", "the ranks disagree on callbacks"),
    ],
)
def test_ranks_with_other_settings_are_refused(case, message, tmp_path):
    # They used to train silently to different models (lr, clip_norm), or hang (an
    # EarlyStopping on rank 0 only ended rank 0's loop and left rank 1 in a collective).
    script = write_script(tmp_path, "disagree.py", DISAGREE)
    proc = run_mpi([script, case], tmp_path, timeout=120)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_a_stop_decided_on_rank_0_ends_every_rank(tmp_path):
    script = write_script(tmp_path, "disagree.py", DISAGREE)
    proc = run_mpi([script, "stop"], tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The two ranks' lines may interleave: read them by pattern.
    found = sorted(re.findall(r"rank (\d): (\d+) epochs, agree (True|False)", proc.stdout))
    assert found == [("0", "2", "True"), ("1", "2", "True")], proc.stdout


# -- the compiled path under MPI ---------------------------------------------------------------
COMPILED = """
    import sys
    import numpy as np
    from mpi4py import MPI
    import fastnn as fn
    from fastnn import distributed
    from fastnn.training import compiled

    comm = MPI.COMM_WORLD
    data = np.load("data.npz")
    calls = []
    real = compiled.CompiledSteps.gradient

    def counted(self, order, step):
        calls.append(step)
        return real(self, order, step)

    compiled.CompiledSteps.gradient = counted

    def model(case, dtype):
        if case == "layers":
            return fn.Sequential(
                fn.Linear(12, 8, activation="tanh", rng=1, dtype=dtype),
                fn.Maxout(8, 6, pieces=2, rng=2, dtype=dtype),
                fn.Dropout(0.2, rng=3, dtype=dtype),
                fn.Linear(6, 4, rng=4, dtype=dtype),
                fn.Softmax(dtype=dtype),
            )
        bn = case == "bn dropout"
        return fn.MLP([12, 16, 8, 4], batchnorm=bn, dropout=0.3 if bn else 0.0, seed=3,
                      dtype=dtype)

    CASES = {  # dtype, optimizer, batch, rows, loss, extra fit arguments
        "bn dropout": ("float32", "adam", 32, 200, "cross_entropy",
                       dict(validation_split=0.25, clip_norm=0.5)),
        "empty slice": ("float64", "momentum", 20, 161, "cross_entropy", {}),
        "layers": ("float32", "rmsprop", 16, 150, "mse", {}),
    }
    out = {}
    for case, (dtype, optimizer, batch, rows, loss, extra) in CASES.items():
        x = data["x"][:rows].astype(dtype)
        y = data["y"][:rows]
        if loss == "mse":
            y = np.eye(4, dtype=dtype)[y]
        runs = []
        for on in (True, False):
            calls.clear()
            m = model(case, dtype)
            opt = fn.optim.get(optimizer, m.parameters(), lr=0.01)
            with fn.compiled(on):
                h = distributed.fit(m, x, y, optimizer=opt, loss=loss, epochs=2,
                                    batch_size=batch, seed=5, verbose=0, **extra)
            state = np.concatenate([a.ravel() for _, a in m.named_state()])
            history = np.array([v for k in sorted(h.keys()) if k != "seconds" for v in h[k]])
            runs.append((state, history, len(calls)))
        (s1, h1, n1), (s0, h0, n0) = runs
        same = bool(np.array_equal(s1, s0) and np.array_equal(h1, h0))
        every = comm.gather((same, n1, n0), root=0)
        if comm.Get_rank() == 0:
            out[case] = np.array(every)
    if comm.Get_rank() == 0:
        np.savez(sys.argv[1], **out)
"""


def test_the_compiled_path_under_mpi_equals_the_per_layer_path(tmp_path):
    # distributed.fit runs each rank's forward and backward as one compiled call (its ranks
    # sum their gradients before the update); the parameters, running statistics and history
    # must equal those of the per-layer path, bit for bit, on every rank.
    x, y = blobs(200, 12, 4, seed=4)
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = write_script(tmp_path, "compiled.py", COMPILED)
    result = run_mpi([script, "out.npz"], tmp_path)
    assert result.returncode == 0, result.stderr
    with np.load(tmp_path / "out.npz") as f:
        out = {k: f[k] for k in f.files}
    assert set(out) == {"bn dropout", "empty slice", "layers"}
    for case, every in out.items():
        for rank, (same, compiled_calls, per_layer_calls) in enumerate(every):
            assert same, (case, rank)
            assert compiled_calls > 0 and per_layer_calls == 0, (case, rank, every)


CONV = """
import sys
import numpy as np
from mpi4py import MPI
import fastnn as fn
from fastnn import distributed

data = np.load("images.npz")
x, y = data["x"], data["y"]
model = fn.Sequential(
    fn.Conv2D(1, 4, 3, padding=1, activation="relu", rng=0),
    fn.MaxPool2D(2),
    fn.Flatten(),
    fn.Linear(4 * 5 * 5, 3, rng=1),
)
if sys.argv[2] == "mpi":
    distributed.fit(model, x, y, epochs=2, batch_size=10, seed=3, verbose=0)
else:
    fn.fit(model, x, y, epochs=2, batch_size=10, seed=3, verbose=0)
if MPI.COMM_WORLD.Get_rank() == 0:
    np.savez(sys.argv[1], *[p.data for p in model.parameters()])
"""


def test_a_conv_model_trains_distributed_as_in_one_process(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 1, 10, 10)).astype(np.float32)
    np.savez(tmp_path / "images.npz", x=x, y=rng.integers(0, 3, 60))
    script = write_script(tmp_path, "conv.py", CONV)
    result = run_mpi([script, "two.npz", "mpi"], tmp_path)
    assert result.returncode == 0, result.stderr
    one = subprocess.run(
        [sys.executable, str(script), "one.npz", "one"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert one.returncode == 0, one.stderr
    with np.load(tmp_path / "one.npz") as a, np.load(tmp_path / "two.npz") as b:
        assert len(a.files) == 4
        for k in a.files:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6)
