"""Parameters, the ``Module`` base class, and the flat parameter buffers.

A ``Parameter`` holds ``data`` and ``grad`` arrays of one shape. ``pack_parameters`` moves a
list of parameters into one contiguous data buffer and one contiguous gradient buffer, each
parameter keeping views into them, so an optimizer updates a whole model with one kernel call.
Layers therefore always reach their arrays through ``self.weight.data`` (never a cached
reference): packing rebinds ``data`` and ``grad``.
"""

import functools
import inspect
import threading
import weakref
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np

from .._checks import DTYPES, as_array, check_bool, check_dtype, check_int
from ..errors import InvalidTypeError, InvalidValueError, StateError
from ..kernels.softmax_cross_entropy import softmax_forward

# Distinct batch shapes a layer keeps work buffers for before it drops them all.
_MAX_BUFFERS = 16

# What ``Module.io_widths`` gives as the output width of a module whose output is as wide as
# its input (activations, dropout).
SAME = "same"


class Parameter:
    """A trainable array and its gradient.

    ``decay`` says whether ``weight_decay`` applies to it: true for weight matrices, false for
    biases and batch-norm scale/shift (the course's penalty is lam/2 * sum(W**2) over weights).
    """

    __slots__ = ("data", "grad", "decay")

    # How many times the ``data`` or ``grad`` array of any Parameter has been replaced by
    # another one (``pack_parameters``, ``Module.to``, or ``p.data = ...``). An optimizer
    # remembers the count it saw when it packed its parameters, so one integer comparison per
    # step tells it whether it must look at them again.
    rebinds = 0

    def __init__(self, data, decay=False):
        data = np.ascontiguousarray(data)
        check_dtype(data.dtype)  # a ValueError naming the dtypes, as for a layer's dtype=
        self.data = data
        self.grad = np.zeros_like(data)
        self.decay = check_bool(decay, "decay")

    def __setattr__(self, name, value):
        # Reading an attribute stays a plain slot access; only rebinding goes through here.
        if name != "decay":
            if not isinstance(value, np.ndarray):
                raise InvalidTypeError(
                    f"Parameter.{name} must be a numpy array, got {type(value).__name__}"
                )
            if value.dtype not in DTYPES:
                raise InvalidTypeError(
                    f"Parameter.{name} must be float32 or float64, got {value.dtype}"
                )
            if name == "grad" and not value.flags.writeable:
                raise InvalidValueError("Parameter.grad must be writeable: backward writes it")
        object.__setattr__(self, name, value)
        if name != "decay":
            Parameter.rebinds += 1

    @property
    def shape(self):
        return self.data.shape

    @property
    def size(self):
        return self.data.size

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, decay={self.decay})"


def _owner(a):
    while a.base is not None:
        a = a.base
    return a


def _address(a):
    return a.__array_interface__["data"][0]


