"""Inputs for every kernel, shared by the asv benchmarks and ``bench/kernel_speed.py``.

``CASES[name](rows, cols, dtype, rng)`` returns the argument tuple for the kernel ``name`` (and
its NumPy twin of the same name and signature) on a rows x cols problem:

- elementwise and row-wise kernels (activations, softmax, losses, dropout, batch norm):
  a (rows, cols) array, raveled where the kernel takes 1-D data;
- affine: x (rows, cols) and W (cols, cols), so the product is rows x cols x cols; its
  bias + activation passes (``bias_act_*``) work on the (rows, cols) product;
- maxout: rows x cols units from (rows, 2 * cols) pieces;
- conv and pooling: a batch of max(1, rows // 8) images of 8 channels, each
  side = max(3, isqrt(cols)) pixels square (256x1024: 32 images of 8 x 32 x 32); the
  convolution has 16 output channels, a 3 x 3 kernel, stride 1, padding 1 and ReLU;
  pooling has a 2 x 2 window, stride 2 (a side of 3 pools to 1);
- optimizers: flat buffers of rows * cols parameters;
- data: ``gather_rows`` copies all rows of a (rows, cols) array in shuffled order;
  ``count_equal`` compares rows * cols predicted classes with as many labels.

Kernels that update their arguments in place (optimizers, running statistics) can be called
repeatedly on the same tuple: the values drift a little, the cost does not.
"""

import math

import numpy as np

from fastnn.kernels import _config
from fastnn.kernels.activations import ACTIVATIONS

RELU = ACTIVATIONS["relu"]


def _normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def _elementwise(param=None, backward=False, needs_y=True):
    def make(rows, cols, dtype, rng):
        n = rows * cols
        x = _normal(rng, n, dtype, 2.0)
        out = np.empty(n, dtype)
        if not backward:
            return (x, out) if param is None else (x, param, out)
        y = np.abs(x) if needs_y else None
        if not needs_y:
            return (x, out)  # identity_backward(dout, dx)
        return (x, y, out) if param is None else (x, y, param, out)

    return make


def _maxout_forward(rows, cols, dtype, rng):
    z = _normal(rng, (rows, 2 * cols), dtype)
    return z, 2, np.empty((rows, cols), dtype), np.empty((rows, cols), np.int64)


def _maxout_backward(rows, cols, dtype, rng):
    argmax = rng.integers(0, 2, (rows, cols)).astype(np.int64)
    return _normal(rng, (rows, cols), dtype), argmax, 2, np.empty((rows, 2 * cols), dtype)


def _affine_forward(rows, cols, dtype, rng):
    x = _normal(rng, (rows, cols), dtype)
    W = _normal(rng, (cols, cols), dtype, np.sqrt(2 / cols))
    return x, W, np.zeros(cols, dtype), RELU, 0.0, np.empty((rows, cols), dtype)


def _affine_backward(rows, cols, dtype, rng):
    x, W, b, act, alpha, y = _affine_forward(rows, cols, dtype, rng)
    y[...] = np.maximum(x @ W, 0)
    dout = _normal(rng, (rows, cols), dtype)
    dz, dx, dW, db = np.empty_like(y), np.empty_like(x), np.empty_like(W), np.empty_like(b)
    return dout, x, W, y, act, alpha, dz, dx, dW, db, True


def _bias_act_forward(rows, cols, dtype, rng):
    x, W, b, act, alpha, y = _affine_forward(rows, cols, dtype, rng)
    y[...] = x @ W
    return y, b, act, alpha


def _bias_act_backward(rows, cols, dtype, rng):
    dout, x, W, y, act, alpha, dz, dx, dW, db, need_dx = _affine_backward(rows, cols, dtype, rng)
    return dout, y, act, alpha, dz, db


def _softmax_forward(rows, cols, dtype, rng):
    return _normal(rng, (rows, cols), dtype, 3.0), np.empty((rows, cols), dtype)


def _softmax_backward(rows, cols, dtype, rng):
    y = rng.random((rows, cols)).astype(dtype)
    y /= y.sum(axis=1, keepdims=True)
    return _normal(rng, (rows, cols), dtype), y, np.empty((rows, cols), dtype)


def _ce_labels(rows, cols, dtype, rng):
    z = _normal(rng, (rows, cols), dtype, 3.0)
    return z, rng.integers(0, cols, rows), np.empty_like(z)


def _ce_targets(rows, cols, dtype, rng):
    z = _normal(rng, (rows, cols), dtype, 3.0)
    t = np.eye(cols, dtype=dtype)[rng.integers(0, cols, rows)]
    return z, t, np.empty_like(z)


