"""Training and inference of MNIST networks, and start-up time in a fresh interpreter.

The configurations (float32, cross-entropy on the logits, ReLU):

- T1: 784-100-100-100-100-100-10, Adam (lr 1e-3), batch 100
- T2: 784-50-10, SGD (lr 0.1), batch 100
- T3: 784-1024-1024-10, Adam (lr 1e-3), batch 512
- T4: T1 with batch norm and dropout 0.2

trained on the 10,000 MNIST images that ship with fastnn.
"""

import functools
import subprocess
import sys
import time

import fastnn as fn

HIDDEN5 = [784, 100, 100, 100, 100, 100, 10]
CONFIGS = {
    "T1": {"sizes": HIDDEN5, "optimizer": "adam", "batch": 100},
    "T2": {"sizes": [784, 50, 10], "optimizer": "sgd", "lr": 0.1, "batch": 100},
    "T3": {"sizes": [784, 1024, 1024, 10], "optimizer": "adam", "batch": 512},
    "T4": {"sizes": HIDDEN5, "optimizer": "adam", "batch": 100, "batchnorm": True, "dropout": 0.2},
}


@functools.lru_cache(maxsize=1)
def mnist():
    """The 10,000 embedded MNIST images, (10000, 784) float32 in [0, 1], and their labels."""
    datasets = getattr(fn, "datasets", None)
    if datasets is None or not hasattr(datasets, "load_mnist_sample"):
        raise NotImplementedError("this fastnn has no embedded MNIST sample")
    (x, y), _ = datasets.load_mnist_sample(train_size=10_000, test_size=0)
    return x, y


def build(config, seed=0):
    """(model, optimizer, batch size) of the configuration named ``config``."""
    c = CONFIGS[config]
    model = fn.MLP(
        c["sizes"], batchnorm=c.get("batchnorm", False), dropout=c.get("dropout", 0.0), seed=seed
    )
    if c["optimizer"] == "sgd":
        opt = fn.optim.SGD(model.parameters(), lr=c["lr"])
    else:
        opt = fn.optim.Adam(model.parameters(), lr=1e-3)
    return model, opt, c["batch"]


class TrainingStep:
    """One step: forward, softmax cross-entropy, backward, optimizer update."""

    params = list(CONFIGS)
    param_names = ["config"]

    def setup(self, config):
        x, y = mnist()
        self.model, self.opt, batch = build(config)
        self.loss = fn.SoftmaxCrossEntropy()
        self.x, self.y = x[:batch], y[:batch]
        self.model.train()
        self._step()

    def _step(self):
        self.loss.forward(self.model.forward(self.x), self.y)
        self.model.backward(self.loss.backward(), input_grad=False)
        self.opt.step()

    def time_step(self, config):
        self._step()

    def peakmem_step(self, config):
        self._step()


