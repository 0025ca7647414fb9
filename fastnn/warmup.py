"""Compile every kernel ahead of time (``fastnn warmup``), and report what fastnn runs on
(``fastnn info``).

Kernels are compiled on first use and cached on disk (``cache=True``), so the first training
step of a fresh install waits for the compiler. ``warmup`` runs one tiny step through every
layer, loss and optimizer, for float32 and float64, so that every kernel signature that
training uses is compiled and cached before it is needed (the convolution and pooling layers'
too), and fit's compiled step for an MLP trained with Adam (with and without dropout).
"""

import os
import platform
import sys
import time

import numpy as np

from . import kernels, nn, optim
from ._version import __version__
from .data.datasets import cache_dir as data_cache_dir
from .kernels.dropout import dropout_backward
from .threads import get_num_threads
from .training import fit

# Every optimizer with its defaults, and the options that take another kernel path.
_OPTIMIZERS = [(name, {}) for name in optim.OPTIMIZERS] + [
    ("sgd", {"momentum": 0.9}),
    ("rmsprop", {"momentum": 0.9, "centered": True}),
    ("adam", {"amsgrad": True}),
]


def _step(model, loss, x, t, train=True):
    model.train(train)
    loss.forward(model.forward(x), t)
    model.backward(loss.backward())


def warmup(dtypes=(np.float32, np.float64)):
    """Compile (or load from the cache) every kernel for each of ``dtypes``; returns the
    seconds it took."""
    began = time.perf_counter()
    rng = np.random.default_rng(0)
    for dtype in dtypes:
        x = rng.standard_normal((6, 4)).astype(dtype)
        labels = np.array([0, 1, 2, 0, 1, 2])
        targets = np.eye(3, dtype=dtype)[labels]
        ce, mse = nn.SoftmaxCrossEntropy(), nn.MSELoss()
        for act in nn.ACTIVATIONS:
            # Fused into Linear, then as a layer of its own after batch norm.
            for bn in (False, True):
                model = nn.MLP(
                    [4, 5, 3], activation=act, batchnorm=bn, dropout=0.5, seed=0, dtype=dtype
                )
                _step(model, ce, x, labels)
                _step(model, ce, x, targets, train=False)
                model.backward(ce.backward(), input_grad=False)
        layers = nn.Sequential(
            nn.Linear(4, 6, rng=0, dtype=dtype),
            nn.LeakyReLU(dtype=dtype),
            nn.ELU(dtype=dtype),
            nn.Tanh(dtype=dtype),
            nn.Sigmoid(dtype=dtype),
            nn.Step(dtype=dtype),
            nn.ReLU(dtype=dtype),
            nn.Identity(dtype=dtype),
            nn.Maxout(6, 3, rng=0, dtype=dtype),
            nn.Softmax(dtype=dtype),
            nn.Dropout(0.5, rng=0, dtype=dtype),
            nn.BatchNorm(3, dtype=dtype),
        )
        _step(layers, mse, x, targets)
        model = nn.MLP([4, 5, 3], seed=0, dtype=dtype)
        _step(model, ce, x, labels)
        for name, kwargs in _OPTIMIZERS:
            for decay in (0.0, 0.1):
                opt = optim.get(name, model.parameters(), weight_decay=decay, **kwargs)
                opt.step()
                opt.step()
        model.predict_proba(x)
        # fit's compiled step (kernels._network) for its most common case, an MLP of Linear
        # layers with fused ReLU, cross-entropy on labels and Adam, and predict's forward
        # pass; other combinations of layers, loss and optimizer compile on their first fit.
        for dropout in (0.0, 0.5):
            model = nn.MLP([4, 5, 3], dropout=dropout, seed=0, dtype=dtype)
            opt = optim.Adam(model.parameters())
            fit(model, x, labels, optimizer=opt, epochs=1, batch_size=3, verbose=0, seed=0)
        model.predict(x)
        # The convolution and pooling kernels, with every activation fused into the
        # convolution, and batch norm over images.
        images = rng.standard_normal((2, 2, 6, 6)).astype(dtype)
        for act in nn.ACTIVATIONS:
            conv = nn.Sequential(
                nn.Conv2D(2, 3, 3, padding=1, activation=act, rng=0, dtype=dtype),
                nn.BatchNorm(3, dtype=dtype),
                nn.MaxPool2D(2, dtype=dtype),
                nn.AvgPool2D(1, dtype=dtype),
                nn.Conv2D(3, 3, 1, rng=0, dtype=dtype),
                nn.GlobalAvgPool2D(dtype=dtype),
            )
            _step(conv, ce, images, labels[:2])
            conv.backward(ce.backward(), input_grad=False)
    return time.perf_counter() - began


def cache_dir():
    """Where Numba caches the compiled kernels."""
    import numba

    if numba.config.CACHE_DIR:
        return numba.config.CACHE_DIR
    return os.path.join(os.path.dirname(kernels.__file__), "__pycache__")


def info():
    """What fastnn runs on, as (label, value) pairs: versions, threads, BLAS, cache folders."""
    import llvmlite
    import numba
    import scipy

    # Numba's np.dot uses the BLAS bundled with SciPy; load it so it is listed too.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_info

    # The threading layer is chosen when the first parallel kernel runs: run a tiny one.
    one = np.ones(1, dtype=np.float32)
    dropout_backward(one, one, one.copy())  # dout, mask, dx: the signature training uses
    try:
        layer = numba.threading_layer()
    except ValueError:
        layer = f"not started (configured: {numba.config.THREADING_LAYER})"
    rows = [
        ("fastnn", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", platform.platform()),
        ("numpy", np.__version__),
        ("scipy", scipy.__version__),
        ("numba", numba.__version__),
        ("llvmlite", llvmlite.__version__),
        ("cpu cores", str(os.cpu_count())),
        ("numba threads", f"{get_num_threads()} of {numba.config.NUMBA_NUM_THREADS}"),
        ("numba threading layer", layer),
        ("OMP_WAIT_POLICY", os.environ.get("OMP_WAIT_POLICY", "")),
        ("numba cache", cache_dir()),
    ]
    for lib in threadpool_info():
        if lib.get("user_api") == "blas":
            rows.append(
                (
                    "blas",
                    f"{lib.get('internal_api')} {lib.get('version')} "
                    f"({lib.get('num_threads')} threads, {lib.get('filepath')})",
                )
            )
    rows.append(("data cache", str(data_cache_dir())))
    return rows