def _bce(rows, cols, dtype, rng):
    z = _normal(rng, (rows, cols), dtype, 3.0)
    return z, (rng.random((rows, cols)) < 0.3).astype(dtype), np.empty_like(z)


def _mse_forward(rows, cols, dtype, rng):
    return _normal(rng, rows * cols, dtype), _normal(rng, rows * cols, dtype)


def _mse_backward(rows, cols, dtype, rng):
    return (*_mse_forward(rows, cols, dtype, rng), np.empty(rows * cols, dtype))


def _bn_work(rows, cols):
    return np.empty((_config.n_chunks(rows * cols), 2, cols), np.float64)


def _bn_forward_train(rows, cols, dtype, rng):
    x = _normal(rng, (rows, cols), dtype, 2.0) + 1
    gamma, beta = np.ones(cols, dtype), np.zeros(cols, dtype)
    out, xhat = np.empty_like(x), np.empty_like(x)
    mean, var, inv_std = (np.empty(cols, dtype) for _ in range(3))
    return x, gamma, beta, 1e-5, out, xhat, mean, var, inv_std, _bn_work(rows, cols)


def _bn_update_running(rows, cols, dtype, rng):
    stats = [rng.random(cols).astype(dtype) for _ in range(4)]
    return (*stats, 0.1, rows)


def _bn_forward_eval(rows, cols, dtype, rng):
    x = _normal(rng, (rows, cols), dtype)
    gamma, beta = np.ones(cols, dtype), np.zeros(cols, dtype)
    rmean, rvar = np.zeros(cols, dtype), np.ones(cols, dtype)
    return x, gamma, beta, rmean, rvar, 1e-5, np.empty_like(x), _bn_work(rows, cols)


def _bn_backward(rows, cols, dtype, rng):
    dout, xhat = _normal(rng, (rows, cols), dtype), _normal(rng, (rows, cols), dtype)
    gamma, inv_std = np.ones(cols, dtype), np.ones(cols, dtype)
    dx, dgamma, dbeta = np.empty_like(dout), np.empty(cols, dtype), np.empty(cols, dtype)
    return dout, xhat, gamma, inv_std, dx, dgamma, dbeta, _bn_work(rows, cols)


def _bn_backward_eval(rows, cols, dtype, rng):
    dout, x = _normal(rng, (rows, cols), dtype), _normal(rng, (rows, cols), dtype)
    gamma, rmean, rvar = np.ones(cols, dtype), np.zeros(cols, dtype), np.ones(cols, dtype)
    dx, dgamma, dbeta = np.empty_like(dout), np.empty(cols, dtype), np.empty(cols, dtype)
    return dout, x, gamma, rmean, rvar, 1e-5, dx, dgamma, dbeta, _bn_work(rows, cols)


def _dropout_forward(rows, cols, dtype, rng):
    n = rows * cols
    x, u = _normal(rng, n, dtype), rng.random(n).astype(dtype)
    return x, u, 0.5, np.empty(n, dtype), np.empty(n, dtype)


def _dropout_backward(rows, cols, dtype, rng):
    n = rows * cols
    mask = (rng.random(n) >= 0.5).astype(dtype) * 2
    return _normal(rng, n, dtype), mask, np.empty(n, dtype)


def _flat(rows, cols, dtype, rng, buffers):
    n = rows * cols
    params = _normal(rng, n, dtype)
    grads = _normal(rng, n, dtype, 0.1)
    state = [np.zeros(n, dtype) for _ in range(buffers)]
    mask = (rng.random(n) < 0.9).astype(np.uint8)
    return params, grads, state, mask


def _sgd_step(rows, cols, dtype, rng):
    p, g, (buf,), mask = _flat(rows, cols, dtype, rng, 1)
    return p, g, buf, mask, 1e-3, 0.9, 0.0, 1e-4, False, False


def _adagrad_step(rows, cols, dtype, rng):
    p, g, (h,), mask = _flat(rows, cols, dtype, rng, 1)
    return p, g, h, mask, 1e-2, 1e-4, 1e-10


def _rmsprop_step(rows, cols, dtype, rng):
    p, g, (sq, ga, buf), mask = _flat(rows, cols, dtype, rng, 3)
    return p, g, sq, ga, buf, mask, 1e-2, 0.99, 1e-8, 1e-4, 0.0, False


def _adadelta_step(rows, cols, dtype, rng):
    p, g, (sq, acc), mask = _flat(rows, cols, dtype, rng, 2)
    return p, g, sq, acc, mask, 1.0, 0.9, 1e-6, 1e-4


