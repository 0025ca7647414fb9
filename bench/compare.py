"""Time training epochs of fastnn, PyTorch and scikit-learn side by side, in one run.

    python bench/compare.py [--threads N] [--repeats R] [--config T1 T3] [--sweep batch]
                            [--sweep width] [--no-predict] [--keep-openblas-env]
                            [--json out.json] [--quick]

Configs T1-T5 (T5 is T3 with tanh), and the convolutional networks C1 (the course's
SimpleConvNet) and C2 (LeNet-5) on the images as (n, 1, 28, 28); with T1 or T3 among
them, ``predict`` latency on 1 and 32 rows too (fastnn ``model.predict``, torch under
``inference_mode`` in eval mode, sklearn ``predict_proba``, and ONNX Runtime running fastnn's
model exported by ``fastnn.export_onnx``; after one training epoch; medians of rounds of
1,000 calls timed in groups of 10).
``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are removed from the workers' environment
(``--keep-openblas-env`` keeps them): set for old processors, they pin NumPy's and SciPy's
OpenBLAS to older kernels than the machine has, which PyTorch does not follow.
The header names the OpenBLAS kernels that ran (threadpoolctl's ``architecture``).

Data: the first n of the 10,000 MNIST images that ship with fastnn, in file order (float32 in
[0, 1], 784 features, int64 labels). One epoch = ceil(n / batch) steps over a fresh shuffle, the
last batch partial; every implementation does exactly that work. What each number covers:

- fastnn: ``history["seconds"][0]`` of ``fastnn.fit(epochs=1, verbose=0, seed=k)`` in round k,
  on one model and optimizer kept across rounds. That is fit's epoch loop (shuffle, gathering each
  batch, forward, loss, accuracy count, backward, optimizer step, the per-epoch weight
  snapshot and finiteness check); fit's one-time input checks and buffer allocation happen
  before the epoch's clock starts.
- fastnn-numpy: the same, with every kernel swapped for its NumPy twin
  (``reference_mode.reference_kernels``).
- torch: ``time.perf_counter`` around the whole epoch loop: ``torch.randperm`` (seeded
  generator), ``x[idx]``, ``zero_grad(set_to_none=True)``, forward, loss, backward, step.
- sklearn: ``perf_counter`` around one ``MLPClassifier.fit`` call with ``warm_start=True,
  max_iter=1`` (one epoch; it includes sklearn's own per-call input validation, about a
  millisecond). ``random_state`` is a ``RandomState(0)`` instance so that each epoch shuffles
  anew (an int would re-seed every call); SGD runs with ``momentum=0``, as plain SGD.
  Main configs without batch norm or dropout only.
- onnxruntime (predict latency only): fastnn trains the model as in the fastnn column (same
  seeds, same weights), ``fastnn.export_onnx`` writes it, and ``InferenceSession.run`` on the
  CPU execution provider (``intra_op_num_threads`` = ``--threads``, ``inter_op_num_threads``
  1, other settings ONNX Runtime's defaults) gives the logits, as fastnn's ``predict``.
- gemm-floor: ``perf_counter`` around the matrix products alone, through NumPy's BLAS into
  preallocated float32 buffers: per step and Linear layer x @ W, x.T @ dz and (except the
  first layer) dz @ W.T, for the same batches as an epoch. No elementwise work at all. For
  C1 and C2 the same for each convolution as im2col computes it (``ConvFloor``): no im2col,
  col2im or pooling.

Method: each implementation runs in its own worker process, started fresh for this run, as
it would run in a program of its own: fastnn with the OpenMP settings ``import fastnn``
chooses (``OMP_WAIT_POLICY=PASSIVE`` unless set), PyTorch with its defaults. Sharing one
process is not neutral: when torch is imported first, Numba's parallel kernels bind to
torch's OpenMP runtime, whose threads spin after each parallel region and take the cores
the next matrix product needs (a T3 epoch of fastnn took 1.64 s with torch imported
first, 0.77 s without); imported the other way round, torch's threads wait passively and
its small-batch epochs slow down. Each worker loads the data itself and limits Numba,
BLAS and OpenMP to ``--threads`` (``fastnn.set_num_threads``, ``torch.set_num_threads``,
``threadpoolctl``). The parent only sends commands: build a config's model, run an
epoch. Each implementation runs one untimed warm-up epoch (Numba compilation, first
touch), then ``--repeats`` rounds each time one epoch of every implementation in turn (the
starting implementation rotates per round, so machine noise hits all alike); idle workers
wait on a pipe and use no CPU. The table gives the median seconds per epoch and ratios of
medians.

Where an epoch has more than ``--max-steps`` steps (batch 1 and 8 in the batch sweep), every
implementation runs ``max-steps`` full batches over the first ``max-steps * batch`` images and
the time is scaled to the epoch's step count: marked "extrapolated" in table and JSON.
"""

import argparse
import contextlib
import dataclasses
import gzip
import importlib
import importlib.util
import json
import math
import multiprocessing
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time
import traceback
import warnings

import numpy as np

# This module imports neither fastnn nor torch at the top: the parent process only drives
# the workers, and each worker imports what its implementation needs (``_start``).

