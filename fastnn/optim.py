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

Exploding gradients: every optimizer takes ``clip_norm`` (None, or a finite max_norm > 0):
before each update the flat gradient is scaled by max_norm / (norm + 1e-6) when its global L2
norm exceeds max_norm, as ``torch.nn.utils.clip_grad_norm_`` does. ``clip_grad_norm`` does
the same on demand and returns the norm before clipping.
"""

import math
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
    "clip_grad_norm",
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
        if not 0 <= x < math.inf:  # also rejects NaN
            raise ValueError(f"invalid {label}: {_unwrap(value)}; expected a finite value >= 0")
        return x

    return check


def _positive(label):
    def check(name, value):
        x = _real(name, value)
        if not 0 < x < math.inf:
            raise ValueError(f"invalid {label}: {_unwrap(value)}; expected a finite value > 0")
        return x

    return check


def _between_0_1(label, closed):
    def check(name, value):
        x = _real(name, value)
        if not (0 <= x <= 1 if closed else 0 <= x < 1):
            interval = "[0, 1]" if closed else "[0, 1)"
            raise ValueError(f"invalid {label}: {_unwrap(value)}; expected a value in {interval}")
        return x

    return check


def _max_norm(name, value):
    """None (no clipping) or a finite max_norm > 0."""
    if _unwrap(value) is None:
        return None
    return _positive(name)(name, value)


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
            raise ValueError(
                f"invalid beta parameter at index {i}: {_unwrap(b)}; expected a value in [0, 1)"
            )
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
    "eps": _positive("epsilon value"),
    "alpha": _between_0_1("alpha value", closed=True),
    "centered": _flag,
    "rho": _between_0_1("rho value", closed=True),
    "betas": _betas,
    "amsgrad": _flag,
    "clip_norm": _max_norm,
}

# Hyperparameters a state_dict may leave out (older files), with the value that means "off".
# They appear in state_dict() and repr() only when set.
_OPTIONAL = {"clip_norm": None}


# -- base class ------------------------------------------------------------------------------
class Optimizer:
    """Base class: packs ``params`` and keeps hyperparameters, step count and state buffers.

    ``params``: an iterable of ``Parameter`` (e.g. ``model.parameters()``), all of one dtype.
    ``defaults``: hyperparameter name -> value; each becomes a validated attribute
    (``opt.lr = 0.01`` is checked the same way). ``clip_norm``: None, or the max_norm the
    gradient's global L2 norm is clipped to before each update (see ``clip_grad_norm``).
    Subclasses implement ``_update()``, which applies one step to ``self._data`` using
    ``self._grad`` and ``self.step_count`` (already incremented), and may override
    ``_check_settings()``.

    The learning rate given here must be > 0; a later assignment (a schedule annealing to 0)
    or a loaded state_dict may set it to 0, which freezes the parameters.

    The weight-decay mask is taken from each ``Parameter.decay`` when the optimizer is made.
    """

    # Names of the flat state buffers this optimizer may create, in state_dict order.
    _state_names = ()

    def __init__(self, params, defaults, clip_norm=None):
        self._hyper = ()  # for repr() of a half-made optimizer in tracebacks
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(
                    f"{type(self).__name__}: params[{i}] is {type(p).__name__}, "
                    "expected a fastnn Parameter"
                )
        if "lr" in defaults and not 0 < _real("lr", defaults["lr"]) < math.inf:
            raise ValueError(
                f"invalid learning rate: {_unwrap(defaults['lr'])}; expected a finite lr > 0"
            )
        defaults = dict(defaults, clip_norm=clip_norm)
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
        """Update every parameter once from its current gradient (clipped first when
        ``clip_norm`` is set)."""
        self._sync()
        if self.clip_norm is not None:
            _clip_flat(self._grad, self.clip_norm)
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
        """Current hyperparameters, name -> value (``clip_norm`` only when set)."""
        return {
            name: getattr(self, name)
            for name in self._hyper
            if not (name in _OPTIONAL and getattr(self, name) == _OPTIONAL[name])
        }

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
        hyper_names = [h for h in self._hyper if h not in _OPTIONAL]
        optional = [h for h in self._hyper if h in _OPTIONAL]
        required = ("optimizer", "step", *hyper_names)
        missing = [k for k in required if k not in state]
        unexpected = [
            k
            for k in state
            if k not in required and k not in optional and k not in self._state_names
        ]
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
        hyper = {
            name: _CHECKS[name](name, state[name] if name in state else _OPTIONAL[name])
            for name in self._hyper
        }
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
        old = {name: getattr(self, name) for name in self._hyper}
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
        args = ", ".join(f"{name}={value!r}" for name, value in self.hyperparameters().items())
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
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        clip_norm=None,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
        )
        super().__init__(params, defaults, clip_norm)

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

    def __init__(
        self, params, lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, clip_norm=None
    ):
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=False,
            clip_norm=clip_norm,
        )


class Nesterov(SGD):
    r"""SGD with Nesterov momentum: ``SGD(nesterov=True)`` with ``momentum=0.9`` by default.

    torch's form: b <- momentum * b + g, W <- W - lr * (g + momentum * b).
    The course's form, v <- momentum * v - lr * dW, W <- W + momentum**2 * v_old
    - (1 + momentum) * lr * dW, is the same update for a constant lr (v = -lr * b).
    Sutskever et al., ICML 2013; Nesterov (1983).
    """

    def __init__(self, params, lr=1e-3, momentum=0.9, weight_decay=0.0, clip_norm=None):
        super().__init__(
            params,
            lr=lr,
            momentum=momentum,
            dampening=0.0,
            weight_decay=weight_decay,
            nesterov=True,
            clip_norm=clip_norm,
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
        clip_norm=None,
    ):
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
        )
        super().__init__(params, defaults, clip_norm)

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
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults, clip_norm)

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

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, clip_norm=None):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults, clip_norm)

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
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        clip_norm=None,
    ):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults, clip_norm)

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
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=1e-2,
        amsgrad=False,
        clip_norm=None,
    ):
        super().__init__(
            params,
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            clip_norm=clip_norm,
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


# -- gradient norms and clipping -------------------------------------------------------------
def _global_norm(a):
    """The L2 norm of the 1-D array ``a`` as a float; inf or NaN when ``a`` holds inf or NaN.

    One BLAS dot product, no allocation. Only when the sum of squares overflows although every
    value is finite (float32 norms above about 1e19) is it redone in float64, scaled. NumPy
    warns of that overflow: callers run it under ``np.errstate`` (``fit``'s loop does).
    """
    s = float(np.dot(a, a))
    if math.isfinite(s):
        return math.sqrt(s)
    if not np.isfinite(a).all():
        return math.inf if not np.isnan(a).any() else math.nan
    big = float(np.abs(a).max())
    scaled = a.astype(np.float64) / big
    return big * math.sqrt(float(np.dot(scaled, scaled)))


def _clip_flat(grad, max_norm):
    """Scale ``grad`` in place to global norm about ``max_norm`` if larger; return its norm
    before. A non-finite norm leaves ``grad`` as it is (scaling would only spread NaN)."""
    with np.errstate(over="ignore", invalid="ignore"):
        norm = _global_norm(grad)
    if norm > max_norm and math.isfinite(norm):
        grad *= max_norm / (norm + 1e-6)
    return norm


def clip_grad_norm(params, max_norm):
    """Clip gradients by their global L2 norm, as ``torch.nn.utils.clip_grad_norm_``.

    ``params``: an ``Optimizer`` (its flat gradient buffer), one ``Parameter`` or an iterable of
    them (e.g. ``model.parameters()``). ``max_norm``: a finite number > 0. With
    norm = sqrt(sum of every gradient value squared), when norm > max_norm every gradient is
    multiplied by max_norm / (norm + 1e-6). Returns norm, before clipping, as a float. A NaN
    or infinite norm is returned as it is and the gradients are left unchanged.

    Pascanu, Mikolov and Bengio, "On the difficulty of training recurrent neural networks"
    (ICML 2013).
    """
    max_norm = _max_norm("max_norm", max_norm)
    if max_norm is None:
        raise TypeError("max_norm must be a real number, got None")
    if isinstance(params, Optimizer):
        params._sync()
        return _clip_flat(params._grad, max_norm)
    if isinstance(params, Parameter):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(
                f"clip_grad_norm: params[{i}] is {type(p).__name__}, expected a fastnn "
                "Parameter or an optimizer"
            )
    with np.errstate(over="ignore", invalid="ignore"):
        norms = [_global_norm(p.grad.reshape(-1)) for p in params]
    if not norms:
        return 0.0
    if not all(math.isfinite(n) for n in norms):
        return math.nan if any(math.isnan(n) for n in norms) else math.inf
    big = max(norms)
    norm = big * math.sqrt(sum((n / big) ** 2 for n in norms)) if big > 0 else 0.0
    if norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for p in params:
            p.grad *= scale
    return norm


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
