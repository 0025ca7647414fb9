"""Files and training survive a real crash: processes killed with SIGKILL mid-save and
mid-training.

- ``save``: a child saves two large models in turn to one path, without pause; it is killed
  at a random moment (almost always inside a write). The path must then hold one of the two
  models, complete. A control run with a plain, non-atomic ``numpy.savez`` to the path shows
  that the same kill does leave broken files, so the test can fail.
- ``fastnn train``: killed after its first checkpoint, started again with ``--resume``, it
  ends with exactly the weights of a run that was never interrupted (fixed seed, one thread).
  The same with ``fit`` and ``ModelCheckpoint(every=2)``.
"""

import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastnn as fn
from fastnn import files

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

TIMEOUT = 240  # seconds for any one child process


def _spawn(code, *args):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)


def _wait_for_line(proc, prefix):
    """Read the child's output until a line starting with ``prefix``; fail if it exits."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line
        if not line and proc.poll() is not None:
            pytest.fail(f"child exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
    proc.kill()
    pytest.fail(f"child printed no {prefix!r} within {TIMEOUT} s")


# -- save ---------------------------------------------------------------------------------------
# Two models of 4.2 M float32 parameters (17 MB each), saved alternately to sys.argv[1].
_SAVER = """
    import sys
    import numpy as np
    import fastnn as fn
    from fastnn import files

    path, atomic = sys.argv[1], sys.argv[2] == "atomic"
    models = [fn.MLP([1024, 2048, 1024], seed=s) for s in (0, 1)]
    if not atomic:  # the control: write straight to the target, as np.savez does
        def plain(path, header, arrays):
            import json
            with open(path, "wb") as f:
                np.savez(f, **{files.HEADER: np.array(json.dumps(header))}, **arrays)
        files.write_npz = plain
    fn.save(models[0], path)
    print("first save done", flush=True)
    i = 1
    while True:
        fn.save(models[i % 2], path)
        i += 1
"""


def _kill_while_saving(path, atomic, seed):
    """Start the saver, kill it a random moment after its first save, return what ``load``
    makes of the file: ("model", seed of the model) or ("error", message)."""
    proc = _spawn(_SAVER, path, "atomic" if atomic else "plain")
    try:
        _wait_for_line(proc, "first save done")
        time.sleep(np.random.default_rng(seed).uniform(0.05, 0.6))
        assert proc.poll() is None, proc.stderr.read()[-2000:]
    finally:
        _kill(proc)
    try:
        loaded = fn.load(path)
    except ValueError as e:
        return "error", str(e)
    w = loaded[0].weight.data
    for s in (0, 1):
        if np.array_equal(w, fn.MLP([1024, 2048, 1024], seed=s)[0].weight.data):
            return "model", s
    return "error", "the file holds neither model"


def test_save_killed_mid_write_leaves_a_complete_file(tmp_path):
    path = tmp_path / "model.npz"
    outcomes = [_kill_while_saving(path, atomic=True, seed=k) for k in range(4)]
    assert all(kind == "model" for kind, _ in outcomes), outcomes
    # SIGKILL leaves the temporary file of the interrupted write behind, and nothing else.
    leftovers = [p.name for p in tmp_path.iterdir() if p != path]
    assert all(n.startswith(".fastnn-") and n.endswith(".tmp") for n in leftovers), leftovers


def test_the_kill_does_break_a_plain_write(tmp_path):
    # The control for the test above: the same kill against a non-atomic write.
    path = tmp_path / "model.npz"
    outcomes = [_kill_while_saving(path, atomic=False, seed=k) for k in range(3)]
    assert any(kind == "error" for kind, _ in outcomes), outcomes


# -- training -----------------------------------------------------------------------------------
@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 2, (4, 64))
    y = rng.integers(0, 4, 4000)
    x = (centers[y] + rng.normal(0, 1, (4000, 64))).astype(np.float32)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    return path


EPOCHS = 10


def _train_args(data, output, checkpoint):
    return [
        "train",
        "--data",
        data,
        "--layers",
        "128,128",
        "--batch-size",
        16,
        "--epochs",
        EPOCHS,
        "--dropout",
        0.3,
        "--batchnorm",
        "--threads",
        1,
        "--seed",
        3,
        "--quiet",
        "-o",
        output,
        "--checkpoint",
        checkpoint,
    ]


def _cli(args):
    return [sys.executable, "-m", "fastnn", *map(str, args)]


def _checkpoint_epoch(path):
    return files.read(path).header["training"]["epoch"]


def _assert_same_weights(a, b):
    sa, sb = fn.load(a).state_dict(), fn.load(b).state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        np.testing.assert_array_equal(sb[k], sa[k], err_msg=k)


def test_train_killed_and_resumed_matches_an_uninterrupted_run(tmp_path, data):
    full = tmp_path / "full.npz"
    done = subprocess.run(
        _cli(_train_args(data, full, tmp_path / "full.ckpt.npz")),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, done.stderr

    out, ckpt = tmp_path / "out.npz", tmp_path / "out.ckpt.npz"
    proc = subprocess.Popen(
        _cli(_train_args(data, out, ckpt)), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + TIMEOUT
    # The checkpoint is written atomically, so once it exists it is complete.
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    _kill(proc)
    killed_at = _checkpoint_epoch(ckpt)
    assert 1 <= killed_at < EPOCHS, f"the run was not interrupted (epoch {killed_at})"
    assert not out.exists()

    resumed = subprocess.run(
        _cli([*_train_args(data, out, ckpt), "--resume"]),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _checkpoint_epoch(ckpt) == EPOCHS
    _assert_same_weights(full, out)


# fit with a checkpoint every 2 epochs, killed once the first is written, then resumed.
_FIT = """
    import sys
    import numpy as np
    import fastnn as fn
    from fastnn import callbacks as cb

    data, output, checkpoint, resume = sys.argv[1:5]
    fn.set_num_threads(1)
    with np.load(data) as f:
        x, y = f["x"], f["y"]
    model = fn.MLP([64, 128, 4], batchnorm=True, dropout=0.3, seed=5)
    opt = fn.optim.Adam(model.parameters(), lr=1e-3)
    fn.fit(model, x, y, optimizer=opt, epochs=8, batch_size=16, seed=7, verbose=0,
           validation_split=0.1, callbacks=[cb.ModelCheckpoint(checkpoint, every=2)],
           resume=checkpoint if resume == "resume" else None)
    fn.save(model, output)
"""


def test_fit_with_checkpoints_every_2_epochs_killed_and_resumed(tmp_path, data):
    full = tmp_path / "full.npz"
    done = _spawn(_FIT, data, full, tmp_path / "full.ckpt.npz", "fresh")
    assert done.wait(timeout=TIMEOUT) == 0, done.stderr.read()
    assert _checkpoint_epoch(tmp_path / "full.ckpt.npz") == 8

    out, ckpt = tmp_path / "out.npz", tmp_path / "out.ckpt.npz"
    proc = _spawn(_FIT, data, out, ckpt, "fresh")
    deadline = time.monotonic() + TIMEOUT
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    _kill(proc)
    killed_at = _checkpoint_epoch(ckpt)
    assert killed_at in (2, 4, 6), f"the run was not interrupted (epoch {killed_at})"

    resumed = _spawn(_FIT, data, out, ckpt, "resume")
    assert resumed.wait(timeout=TIMEOUT) == 0, resumed.stderr.read()
    _assert_same_weights(full, out)