IMPLS = ("fastnn", "fastnn-numpy", "torch", "sklearn", "onnxruntime", "gemm-floor")
# Implementations timed for predict only (they run fastnn's trained model another way).
PREDICT_ONLY = ("onnxruntime",)
SWEEP_IMPLS = ("fastnn", "fastnn-before", "torch", "gemm-floor")
# With --before PYTHON: a fastnn installed in another environment (an earlier commit), run
# by that interpreter, side by side with this one.
BEFORE = "fastnn-before"
RATIOS = (
    ("fastnn", BEFORE),
    (BEFORE, "gemm-floor"),
    ("fastnn", "torch"),
    ("fastnn", "gemm-floor"),
    ("fastnn-numpy", "fastnn"),
    ("sklearn", "fastnn"),
)
PACKAGES = {"torch": "torch", "sklearn": "sklearn", "onnxruntime": "onnxruntime"}
OPTIMIZERS = {"adam": "Adam", "sgd": "SGD"}


@dataclasses.dataclass(frozen=True)
class Config:
    """One network and training setting."""

    name: str
    sizes: tuple
    batch_size: int
    optimizer: str  # "adam" or "sgd"
    lr: float
    batchnorm: bool = False
    dropout: float = 0.0
    group: str = "main"
    activation: str = "relu"  # or "tanh"
    model: str = "mlp"  # or a convolutional network of CONV_NETS, on (n, 1, 28, 28) images

    def describe(self):
        if self.model != "mlp":
            return (
                f"{CONV_NETS[self.model]}, {OPTIMIZERS[self.optimizer]} lr {self.lr:g}, "
                f"batch {self.batch_size}"
            )
        extra = (" + batch norm" if self.batchnorm else "") + (
            f" + dropout {self.dropout:g}" if self.dropout else ""
        )
        return (
            f"{network(self.sizes)} {ACTIVATION_NAMES[self.activation]}{extra}, "
            f"{OPTIMIZERS[self.optimizer]} lr {self.lr:g}, "
            f"batch {self.batch_size}"
        )


def network(sizes):
    """'784-100x5-10' for (784, 100, 100, 100, 100, 100, 10)."""
    hidden = []
    for s in sizes[1:-1]:
        if hidden and hidden[-1][0] == s:
            hidden[-1][1] += 1
        else:
            hidden.append([s, 1])
    middle = [f"{s}x{k}" if k > 1 else str(s) for s, k in hidden]
    return "-".join([str(sizes[0]), *middle, str(sizes[-1])])


ACTIVATION_NAMES = {"relu": "ReLU", "tanh": "tanh"}
T1_SIZES = (784, 100, 100, 100, 100, 100, 10)
MAIN = {
    "T1": Config("T1", T1_SIZES, 100, "adam", 1e-3),
    "T2": Config("T2", (784, 50, 10), 100, "sgd", 0.1),
    "T3": Config("T3", (784, 1024, 1024, 10), 512, "adam", 1e-3),
    "T4": Config("T4", T1_SIZES, 100, "adam", 1e-3, batchnorm=True, dropout=0.2),
    "T5": Config("T5", (784, 1024, 1024, 10), 512, "adam", 1e-3, activation="tanh"),  # T3, tanh
}
# The convolutional networks (ReLU, max pooling, Adam, batch 100, as the course trains them):
# C1 the course's SimpleConvNet, C2 LeNet-5 as built today (ReLU and max pooling where the
# 1998 network had scaled tanh and subsampling).
CONV_NETS = {
    "simple-cnn": "SimpleConvNet: conv 30x5x5 - ReLU - max-pool 2 - 100 - ReLU - 10",
    "lenet5": "LeNet-5: conv 6x5x5 pad 2 - ReLU - max-pool 2 - conv 16x5x5 - ReLU - max-pool 2"
    " - 120 - ReLU - 84 - ReLU - 10",
}
CONV = {
    "C1": Config("C1", (784, 10), 100, "adam", 1e-3, model="simple-cnn"),
    "C2": Config("C2", (784, 10), 100, "adam", 1e-3, model="lenet5"),
}
# The products of each network, per image: (output positions, inputs per position, outputs,
# first layer?) for every convolution (as im2col products: positions x (channels * kh * kw))
# and every affine layer (1 position).
CONV_PRODUCTS = {
    "simple-cnn": [(24 * 24, 25, 30, True), (1, 30 * 12 * 12, 100, False), (1, 100, 10, False)],
    "lenet5": [
        (28 * 28, 25, 6, True),
        (10 * 10, 6 * 25, 16, False),
        (1, 16 * 5 * 5, 120, False),
        (1, 120, 84, False),
        (1, 84, 10, False),
    ],
}
ALL_CONFIGS = {**MAIN, **CONV}
# Configs whose predict latency is measured (--predict), and the rows per call.
PREDICT_CONFIGS = ("T1", "T3")
PREDICT_ROWS = (1, 32)
PREDICT_IMPLS = ("fastnn", BEFORE, "torch", "sklearn", "onnxruntime")
# The implementations fastnn's predict latency is divided by, in the ratios.
PREDICT_RATIOS = ("torch", "sklearn", "onnxruntime")
# Set by this workplace for old processors; they pin NumPy's and SciPy's OpenBLAS to AVX2
# kernels on AVX-512 machines, while PyTorch picks its own. Removed for the workers unless
# --keep-openblas-env: benchmark as a user's machine runs.
OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# The sweeps' values, full and with --quick.
SWEEPS = {
    "batch": ((1, 8, 32, 100, 256, 1024), (8, 100)),
    "width": ((64, 128, 256, 512, 1024, 2048), (64,)),
}


