"""The SGD family: plain SGD, heavy-ball momentum and Nesterov momentum (torch.optim.SGD)."""

from ..errors import InvalidValueError
from ..kernels import _network as _net
from .base import Optimizer, arguments


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (torch.optim.SGD).

    With g the gradient (+ weight_decay * W for decayed parameters)::

        momentum == 0:  W <- W - lr * g
        otherwise:      b <- g on the first step, else momentum * b + (1 - dampening) * g
                        W <- W - lr * b                     (nesterov: lr * (g + momentum * b))

    Momentum: Polyak, "Some methods of speeding up the convergence of iteration methods"
    (1964); Nesterov: Sutskever et al., "On the importance of initialization and momentum in
    deep learning" (ICML 2013). The course's plain SGD is ``W <- W - lr * dW``, the same.
    """

    _state_names = ("momentum_buffer",)

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        clip_norm=None,
    ):
        super().__init__(params, arguments(locals()))

    def _check_settings(self):
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise InvalidValueError("nesterov momentum requires a momentum and zero dampening")

    def buffers_in_use(self):
        return ("momentum_buffer",) if self.momentum != 0 else ()

    def _kernel(self, t):
        # sgd_step's last argument, whether the momentum buffer is new, is added by _update.
        buf = ("momentum_buffer", 0.0) if self.momentum != 0 else None
        return (
            _net.SGD,
            (buf,),
            (self.lr, self.momentum, self.dampening, self.weight_decay, self.nesterov),
        )


class Momentum(SGD):
    r"""SGD with (heavy-ball) momentum: ``SGD`` with ``momentum=0.9`` by default.

    torch's form: b <- momentum * b + g (b = g on the first step), W <- W - lr * b.
    The course's form, v <- momentum * v - lr * dW, W <- W + v (v starting at 0), is the same
    update for a constant lr: v = -lr * b at every step. (When lr changes, the course's form
    keeps past steps at their old lr, torch's rescales them.) Polyak (1964).
    """

    def __init__(
        self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, clip_norm=None
    ):
        super().__init__(params, nesterov=False, **arguments(locals()))


class Nesterov(SGD):
    r"""SGD with Nesterov momentum: ``SGD(nesterov=True)`` with ``momentum=0.9`` by default.

    torch's form: b <- momentum * b + g, W <- W - lr * (g + momentum * b).
    The course's form, v <- momentum * v - lr * dW, W <- W + momentum**2 * v_old
    - (1 + momentum) * lr * dW, is the same update for a constant lr (v = -lr * b).
    Sutskever et al., ICML 2013; Nesterov (1983).
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0, clip_norm=None):
        super().__init__(params, dampening=0.0, nesterov=True, **arguments(locals()))
