"""Batch normalisation of (batch, features) inputs."""

import math
import numbers

import numpy as np

from ._validation import as_float_array, check_2d, check_positive_int
from .kernels._config import n_chunks
from .kernels.batchnorm import (
    batchnorm_backward,
    batchnorm_backward_eval,
    batchnorm_forward_eval,
    batchnorm_forward_train,
    batchnorm_update_running,
)
from .module import Module, Parameter


def _real(value, name):
    """``value`` as a float; ``TypeError`` unless it is a real number."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


class BatchNorm(Module):
    """Normalise each feature over the batch, then scale by ``weight`` and shift by ``bias``.

    Training mode normalises with the batch's mean and (biased) variance and blends them into
    ``running_mean``/``running_var``: running = (1 - momentum) * running + momentum * batch,
    the variance blended in being the unbiased one, as in PyTorch's ``BatchNorm1d``. Eval mode
    normalises with the running statistics.
    """

    _persistent = ("running_mean", "running_var")

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__(dtype)
        d = check_positive_int(num_features, "num_features")
        m = _real(momentum, "momentum")
        if not 0.0 <= m <= 1.0:
            raise ValueError(f"invalid momentum: {momentum}; expected 0 <= momentum <= 1")
        e = _real(eps, "eps")
        if not (e > 0.0 and math.isfinite(e)):
            raise ValueError(f"invalid eps: {eps}; expected a finite eps > 0")
        self.num_features = d
        self.momentum = m
        self.eps = e
        self.weight = Parameter(np.ones(d, dtype=self.dtype), decay=False)
        self.bias = Parameter(np.zeros(d, dtype=self.dtype), decay=False)
        self.running_mean = np.zeros(d, dtype=self.dtype)
        self.running_var = np.ones(d, dtype=self.dtype)
        # The kernels' float64 scratch, whatever the dtype: one slot per chunk a batch is
        # split into (see kernels.batchnorm), grown when a bigger batch needs more.
        self._work = np.empty((1, 2, d), dtype=np.float64)
        # What backward needs from the last forward: ("train", xhat, inv_std) or ("eval", x).
        self._saved = None

    def _work_for(self, n):
        slots = n_chunks(n * self.num_features)
        if self._work.shape[0] < slots:
            self._work = np.empty((slots, 2, self.num_features), dtype=np.float64)
        return self._work

    def _name(self):
        return f"BatchNorm({self.num_features})"

    def forward(self, x):
        """x: (batch, num_features) -> (batch, num_features)."""
        x = as_float_array(x, self.dtype, self._name)
        check_2d(x, self.num_features, self._name)
        n, d = x.shape
        if self.training and n < 2:
            raise ValueError(
                f"{self._name()}: expected more than 1 row per batch in training mode, "
                f"got input of shape {x.shape} (the batch variance is undefined)"
            )
        out = self._buffer("out", x.shape)
        work = self._work_for(n)
        if self.training:
            xhat = self._buffer("xhat", x.shape)
            mean = self._buffer("mean", (d,))
            var = self._buffer("var", (d,))
            inv_std = self._buffer("inv_std", (d,))
            batchnorm_forward_train(
                x,
                self.weight.data,
                self.bias.data,
                self.eps,
                out,
                xhat,
                mean,
                var,
                inv_std,
                work,
            )
            batchnorm_update_running(
                self.running_mean, self.running_var, mean, var, self.momentum, n
            )
            self._saved = ("train", xhat, inv_std)
        else:
            batchnorm_forward_eval(
                x,
                self.weight.data,
                self.bias.data,
                self.running_mean,
                self.running_var,
                self.eps,
                out,
                work,
            )
            # The input itself, not a copy: like a linear layer, backward reads it back.
            self._saved = ("eval", x)
        return out

    def backward(self, dout):
        """dout: (batch, num_features) -> dx; overwrites weight.grad and bias.grad."""
        if self._saved is None:
            raise RuntimeError(f"{self._name()}.backward called before forward")
        dout = as_float_array(dout, self.dtype, self._name, ".backward")
        mode, a = self._saved[0], self._saved[1]
        if dout.shape != a.shape:
            raise ValueError(
                f"{self._name()}.backward: expected dout of shape {a.shape}, got {dout.shape}"
            )
        dx = self._buffer("dx", dout.shape)
        work = self._work_for(dout.shape[0])
        if mode == "train":
            batchnorm_backward(
                dout,
                a,
                self.weight.data,
                self._saved[2],
                dx,
                self.weight.grad,
                self.bias.grad,
                work,
            )
        else:
            batchnorm_backward_eval(
                dout,
                a,
                self.weight.data,
                self.running_mean,
                self.running_var,
                self.eps,
                dx,
                self.weight.grad,
                self.bias.grad,
                work,
            )
        return dx

    def extra_repr(self):
        return f"{self.num_features}, momentum={self.momentum}, eps={self.eps}"
