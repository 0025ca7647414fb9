"""Batch normalisation of (batch, features) inputs, and of (batch, channels, height, width)
images per channel (PyTorch's ``BatchNorm2d``)."""

import numpy as np

from .._checks import check_2d, check_array, check_int, check_real
from ..errors import InvalidValueError, StateError
from ..kernels._config import n_chunks
from ..kernels.batchnorm import (
    batchnorm_backward,
    batchnorm_backward_eval,
    batchnorm_forward_eval,
    batchnorm_forward_train,
    batchnorm_update_running,
)
from .module import Module, Parameter, check_state


class BatchNorm(Module):
    """Normalise each feature over the batch, then scale by ``weight`` and shift by ``bias``.

    Training mode normalises with the batch's mean and (biased) variance and blends them into
    ``running_mean``/``running_var``: running = (1 - momentum) * running + momentum * batch,
    the variance blended in being the unbiased one, as in PyTorch's ``BatchNorm1d``. Eval mode
    normalises with the running statistics.

    Images (batch, num_features, H, W) are normalised per channel over the batch, height and
    width, as PyTorch's ``BatchNorm2d``: the layer moves the channels last, (batch * H * W,
    num_features), runs the same kernels as for rows, and moves them back. Two copies each
    way, against a kernel of its own per layout: the statistics keep one implementation (its
    float64 Welford sums and parallel split), and bench/NOTES.md ("Issue 17") has their cost.
    """

    _persistent = ("running_mean", "running_var")

    def __init__(self, num_features, momentum=0.1, eps=1e-5, dtype=np.float32):
        super().__init__(dtype)
        d = check_int(num_features, "num_features", low=1)
        self.num_features = d
        self.momentum = check_real(momentum, "momentum", low=0.0, high=1.0)
        self.eps = check_real(eps, "eps", low=0.0, closed="right")
        self.weight = Parameter(np.ones(d, dtype=self.dtype), decay=False)
        self.bias = Parameter(np.zeros(d, dtype=self.dtype), decay=False)
        self.running_mean = np.zeros(d, dtype=self.dtype)
        self.running_var = np.ones(d, dtype=self.dtype)
        # The kernels' float64 scratch, whatever the dtype: one slot per chunk a batch is
        # split into (see kernels.batchnorm), grown when a bigger batch needs more.
        self._work = np.empty((1, 2, d), dtype=np.float64)
        # What backward needs from the last forward: ("train", xhat, inv_std) or ("eval", x).
        self._saved = None
        self._image_shape = None  # the images' shape when the last forward had images

    def _work_for(self, n):
        slots = n_chunks(n * self.num_features)
        if self._work.shape[0] < slots:
            self._work = np.empty((slots, 2, self.num_features), dtype=np.float64)
        return self._work

    def _name(self):
        return f"BatchNorm({self.num_features})"

    def io_widths(self):
        return self.num_features, self.num_features

    def _check_arrays(self, grads):
        """The arrays that go to the kernels have the layer's shape and dtype, and those the
        kernels write are writeable (the running statistics in training, the gradients)."""
        d = (self.num_features,)
        check_state(self, "weight.data", self.weight.data, d)
        for name in self._persistent:
            check_state(self, name, getattr(self, name), d, writeable=self.training and not grads)
        if grads:
            check_state(self, "weight.grad", self.weight.grad, d, writeable=True)
            check_state(self, "bias.grad", self.bias.grad, d, writeable=True)
        else:
            check_state(self, "bias.data", self.bias.data, d)

    def get_config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}

    @classmethod
    def state_shapes(cls, num_features, **config):
        d = (check_int(num_features, "num_features", low=1),)
        return {"weight": d, "bias": d, "running_mean": d, "running_var": d}

    def forward(self, x):
        """x: (batch, num_features) -> (batch, num_features), or images (batch,
        num_features, H, W) -> the same shape."""
        x = check_array(x, self._name, self.dtype)
        if x.ndim == 4:
            return self._forward_images(x)
        check_2d(x, self.num_features, self._name)
        return self._forward_rows(x)

    def _forward_images(self, x):
        n, d, h, w = x.shape
        if d != self.num_features or 0 in x.shape:
            raise InvalidValueError(
                f"{self._name()}: expected input of shape (batch, {self.num_features}) or "
                f"(batch, {self.num_features}, height, width), got {x.shape}"
            )
        rows = self._buffer("rows", (n * h * w, d))
        rows.reshape(n, h, w, d)[...] = x.transpose(0, 2, 3, 1)
        out = self._forward_rows(rows, x.shape)
        y = self._buffer("images", x.shape)
        y[...] = out.reshape(n, h, w, d).transpose(0, 3, 1, 2)
        self._image_shape = x.shape
        return y

    def _forward_rows(self, x, image_shape=None):
        self._check_arrays(grads=False)
        self._image_shape = None
        n, d = x.shape
        if self.training and n < 2:
            what = "row per batch" if image_shape is None else "value per channel"
            raise InvalidValueError(
                f"{self._name()}: expected more than 1 {what} in training mode, "
                f"got input of shape {image_shape or x.shape} (the batch "
                "variance is undefined)"
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

    def backward(self, dout, input_grad=True):
        """dout: the output's shape -> dx; overwrites weight.grad and bias.grad."""
        if self._saved is None:
            raise StateError(f"{self._name()}.backward called before forward")
        dout = check_array(dout, self._name, self.dtype, ".backward")
        shape = self._image_shape
        if shape is None:
            return self._backward_rows(dout)
        if dout.shape != shape:
            raise InvalidValueError(
                f"{self._name()}.backward: expected dout of shape {shape}, got {dout.shape}"
            )
        n, d, h, w = shape
        rows = self._buffer("drows", (n * h * w, d))
        rows.reshape(n, h, w, d)[...] = dout.transpose(0, 2, 3, 1)
        dx_rows = self._backward_rows(rows)
        dx = self._buffer("dimages", shape)
        dx[...] = dx_rows.reshape(n, h, w, d).transpose(0, 3, 1, 2)
        return dx

    def _backward_rows(self, dout):
        mode, a = self._saved[0], self._saved[1]
        if dout.shape != a.shape:
            raise InvalidValueError(
                f"{self._name()}.backward: expected dout of shape {a.shape}, got {dout.shape}"
            )
        self._check_arrays(grads=True)
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
