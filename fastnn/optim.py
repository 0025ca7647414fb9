"""Optimizers: SGD, Momentum, Nesterov, AdaGrad, RMSprop, AdaDelta, Adam, AdamW.

An optimizer packs its parameters into one flat data buffer and one flat gradient buffer
(``fastnn.module.pack_parameters``), so a step is a single kernel call over the whole model.
The updates are exactly torch.optim's (same defaults, same order of operations), and the
docstrings say how they relate to the forms used in the course. Weight decay applies only to
parameters created with ``decay=True`` (weight matrices); the others get ``weight_decay=0``,
as with a second torch parameter group.

    opt = Adam(model.parameters(), lr=1e-3)
    for x, t in batches:
        loss.forward(model.forward(x), t)
        model.backward(loss.backward())    # writes the parameters' gradients
        opt.step()
    opt.lr = 1e-4                          # hyperparameters can change between steps

``state_dict()`` returns a plain dict (numbers, flags, 1-D arrays) that ``np.savez`` can
store; ``load_state_dict`` restores behaviour exactly.
"""

import numbers
from collections.abc import Mapping

import numpy as np

from .kernels import optim as _k
from .module import Parameter, pack_parameters

__all__ = [
    "AdaDelta",
    "Adadelta",
    "AdaGrad",
    "Adagrad",
    "Adam",
    "AdamW",
    "Momentum",
    "Nesterov",
    "Optimizer",
    "RMSprop",
    "SGD",
    "get",
]


# -- hyperparameter checks -------------------------------------------------------------------
def _unwrap(value):
    # 0-d arrays come back from np.savez/np.load.
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _real(name, value):
    value = _unwrap(value)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def _at_least_zero(label):
    def check(name, value):
        x = _real(name, value)
        if not x >= 0:  # also rejects NaN
            raise ValueError(f"invalid {label}: {_unwrap(value)}")
        return x

    return check


def _between_0_1(label, closed):
    def check(name, value):
        x = _real(name, value)
        if not (0 <= x <= 1 if closed else 0 <= x < 1):
            raise ValueError(f"invalid {label}: {_unwrap(value)}")
        return x

    return check


def _any_real(name, value):
    x = _real(name, value)
    if not np.isfinite(x):
        raise ValueError(f"invalid {name} value: {x}")
    return x


def _flag(name, value):
    value = _unwrap(value)
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _betas(name, value):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"betas must be a pair (beta1, beta2), got {value!r}")
    out = []
    for i, b in enumerate(value):
        x = _real("betas", b)
        if not 0 <= x < 1:
            raise ValueError(f"invalid beta parameter at index {i}: {_unwrap(b)}")
        out.append(x)
    return tuple(out)


_CHECKS = {
    "lr": _at_least_zero("learning rate"),
    "momentum": _at_least_zero("momentum value"),
    "dampening": _any_real,
    "weight_decay": _at_least_zero("weight_decay value"),
    "nesterov": _flag,
    "lr_decay": _at_least_zero("lr_decay value"),
    "initial_accumulator_value": _at_least_zero("initial_accumulator_value value"),
    "eps": _at_least_zero("epsilon value"),
    "alpha": _at_least_zero("alpha value"),
    "centered": _flag,
    "rho": _between_0_1("rho value", closed=True),
    "betas": _betas,
    "amsgrad": _flag,
}


