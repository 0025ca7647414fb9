"""What every optimizer shares: the flat buffers, the hyperparameter checks, state dicts.

An optimizer takes its parameters' flat data and gradient buffers
(``fastnn.nn.pack_parameters``), so a step is one kernel call over the whole model; when a
parameter's arrays are replaced (``Module.to``, ``p.data = ...``) it takes them again before
its next step. Weight decay applies only to parameters created with ``decay=True`` (weight
matrices); the others get ``weight_decay=0``, as with a second torch parameter group.

``state_dict()`` returns a plain dict (numbers, flags, 1-D arrays) that ``np.savez`` can
store; ``load_state_dict`` restores behaviour exactly.

Exploding gradients: every optimizer takes ``clip_norm`` (None, or a finite max_norm > 0):
before each update the flat gradient is scaled by max_norm / (norm + 1e-6) when its global L2
norm exceeds max_norm, as ``torch.nn.utils.clip_grad_norm_`` does. ``clip_grad_norm`` does
the same on demand and returns the norm before clipping.
"""

import math
from collections.abc import Mapping
from functools import partial

import numpy as np

from .._checks import _unwrap, check_bool, check_int, check_real
from ..errors import InvalidTypeError, InvalidValueError
from ..kernels import _network as _net
from ..kernels import optim as _k
from ..nn.module import Parameter, pack_parameters
from .clip import check_max_norm, clip_flat, global_norm

# The update kernels' names by the codes ``Optimizer._kernel`` returns (looked up on the kernel
# module at each call, as everywhere else: the benchmarks' reference mode swaps them there).
_KERNELS = {
    _net.SGD: "sgd_step",
    _net.ADAGRAD: "adagrad_step",
    _net.RMSPROP: "rmsprop_step",
    _net.ADADELTA: "adadelta_step",
    _net.ADAM: "adam_step",
    _net.ADAMW: "adamw_step",
}


# -- hyperparameter checks: name -> check(value) ----------------------------------------------
def _betas(value):
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise InvalidValueError(f"betas must be a pair (beta1, beta2), got {value!r}")
    return tuple(
        check_real(b, f"beta parameter at index {i}", low=0.0, high=1.0, closed="left")
        for i, b in enumerate(value)
    )


_CHECKS = {
    "lr": partial(check_real, name="learning rate", low=0.0),
    "momentum": partial(check_real, name="momentum value", low=0.0),
    "dampening": partial(check_real, name="dampening value"),
    "weight_decay": partial(check_real, name="weight_decay value", low=0.0),
    "nesterov": partial(check_bool, name="nesterov"),
    "lr_decay": partial(check_real, name="lr_decay value", low=0.0),
    "initial_accumulator_value": partial(
        check_real, name="initial_accumulator_value value", low=0.0
    ),
    "eps": partial(check_real, name="epsilon value", low=0.0, closed="right"),
    "alpha": partial(check_real, name="alpha value", low=0.0, high=1.0),
    "centered": partial(check_bool, name="centered"),
    "rho": partial(check_real, name="rho value", low=0.0, high=1.0),
    "betas": _betas,
    "amsgrad": partial(check_bool, name="amsgrad"),
    "clip_norm": partial(check_max_norm, name="clip_norm"),
}

# Hyperparameters a state_dict may leave out (older files), with the value that means "off".
# They appear in state_dict() and repr() only when set.
_OPTIONAL = {"clip_norm": None}


def arguments(local_variables):
    """The hyperparameters among an optimizer's ``__init__`` arguments, from its ``locals()``:
    all but ``self`` and ``params``, in the order of the signature."""
    return {k: v for k, v in local_variables.items() if k not in ("self", "params", "__class__")}


