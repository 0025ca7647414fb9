"""Parameters, the ``Module`` base class, and the flat parameter buffers.

A ``Parameter`` holds ``data`` and ``grad`` arrays of one shape. ``pack_parameters`` moves a
list of parameters into one contiguous data buffer and one contiguous gradient buffer, each
parameter keeping views into them, so an optimizer updates a whole model with one kernel call.
Layers therefore always reach their arrays through ``self.weight.data`` (never a cached
reference): packing rebinds ``data`` and ``grad``.
"""

import threading
import weakref
from collections.abc import Mapping

import numpy as np

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Distinct batch shapes a layer keeps work buffers for before it drops them all.
_MAX_BUFFERS = 16


def check_dtype(dtype):
    """Return ``dtype`` as a NumPy dtype, or raise ``ValueError`` unless it is float32/float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:  # not a dtype at all, e.g. "bogus"
        raise ValueError(f"invalid dtype: {dtype!r}; expected float32 or float64") from None
    if dt not in DTYPES:
        raise ValueError(f"invalid dtype: {dt}; expected float32 or float64")
    return dt


class Parameter:
    """A trainable array and its gradient.

    ``decay`` says whether ``weight_decay`` applies to it: true for weight matrices, false for
    biases and batch-norm scale/shift (the course's penalty is lam/2 * sum(W**2) over weights).
    """

    __slots__ = ("data", "grad", "decay")

    def __init__(self, data, decay=False):
        self.data = np.ascontiguousarray(data)
        check_dtype(self.data.dtype)
        self.grad = np.zeros_like(self.data)
        self.decay = bool(decay)

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
        raise ValueError("no parameters to pack")
    dtypes = {p.data.dtype for p in params}
    if len(dtypes) != 1:
        raise ValueError(f"parameters have mixed dtypes {sorted(map(str, dtypes))}; expected one")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("a parameter appears more than once")
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


class Module:
    """Base class of layers and models.

    Subclasses implement ``forward(x)`` and ``backward(dout)``. ``forward`` returns an array
    the module reuses on its next call with the same batch size (training allocates nothing in
    steady state); calling the module, ``module(x)``, returns a copy that stays valid.
    ``backward`` returns dx and overwrites (does not accumulate) the gradients of the
    module's parameters. Non-trainable arrays saved in ``state_dict`` (batch-norm running
    statistics) are named in the class attribute ``_persistent``.

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

    # -- computation -------------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
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
        from ._validation import as_array, check_positive_int

        batch_size = check_positive_int(batch_size, "batch_size")
        what = f"{type(self).__name__}.predict"
        x = as_array(x, what)
        # Refused here rather than by the first layer, so that a string is not mistaken for
        # an empty batch; each chunk is converted to the model's dtype as it is run.
        if x.dtype.kind not in "biuf":
            raise TypeError(f"{what}: expected an array of real numbers, got dtype {x.dtype}")
        if x.ndim == 0 or x.shape[0] == 0:
            raise ValueError(
                f"{type(self).__name__}.predict: expected a non-empty batch, got {x.shape}"
            )
        with eval_lock(self):
            was_training = self.training
            self.eval()
            try:
                first = self.forward(x[:batch_size])
                out = np.empty((x.shape[0],) + first.shape[1:], dtype=first.dtype)
                out[: len(first)] = first
                for lo in range(batch_size, x.shape[0], batch_size):
                    out[lo : lo + batch_size] = self.forward(x[lo : lo + batch_size])
            finally:
                self.train(was_training)
        return out

    def predict_proba(self, x, batch_size=1024):
        """Class probabilities: the softmax of ``predict(x)`` over each row (for classifiers
        whose last layer outputs logits, as ``MLP`` does)."""
        from .kernels.softmax_cross_entropy import softmax_forward

        z = self.predict(x, batch_size)
        if z.ndim != 2:
            raise ValueError(
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
        for m in self.modules():
            m.training = bool(mode)
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
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays, got {kind}")
        own = dict(self.named_state())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match {type(self).__name__}: "
                f"missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, target in own.items():
            value = np.asarray(state[name])
            if value.shape != target.shape:
                raise ValueError(
                    f"state_dict[{name!r}]: expected shape {target.shape}, got {value.shape}"
                )
            if not np.issubdtype(value.dtype, np.number) or np.iscomplexobj(value):
                raise TypeError(f"state_dict[{name!r}]: expected real numbers, got {value.dtype}")
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
        self._after_to()
        return self

    def _after_to(self):
        """Hook for containers to re-pack their parameters after ``to``."""

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