# -- base class ------------------------------------------------------------------------------
class Optimizer:
    """Base class: packs ``params`` and keeps hyperparameters, step count and state buffers.

    ``params``: an iterable of ``Parameter`` (e.g. ``model.parameters()``), all of one dtype.
    ``defaults``: hyperparameter name -> value; each becomes a validated attribute
    (``opt.lr = 0.01`` is checked the same way). Subclasses implement ``_update()``, which
    applies one step to ``self._data`` using ``self._grad`` and ``self.step_count``
    (already incremented), and may override ``_check_settings()``.

    The weight-decay mask is taken from each ``Parameter.decay`` when the optimizer is made.
    """

    # Names of the flat state buffers this optimizer may create, in state_dict order.
    _state_names = ()

    def __init__(self, params, defaults):
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{type(self).__name__}: params[{i}] is {type(p).__name__}, "
                    "expected a fastnn Parameter"
                )
        self._hyper = tuple(defaults)
        for name, value in defaults.items():
            setattr(self, name, value)
        self._check_settings()
        self.params = params
        self._pack()
        self._decay_mask = np.empty(self._data.size, dtype=np.uint8)
        offset = 0
        for p in params:
            self._decay_mask[offset : offset + p.size] = p.decay
            offset += p.size
        self.step_count = 0
        self.state = {}

    def __setattr__(self, name, value):
        check = _CHECKS.get(name)
        if check is not None and name in self.__dict__.get("_hyper", ()):
            value = check(name, value)
        object.__setattr__(self, name, value)

    def _check_settings(self):
        """Checks that involve several hyperparameters (after each one is checked alone)."""

    # -- buffers -----------------------------------------------------------------------------
    def _pack(self):
        self._data, self._grad = pack_parameters(self.params)
        self._bound = [(p.data, p.grad) for p in self.params]
        self._unused = np.empty(0, dtype=self._data.dtype)

    def _sync(self):
        """Re-pack if a parameter's arrays were replaced (e.g. by ``Module.to``)."""
        for p, (data, grad) in zip(self.params, self._bound, strict=True):
            if p.data is not data or p.grad is not grad:
                break
        else:
            return
        size = self._data.size
        self._pack()
        if self._data.size != size:
            raise ValueError(
                f"{type(self).__name__}: parameters changed size since the optimizer was made "
                f"({size} values, now {self._data.size})"
            )
        for name, buf in self.state.items():
            if buf.dtype != self._data.dtype:
                self.state[name] = buf.astype(self._data.dtype)

    def _buffer(self, name, fill=0.0):
        """State buffer ``name``, created filled with ``fill`` the first time it is needed."""
        buf = self.state.get(name)
        if buf is None:
            buf = np.full(self._data.size, fill, dtype=self._data.dtype)
            self.state[name] = buf
        return buf

    # -- public API --------------------------------------------------------------------------
    def step(self):
        """Update every parameter once from its current gradient."""
        self._sync()
        self.step_count += 1
        self._update()

    def _update(self):
        raise NotImplementedError

    def zero_grad(self):
        """Set every parameter's gradient to zero."""
        self._sync()
        self._grad.fill(0)

    @property
    def num_values(self):
        """Number of scalar values updated per step."""
        return self._data.size

    def hyperparameters(self):
        """Current hyperparameters, name -> value."""
        return {name: getattr(self, name) for name in self._hyper}

    def state_dict(self):
        """Copies of everything a step depends on: a plain dict of str -> scalar/tuple/array."""
        out = {"optimizer": type(self).__name__, "step": self.step_count}
        out.update(self.hyperparameters())
        for name in self._state_names:
            if name in self.state:
                out[name] = self.state[name].copy()
        return out

    def load_state_dict(self, state):
        """Restore hyperparameters, step count and state buffers saved by ``state_dict``.

        ``state`` is that dict or any mapping with the same items (``np.load`` of a file
        written by ``np.savez(f, **opt.state_dict())`` works). The optimizer must be of the
        same class and over the same number of values. Nothing changes if anything is invalid.
        """
        cls = type(self).__name__
        self._sync()
        if not isinstance(state, Mapping):
            raise TypeError(f"{cls}.load_state_dict: expected a dict, got {type(state).__name__}")
        kind = _unwrap(state.get("optimizer"))
        if kind != cls:
            raise ValueError(f"state_dict is for optimizer {kind!r}, not {cls!r}")
        required = ("optimizer", "step", *self._hyper)
        missing = [k for k in required if k not in state]
        unexpected = [k for k in state if k not in required and k not in self._state_names]
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match {cls}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        step = _unwrap(state["step"])
        if isinstance(step, (bool, np.bool_)) or not isinstance(step, numbers.Integral):
            raise TypeError(f"state_dict['step']: expected an integer, got {step!r}")
        if step < 0:
            raise ValueError(f"state_dict['step']: expected >= 0, got {step}")
        hyper = {name: _CHECKS[name](name, state[name]) for name in self._hyper}
        buffers = {}
        n = self._data.size
        for name in self._state_names:
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != (n,):
                raise ValueError(f"state_dict[{name!r}]: expected shape ({n},), got {value.shape}")
            if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
                raise TypeError(f"state_dict[{name!r}]: expected real numbers, got {value.dtype}")
            buffers[name] = value
        old = self.hyperparameters()
        for name, value in hyper.items():
            setattr(self, name, value)
        try:
            self._check_settings()
        except ValueError:
            for name, value in old.items():
                setattr(self, name, value)
            raise
        self.step_count = int(step)
        self.state = {
            name: np.array(value, dtype=self._data.dtype, copy=True)
            for name, value in buffers.items()
        }

    def __repr__(self):
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._hyper)
        return f"{type(self).__name__}({args})"