def _adam_step(rows, cols, dtype, rng):
    p, g, (m, v), mask = _flat(rows, cols, dtype, rng, 2)
    # Step 10's bias corrections with torch's defaults.
    step_size = 1e-3 / (1 - 0.9**10)
    return (
        p,
        g,
        m,
        v,
        np.empty(0, dtype),
        mask,
        step_size,
        0.9,
        0.999,
        1e-8,
        1e-4,
        np.sqrt(1 - 0.999**10),
        False,
    )


def _adamw_step(rows, cols, dtype, rng):
    p, g, m, v, vmax, mask, step_size, b1, b2, eps, _, bc2, ams = _adam_step(rows, cols, dtype, rng)
    return p, g, m, v, vmax, mask, 1e-3, step_size, b1, b2, eps, 1e-2, bc2, ams


def _gather_rows(rows, cols, dtype, rng):
    return _normal(rng, (rows, cols), dtype), rng.permutation(rows), np.empty((rows, cols), dtype)


def _count_equal(rows, cols, dtype, rng):
    # Predicted and true classes of rows * cols examples (dtype does not apply: integers).
    n = rows * cols
    return rng.integers(0, 10, n).astype(np.intp), rng.integers(0, 10, n)


def _gemm(rows, cols, dtype, rng):
    # c = x @ W: the forward product of a Linear layer, rows x cols x cols
    x = _normal(rng, (rows, cols), dtype)
    W = _normal(rng, (cols, cols), dtype, np.sqrt(2 / cols))
    return x, W, np.empty((rows, cols), dtype), False, False, 0.0


def _set_blas_threads(rows, cols, dtype, rng):
    from fastnn.kernels.blas import blas_threads

    return (max(1, blas_threads()),)  # sets the count it has: the cost of the call alone


