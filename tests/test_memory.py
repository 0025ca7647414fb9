"""A steady-state training step allocates no arrays, and fit's memory stays flat."""

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