# -- SGD family ------------------------------------------------------------------------------
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
        self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults)

    def _check_settings(self):
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum requires a momentum and zero dampening")

    def _update(self):
        if self.momentum != 0:
            first = "momentum_buffer" not in self.state
            buf = self._buffer("momentum_buffer")
        else:
            first, buf = False, self._unused
        _k.sgd_step(
            self._data,
            self._grad,
            buf,
            self._decay_mask,
            self.lr,
            self.momentum,
            self.dampening,
            self.weight_decay,
            self.nesterov,
            first,
        )


class Momentum(SGD):
    r"""SGD with (heavy-ball) momentum: ``SGD`` with ``momentum=0.9`` by default.

    torch's form: b <- momentum * b + g (b = g on the first step), W <- W - lr * b.
    The course's form, v <- momentum * v - lr * dW, W <- W + v (v starting at 0), is the same
    update for a constant lr: v = -lr * b at every step. (When lr changes, the course's form
    keeps past steps at their old lr, torch's rescales them.) Polyak (1964).
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0):
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=False,
        )


class Nesterov(SGD):
    r"""SGD with Nesterov momentum: ``SGD(nesterov=True)`` with ``momentum=0.9`` by default.

    torch's form: b <- momentum * b + g, W <- W - lr * (g + momentum * b).
    The course's form, v <- momentum * v - lr * dW, W <- W + momentum**2 * v_old
    - (1 + momentum) * lr * dW, is the same update for a constant lr (v = -lr * b).
    Sutskever et al., ICML 2013; Nesterov (1983).
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0):
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=0.0,
            weight_decay=weight_decay,
            nesterov=True,
        )


# -- adaptive methods ------------------------------------------------------------------------
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
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults)

    def _update(self):
        h = self._buffer("sum", self.initial_accumulator_value)
        clr = self.lr / (1 + (self.step_count - 1) * self.lr_decay)
        _k.adagrad_step(
            self._data, self._grad, h, self._decay_mask, clr, self.weight_decay, self.eps
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
        self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
    ):
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    def _update(self):
        v = self._buffer("square_avg")
        m = self._buffer("grad_avg") if self.centered else self._unused
        b = self._buffer("momentum_buffer") if self.momentum > 0 else self._unused
        _k.rmsprop_step(
            self._data,
            self._grad,
            v,
            m,
            b,
            self._decay_mask,
            self.lr,
            self.alpha,
            self.eps,
            self.weight_decay,
            self.momentum,
            self.centered,
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

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _update(self):
        v = self._buffer("square_avg")
        u = self._buffer("acc_delta")
        _k.adadelta_step(
            self._data,
            self._grad,
            v,
            u,
            self._decay_mask,
            self.lr,
            self.rho,
            self.eps,
            self.weight_decay,
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
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _moments(self):
        m = self._buffer("exp_avg")
        v = self._buffer("exp_avg_sq")
        v_max = self._buffer("max_exp_avg_sq") if self.amsgrad else self._unused
        beta1, beta2 = self.betas
        t = self.step_count
        step_size = self.lr / (1 - beta1**t)
        bc2_sqrt = (1 - beta2**t) ** 0.5
        return m, v, v_max, step_size, bc2_sqrt

    def _update(self):
        m, v, v_max, step_size, bc2_sqrt = self._moments()
        _k.adam_step(
            self._data,
            self._grad,
            m,
            v,
            v_max,
            self._decay_mask,
            step_size,
            self.betas[0],
            self.betas[1],
            self.eps,
            self.weight_decay,
            bc2_sqrt,
            self.amsgrad,
        )


class AdamW(Adam):
    r"""AdamW (torch.optim.AdamW): Adam with decoupled weight decay. Loshchilov and Hutter,
    "Decoupled weight decay regularization" (ICLR 2019).

    Each step first shrinks the decayed parameters, W <- W * (1 - lr * weight_decay), then
    applies Adam's update with the plain gradient (no L2 term in m and v).
    """

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False
    ):
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )

    def _update(self):
        m, v, v_max, step_size, bc2_sqrt = self._moments()
        _k.adamw_step(
            self._data,
            self._grad,
            m,
            v,
            v_max,
            self._decay_mask,
            self.lr,
            step_size,
            self.betas[0],
            self.betas[1],
            self.eps,
            self.weight_decay,
            bc2_sqrt,
            self.amsgrad,
        )


Adagrad = AdaGrad
Adadelta = AdaDelta

_BY_NAME = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adadelta": AdaDelta,
    "adam": Adam,
    "adamw": AdamW,
}


def get(name, params, **kwargs):
    """The optimizer called ``name`` (case-insensitive) over ``params``, e.g.
    ``get("adam", model.parameters(), lr=1e-3)``."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string, got {type(name).__name__}")
    cls = _BY_NAME.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(_BY_NAME)}")
    return cls(params, **kwargs)