def flat_views(arrays):
    """The 1-D array that ``arrays`` tile back to back, in order, or None if they do not."""
    if not arrays:
        return None
    owner = _owner(arrays[0])
    if owner.ndim != 1 or not owner.flags.c_contiguous or owner.dtype != arrays[0].dtype:
        return None
    start = _address(arrays[0])
    expect = start
    for a in arrays:
        if _owner(a) is not owner or _address(a) != expect or not a.flags.c_contiguous:
            return None
        expect += a.nbytes
    first = (start - _address(owner)) // owner.itemsize
    return owner[first : first + (expect - start) // owner.itemsize]


def pack_parameters(params):
    """Put ``params`` into one data buffer and one gradient buffer; return ``(data, grad)``.

    Parameters already packed in this order are left as they are. Otherwise values and
    gradients are copied into new buffers and each parameter's ``data``/``grad`` is rebound to
    a view of them. All parameters must share one dtype.
    """
    params = list(params)
    if not params:
        raise InvalidValueError("no parameters to pack")
    dtypes = {p.data.dtype for p in params}
    if len(dtypes) != 1:
        raise InvalidValueError(
            f"parameters have mixed dtypes {sorted(map(str, dtypes))}; expected one"
        )
    if len({id(p) for p in params}) != len(params):
        raise InvalidValueError("a parameter appears more than once")
    for i, p in enumerate(params):
        # An optimizer pairs data[i] with grad[i] in the flat buffers: the two must match.
        if p.grad.shape != p.data.shape:
            raise InvalidValueError(
                f"parameter {i}: its grad has shape {p.grad.shape} and its data {p.data.shape}; "
                "expected one shape"
            )
    data = flat_views([p.data for p in params])
    grad = flat_views([p.grad for p in params])
    if data is not None and grad is not None:
        return data, grad
    dtype = dtypes.pop()
    total = sum(p.size for p in params)
    data = np.empty(total, dtype=dtype)
    grad = np.empty(total, dtype=dtype)
    offset = 0
    for p in params:
        n = p.size
        data[offset : offset + n] = p.data.ravel()
        grad[offset : offset + n] = p.grad.ravel()
        p.data = data[offset : offset + n].reshape(p.data.shape)
        p.grad = grad[offset : offset + n].reshape(p.grad.shape)
        offset += n
    return data, grad


# One lock per model for predict and evaluate: both switch the model to eval mode and run it
# through the layers' shared work buffers, so two threads predicting with one model would
# overwrite each other's outputs. A weak-key table rather than an attribute, so that models
# stay deep-copyable and the lock goes with the model.
_EVAL_LOCKS = weakref.WeakKeyDictionary()
_EVAL_LOCKS_GUARD = threading.Lock()


def eval_lock(module):
    """The re-entrant lock that ``predict`` (and ``evaluate``) hold while they run ``module``."""
    with _EVAL_LOCKS_GUARD:
        lock = _EVAL_LOCKS.get(module)
        if lock is None:
            lock = _EVAL_LOCKS[module] = threading.RLock()
        return lock


# Models being trained, and by which thread: fit holds a model for its whole run.
_TRAINED_BY = weakref.WeakKeyDictionary()


def using(module):
    """The lock that ``predict`` and ``evaluate`` hold while they run ``module``, after
    checking that no other thread is training it: ``StateError`` then, rather than a wait as
    long as the training (or outputs from a model caught between two steps)."""
    owner = _TRAINED_BY.get(module)
    if owner is not None and owner != threading.get_ident():
        raise StateError(
            f"{type(module).__name__} is being trained by fit in another thread; predict with "
            "it after fit returns, or with a copy (copy.deepcopy(model) before fit)"
        )
    return eval_lock(module)


@contextmanager
def held_for_training(module):
    """Hold ``module`` for a ``fit``: wait for the ``predict`` calls in flight, then keep the
    model's lock until training ends; other threads' ``predict``, ``evaluate`` and ``fit``
    on it raise ``StateError`` meanwhile (the thread running fit may still use it)."""
    with using(module):
        _TRAINED_BY[module] = threading.get_ident()
        try:
            yield
        finally:
            del _TRAINED_BY[module]


def check_state(module, name, a, shape, writeable=False, contiguous=False):
    """Before a kernel call: ``a``, the array ``module`` holds as ``name``, must be an array of
    ``shape`` and the module's dtype, writeable when the kernel writes into it, and
    C-contiguous when ``contiguous`` (BLAS reads and writes it as one block).

    Kernels do no bounds checking, and a parameter's arrays can be swapped (``p.data = ...``)
    or a layer's sizes changed at any time, so each layer checks the arrays it hands over on
    every call: a few comparisons. Raises ``InvalidTypeError`` for a wrong type or dtype and
    ``InvalidValueError`` for a wrong shape, a read-only or a non-contiguous array.
    """
    if (
        not isinstance(a, np.ndarray)
        or a.shape != shape
        or a.dtype != module.dtype
        or (writeable and not a.flags.writeable)
        or (contiguous and not a.flags.c_contiguous)
    ):
        _refuse_state(module, name, a, shape, writeable)


def _refuse_state(module, name, a, shape, writeable):
    what = f"{module!r}: {name}" if "\n" not in repr(module) else f"{type(module).__name__}: {name}"
    if not isinstance(a, np.ndarray):
        raise InvalidTypeError(f"{what} must be a numpy array, got {type(a).__name__}")
    if a.dtype != module.dtype:
        raise InvalidTypeError(
            f"{what} has dtype {a.dtype}, expected the layer's {module.dtype} "
            "(module.to(dtype) converts a whole model)"
        )
    if a.shape != shape:
        raise InvalidValueError(f"{what} has shape {a.shape}, expected {shape}")
    if writeable and not a.flags.writeable:
        raise InvalidValueError(f"{what} is read-only; the layer writes into it")
    raise InvalidValueError(
        f"{what} is not C-contiguous (a view such as w[:, ::2] or w.T); the layer's matrix "
        "products need one block: np.ascontiguousarray gives it"
    )


def _batch_output(z, rows, first):
    """A forward pass's output for a batch of ``rows`` rows: an array of that many rows, like
    the ``first`` batch's (shape past the rows, dtype) when there was one."""
    if (
        not isinstance(z, np.ndarray)
        or z.ndim == 0
        or z.shape[0] != rows
        or (first is not None and (z.shape[1:] != first.shape[1:] or z.dtype != first.dtype))
    ):
        got = f"{z.dtype} {z.shape}" if isinstance(z, np.ndarray) else type(z).__name__
        like = "" if first is None else f" of shape (rows,) + {first.shape[1:]}, {first.dtype}"
        raise InvalidValueError(
            f"predict: the model returned {got} for {rows} rows; expected {rows} rows{like}"
        )
    return z


class Module:
    """Base class of layers and models.

    A module implements ``forward(x)`` and ``backward(dout, input_grad=True)``. ``forward``
    returns an array the module reuses on its next call with the same batch size (training
    allocates nothing in steady state); calling the module, ``module(x)``, returns a copy that
    stays valid. ``backward`` returns dx and overwrites (does not accumulate) the gradients of
    the module's parameters; with ``input_grad=False`` the caller does not need dx (the first
    layer of a network), so the module may skip computing it and return None. Non-trainable
    arrays saved in ``state_dict`` (batch-norm running statistics) are named in the class
    attribute ``_persistent``.

    Each module can describe itself: ``io_widths()`` gives the widths of its input and
    output (which ``Sequential`` checks when a model is built and ``fit`` checks the data
    against), ``get_config()`` the constructor arguments that rebuild it (what fastnn files
    store).

    Your own modules: subclass ``Module``, call ``super().__init__(dtype)``, implement
    ``forward`` and ``backward`` (a ``backward(self, dout)`` without ``input_grad`` is
    accepted: it is called as such) and keep parameters as ``Parameter`` attributes. They
    work in ``Sequential``, ``fit``, ``evaluate``, ``predict`` and the optimizers. The
    defaults: ``io_widths()`` reads ``in_features``/``out_features`` attributes when the
    module has them (else the widths are unknown and go unchecked), and ``get_config()`` is
    None, which ``fastnn.save`` refuses (fastnn files rebuild fastnn's own layers only).

    Inputs: ``forward``, ``backward`` and ``predict`` take arrays or nested lists. Data of
    another float dtype than the module's (float64 given to a float32 model), integers and
    booleans are converted to the module's dtype, and non-contiguous arrays are copied into C
    order; object, string and complex arrays raise ``TypeError``; a wrong shape raises
    ``ValueError`` naming the layer, the expected shape and the one given; ``backward``
    before any ``forward`` raises ``RuntimeError``.
    """

    _persistent = ()

    def __init__(self, dtype=np.float32):
        self.training = True
        self.dtype = check_dtype(dtype)
        self._buffers = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        backward = cls.__dict__.get("backward")
        if backward is not None and not _takes_input_grad(backward):
            cls.backward = _with_input_grad(backward)

    # -- computation -------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout, input_grad=True):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x).copy()

    def _buffer(self, name, shape):
        """A work array of ``shape`` kept between calls (one per name and shape)."""
        key = (name, shape)
        buf = self._buffers.get(key)
        if buf is None:
            if len(self._buffers) >= _MAX_BUFFERS:
                self._buffers.clear()
            buf = np.empty(shape, dtype=self.dtype)
            self._buffers[key] = buf
        return buf

    # -- what the module says of itself --------------------------------------------------
    def io_widths(self):
        """``(input width, output width)`` for inputs of shape (batch, width).

        Each is an int, or None where the module cannot tell (it takes any width; its output
        width is unknown); the output width is ``SAME`` when it equals the input's (an
        elementwise layer). The default reads ``in_features`` and ``out_features``
        attributes, PyTorch's names, when the module has them.
        """
        return _width(getattr(self, "in_features", None)), _width(
            getattr(self, "out_features", None)
        )

    def get_config(self):
        """The constructor arguments that build this module again (a JSON-able dict), or None
        when it cannot be rebuilt from a file (the default, for modules of your own)."""
        return None

    @classmethod
    def state_shapes(cls, **config):
        """{name: shape} of the arrays ``state_dict`` holds for a module built from ``config``
        (``get_config``'s arguments), computed without building it: what ``fastnn.load``
        compares with a file's arrays before it allocates anything. None by default."""
        return {}

    # -- structure ---------------------------------------------------------------------
    def children(self):
        """Direct sub-modules, in the order they were assigned."""
        for value in vars(self).values():
            if isinstance(value, Module):
                yield value
            elif isinstance(value, (list, tuple)):
                yield from (v for v in value if isinstance(v, Module))

    def named_children(self):
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    if isinstance(v, Module):
                        yield str(i), v

    def modules(self):
        """This module and every module below it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix=""):
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(prefix + name + ".")

    def parameters(self):
        """Trainable parameters in layer order."""
        return [p for _, p in self.named_parameters()]

    def named_state(self, prefix=""):
        """(name, array) for every parameter and persistent buffer, in layer order."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value.data
        for name in self._persistent:
            yield prefix + name, getattr(self, name)
        for name, child in self.named_children():
            yield from child.named_state(prefix + name + ".")

    def num_parameters(self):
        return sum(p.size for p in self.parameters())

    # -- inference ---------------------------------------------------------------------------
    def predict(self, x, batch_size=1024):
        """The model's outputs for ``x`` in eval mode, as a new array (batch, outputs).

        Runs ``batch_size`` rows at a time (bounding the work buffers for large inputs) and
        puts the module back in the mode it was in. Several threads may predict with one model
        (they take turns); ``forward``, ``backward`` and ``fit`` on one model are for one
        thread at a time.
        """
        batch_size = check_int(batch_size, "batch_size", low=1)
        what = f"{type(self).__name__}.predict"
        x = as_array(x, what)
        # Refused here rather than by the first layer, so that a string is not mistaken for
        # an empty batch; each chunk is converted to the model's dtype as it is run.
        if x.dtype.kind not in "biuf":
            raise InvalidTypeError(
                f"{what}: expected an array of real numbers, got dtype {x.dtype}"
            )
        if x.ndim == 0 or x.shape[0] == 0:
            raise InvalidValueError(
                f"{type(self).__name__}.predict: expected a non-empty batch, got {x.shape}"
            )
        with using(self):
            return self._predict(x, batch_size)

    def _predict(self, x, batch_size):
        """``predict``'s work, for callers that hold the model already (``evaluate``): the
        outputs of the rows of the array ``x`` in eval mode, ``batch_size`` rows at a time."""
        was_training = self.training
        self.eval()
        try:
            first = _batch_output(self.forward(x[:batch_size]), min(batch_size, len(x)), None)
            out = np.empty((x.shape[0],) + first.shape[1:], dtype=first.dtype)
            out[: len(first)] = first
            for lo in range(batch_size, x.shape[0], batch_size):
                rows = min(batch_size, len(x) - lo)
                out[lo : lo + rows] = _batch_output(self.forward(x[lo : lo + rows]), rows, first)
        finally:
            self.train(was_training)
        return out

    def predict_proba(self, x, batch_size=1024):
        """Class probabilities: the softmax of ``predict(x)`` over each row (for classifiers
        whose last layer outputs logits, as ``MLP`` does)."""
        z = self.predict(x, batch_size)
        if z.ndim != 2:
            raise InvalidValueError(
                f"predict_proba: expected outputs of shape (batch, classes), got {z.shape}"
            )
        p = np.empty_like(z)
        softmax_forward(z, p)
        return p

    def predict_classes(self, x, batch_size=1024):
        """The predicted class of each row: the argmax of ``predict(x)``, as int64."""
        return self.predict(x, batch_size).argmax(axis=1).astype(np.int64)

    # -- modes ---------------------------------------------------------------------------
    def train(self, mode=True):
        """Training mode (True) or eval mode (False) for this module and every one below it."""
        mode = check_bool(mode, "mode")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.grad.fill(0)

    # -- state ---------------------------------------------------------------------------
    def state_dict(self):
        """Copies of all parameters and persistent buffers, keyed by dotted name."""
        return {name: np.array(a, copy=True) for name, a in self.named_state()}

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into this module; names and shapes must match exactly."""
        if not isinstance(state, Mapping):
            kind = type(state).__name__
            raise InvalidTypeError(
                f"load_state_dict: expected a mapping of names to arrays, got {kind}"
            )
        own = dict(self.named_state())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise InvalidValueError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, target in own.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise InvalidValueError(
                    f"state_dict[{name!r}]: expected shape {target.shape}, got {value.shape}"
                )
            if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
                raise InvalidTypeError(
                    f"state_dict[{name!r}]: expected real numbers, got {value.dtype}"
                )
        for name, target in own.items():
            target[...] = state[name]

    def to(self, dtype):
        """Convert every parameter and buffer to ``dtype`` (float32 or float64), in place."""
        dtype = check_dtype(dtype)
        for m in self.modules():
            for value in vars(m).values():
                if isinstance(value, Parameter):
                    value.data = value.data.astype(dtype)
                    value.grad = value.grad.astype(dtype)
            for name in m._persistent:
                setattr(m, name, getattr(m, name).astype(dtype))
            m.dtype = dtype
            m._buffers = {}
        for m in self.modules():
            m._after_to()
        return self

    def _after_to(self):
        """Called on every module after ``to`` converted them all: the place to convert
        arrays a module keeps beside its parameters, or to re-pack a container's."""

    # -- display -------------------------------------------------------------------------
    def extra_repr(self):
        return ""

    def __repr__(self):
        children = list(self.named_children())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


def _width(value):
    """``value`` as a width if it is an int (``in_features`` of a user's module), else None."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    return None


def _takes_input_grad(backward):
    try:
        params = inspect.signature(backward).parameters.values()
    except (TypeError, ValueError):  # a builtin or a callable object: leave it alone
        return True
    return any(p.name == "input_grad" or p.kind is p.VAR_KEYWORD for p in params)


def _with_input_grad(backward):
    """``backward(self, dout)`` of a user's module as ``backward(self, dout, input_grad=True)``:
    the module always computes dx, and callers that need none ignore it."""

    @functools.wraps(backward)
    def wrapper(self, dout, input_grad=True):
        return backward(self, dout)

    return wrapper
