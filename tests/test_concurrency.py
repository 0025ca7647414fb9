"""fastnn from several Python threads at once: the threading layer, two models training
together, predict on one model, and the workqueue layer (serialised, not aborted).

Results from threads are compared with the same work done one after the other in one thread.
The networks are wide enough (batch x features above ``PARALLEL_MIN``) for the parallel
kernels to run, which is where Numba's workqueue layer aborts on concurrent use.
"""

import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import fastnn as fn
from fastnn.kernels._config import PARALLEL_MIN

TIMEOUT = 240  # seconds for each subprocess (compiling the kernels cold takes most of it)

# 512 rows x 300 features and a 300 x 512 weight matrix: both above PARALLEL_MIN.
ROWS, FEATURES, HIDDEN, CLASSES = 512, 300, 512, 10
assert ROWS * FEATURES > PARALLEL_MIN and FEATURES * HIDDEN > PARALLEL_MIN


def _data(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((ROWS, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, ROWS)
    return x, y


def _train(seed):
    """Train a small network on its own data; return its weights and predictions."""
    x, y = _data(seed)
    model = fn.MLP([FEATURES, HIDDEN, CLASSES], batchnorm=True, dropout=0.2, seed=seed)
    fn.fit(model, x, y, epochs=3, batch_size=256, optimizer="adam", seed=seed, verbose=0)
    return model.state_dict(), model.predict(x)


def _in_threads(target, args):
    """Run ``target(*a)`` for each ``a`` in ``args`` in its own thread, all started together;
    return the results in order, re-raising the first error."""
    results = [None] * len(args)
    errors = []
    barrier = threading.Barrier(len(args))

    def run(i):
        try:
            barrier.wait(timeout=60)
            results[i] = target(*args[i])
        except BaseException as e:  # noqa: BLE001 (handed to the main thread)
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(args))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
        assert not t.is_alive(), "a thread hung"
    if errors:
        raise errors[0]
    return results


def _assert_same(a, b):
    # Thread-count-dependent BLAS blocking may change the last bits; corrupted buffers (one
    # thread's activations in the other's) change everything.
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_default_threading_layer_is_thread_safe():
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_THREADING_LAYER"}
    code = textwrap.dedent(
        """
        import numba, numpy as np, fastnn as fn
        before = fn.threading_layer()
        m = fn.MLP([300, 512, 10], seed=0)
        m.predict(np.ones((512, 300), np.float32))
        print(before, fn.threading_layer(), numba.config.THREADING_LAYER, sep="|")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert out.returncode == 0, out.stderr
    before, after, configured = out.stdout.strip().split("|")
    # fastnn sets the layer explicitly (OpenMP first), and Numba starts the one it was given.
    assert configured in ("omp", "tbb")
    assert before == after == f"('{configured}', False)"


def test_two_models_train_at_once():
    alone = [_train(0), _train(1)]
    for _ in range(2):  # twice, to give the threads more chances to interleave
        together = _in_threads(_train, [(0,), (1,)])
        for (w_alone, p_alone), (w_together, p_together) in zip(alone, together, strict=True):
            _assert_same(p_together, p_alone)
            for k in w_alone:
                _assert_same(w_together[k], w_alone[k])


def test_predict_on_one_model_from_two_threads(rng):
    # Dropout and batch norm: predict switches the model to eval mode and back, so a thread
    # that put it back in training mode while the other predicts changes that one's output.
    model = fn.MLP([50, 64, 64, 10], batchnorm=True, dropout=0.3, seed=0)
    x, _ = _data(2)
    x = [np.ascontiguousarray(x[:300, :50]), np.ascontiguousarray(x[200:, 100:150])]
    expected = [model.predict(xi, batch_size=64) for xi in x]

    def predict_many(i):
        return [model.predict(x[i], batch_size=64) for _ in range(100)]

    outs = _in_threads(predict_many, [(0,), (1,)])
    for i in range(2):
        bad = sum(not np.array_equal(o, expected[i]) for o in outs[i])
        assert bad == 0, f"thread {i}: {bad} of 100 predictions differ from the serial ones"
    assert model.training  # predict put the mode back


def _two_threads_in_subprocess(layer):
    code = textwrap.dedent(
        """
        import threading, numpy as np, fastnn as fn
        from tests.test_concurrency import _in_threads, _train
        print("layer", fn.threading_layer())
        alone = [_train(0)[1], _train(1)[1]]
        together = [p for _, p in _in_threads(_train, [(0,), (1,)])]
        for a, b in zip(alone, together):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
        print("layer", fn.threading_layer(), "ok")
        """
    )
    env = dict(os.environ, NUMBA_THREADING_LAYER=layer)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def test_workqueue_layer_is_serialised_not_aborted():
    # Numba's workqueue layer aborts the process ("Concurrent access has been detected") when
    # two threads launch parallel kernels at once; under it fastnn makes its kernels take turns.
    out = _two_threads_in_subprocess("workqueue")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "layer ('workqueue', True) ok" in out.stdout


def test_workqueue_serialisation_applies_to_every_kernel():
    # Serial kernels too: relu_forward calls the parallel _forward from compiled code.
    code = textwrap.dedent(
        """
        import importlib, pkgutil
        from numba.core.registry import CPUDispatcher
        import fastnn as fn
        from fastnn import kernels
        kinds = set()
        for info in pkgutil.iter_modules(kernels.__path__):
            module = importlib.import_module("fastnn.kernels." + info.name)
            kinds |= {type(v).__name__ for v in vars(module).values()
                      if isinstance(v, CPUDispatcher)}
        print(fn.threading_layer(), sorted(kinds))
        """
    )
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "('workqueue', True) ['SerialisedKernel']"


def test_fit_holds_its_model_other_threads_get_a_clear_error():
    # fit flips the model's mode and shares the layers' work buffers with predict: a predict
    # from another thread during fit silently changed the training (or failed with a
    # misleading shape error). Now fit holds the model; other threads are refused at once.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    model = fn.MLP([6, 8, 3], seed=0)
    started, proceed = threading.Event(), threading.Event()
    seen = {}

    class Pause(fn.callbacks.Callback):
        def on_epoch_begin(self, trainer, epoch):
            seen["own predict"] = trainer.model.predict(x[:2]).shape  # the fit's thread may
            started.set()
            assert proceed.wait(30)

    errors = []
    worker = threading.Thread(
        target=lambda: errors.append(
            fn.fit(model, x, y, epochs=1, batch_size=16, verbose=0, callbacks=[Pause()])
        )
    )
    worker.start()
    assert started.wait(30)
    try:
        for call in (
            lambda: model.predict(x),
            lambda: fn.evaluate(model, x, y),
            lambda: fn.fit(model, x, y, epochs=1, verbose=0),
        ):
            with pytest.raises(RuntimeError, match="being trained by fit in another thread"):
                call()
    finally:
        proceed.set()
        worker.join(60)
    assert seen["own predict"] == (2, 3)
    assert len(errors) == 1 and errors[0].epochs == 1  # the fit itself finished
    assert model.predict(x).shape == (64, 3)  # and the model is free again