class Epoch:
    """One epoch of ``fastnn.fit`` over the 10,000 images (shuffled, seed 0)."""

    params = list(CONFIGS)
    param_names = ["config"]
    number = 1
    repeat = (2, 5, 30.0)  # 2 to 5 epochs per round, stopping once 30 s have passed
    warmup_time = 0  # setup already ran both batch sizes an epoch uses
    timeout = 300  # T3: about 0.6 s an epoch on 2 cores, 10 epochs with setups

    def setup(self, config):
        if not hasattr(fn, "fit"):
            raise NotImplementedError("this fastnn has no fit")
        self.x, self.y = mnist()
        self.model, self.opt, self.batch = build(config)
        # A fit over one full batch and one of the size an epoch ends with: compiles every
        # kernel and allocates the buffers the timed epoch uses.
        n = len(self.x)
        last = n - (-(-n // self.batch) - 1) * self.batch
        head = self.batch + last
        self._fit(self.x[:head], self.y[:head])

    def _fit(self, x, y):
        fn.fit(
            self.model,
            x,
            y,
            optimizer=self.opt,
            epochs=1,
            batch_size=self.batch,
            verbose=0,
            seed=0,
        )

    def time_epoch(self, config):
        self._fit(self.x, self.y)

    def peakmem_epoch(self, config):
        self._fit(self.x, self.y)


class Predict:
    """``model.predict`` (eval mode, 1024 rows at a time) over the 10,000 images."""

    params = ["T1", "T3"]
    param_names = ["config"]

    def setup(self, config):
        self.x, _ = mnist()
        self.model, _, _ = build(config)
        self.model.predict(self.x)

    def time_predict_10000_rows(self, config):
        self.model.predict(self.x)

    def track_rows_per_second(self, config):
        began = time.perf_counter()
        self.model.predict(self.x)
        return len(self.x) / (time.perf_counter() - began)

    track_rows_per_second.unit = "rows/s"

    def peakmem_predict(self, config):
        self.model.predict(self.x)


class EpochPerLayer(Epoch):
    """``Epoch`` through the layers' own forward and backward (``fastnn.compiled(False)``), the
    path models with a module of the user's own take; ``Epoch`` is the compiled path where
    the commit has one."""

    def setup(self, config):
        if not hasattr(fn, "compiled"):
            raise NotImplementedError("this fastnn has one path only (see Epoch)")
        super().setup(config)

    def _fit(self, x, y):
        with fn.compiled(False):
            super()._fit(x, y)


class FitOneBatch:
    """``fit`` over a single batch: one compiled training step (gather, forward, loss,
    backward, update, accuracy count in one call) plus fit's per-call work."""

    params = list(CONFIGS)
    param_names = ["config"]

    def setup(self, config):
        x, y = mnist()
        self.model, self.opt, batch = build(config)
        self.x, self.y, self.batch = x[:batch], y[:batch], batch
        self.time_fit_one_batch(config)

    def time_fit_one_batch(self, config):
        fn.fit(
            self.model,
            self.x,
            self.y,
            optimizer=self.opt,
            epochs=1,
            batch_size=self.batch,
            verbose=0,
            seed=0,
            shuffle=False,
        )


class PredictLatency:
    """``model.predict`` of 1 and of 32 rows: the latency a served model sees."""

    params = (["T1", "T3"], [1, 32])
    param_names = ["config", "rows"]

    def setup(self, config, rows):
        x, _ = mnist()
        self.x = x[:rows].copy()
        self.model, _, _ = build(config)
        self.model.predict(self.x)

    def time_predict(self, config, rows):
        self.model.predict(self.x)


# The timed code of the start-up benchmarks: import, build T1, one Adam step on a batch of
# 100 (synthetic data, so that reading MNIST stays out of it).
FIRST_STEP = """
import numpy as np
import fastnn as fn
model = fn.MLP([784, 100, 100, 100, 100, 100, 10], seed=0)
loss = fn.SoftmaxCrossEntropy()
opt = fn.optim.Adam(model.parameters(), lr=1e-3)
x = np.random.default_rng(0).random((100, 784), dtype=np.float32)
y = np.arange(100) % 10
loss.forward(model.forward(x), y)
model.backward(loss.backward(), input_grad=False)
opt.step()
"""

# Untimed code run first in the timed interpreter: an empty Numba cache of its own, set
# before Numba is imported, removed when the interpreter exits.
EMPTY_CACHE = """
import atexit, os, shutil, tempfile
_cache = tempfile.mkdtemp(prefix="fastnn-bench-numba-")
os.environ["NUMBA_CACHE_DIR"] = _cache
atexit.register(shutil.rmtree, _cache, True)
"""


class Startup:
    """``import fastnn`` and the first training step, each sample in a new interpreter.

    With the warm Numba cache (the kernels compiled once, in ``setup_cache``) the first step
    loads them from disk; with an empty cache it compiles every kernel the step uses.
    """

    warmup_time = 0
    repeat = 5
    timeout = 120

    def setup_cache(self):
        # Fill the cache this benchmark's interpreters use (the environment's own).
        subprocess.run([sys.executable, "-c", FIRST_STEP], check=True, timeout=600)

    def timeraw_import(self):
        return "import fastnn"

    def timeraw_import_and_first_step(self):
        return FIRST_STEP

    def timeraw_import_and_first_step_empty_cache(self):
        return FIRST_STEP, EMPTY_CACHE

    # One sample in one process: each takes about 15-20 s on 2 cores.
    timeraw_import_and_first_step_empty_cache.repeat = 1
    timeraw_import_and_first_step_empty_cache.rounds = 1
    timeraw_import_and_first_step_empty_cache.timeout = 600
