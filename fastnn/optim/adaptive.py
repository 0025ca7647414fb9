"""Adaptive methods: AdaGrad, RMSprop, AdaDelta, Adam and AdamW (torch.optim's updates)."""

from ..kernels import _network as _net
from .base import Optimizer, arguments


class AdaGrad(Optimizer):
    r"""AdaGrad (torch.optim.Adagrad). Duchi, Hazan and Singer, "Adaptive subgradient methods
    for online learning and stochastic optimization" (JMLR 2011).

    At step t, with g the gradient (+ weight_decay * W)::

        h   <- h + g * g                       (h starts at initial_accumulator_value)
        clr  = lr / (1 + (t - 1) * lr_decay)
        W   <- W - clr * g / (sqrt(h) + eps)

    The course's form, h += dW * dW; W -= lr * dW / (sqrt(h) + 1e-7), is this with
    lr_decay = 0, initial_accumulator_value = 0 and eps = 1e-7 (torch's default is 1e-10).
    """

    _state_names = ("sum",)

    def __init__(
        self,
        params,
        lr=1e-2,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
        clip_norm=None,
    ):
        super().__init__(params, arguments(locals()))

    def _kernel(self, t):
        clr = self.lr / (1 + (t - 1) * self.lr_decay)
        return (
            _net.ADAGRAD,
            (("sum", self.initial_accumulator_value),),
            (clr, self.weight_decay, self.eps),
        )


class RMSprop(Optimizer):
    r"""RMSprop (torch.optim.RMSprop). Hinton, Coursera "Neural Networks for Machine Learning",
    lecture 6e (2012); centered form from Graves, "Generating sequences with recurrent neural
    networks" (2013).

    With g the gradient (+ weight_decay * W)::

        v <- alpha * v + (1 - alpha) * g * g
        a  = sqrt(v) + eps        (centered: m <- alpha * m + (1 - alpha) * g,
                                             a  = sqrt(v - m * m) + eps)
        W <- W - lr * g / a       (momentum > 0: b <- momentum * b + g / a, W <- W - lr * b)

    The course's form, h <- rho * h + (1 - rho) * dW * dW; W -= lr * dW / (sqrt(h) + eps),
    is this with alpha = rho, no momentum and not centered.
    """

    _state_names = ("square_avg", "grad_avg", "momentum_buffer")

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        clip_norm=None,
    ):
        super().__init__(params, arguments(locals()))

    def buffers_in_use(self):
        return (
            ("square_avg",)
            + ("grad_avg",) * bool(self.centered)
            + ("momentum_buffer",) * (self.momentum > 0)
        )

    def _kernel(self, t):
        buffers = (
            ("square_avg", 0.0),
            ("grad_avg", 0.0) if self.centered else None,
            ("momentum_buffer", 0.0) if self.momentum > 0 else None,
        )
        return (
            _net.RMSPROP,
            buffers,
            (self.lr, self.alpha, self.eps, self.weight_decay, self.momentum, self.centered),
        )


class AdaDelta(Optimizer):
    r"""AdaDelta (torch.optim.Adadelta). Zeiler, "ADADELTA: an adaptive learning rate method"
    (2012).

    With g the gradient (+ weight_decay * W)::

        v <- rho * v + (1 - rho) * g * g
        d  = sqrt(u + eps) / sqrt(v + eps) * g
        u <- rho * u + (1 - rho) * d * d
        W <- W - lr * d

    Zeiler's method has no learning rate; lr = 1 (the default) gives it exactly.
    """

    _state_names = ("square_avg", "acc_delta")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, clip_norm=None):
        super().__init__(params, arguments(locals()))

    def _kernel(self, t):
        return (
            _net.ADADELTA,
            (("square_avg", 0.0), ("acc_delta", 0.0)),
            (self.lr, self.rho, self.eps, self.weight_decay),
        )


class Adam(Optimizer):
    r"""Adam (torch.optim.Adam). Kingma and Ba, "Adam: a method for stochastic optimization"
    (ICLR 2015); amsgrad: Reddi, Kale and Kumar, "On the convergence of Adam and beyond"
    (ICLR 2018).

    At step t, with g the gradient (+ weight_decay * W, an L2 penalty)::

        m <- beta1 * m + (1 - beta1) * g
        v <- beta2 * v + (1 - beta2) * g * g           (amsgrad: use vmax = max(vmax, v))
        W <- W - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The course's form, lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t);
    W -= lr_t * m / (sqrt(v) + eps), is the same except that its eps is not scaled by
    sqrt(1 - beta2**t) (the two agree as eps -> 0).
    """

    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        clip_norm=None,
    ):
        super().__init__(params, arguments(locals()))

    def buffers_in_use(self):
        return ("exp_avg", "exp_avg_sq") + ("max_exp_avg_sq",) * bool(self.amsgrad)

    def _moments(self, t):
        """The buffers, and the bias corrections of step t: lr / (1 - beta1**t) and
        sqrt(1 - beta2**t)."""
        buffers = (
            ("exp_avg", 0.0),
            ("exp_avg_sq", 0.0),
            ("max_exp_avg_sq", 0.0) if self.amsgrad else None,
        )
        beta1, beta2 = self.betas
        return buffers, self.lr / (1 - beta1**t), (1 - beta2**t) ** 0.5

    def _kernel(self, t):
        buffers, step_size, bc2_sqrt = self._moments(t)
        beta1, beta2 = self.betas
        scalars = (step_size, beta1, beta2, self.eps, self.weight_decay, bc2_sqrt, self.amsgrad)
        return _net.ADAM, buffers, scalars


class AdamW(Adam):
    r"""AdamW (torch.optim.AdamW): Adam with decoupled weight decay. Loshchilov and Hutter,
    "Decoupled weight decay regularization" (ICLR 2019).

    Each step first shrinks the decayed parameters, W <- W * (1 - lr * weight_decay), then
    applies Adam's update with the plain gradient (no L2 term in m and v).
    """

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        clip_norm=None,
    ):
        super().__init__(params, **arguments(locals()))

    def _kernel(self, t):
        buffers, step_size, bc2_sqrt = self._moments(t)
        beta1, beta2 = self.betas
        scalars = (
            self.lr,
            step_size,
            beta1,
            beta2,
            self.eps,
            self.weight_decay,
            bc2_sqrt,
            self.amsgrad,
        )
        return _net.ADAMW, buffers, scalars


Adagrad = AdaGrad
Adadelta = AdaDelta
