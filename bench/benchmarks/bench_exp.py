"""The vectorisable exp (``fastnn.kernels.fastexp``) and the kernels built on it, against NumPy.

``Exp`` times ``exp_forward`` and its NumPy twin (``np.exp``), over sizes and dtypes, on values
spread over most of exp's finite range and on the usual activations' range. ``ExpBased`` times
each exp-based kernel next to what issue 15 compares it with: its NumPy twin, a NumPy
expression of the same function (``np.tanh``; ``1 / (1 + np.exp(-x))`` for sigmoid) and a copy
of the same data (``np.copyto``), the floor for one pass over the data. What a size means is
as in ``cases.py``: rows * cols values (softmax: rows of cols classes).

``setup`` builds the inputs from a fixed seed and calls the kernel once, so that Numba's
compile time stays out of the timings. An older fastnn without fastexp skips the benchmarks.
"""

import numpy as np

SIZES = ["100x100", "256x1024", "1024x1024"]
DTYPES = ["float32", "float64"]


def _fastexp():
    try:
        from fastnn.kernels import fastexp
    except ImportError:
        raise NotImplementedError("this fastnn has no kernels/fastexp.py") from None
    return fastexp


def _values(size, dtype, spread):
    rows, cols = map(int, size.split("x"))
    rng = np.random.default_rng([rows, cols, int(spread)])
    return (rng.standard_normal(rows * cols) * spread).astype(dtype)


class Exp:
    """exp_forward and np.exp; spread: the inputs' standard deviation (2: activations' range;
    40: exp from 1e-35 to 1e35 and beyond, overflowing and underflowing in float32)."""

    params = (SIZES, DTYPES, [2, 40])
    param_names = ["size", "dtype", "spread"]

    def setup(self, size, dtype, spread):
        self.kernel = _fastexp().exp_forward
        self.x = _values(size, dtype, spread)
        self.out = np.empty_like(self.x)
        self.kernel(self.x, self.out)

    def time_exp_forward(self, size, dtype, spread):
        self.kernel(self.x, self.out)

    def time_numpy_exp(self, size, dtype, spread):
        with np.errstate(all="ignore"):
            np.exp(self.x, out=self.out)


class ExpBased:
    """Each exp-based kernel, its NumPy twin, and a copy of its input (np.copyto)."""

    params = (
        [
            "sigmoid_forward",
            "tanh_forward",
            "elu_forward",
            "softmax_forward",
            "softmax_cross_entropy_labels",
        ],
        SIZES,
        DTYPES,
    )
    param_names = ["kernel", "size", "dtype"]

    def setup(self, kernel, size, dtype):
        _fastexp()  # the kernels below use it: an older fastnn is skipped
        from fastnn.kernels import activations, reference, softmax_cross_entropy

        rows, cols = map(int, size.split("x"))
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((rows, cols)) * 2).astype(dtype)
        out = np.empty_like(x)
        module = softmax_cross_entropy if kernel.startswith("softmax") else activations
        self.kernel = getattr(module, kernel)
        self.twin = getattr(reference, kernel)
        if kernel == "softmax_cross_entropy_labels":
            self.args = (x, rng.integers(0, cols, rows), out)
        elif kernel == "softmax_forward":
            self.args = (x, out)
        else:
            x, out = x.ravel(), out.ravel()
            self.args = (x, 1.0, out) if kernel == "elu_forward" else (x, out)
        self.x, self.copy_out = x, np.empty_like(x)
        self.kernel(*self.args)

    def time_kernel(self, kernel, size, dtype):
        self.kernel(*self.args)

    def time_twin(self, kernel, size, dtype):
        self.twin(*self.args)

    def time_copy(self, kernel, size, dtype):
        np.copyto(self.copy_out, self.x)


class NumpyExpressions:
    """sigmoid_forward and tanh_forward against NumPy's own expression of the function:
    ``1 / (1 + np.exp(-x))`` (which overflows in exp for x < -88 in float32) and np.tanh."""

    params = (["sigmoid_forward", "tanh_forward"], SIZES, DTYPES)
    param_names = ["kernel", "size", "dtype"]

    def setup(self, kernel, size, dtype):
        _fastexp()
        from fastnn.kernels import activations

        self.kernel = getattr(activations, kernel)
        self.x = _values(size, dtype, 2)
        self.out = np.empty_like(self.x)
        self.kernel(self.x, self.out)

    def time_kernel(self, kernel, size, dtype):
        self.kernel(self.x, self.out)

    def time_numpy(self, kernel, size, dtype):
        if kernel == "tanh_forward":
            np.tanh(self.x, out=self.out)
        else:
            self.out[...] = 1 / (1 + np.exp(-self.x))