def sweep_configs(kind, values):
    if kind == "batch":
        return [Config(f"batch={b}", T1_SIZES, b, "adam", 1e-3, group="batch") for b in values]
    return [Config(f"width={w}", (784, w, w, 10), 100, "adam", 1e-3, group="width") for w in values]


SWEEP_TITLES = {
    "batch": f"batch-size sweep: {network(T1_SIZES)} ReLU, Adam lr 0.001",
    "width": "width sweep: 784-W-W-10 ReLU, Adam lr 0.001, batch 100",
}


class Skipped(Exception):
    """An implementation that cannot run a config; the message says why."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """How many images and steps one timed epoch uses, and the factor to a full epoch."""

    rows: int
    steps_per_epoch: int
    timed_steps: int
    scale: float
    extrapolated: bool


def plan_epoch(n, batch_size, max_steps):
    steps = math.ceil(n / batch_size)
    if steps <= max_steps:
        return Plan(n, steps, steps, 1.0, False)
    return Plan(max_steps * batch_size, steps, max_steps, steps / max_steps, True)


def batch_sizes(rows, batch_size):
    """The batch sizes of one epoch over ``rows`` images: full batches, then the remainder."""
    full, last = divmod(rows, batch_size)
    return [batch_size] * full + ([last] if last else [])


# -- the implementations: each is built once per config; epoch() returns seconds --------------
class Fastnn:
    def __init__(self, cfg, x, y, reference=False):
        self.reference = None
        if reference:
            try:  # run as a script, bench/ is on sys.path
                from reference_mode import kernel_twins, reference_kernels
            except ImportError:
                from bench.reference_mode import kernel_twins, reference_kernels

            try:
                kernel_twins()
            except LookupError as e:
                raise Skipped(str(e)) from None
            self.reference = reference_kernels
        import fastnn as fn

        self.fit = fn.fit
        self.cfg, self.x, self.y = cfg, x, y
        if cfg.model == "mlp":
            self.model = fn.MLP(
                list(cfg.sizes),
                activation=cfg.activation,
                batchnorm=cfg.batchnorm,
                dropout=cfg.dropout,
                seed=0,
            )
        else:
            self.x = x.reshape(-1, 1, 28, 28)
            self.model = {"simple-cnn": fn.nn.simple_conv_net, "lenet5": fn.nn.lenet5}[cfg.model](
                seed=0
            )
        params = self.model.parameters()
        if cfg.optimizer == "adam":
            self.optimizer = fn.optim.Adam(params, lr=cfg.lr)
        else:
            self.optimizer = fn.optim.SGD(params, lr=cfg.lr)
        self.seed = 0

    def epoch(self):
        with self.reference() if self.reference else contextlib.nullcontext():
            history = self.fit(
                self.model,
                self.x,
                self.y,
                optimizer=self.optimizer,
                epochs=1,
                batch_size=self.cfg.batch_size,
                verbose=0,
                seed=self.seed,
            )
        self.seed += 1
        return history["seconds"][0]

    def predict(self, x):
        return self.model.predict(x)


class Torch:
    def __init__(self, cfg, x, y):
        import torch
        from torch import nn

        torch.manual_seed(0)
        sizes, layers = cfg.sizes, []
        if cfg.model == "simple-cnn":
            x = x.reshape(-1, 1, 28, 28)
            layers = [nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
            layers += [nn.Linear(30 * 12 * 12, 100), nn.ReLU()]
            sizes = (100, 10)
        elif cfg.model == "lenet5":
            x = x.reshape(-1, 1, 28, 28)
            layers = [nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)]
            layers += [nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten()]
            layers += [nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU()]
            sizes = (84, 10)
        for i in range(len(sizes) - 2):
            if cfg.batchnorm:
                layers += [
                    nn.Linear(sizes[i], sizes[i + 1], bias=False),
                    nn.BatchNorm1d(sizes[i + 1]),
                ]
            else:
                layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            layers.append(nn.ReLU() if cfg.activation == "relu" else nn.Tanh())
            if cfg.dropout:
                layers.append(nn.Dropout(cfg.dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.model = nn.Sequential(*layers)
        self.model.train()
        self.loss = nn.CrossEntropyLoss()
        optim = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.SGD
        self.optimizer = optim(self.model.parameters(), lr=cfg.lr)
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.generator = torch.Generator().manual_seed(0)
        self.torch, self.batch_size = torch, cfg.batch_size

    def epoch(self):
        model, loss_fn, opt, x, y, b = (
            self.model,
            self.loss,
            self.optimizer,
            self.x,
            self.y,
            self.batch_size,
        )
        n = x.shape[0]
        start = time.perf_counter()
        perm = self.torch.randperm(n, generator=self.generator)
        for lo in range(0, n, b):
            idx = perm[lo : lo + b]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - start

    def predict(self, x):
        self.model.eval()
        try:
            with self.torch.inference_mode():
                return self.model(self.torch.from_numpy(x))
        finally:
            self.model.train()


class OnnxRuntime(Fastnn):
    """fastnn's model, trained by fastnn, run for predict by ONNX Runtime."""

    def __init__(self, cfg, x, y):
        super().__init__(cfg, x, y)
        self.session = None

    def epoch(self):
        self.session = None  # new weights: export again
        return super().epoch()

    def _session(self):
        import tempfile

        import onnxruntime

        import fastnn as fn

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = fn.get_num_threads()  # set to --threads by _start
        options.inter_op_num_threads = 1
        with tempfile.TemporaryDirectory() as folder:
            path = fn.export_onnx(self.model, os.path.join(folder, "model.onnx"))
            return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def predict(self, x):
        if self.session is None:
            self.session = self._session()
        return self.session.run(None, {"x": x})[0]