# -- base class ------------------------------------------------------------------------------
class Optimizer:
    """Base class: packs ``params`` and keeps hyperparameters, step count and state buffers.

    ``params``: an iterable of ``Parameter`` (e.g. ``model.parameters()``), all of one dtype.
    ``hyperparameters``: name -> value, ``clip_norm`` last (a subclass passes
    ``arguments(locals())``: its own arguments); each becomes a validated attribute
    (``opt.lr = 0.01`` is checked the same way). ``clip_norm``: None, or the max_norm the
    gradient's global L2 norm is clipped to before each update (see ``clip_grad_norm``).
    Subclasses implement ``_kernel(t)``, which names the update kernel of step t (already
    counted in ``self.step_count``), its state buffers and its scalars (or override
    ``_update()`` to update ``self._data`` from ``self._grad`` in their own way), and may
    override ``_check_settings()``.

    The learning rate given here must be > 0; a later assignment (a schedule annealing to 0)
    or a loaded state_dict may set it to 0, which freezes the parameters.

    The weight-decay mask is taken from each ``Parameter.decay`` when the optimizer is made.
    """

    # Names of the flat state buffers this optimizer may create, in state_dict order.
    _state_names = ()

    def __init__(self, params, hyperparameters):
        self._hyper = ()  # for repr() of a half-made optimizer in tracebacks
        params = list(params)
        if not params:
            raise InvalidValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise InvalidTypeError(
                    f"{type(self).__name__}: params[{i}] is {type(p).__name__}, "
                    "expected a fastnn Parameter"
                )
        if "lr" in hyperparameters:
            check_real(hyperparameters["lr"], "learning rate", low=0.0, closed="right")
        self._hyper = tuple(hyperparameters)
        for name, value in hyperparameters.items():
            setattr(self, name, value)
        self._check_settings()
        self.params = tuple(params)
        self.state = {}
        self._data = None
        self._pack()
        self._decay_mask = np.empty(self._data.size, dtype=np.uint8)
        offset = 0
        for p in params:
            self._decay_mask[offset : offset + p.size] = p.decay
            offset += p.size
        self.step_count = 0
        self.state = {}

    def __setattr__(self, name, value):
        if name == "state" and not isinstance(value, dict):
            raise InvalidTypeError(
                f"{type(self).__name__}.state must be a dict of name -> array, "
                f"got {type(value).__name__}"
            )
        if name == "params" and "params" in self.__dict__:
            # The flat buffers, the state and the decay mask are laid out for these parameters.
            raise InvalidValueError(
                f"{type(self).__name__}: the parameters are fixed when an optimizer is made; "
                "make a new optimizer for other parameters"
            )
        check = _CHECKS.get(name)
        if check is not None and name in self.__dict__.get("_hyper", ()):
            value = check(value)
        object.__setattr__(self, name, value)

    def buffers_in_use(self):
        """The state buffers a step reads with the current hyperparameters: after the first
        step each of them holds the run's history, so a loaded state must have them all."""
        return self._state_names

    def _check_settings(self):
        """Checks that involve several hyperparameters (after each one is checked alone)."""

    # -- buffers -----------------------------------------------------------------------------
    def _pack(self):
        """Take the parameters' flat buffers (packing them if they are not packed in order)."""
        data, grad = pack_parameters(self.params)
        if self._data is not None and data.size != self._data.size:
            # Nothing is adopted: the moments and the decay mask keep the old size, so the
            # next step re-checks and raises again instead of running over the wrong sizes.
            raise InvalidValueError(
                f"{type(self).__name__}: parameters changed size since the optimizer was made "
                f"({self._data.size} values, now {data.size})"
            )
        self._data, self._grad = data, grad
        self._unused = np.empty(0, dtype=data.dtype)
        for name, buf in self.state.items():
            if buf.dtype != data.dtype:
                self.state[name] = buf.astype(data.dtype)
        self._seen = Parameter.rebinds

    def _sync(self):
        """Re-take the flat buffers if any Parameter's arrays were replaced since they were
        taken (``Module.to``, a container re-packing, ``p.data = ...``): one integer
        comparison when nothing changed."""
        if Parameter.rebinds != self._seen:
            self._pack()

    def flat_buffers(self):
        """``(data, grad)``: the flat parameter and gradient buffers a step updates, current
        (re-taken first if the parameters' arrays were replaced)."""
        self._sync()
        return self._data, self._grad

    def _buffer(self, name, fill=0.0):
        """State buffer ``name``, created filled with ``fill`` the first time it is needed, and
        checked every time: ``state`` is a public dict, and the kernel writes the buffer over
        the whole flat length without bounds checks."""
        buf = self.state.get(name)
        if buf is None:
            buf = np.full(self._data.size, fill, dtype=self._data.dtype)
            self.state[name] = buf
        elif not (
            buf.__class__ is np.ndarray
            and buf.shape == self._data.shape
            and buf.dtype is self._data.dtype
            and buf.flags.writeable
        ) and not (  # the full check, for subclasses and equal dtypes of other identities
            isinstance(buf, np.ndarray)
            and buf.shape == self._data.shape
            and buf.dtype == self._data.dtype
            and buf.flags.writeable
        ):
            raise InvalidValueError(
                f"{type(self).__name__}: state[{name!r}] must be a writeable {self._data.dtype} "
                f"array of shape {self._data.shape}, got "
                + (
                    f"{buf.dtype} {buf.shape}{'' if buf.flags.writeable else ' read-only'}"
                    if isinstance(buf, np.ndarray)
                    else type(buf).__name__
                )
            )
        return buf

    # -- public API --------------------------------------------------------------------------
    def step(self):
        """Update every parameter once from its current gradient (clipped first when
        ``clip_norm`` is set)."""
        self._sync()
        if self.clip_norm is not None:
            clip_flat(self._grad, self.clip_norm)
        self.step_count += 1
        self._update()

    def _kernel(self, t):
        """The update of step ``t``: (kernel code, buffers, scalars). The code names a kernel
        of ``fastnn.kernels.optim`` (``fastnn.kernels._network``'s SGD, ADAGRAD, ...);
        ``buffers`` are its state buffers in its order, each (state name, initial value), or
        None where it takes an unused array; ``scalars`` its arguments after the decay mask.
        ``_update`` calls the kernel with them, and the compiled training step hands the same
        scalars to the same kernel, so both paths update alike."""
        raise NotImplementedError

    def _update(self):
        code, buffers, scalars = self._kernel(self.step_count)
        # SGD's momentum buffer starts as the first gradient: the kernel needs to know.
        first = code == _net.SGD and buffers[0] is not None and buffers[0][0] not in self.state
        bufs = [self._unused if b is None else self._buffer(*b) for b in buffers]
        kernel = getattr(_k, _KERNELS[code])
        if code == _net.SGD:
            kernel(self._data, self._grad, *bufs, self._decay_mask, *scalars, first)
        else:
            kernel(self._data, self._grad, *bufs, self._decay_mask, *scalars)

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
            raise InvalidTypeError(
                f"{cls}.load_state_dict: expected a dict, got {type(state).__name__}"
            )
        kind = _unwrap(state.get("optimizer"))
        if kind != cls:
            raise InvalidValueError(f"state_dict is for optimizer {kind!r}, not {cls!r}")
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
            raise InvalidValueError(
                f"state_dict does not match {cls}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        step = check_int(state["step"], "state_dict['step']", low=0)
        hyper = {
            name: _CHECKS[name](state[name] if name in state else _OPTIONAL[name])
            for name in self._hyper
        }
        buffers = {}
        n = self._data.size
        for name in self._state_names:
            if name not in state:
                continue
            value = np.asarray(state[name])
            if value.shape != (n,):
                raise InvalidValueError(
                    f"state_dict[{name!r}]: expected shape ({n},), got {value.shape}"
                )
            if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
                raise InvalidTypeError(
                    f"state_dict[{name!r}]: expected real numbers, got {value.dtype}"
                )
            buffers[name] = value
        old = {name: getattr(self, name) for name in self._hyper}
        for name, value in hyper.items():
            setattr(self, name, value)
        try:
            self._check_settings()
            lost = [name for name in self.buffers_in_use() if name not in buffers]
            if step > 0 and lost:
                raise InvalidValueError(
                    f"state_dict of {cls} after step {step} lacks the state {lost} its steps "
                    "read; it cannot continue that run"
                )
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


# -- clipping on demand ----------------------------------------------------------------------
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
    max_norm = check_real(max_norm, "max_norm", low=0.0, closed="right")
    if isinstance(params, Optimizer):
        return clip_flat(params.flat_buffers()[1], max_norm)
    if isinstance(params, Parameter):
        params = [params]
    params = list(params)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise InvalidTypeError(
                f"clip_grad_norm: params[{i}] is {type(p).__name__}, expected a fastnn "
                "Parameter or an optimizer"
            )
    with np.errstate(over="ignore", invalid="ignore"):
        norms = [global_norm(p.grad.reshape(-1)) for p in params]
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
