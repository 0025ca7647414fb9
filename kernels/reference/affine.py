"""NumPy twins of ``kernels.affine``."""

import numpy as np

from ..activations import ELU, IDENTITY, LEAKY_RELU, RELU, SIGMOID, STEP, TANH
from . import activations as _act


def _apply(z, act, alpha, out):
    if act == RELU:
        _act.relu_forward(z, out)
    elif act == SIGMOID:
        _act.sigmoid_forward(z, out)
    elif act == TANH:
        _act.tanh_forward(z, out)
    elif act == LEAKY_RELU:
        _act.leaky_relu_forward(z, alpha, out)
    elif act == ELU:
        _act.elu_forward(z, alpha, out)
    elif act == STEP:
        _act.step_forward(z, out)
    else:
        out[...] = z


def _grad(dout, y, act, alpha, dz):
    if act == RELU:
        _act.relu_backward(dout, y, dz)
    elif act == SIGMOID:
        _act.sigmoid_backward(dout, y, dz)
    elif act == TANH:
        _act.tanh_backward(dout, y, dz)
    elif act == LEAKY_RELU:
        _act.leaky_relu_backward(dout, y, alpha, dz)
    elif act == ELU:
        _act.elu_backward(dout, y, alpha, dz)
    elif act == STEP:
        _act.step_backward(dout, y, dz)
    else:
        dz[...] = dout


def bias_act_forward(y, b, act, alpha):
    _apply(y + b, act, alpha, y)


def bias_act_backward(dout, y, act, alpha, dz, db):
    g = np.empty_like(dout)
    _grad(dout, y, act, alpha, g)
    if act != IDENTITY:
        dz[...] = g
    db[...] = g.sum(axis=0)


def affine_forward(x, W, b, act, alpha, y):
    _apply(x @ W + b, act, alpha, y)


def affine_backward(dout, x, W, y, act, alpha, dz, dx, dW, db, need_dx):
    g = np.empty_like(dout)
    _grad(dout, y, act, alpha, g)
    if act != IDENTITY:
        dz[...] = g
    dW[...] = x.T @ g
    db[...] = g.sum(axis=0)
    if need_dx:
        dx[...] = g @ W.T