class Sklearn:
    def __init__(self, cfg, x, y):
        if cfg.batchnorm or cfg.dropout:
            raise Skipped("MLPClassifier has no batch norm or dropout")
        if cfg.model != "mlp":
            raise Skipped("MLPClassifier has no convolutions")
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier

        kw = {}
        if cfg.optimizer == "sgd":  # sklearn's SGD defaults to Nesterov momentum 0.9
            kw = {"momentum": 0.0, "nesterovs_momentum": False, "learning_rate": "constant"}
        self.model = MLPClassifier(
            hidden_layer_sizes=cfg.sizes[1:-1],
            activation=cfg.activation,
            solver=cfg.optimizer,
            batch_size=cfg.batch_size,
            learning_rate_init=cfg.lr,
            alpha=0.0,
            max_iter=1,
            warm_start=True,
            shuffle=True,
            random_state=np.random.RandomState(0),
            tol=0.0,
            n_iter_no_change=10**9,
            **kw,
        )
        self.x, self.y, self.warning = x, y, ConvergenceWarning

    def epoch(self):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", self.warning)
            start = time.perf_counter()
            self.model.fit(self.x, self.y)
            return time.perf_counter() - start

    def predict(self, x):
        return self.model.predict_proba(x)  # the outputs (sklearn has no logits)


class GemmFloor:
    def __new__(cls, cfg, x, y):
        if cfg.model != "mlp":
            return ConvFloor(cfg, x, y)
        return super().__new__(cls)

    def __init__(self, cfg, x, y):
        rng = np.random.default_rng(0)
        sizes = cfg.sizes
        self.batches = batch_sizes(x.shape[0], cfg.batch_size)
        self.weights = [
            (rng.standard_normal((a, b), dtype=np.float32) * np.float32(math.sqrt(2 / a)))
            for a, b in zip(sizes[:-1], sizes[1:], strict=True)
        ]
        self.dweights = [np.empty_like(w) for w in self.weights]
        # Per batch size: the layers' inputs/outputs and their gradients, chained as in training.
        self.buffers = {}
        for m in set(self.batches):
            acts = [rng.random((m, s), dtype=np.float32) for s in sizes]
            grads = [
                rng.standard_normal((m, s), dtype=np.float32) * np.float32(0.01) for s in sizes
            ]
            self.buffers[m] = (acts, grads)

    def epoch(self):
        weights, dweights, layers = self.weights, self.dweights, range(len(self.weights))
        start = time.perf_counter()
        for m in self.batches:
            acts, grads = self.buffers[m]
            for i in layers:
                np.matmul(acts[i], weights[i], out=acts[i + 1])
            for i in reversed(layers):
                np.matmul(acts[i].T, grads[i + 1], out=dweights[i])
                if i > 0:
                    np.matmul(grads[i + 1], weights[i].T, out=grads[i])
        return time.perf_counter() - start


class ConvFloor:
    """A convolutional network's matrix products alone, as im2col computes a convolution:
    per step and layer (m images, P output positions each, K inputs per position, C outputs)
    cols (m P, K) @ W (K, C) forward, cols.T @ dout (K, C) for the weights, and (except the
    first layer) dout @ W.T (m P, K) for the input; affine layers are P = 1. Preallocated
    float32 buffers through NumPy's BLAS; no im2col, pooling or elementwise work."""

    def __init__(self, cfg, x, y):
        rng = np.random.default_rng(0)
        layers = CONV_PRODUCTS[cfg.model]
        self.batches = batch_sizes(x.shape[0], cfg.batch_size)
        self.weights = [rng.standard_normal((k, c), dtype=np.float32) for _, k, c, _ in layers]
        self.dweights = [np.empty_like(w) for w in self.weights]
        self.buffers = {
            m: [
                (
                    rng.random((m * p, k), dtype=np.float32),  # cols
                    np.empty((m * p, c), np.float32),  # out
                    rng.standard_normal((m * p, c), dtype=np.float32),  # dout
                    None if first else np.empty((m * p, k), np.float32),  # dcols
                )
                for p, k, c, first in layers
            ]
            for m in set(self.batches)
        }

    def epoch(self):
        weights, dweights = self.weights, self.dweights
        start = time.perf_counter()
        for m in self.batches:
            layers = self.buffers[m]
            for (cols, out, _, _), w in zip(layers, weights, strict=True):
                np.matmul(cols, w, out=out)
            for (cols, _, dout, dcols), w, dw in zip(layers, weights, dweights, strict=True):
                np.matmul(cols.T, dout, out=dw)
                if dcols is not None:
                    np.matmul(dout, w.T, out=dcols)
        return time.perf_counter() - start


FACTORIES = {
    "fastnn": Fastnn,
    "fastnn-numpy": lambda cfg, x, y: Fastnn(cfg, x, y, reference=True),
    "torch": Torch,
    "sklearn": Sklearn,
    "onnxruntime": OnnxRuntime,
    "gemm-floor": GemmFloor,
    BEFORE: Fastnn,
}


