"""Every kernel against its NumPy twin: time and peak memory, over problem sizes and dtypes.

One class per kernel family, parametrised over kernel, size and dtype: ``time_kernel`` and
``time_reference`` (its NumPy twin of the same name and signature), ``peakmem_kernel`` and
``peakmem_reference``; e.g. ``Activations.time_kernel('relu_forward', '256x1024', 'float32')``
(``asv run -b relu_forward`` selects one kernel). What a size means for each kernel is in
``cases.py``.

``setup`` builds the inputs of that one kernel from a fixed seed (``cases.CASES``) and calls
the kernel once, so Numba's compile time stays out of the timings. asv re-runs ``setup``
before every timed sample; the inputs are built and the kernel called once per process
(``_ready``), and reused, which the kernels allow (see ``cases``).
"""

import inspect

import numpy as np

from .cases import CASES, kernel_and_reference

SIZES = ["100x100", "256x1024", "1024x1024"]
DTYPES = ["float32", "float64"]

_INPUTS = {}  # (kernel, size, dtype) -> argument tuple, built once per process
_CALLED = set()  # (kernel, size, dtype) already called once in this process


def _inputs(name, size, dtype):
    key = (name, size, dtype)
    if key not in _INPUTS:
        rows, cols = map(int, size.split("x"))
        # One generator per kernel and problem, so inputs do not depend on what ran before.
        rng = np.random.default_rng([0, *map(ord, name), rows, cols])
        _INPUTS[key] = CASES[name](rows, cols, np.dtype(dtype), rng)
    return _INPUTS[key]


def _find(name):
    """(kernel, NumPy twin) of ``name``, or None when the installed fastnn (an older commit,
    in an asv history run) has no such kernel or one with other parameters than ``CASES``."""
    try:
        kernel, reference = kernel_and_reference(name)
    except KeyError:
        return None
    wanted = len(CASES[name](2, 2, np.dtype("float32"), np.random.default_rng(0)))
    if len(inspect.signature(getattr(kernel, "py_func", kernel)).parameters) != wanted:
        return None
    return kernel, reference


def _ready(kernel, name, size, dtype):
    """The inputs of ``kernel``, after calling it once on them in this process (which
    compiles it or loads it from Numba's cache)."""
    args = _inputs(name, size, dtype)
    key = (name, size, dtype)
    if key not in _CALLED:
        kernel(*args)
        _CALLED.add(key)
    return args


class _Family:
    """Time and peak memory of each kernel of the family and of its NumPy twin.

    asv's peak memory is the process's maximum resident size: the interpreter, NumPy, Numba,
    the loaded kernel and its inputs, plus what the call adds (the twin's temporaries);
    compare a kernel with its twin on the same parameters.
    """

    kernels = ()
    param_names = ["kernel", "size", "dtype"]

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls.params = (list(cls.kernels), SIZES, DTYPES)

    def setup(self, kernel, size, dtype):
        found = _find(kernel)
        if found is None:
            raise NotImplementedError(f"this fastnn has no kernel {kernel} of these parameters")
        self.kernel, self.reference = found
        self.args = _ready(self.kernel, kernel, size, dtype)

    def time_kernel(self, kernel, size, dtype):
        self.kernel(*self.args)

    def time_reference(self, kernel, size, dtype):
        self.reference(*self.args)

    def peakmem_kernel(self, kernel, size, dtype):
        self.kernel(*self.args)

    def peakmem_reference(self, kernel, size, dtype):
        self.reference(*self.args)


class Activations(_Family):
    kernels = (
        "identity_forward",
        "identity_backward",
        "step_forward",
        "step_backward",
        "sigmoid_forward",
        "sigmoid_backward",
        "tanh_forward",
        "tanh_backward",
        "relu_forward",
        "relu_backward",
        "leaky_relu_forward",
        "leaky_relu_backward",
        "elu_forward",
        "elu_backward",
        "exp_forward",
        "maxout_forward",
        "maxout_backward",
    )


class Affine(_Family):
    kernels = ("affine_forward", "affine_backward", "bias_act_forward", "bias_act_backward")


class Conv(_Family):
    kernels = (
        "im2col",
        "col2im",
        "conv2d_forward",
        "conv2d_backward",
        "conv_bias_act_forward",
        "conv_bias_act_backward",
    )


class Pool(_Family):
    kernels = ("maxpool_forward", "maxpool_backward", "avgpool_forward", "avgpool_backward")


class Blas(_Family):
    kernels = ("gemm", "set_blas_threads", "blas_threads")


class SoftmaxCrossEntropy(_Family):
    kernels = (
        "softmax_forward",
        "softmax_backward",
        "softmax_cross_entropy_labels",
        "softmax_cross_entropy_targets",
        "sigmoid_cross_entropy",
        "mse_forward",
        "mse_backward",
    )


class BatchNorm(_Family):
    kernels = (
        "batchnorm_forward_train",
        "batchnorm_update_running",
        "batchnorm_forward_eval",
        "batchnorm_backward",
        "batchnorm_backward_eval",
    )


class Dropout(_Family):
    kernels = ("dropout_forward", "dropout_backward")


class Optimizers(_Family):
    kernels = (
        "sgd_step",
        "adagrad_step",
        "rmsprop_step",
        "adadelta_step",
        "adam_step",
        "adamw_step",
        "flat_norm",
        "scale_flat",
    )


class Data(_Family):
    kernels = ("gather_rows", "count_equal")


FAMILIES = (
    Activations,
    Affine,
    Conv,
    Pool,
    Blas,
    SoftmaxCrossEntropy,
    BatchNorm,
    Dropout,
    Optimizers,
    Data,
)
