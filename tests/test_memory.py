"""A steady-state training step allocates no arrays, and fit's memory stays flat (Python
allocations under tracemalloc, and the process's resident set size)."""

import os
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest

import fastnn as fn
from fastnn import callbacks as cb


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batchnorm, dropout", [(False, 0.0), (True, 0.2)])
def test_training_step_allocates_nothing(rng, optimizer, batchnorm, dropout):
    model = fn.MLP([50, 64, 64, 10], batchnorm=batchnorm, dropout=dropout, seed=0)
    loss = fn.SoftmaxCrossEntropy()
    opt = fn.optim.get(optimizer, model.parameters(), lr=1e-3)
    x = rng.random((256, 50), dtype=np.float32)
    y = rng.integers(0, 10, 256)

    def step():
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    step()
    step()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(3):
        step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    # Python's own small objects (views, floats) come and go; a new array of the batch (the
    # smallest, the logits, is 256 x 10 x 4 = 10 kB) would show.
    assert peak < 4096, peak


class _Memory(cb.Callback):
    def __init__(self):
        self.current = []

    def on_epoch_end(self, trainer, epoch, logs):
        self.current.append(tracemalloc.get_traced_memory()[0])


def test_fit_memory_stays_flat_over_20_epochs(rng):
    x = rng.random((640, 50), dtype=np.float32)
    y = rng.integers(0, 10, 640)
    model = fn.MLP([50, 64, 64, 10], batchnorm=True, dropout=0.2, seed=0)
    memory = _Memory()
    tracemalloc.start()
    try:
        fn.fit(
            model,
            x,
            y,
            epochs=20,
            batch_size=32,
            validation_split=0.1,
            seed=0,
            verbose=0,
            callbacks=[memory, cb.EarlyStopping("val_loss", patience=100)],
        )
    finally:
        tracemalloc.stop()
    growth = memory.current[-1] - memory.current[1]
    # The history gains a few floats per epoch; an array per step (32 x 64 float32 = 8 KB,
    # 20 steps an epoch) would add hundreds of kilobytes.
    assert growth < 20 * 1024, growth


def _rss():
    """Resident set size of this process in bytes (Linux: /proc/self/statm)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _RSS(cb.Callback):
    def __init__(self, leak=0):
        self.rss = []
        self.leak = leak  # bytes to keep each epoch: the control that shows a leak is seen
        self.kept = []

    def on_epoch_end(self, trainer, epoch, logs):
        if self.leak:
            self.kept.append(np.ones(self.leak // 8))
        self.rss.append(_rss())


def _rss_growth_over_20_epochs(folder, leak=0):
    rng = np.random.default_rng(0)
    x = rng.random((1280, 100), dtype=np.float32)
    y = rng.integers(0, 10, 1280)
    model = fn.MLP([100, 256, 256, 10], batchnorm=True, dropout=0.2, seed=0)
    memory = _RSS(leak)
    fn.fit(
        model,
        x,
        y,
        epochs=20,
        batch_size=64,
        validation_split=0.1,
        seed=0,
        verbose=0,
        # A checkpoint every epoch too: writing files must not leak either.
        callbacks=[memory, cb.ModelCheckpoint(os.path.join(folder, "ckpt.npz"))],
    )
    # From the end of epoch 2: the first checkpoint is written after epoch 1's callbacks ran,
    # and its one-off allocations (zip buffers, the architecture check) show at epoch 2.
    return memory.rss[-1] - memory.rss[1]


# The RSS allowance: allocator noise is a few hundred kB; an array of one batch's activations
# (64 x 256 float32, 64 kB) kept per step would add 18 steps x 18 epochs x 64 kB = 20 MB.
RSS_ALLOWANCE = 4 * 1024 * 1024


def _rss_growth_in_a_fresh_process(folder, leak=0):
    """``_rss_growth_over_20_epochs`` run in a new interpreter: in a test worker that has
    already run other tests, freed memory sits in the allocator and new arrays reuse those
    resident pages, so even a real leak would leave the RSS unchanged."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from test_memory import _rss_growth_over_20_epochs as g; "
        "print(g(sys.argv[2], int(sys.argv[3])))"
    )
    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.run(
        [sys.executable, "-c", code, tests, str(folder), str(leak)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1])


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm")
def test_fit_rss_stays_flat_over_20_epochs(tmp_path):
    growth = _rss_growth_in_a_fresh_process(tmp_path)
    assert growth < RSS_ALLOWANCE, f"RSS grew {growth / 2**20:.1f} MiB from epoch 2 to 20"


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads /proc/self/statm")
def test_rss_check_sees_a_leak(tmp_path):
    # The control: keeping 2 MiB an epoch (36 MiB over 18 epochs) fails the allowance.
    assert _rss_growth_in_a_fresh_process(tmp_path, leak=2 * 1024 * 1024) > RSS_ALLOWANCE