# -- the workers: one process per implementation ---------------------------------------------
def _start(impl, threads):
    """Import what ``impl`` needs in this worker and set its thread counts; ImportError when
    its package is missing."""
    policy = os.environ.get("OMP_WAIT_POLICY")  # as the implementation finds it
    if impl.startswith("fastnn"):
        import fastnn as fn

        fn.set_num_threads(threads)
        policy = os.environ.get("OMP_WAIT_POLICY")  # import fastnn sets PASSIVE unless set
    elif impl == "torch":
        import torch

        torch.set_num_threads(threads)
    elif impl == "sklearn":
        importlib.import_module("sklearn.neural_network")
    elif impl == "onnxruntime":
        importlib.import_module("onnxruntime")
        importlib.import_module("onnx")  # what fastnn.export_onnx needs
        import fastnn as fn

        fn.set_num_threads(threads)  # fastnn trains the model this worker runs
        policy = os.environ.get("OMP_WAIT_POLICY")  # for fastnn's kernels; ORT has no OpenMP
    return policy or "default"


def _info(impl, policy):
    """Versions, thread pools and OpenMP policy as this worker sees them."""
    from threadpoolctl import threadpool_info

    versions = {"numpy": np.__version__}
    layer = None
    if impl.startswith("fastnn"):
        import numba

        import fastnn

        versions = {"fastnn": fastnn.__version__, **versions, "numba": numba.__version__}
        versions["fastnn_path" if impl == "fastnn" else f"{impl}_path"] = fastnn.__file__
        with contextlib.suppress(ValueError):  # no parallel kernel ran
            layer = numba.threading_layer()
    elif impl in PACKAGES:
        versions[PACKAGES[impl]] = importlib.import_module(PACKAGES[impl]).__version__
    return {
        "versions": versions,
        "omp_wait_policy": policy,
        "numba_threading_layer": layer,
        "threadpools": [
            {
                k: p.get(k)
                for k in ("user_api", "internal_api", "version", "num_threads", "architecture")
            }
            | {"library": os.path.basename(p.get("filepath", ""))}
            for p in threadpool_info()
        ],
    }


def _serve(conn, impl, threads, images, sys_path=None):
    """A worker's loop: answer ("build", config fields), ("epoch", None), ("info", None) and
    ("stop", None) with (status, payload), status "ok", "skipped" or "error". ``sys_path``:
    the module path of another interpreter's environment (``--before``), which replaces the
    parent's that multiprocessing hands down, before fastnn is imported."""
    if sys_path is not None:
        sys.path[:] = sys_path
    try:
        policy = _start(impl, threads)
    except ImportError as e:
        conn.send(("skipped", f"{PACKAGES.get(impl, impl)} not installed ({e})"))
        return
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    from threadpoolctl import threadpool_limits

    x, y = load_data(images)
    runner = None
    conn.send(("ok", None))
    with threadpool_limits(limits=threads):
        while True:
            command, arg = conn.recv()
            try:
                if command == "stop":
                    break
                if command == "build":
                    runner = None  # free the previous config's model first
                    cfg, rows = Config(**arg[0]), arg[1]
                    runner = FACTORIES[impl](cfg, x[:rows], y[:rows])
                    reply = None
                elif command == "epoch":
                    reply = runner.epoch()
                elif command == "latency":
                    reply = latency(runner, x[: arg[0]].copy(), arg[1])
                elif command == "info":
                    reply = _info(impl, policy)
                else:
                    raise ValueError(f"unknown command {command!r}")
            except Skipped as e:
                conn.send(("skipped", str(e)))
            except Exception:
                conn.send(("error", traceback.format_exc()))
            else:
                conn.send(("ok", reply))