def _images(rows, cols, dtype, rng):
    n, side = max(1, rows // 8), max(3, math.isqrt(cols))
    return _normal(rng, (n, 8, side, side), dtype)


_CONV = (3, 3, 1, 1, 1, 1)  # kh, kw, sh, sw, ph, pw
_COUT = 16


def _im2col(rows, cols, dtype, rng):
    x = _images(rows, cols, dtype, rng)
    n, c, h, w = x.shape
    return (x, *_CONV, np.empty((c * 9, n, h * w), dtype))


def _col2im(rows, cols, dtype, rng):
    x, kh, kw, sh, sw, ph, pw, col = _im2col(rows, cols, dtype, rng)
    return (_normal(rng, col.shape, dtype), kh, kw, sh, sw, ph, pw, np.empty_like(x))


def _conv2d_forward(rows, cols, dtype, rng):
    x, kh, kw, sh, sw, ph, pw, col = _im2col(rows, cols, dtype, rng)
    n, c, h, w = x.shape
    W = _normal(rng, (_COUT, c, kh, kw), dtype, np.sqrt(2 / (c * kh * kw)))
    y = np.empty((n, _COUT, h, w), dtype)
    z = np.empty((_COUT, n, h * w), dtype)
    return x, W, np.zeros(_COUT, dtype), sh, sw, ph, pw, RELU, 0.0, col, z, y


def _conv2d_backward(rows, cols, dtype, rng):
    x, W, b, sh, sw, ph, pw, act, alpha, col, z, y = _conv2d_forward(rows, cols, dtype, rng)
    from fastnn.kernels.conv import conv2d_forward

    conv2d_forward(x, W, b, sh, sw, ph, pw, act, alpha, col, z, y)
    dout = _normal(rng, y.shape, dtype)
    dz, dx, dW, db = np.empty_like(y), np.empty_like(x), np.empty_like(W), np.empty_like(b)
    dcol = np.empty_like(col)
    return dout, W, y, sh, sw, ph, pw, act, alpha, col, dz, z, dcol, dx, dW, db, True


def _conv_bias_act_forward(rows, cols, dtype, rng):
    x = _images(rows, cols, dtype, rng)
    n, c, h, w = x.shape
    return x.reshape(n, c, h * w), _normal(rng, c, dtype), RELU, 0.0


def _conv_bias_act_backward(rows, cols, dtype, rng):
    y, b, act, alpha = _conv_bias_act_forward(rows, cols, dtype, rng)
    y = np.abs(y)
    return _normal(rng, y.shape, dtype), y, act, alpha, np.empty_like(y), np.empty_like(b)


def _pooled(x):
    n, c, h, w = x.shape
    return (n, c, (h - 2) // 2 + 1, (w - 2) // 2 + 1)


def _maxpool_forward(rows, cols, dtype, rng):
    x = _images(rows, cols, dtype, rng)
    shape = _pooled(x)
    return x, 2, 2, 2, 2, 0, 0, np.empty(shape, dtype), np.empty(shape, np.int64)


def _maxpool_backward(rows, cols, dtype, rng):
    x, kh, kw, sh, sw, ph, pw, y, argmax = _maxpool_forward(rows, cols, dtype, rng)
    from fastnn.kernels.pool import maxpool_forward

    maxpool_forward(x, kh, kw, sh, sw, ph, pw, y, argmax)
    return _normal(rng, y.shape, dtype), argmax, np.empty_like(x)


def _avgpool_forward(rows, cols, dtype, rng):
    x = _images(rows, cols, dtype, rng)
    return x, 2, 2, 2, 2, 0, 0, np.empty(_pooled(x), dtype)


def _avgpool_backward(rows, cols, dtype, rng):
    x, kh, kw, sh, sw, ph, pw, y = _avgpool_forward(rows, cols, dtype, rng)
    return _normal(rng, y.shape, dtype), kh, kw, sh, sw, ph, pw, np.empty_like(x)


CASES = {
    "exp_forward": _elementwise(),
    "gemm": _gemm,
    "set_blas_threads": _set_blas_threads,
    "blas_threads": lambda rows, cols, dtype, rng: (),
    "identity_forward": _elementwise(),
    "identity_backward": _elementwise(backward=True, needs_y=False),
    "step_forward": _elementwise(),
    "step_backward": _elementwise(backward=True),
    "sigmoid_forward": _elementwise(),
    "sigmoid_backward": _elementwise(backward=True),
    "tanh_forward": _elementwise(),
    "tanh_backward": _elementwise(backward=True),
    "relu_forward": _elementwise(),
    "relu_backward": _elementwise(backward=True),
    "leaky_relu_forward": _elementwise(0.01),
    "leaky_relu_backward": _elementwise(0.01, backward=True),
    "elu_forward": _elementwise(1.0),
    "elu_backward": _elementwise(1.0, backward=True),
    "maxout_forward": _maxout_forward,
    "maxout_backward": _maxout_backward,
    "affine_forward": _affine_forward,
    "affine_backward": _affine_backward,
    "bias_act_forward": _bias_act_forward,
    "bias_act_backward": _bias_act_backward,
    "im2col": _im2col,
    "col2im": _col2im,
    "conv2d_forward": _conv2d_forward,
    "conv2d_backward": _conv2d_backward,
    "conv_bias_act_forward": _conv_bias_act_forward,
    "conv_bias_act_backward": _conv_bias_act_backward,
    "maxpool_forward": _maxpool_forward,
    "maxpool_backward": _maxpool_backward,
    "avgpool_forward": _avgpool_forward,
    "avgpool_backward": _avgpool_backward,
    "softmax_forward": _softmax_forward,
    "softmax_backward": _softmax_backward,
    "softmax_cross_entropy_labels": _ce_labels,
    "softmax_cross_entropy_targets": _ce_targets,
    "sigmoid_cross_entropy": _bce,
    "mse_forward": _mse_forward,
    "mse_backward": _mse_backward,
    "batchnorm_forward_train": _bn_forward_train,
    "batchnorm_update_running": _bn_update_running,
    "batchnorm_forward_eval": _bn_forward_eval,
    "batchnorm_backward": _bn_backward,
    "batchnorm_backward_eval": _bn_backward_eval,
    "dropout_forward": _dropout_forward,
    "dropout_backward": _dropout_backward,
    "gather_rows": _gather_rows,
    "count_equal": _count_equal,
    "sgd_step": _sgd_step,
    "adagrad_step": _adagrad_step,
    "rmsprop_step": _rmsprop_step,
    "adadelta_step": _adadelta_step,
    "adam_step": _adam_step,
    "adamw_step": _adamw_step,
    "flat_norm": lambda rows, cols, dtype, rng: (_normal(rng, rows * cols, dtype),),
    "scale_flat": lambda rows, cols, dtype, rng: (_normal(rng, rows * cols, dtype), 1.0),
}

KERNEL_MODULES = (
    "activations",
    "fastexp",
    "blas",
    "affine",
    "conv",
    "pool",
    "softmax_cross_entropy",
    "batchnorm",
    "dropout",
    "optim",
    "data",
)


def kernel_and_reference(name):
    """The compiled kernel ``name`` and its NumPy twin of the same name."""
    import importlib

    for module in KERNEL_MODULES:
        kernels = importlib.import_module(f"fastnn.kernels.{module}")
        if hasattr(kernels, name):
            reference = importlib.import_module(f"fastnn.kernels.reference.{module}")
            return getattr(kernels, name), getattr(reference, name)
    raise KeyError(name)
