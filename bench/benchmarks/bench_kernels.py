"""Every kernel against its NumPy twin: ``time_<kernel>`` and ``time_<kernel>_reference``.

One class per kernel family, parametrised over problem size and dtype. ``setup`` builds the
inputs from a fixed seed (``cases.CASES``) and calls each kernel once, so Numba's compile
time stays out of the timings.
"""

import numpy as np

from .cases import CASES, kernel_and_reference

SIZES = ["100x100", "256x1024", "1024x1024"]
DTYPES = ["float32", "float64"]


class _Family:
    params = (SIZES, DTYPES)
    param_names = ["size", "dtype"]
    kernels = ()

    def setup(self, size, dtype):
        rows, cols = map(int, size.split("x"))
        rng = np.random.default_rng(0)
        self.args = {}
        self.funcs = {}
        for name in self.kernels:
            kernel, reference = kernel_and_reference(name)
            self.args[name] = CASES[name](rows, cols, np.dtype(dtype), rng)
            self.funcs[name] = kernel
            self.funcs[name + "_reference"] = reference
            kernel(*self.args[name])  # compile outside the timing

    def _run(self, name):
        self.funcs[name](*self.args[name.removesuffix("_reference")])


def _timers(cls):
    """Add time_<kernel> and time_<kernel>_reference methods for each kernel of the family."""
    for name in cls.kernels:
        for suffix in ("", "_reference"):
            key = name + suffix

            def timer(self, size, dtype, _key=key):
                self._run(_key)

            timer.__name__ = "time_" + key
            setattr(cls, "time_" + key, timer)
    return cls


@_timers
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
        "maxout_forward",
        "maxout_backward",
    )

    def peakmem_relu_forward(self, size, dtype):
        self._run("relu_forward")


@_timers
class Affine(_Family):
    kernels = ("affine_forward", "affine_backward")

    def peakmem_affine_backward(self, size, dtype):
        self._run("affine_backward")


@_timers
class SoftmaxCrossEntropy(_Family):
    kernels = (
        "softmax_forward",
        "softmax_backward",
        "softmax_cross_entropy_labels",
        "softmax_cross_entropy_targets",
        "mse_forward",
        "mse_backward",
    )

    def peakmem_softmax_cross_entropy_labels(self, size, dtype):
        self._run("softmax_cross_entropy_labels")


@_timers
class BatchNorm(_Family):
    kernels = (
        "batchnorm_forward_train",
        "batchnorm_update_running",
        "batchnorm_forward_eval",
        "batchnorm_backward",
        "batchnorm_backward_eval",
    )

    def peakmem_batchnorm_forward_train(self, size, dtype):
        self._run("batchnorm_forward_train")


@_timers
class Dropout(_Family):
    kernels = ("dropout_forward", "dropout_backward")


@_timers
class Optimizers(_Family):
    kernels = (
        "sgd_step",
        "adagrad_step",
        "rmsprop_step",
        "adadelta_step",
        "adam_step",
        "adamw_step",
    )

    def peakmem_adam_step(self, size, dtype):
        self._run("adam_step")