def latency(runner, x, calls):
    """Median seconds of one ``runner.predict(x)`` call: ``calls`` calls, timed in groups of
    10 (a timer read costs about as much as a small call), after 10 untimed ones."""
    if not hasattr(runner, "predict"):
        raise Skipped("no predict")
    for _ in range(10):
        runner.predict(x)
    groups = []
    for _ in range(max(1, calls // 10)):
        start = time.perf_counter()
        for _ in range(10):
            runner.predict(x)
        groups.append((time.perf_counter() - start) / 10)
    return statistics.median(groups)


class WorkerError(RuntimeError):
    """An implementation failed in its worker; the message holds the worker's traceback."""


class Worker:
    """The parent's handle on one implementation's process."""

    def __init__(self, impl, threads, images, python=None):
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing inherited
        self.impl = impl
        self.conn, child = ctx.Pipe()
        sys_path = None
        if python is not None:  # another environment's interpreter, with its own sys.path
            sys_path = json.loads(
                subprocess.run(
                    [python, "-c", "import json, sys; print(json.dumps(sys.path[1:]))"],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
            )
        self.process = ctx.Process(
            target=_serve,
            args=(child, impl, threads, images, sys_path),
            name=f"compare-{impl}",
            daemon=True,
        )
        if python is not None:
            ctx.set_executable(python)
        try:
            self.process.start()
        finally:
            ctx.set_executable(sys.executable)
        child.close()
        self.status, self.reason = self._receive()

    def _receive(self):
        try:
            status, payload = self.conn.recv()
        except EOFError:
            self.process.join(5)
            raise WorkerError(
                f"the {self.impl} worker exited (code {self.process.exitcode})"
            ) from None
        if status == "error":
            raise WorkerError(f"{self.impl} failed in its worker:\n{payload}")
        return status, payload

    def call(self, command, arg=None):
        """(status, payload) of one command; raises WorkerError on a failure in the worker."""
        self.conn.send((command, arg))
        return self._receive()

    def close(self):
        with contextlib.suppress(OSError, EOFError, WorkerError):
            if self.process.is_alive():
                self.conn.send(("stop", None))
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
        self.conn.close()


def start_workers(impls, threads, images, before=None):
    """({impl: Worker} of those that started, {impl: why skipped})."""
    workers, skipped = {}, {}
    try:
        for impl in impls:
            worker = Worker(impl, threads, images, before if impl == BEFORE else None)
            if worker.status == "skipped":
                skipped[impl] = worker.reason
                worker.close()
                print(f"compare: skipping {impl}: {worker.reason}", file=sys.stderr)
            else:
                workers[impl] = worker
    except BaseException:
        for w in workers.values():
            w.close()
        raise
    return workers, skipped


# -- running ------------------------------------------------------------------------------
def run_config(cfg, workers, images, repeats, max_steps, settle=0.0):
    """Warm up, then ``repeats`` alternating rounds; the result dict that goes into the JSON.

    ``settle`` seconds of pause before each timed epoch let the previous implementation's
    idle threads stop spinning (OpenBLAS's and OpenMP's workers busy-wait a while after their
    last task before they sleep)."""
    plan = plan_epoch(images, cfg.batch_size, max_steps)
    ready, notes = [], {}
    for name, worker in workers.items():
        status, reason = worker.call("build", (dataclasses.asdict(cfg), plan.rows))
        if status == "skipped":
            notes[name] = reason
        else:
            ready.append(name)
    for name in ready:
        print(f"  {cfg.name}: warming up {name}", file=sys.stderr, flush=True)
        workers[name].call("epoch")
    times = {name: [] for name in ready}
    for r in range(repeats):
        k = r % len(ready) if ready else 0
        for name in ready[k:] + ready[:k]:
            time.sleep(settle)
            times[name].append(workers[name].call("epoch")[1])
    median = {name: statistics.median(t) * plan.scale for name, t in times.items()}
    ratios = {f"{a}/{b}": median[a] / median[b] for a, b in RATIOS if a in median and b in median}
    print(
        f"{cfg.name}: " + ", ".join(f"{k} {v:.4f} s" for k, v in median.items()),
        file=sys.stderr,
        flush=True,
    )
    return {
        "name": cfg.name,
        "group": cfg.group,
        "description": cfg.describe(),
        "sizes": list(cfg.sizes),
        "batch_size": cfg.batch_size,
        "optimizer": cfg.optimizer,
        "lr": cfg.lr,
        "batchnorm": cfg.batchnorm,
        "dropout": cfg.dropout,
        "images": plan.rows,
        "steps_per_epoch": plan.steps_per_epoch,
        "timed_steps": plan.timed_steps,
        "extrapolated": plan.extrapolated,
        "scale": plan.scale,
        "times": times,
        "median": median,
        "ratios": ratios,
        "notes": notes,
    }


def run_predict(cfg, workers, images, repeats, calls):
    """Predict latency of ``cfg``'s model after one training epoch (sklearn needs a fit):
    {"name", "rows", "median": {impl: seconds per call}, "times", "ratios", "notes"} per
    row count, ``repeats`` alternating rounds of ``calls`` calls each."""
    plan = plan_epoch(images, cfg.batch_size, 10**9)
    ready, notes = [], {}
    for name, worker in workers.items():
        status, reason = worker.call("build", (dataclasses.asdict(cfg), plan.rows))
        if status == "skipped":
            notes[name] = reason
            continue
        worker.call("epoch")
        ready.append(name)
    out = []
    for rows in PREDICT_ROWS:
        times = {name: [] for name in ready}
        for r in range(repeats):
            k = r % len(ready) if ready else 0
            for name in ready[k:] + ready[:k]:
                times[name].append(workers[name].call("latency", (rows, calls))[1])
        median = {name: statistics.median(t) for name, t in times.items()}
        ratios = {
            f"fastnn/{b}": median["fastnn"] / median[b]
            for b in PREDICT_RATIOS
            if "fastnn" in median and b in median
        }
        print(
            f"{cfg.name} predict {rows} rows: "
            + ", ".join(f"{k} {v * 1e6:.1f} us" for k, v in median.items()),
            file=sys.stderr,
            flush=True,
        )
        out.append(
            {
                "name": cfg.name,
                "group": "predict",
                "description": cfg.describe(),
                "rows": rows,
                "calls": calls,
                "times": times,
                "median": median,
                "ratios": ratios,
                "notes": notes,
            }
        )
    return out


def predict_table(results, impls):
    """Markdown table of predict latencies (microseconds per call, medians) and ratios."""
    from fastnn._table import format_table

    ratios = [f"fastnn/{b}" for b in PREDICT_RATIOS if b in impls and "fastnn" in impls]
    rows = []
    for r in results:
        cells = [f"{r['median'][i] * 1e6:.1f}" if i in r["median"] else "-" for i in impls]
        cells += [f"{r['ratios'][k]:.2f}" if k in r["ratios"] else "-" for k in ratios]
        rows.append([r["name"], str(r["rows"]), *cells])
    heads = ["config", "rows", *(f"{i} us" for i in impls), *ratios]
    return "\n".join(format_table(heads, rows, markdown=True))


def _read_idx_gz(path, magic):
    """The array in a gzipped IDX file of unsigned bytes (MNIST's format)."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    if data[:4] != bytes([0, 0, 8, ndim]) or ndim != magic:
        raise ValueError(f"{path}: not an IDX file of {magic}-dimensional unsigned bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    return np.frombuffer(data, np.uint8, math.prod(shape), 4 + 4 * ndim).reshape(shape)


def load_data(n):
    """The first ``n`` MNIST images that ship with fastnn: x (n, 784) float32, y (n,) int64.

    Read from the package's files without importing fastnn (whose import sets OpenMP's
    policy for whoever loads OpenMP next)."""
    spec = importlib.util.find_spec("fastnn")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("fastnn is not installed: pip install . (or -e .) first")
    folder = pathlib.Path(list(spec.submodule_search_locations)[0]) / "data" / "mnist"
    images = _read_idx_gz(folder / "t10k-images-idx3-ubyte.gz", 3)[:n]
    labels = _read_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", 1)[:n]
    x = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return np.ascontiguousarray(x), labels.astype(np.int64)


def usable_cores():
    """The cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def cpu_model():
    with contextlib.suppress(OSError):
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine(threads, workers):
    """The machine, and each implementation's versions, thread pools and OpenMP policy."""
    infos = {impl: w.call("info")[1] for impl, w in workers.items()}
    versions = {"python": platform.python_version()}
    for info in infos.values():
        versions.update(info["versions"])
    return {
        "cpu": cpu_model(),
        "cores": usable_cores(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "versions": versions,
        "processes": "one per implementation",
        "implementations": infos,
    }


def header(m, settings):
    order = ["fastnn", "numpy", "numba", "torch", "sklearn", "onnxruntime"]
    named = sorted(
        (k for k in m["versions"] if k != "python" and not k.endswith("_path")),
        key=lambda k: (k not in order, order.index(k) if k in order else 0, k),
    )
    versions = ", ".join(f"{k} {m['versions'][k]}" for k in named)
    cores = f"{m['cores']} cores" + (
        f" (of {m['cpu_count']})" if m["cpu_count"] and m["cpu_count"] != m["cores"] else ""
    )
    rounds = f"{settings['repeats']} round" + ("s" if settings["repeats"] > 1 else "")
    policies = ", ".join(
        f"{impl} {info['omp_wait_policy']}" for impl, info in m["implementations"].items()
    )
    blas = sorted(
        {
            f"{p['library']} {p['architecture']}"
            for info in m["implementations"].values()
            for p in info["threadpools"]
            if p.get("internal_api") == "openblas"
        }
    )
    pins = settings.get("openblas_env_removed")
    env = (
        f"{', '.join(pins)} unset for the workers"
        if pins
        else ("OpenBLAS environment kept" if settings.get("keep_openblas_env") else "no pins set")
    )
    return (
        f"{m['cpu']} | {cores} | {m['threads']} threads | {versions} | "
        f"OpenBLAS kernels: {', '.join(blas) or 'none'} ({env}) | "
        f"Python {m['versions']['python']} | one process per implementation, "
        f"OMP_WAIT_POLICY: {policies} | "
        f"median of {rounds}, seconds per epoch over {settings['images']} MNIST images"
    )


def table(results, impls):
    """Markdown table of medians (s/epoch) and ratios for ``results`` over ``impls``."""
    # fastnn's one table formatter. Imported here, once every worker has started: importing
    # fastnn sets OMP_WAIT_POLICY in this process's environment, which workers started
    # afterwards would inherit (PyTorch's among them).
    from fastnn._table import format_table

    ratios = [f"{a}/{b}" for a, b in RATIOS if a in impls and b in impls]
    rows, footnotes = [], []
    for r in results:
        steps = f"{r['steps_per_epoch']}" + ("*" if r["extrapolated"] else "")
        cells = [f"{r['median'][i]:.4f}" if i in r["median"] else "-" for i in impls]
        cells += [f"{r['ratios'][k]:.2f}" if k in r["ratios"] else "-" for k in ratios]
        rows.append([r["name"], steps, *cells])
        if r["extrapolated"]:
            footnotes.append(
                f"\\* {r['name']}: extrapolated: timed {r['timed_steps']} steps over the first "
                f"{r['images']} images, scaled by {r['scale']:.3g} to {r['steps_per_epoch']} steps."
            )
        footnotes += [f"{r['name']}: {i} skipped: {why}." for i, why in r["notes"].items()]
    lines = format_table(["config", "steps/epoch", *impls, *ratios], rows, markdown=True)
    return "\n".join(lines + ([""] + footnotes if footnotes else []))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--threads", type=int, default=None, help="threads for everyone (default: all usable cores)"
    )
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (5; --quick 1)")
    p.add_argument("--config", nargs="+", type=str.upper, choices=sorted(ALL_CONFIGS), default=None)
    p.add_argument("--sweep", action="append", choices=("batch", "width"), default=[])
    p.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    p.add_argument(
        "--before",
        metavar="PYTHON",
        default=None,
        help=f"also run '{BEFORE}': the fastnn of another environment (an earlier commit "
        "installed there; same NumPy), by that environment's interpreter",
    )
    p.add_argument("--images", type=int, default=None, help="MNIST images (10000; --quick 300)")
    p.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="longer epochs are timed over this many steps and extrapolated (1000; --quick 20)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds of pause before each timed epoch, for idle threads to stop spinning "
        "(0.5; --quick 0.05)",
    )
    p.add_argument(
        "--predict",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"time predict on {' and '.join(map(str, PREDICT_ROWS))} rows for "
        f"{' and '.join(PREDICT_CONFIGS)} (of those in --config)",
    )
    p.add_argument(
        "--predict-calls", type=int, default=None, help="calls per round (1000; --quick 50)"
    )
    p.add_argument(
        "--keep-openblas-env",
        action="store_true",
        help=f"leave {' and '.join(OPENBLAS_PINS)} set for the workers (default: unset them)",
    )
    p.add_argument("--json", type=pathlib.Path, default=None, help="write all figures here")
    p.add_argument("--quick", action="store_true", help="1 round, 300 images, T2, tiny sweeps")
    args = p.parse_args(argv)
    q = args.quick
    defaults = {
        "repeats": (5, 1),
        "images": (10000, 300),
        "max_steps": (1000, 20),
        "settle": (0.5, 0.05),
        "predict_calls": (1000, 50),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if q else full)
    args.config = args.config or (["T2"] if q else list(ALL_CONFIGS))
    limit = usable_cores()
    if args.threads is None:
        args.threads = min(usable_cores(), limit)
    if args.settle < 0:
        p.error("--settle must be at least 0")
    for name in ("repeats", "images", "max_steps", "predict_calls"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 1 <= args.threads <= limit:
        p.error(f"--threads must be 1 to {limit}")
    if not 1 <= args.images <= 10000:
        p.error("--images must be 1 to 10000")
    return args


def main(argv=None):
    args = parse_args(argv)
    groups = []  # (title, configs, implementations, legend?) per table
    sweeps = list(dict.fromkeys(args.sweep or (list(SWEEPS) if args.quick else [])))
    removed = []
    if not args.keep_openblas_env:
        for name in OPENBLAS_PINS:
            if os.environ.pop(name, None) is not None:
                removed.append(name)
    impls = list(args.impls)
    predicted = [c for c in args.config if c in PREDICT_CONFIGS] if args.predict else []
    if not predicted:
        impls = [i for i in impls if i not in PREDICT_ONLY]
    if args.before:
        impls.insert(impls.index("fastnn") + 1 if "fastnn" in impls else 0, BEFORE)
    workers, skipped = start_workers(impls, args.threads, args.images, args.before)
    try:
        available = list(workers)
        trained = [i for i in available if i not in PREDICT_ONLY]
        mlps = [MAIN[c] for c in args.config if c in MAIN]
        convs = [CONV[c] for c in args.config if c in CONV]
        if mlps:
            groups.append(("main configs", mlps, trained, True))
        if convs:
            groups.append(("convolutional networks", convs, trained, True))
        for kind in sweeps:
            values = SWEEPS[kind][1 if args.quick else 0]
            impls = [i for i in available if i in SWEEP_IMPLS]
            groups.append((SWEEP_TITLES[kind], sweep_configs(kind, values), impls, False))
        tables, results = [], []
        for title, configs, impls, with_legend in groups:
            chosen = {i: workers[i] for i in impls}
            rows = [
                run_config(c, chosen, args.images, args.repeats, args.max_steps) for c in configs
            ]
            results += rows
            lines = [f"## {title}", ""]
            if with_legend:
                lines += [f"- {c.name}: {c.describe()}" for c in configs] + [""]
            tables.append("\n".join([*lines, table(rows, impls)]))
        impls = [i for i in available if i in PREDICT_IMPLS]
        if predicted and impls:
            chosen = {i: workers[i] for i in impls}
            rows = []
            for c in predicted:
                rows += run_predict(MAIN[c], chosen, args.images, args.repeats, args.predict_calls)
            results += rows
            title = (
                f"## predict latency: microseconds per call (median of {args.repeats} rounds of "
                f"{args.predict_calls} calls), fastnn predict, torch inference_mode, "
                "sklearn predict_proba, onnxruntime InferenceSession.run"
            )
            tables.append("\n".join([title, "", predict_table(rows, impls)]))
        info = machine(args.threads, workers)
    finally:
        for w in workers.values():
            w.close()

    settings = {
        "threads": args.threads,
        "repeats": args.repeats,
        "images": args.images,
        "max_steps": args.max_steps,
        "settle": args.settle,
        "quick": args.quick,
        "configs": args.config,
        "sweeps": sweeps,
        "implementations": available,
        "predict": args.predict,
        "predict_calls": args.predict_calls,
        "keep_openblas_env": args.keep_openblas_env,
        "openblas_env_removed": removed,
        "units": "seconds per epoch (median); times: raw seconds per timed round, "
        "median = median(times) * scale",
    }
    print(f"# fastnn compare: {header(info, settings)}\n")
    if skipped:
        print("\n".join(f"{i} skipped: {why}" for i, why in skipped.items()) + "\n")
    print("\n\n".join(tables))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"machine": info, "settings": settings, "skipped": skipped, "results": results}
        args.json.write_text(json.dumps(payload, indent=1) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
