"""The one vocabulary of argument checks, between users' values and the kernels (which check
nothing).

Every public function of fastnn checks its arguments with these, so the same mistake gets the
same exception and the same wording everywhere:

- a value of the wrong type raises ``InvalidTypeError`` (a ``TypeError``):
  ``lr must be a real number, got str``;
- a value of the right type outside what is allowed raises ``InvalidValueError`` (a
  ``ValueError``): ``invalid lr: -1.0; expected a finite number > 0``.

``bool`` is not a number here (``True`` is not a learning rate), NaN and infinity are never
real numbers, and a 0-d array (what ``np.load`` gives back for a scalar) counts as its value.
Each function returns the value in its plain form (``float``, ``int``, ``bool``, a dtype, a
Generator, a C-contiguous array), so callers keep what the check returns.
"""

import numbers
from collections.abc import Mapping

import numpy as np

from .errors import InvalidTypeError, InvalidValueError, StateError

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

# Which ends of [low, high] are allowed, as scikit-learn's Interval(closed=...).
_CLOSED = {
    "both": (True, True),
    "left": (True, False),
    "right": (False, True),
    "neither": (False, False),
}


def _unwrap(value):
    # 0-d arrays come back from np.savez/np.load for the scalars a file holds.
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    return value


def _is_bool(value):
    return isinstance(value, (bool, np.bool_))


def _label(what, suffix=""):
    # ``what`` may be a callable (a layer's bound ``__repr__``), so that the hot path never
    # formats a message it does not need.
    return (what() if callable(what) else what) + suffix


# -- scalars ----------------------------------------------------------------------------------
def check_bool(value, name):
    """``value`` as a bool; ``InvalidTypeError`` unless it is True or False (a string, 0 or 1
    is not)."""
    value = _unwrap(value)
    if not _is_bool(value):
        raise InvalidTypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _bounds_text(low, high, closed):
    low_ok, high_ok = _CLOSED[closed]
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_ok else '>'} {low:g}")
    if high is not None:
        parts.append(f"{'<=' if high_ok else '<'} {high:g}")
    return " and ".join(parts)


def _in_bounds(v, low, high, closed):
    low_ok, high_ok = _CLOSED[closed]
    if low is not None and not (v >= low if low_ok else v > low):
        return False
    return high is None or (v <= high if high_ok else v < high)


def check_real(value, name, low=None, high=None, closed="both", finite=True):
    """``value`` as a finite float within [low, high] (``closed`` says which ends are
    allowed: "both", "left", "right" or "neither"; None leaves a side open).

    ``InvalidTypeError`` unless it is a real number (bool is not); ``InvalidValueError`` for
    NaN, infinity (unless ``finite=False``) or a value out of bounds.
    """
    if closed not in _CLOSED:
        raise ValueError(f"closed must be one of {', '.join(_CLOSED)}, got {closed!r}")
    value = _unwrap(value)
    # NumPy's float and integer scalars are registered as numbers.Real; its complex ones not.
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not ((np.isfinite(v) or not finite) and _in_bounds(v, low, high, closed)):
        bounds = _bounds_text(low, high, closed)
        kind = "a finite number" if finite else "a number"
        raise InvalidValueError(
            f"invalid {name}: {value}; expected {kind}{' ' + bounds if bounds else ''}"
        )
    return v


def check_int(value, name, low=None, high=None):
    """``value`` as an int within [low, high] (None leaves a side open).

    ``InvalidTypeError`` unless it is an integer (bool and 2.0 are not); ``InvalidValueError``
    when out of bounds.
    """
    value = _unwrap(value)
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise InvalidTypeError(f"{name} must be an integer, got {type(value).__name__}")
    v = int(value)
    if not _in_bounds(v, low, high, "both"):
        if low == 1 and high is None:
            expected = "a positive integer"
        else:
            expected = f"an integer {_bounds_text(low, high, 'both')}"
        raise InvalidValueError(f"invalid {name}: {v}; expected {expected}")
    return v


def check_choice(value, name, choices):
    """The name ``value`` chooses among ``choices`` (a registry: a mapping whose keys are the
    names, or a sequence of names), compared case-insensitively; returns the registry's key.

    ``InvalidTypeError`` unless ``value`` is a string; ``InvalidValueError`` listing the
    names when it is none of them.
    """
    names = list(choices.keys() if isinstance(choices, Mapping) else choices)
    if not isinstance(value, str):
        raise InvalidTypeError(f"{name} must be a string, one of {', '.join(names)}; got {value!r}")
    key = value.lower()
    for n in names:
        if n.lower() == key:
            return n
    raise InvalidValueError(f"unknown {name} {value!r}; expected one of {', '.join(names)}")


def check_dtype(dtype):
    """``dtype`` as a NumPy dtype, float32 or float64; ``InvalidValueError`` otherwise."""
    try:
        dt = np.dtype(dtype)
    except TypeError:  # not a dtype at all, e.g. "bogus"
        raise InvalidValueError(f"invalid dtype: {dtype!r}; expected float32 or float64") from None
    if dt not in DTYPES:
        raise InvalidValueError(f"invalid dtype: {dt}; expected float32 or float64")
    return dt


def check_seed(seed, name="rng", allow_none=True):
    """A ``numpy.random.Generator`` from a Generator (used as it is), an int seed >= 0 or a
    ``SeedSequence`` (copied, so that the caller's is not advanced).

    None gives a fresh, unseeded generator where ``allow_none``. NumPy's global random state is
    never used.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, np.random.SeedSequence):
        # A copy: spawning from the generator would otherwise advance the caller's sequence,
        # and the same SeedSequence given twice would give different streams.
        return np.random.default_rng(
            np.random.SeedSequence(
                seed.entropy,
                spawn_key=seed.spawn_key,
                pool_size=seed.pool_size,
                n_children_spawned=seed.n_children_spawned,
            )
        )
    if seed is None and allow_none:
        return np.random.default_rng()
    if isinstance(seed, numbers.Integral) and not _is_bool(seed):
        if seed < 0:
            raise InvalidValueError(f"invalid seed: {seed}; expected an integer >= 0")
        return np.random.default_rng(int(seed))
    accepted = "a numpy.random.Generator, an int seed" + (" or None" if allow_none else "")
    raise InvalidTypeError(f"{name} must be {accepted}, got {type(seed).__name__}")


# -- arrays -----------------------------------------------------------------------------------
def as_array(x, what, suffix=""):
    """``np.asarray(x)``, with the error for ragged nested lists naming ``what`` + ``suffix``."""
    try:
        return np.asarray(x)
    except ValueError as e:  # "inhomogeneous shape": rows of different lengths
        raise InvalidValueError(
            f"{_label(what, suffix)}: could not make an array of the input "
            f"(rows of different lengths?): {e}"
        ) from None


def check_array(x, what, dtype=None, suffix=""):
    """``x`` as an array of real numbers; with ``dtype``, a C-contiguous array of that dtype
    (no copy when it already is one).

    Lists are turned into arrays; integer and boolean input, and float64 input to a float32
    layer (or the reverse), are converted; non-contiguous arrays (slices such as
    ``x[:, ::2]``, Fortran order) are copied into C order, giving the same results as a
    contiguous copy. Object, string and complex input raises ``InvalidTypeError`` naming
    ``what`` (a string, or a callable giving one) + ``suffix``.
    """
    a = as_array(x, what, suffix)
    if a.dtype.kind not in "biuf":
        raise InvalidTypeError(
            f"{_label(what, suffix)}: expected an array of real numbers, got dtype {a.dtype}"
        )
    if dtype is None:
        return a
    # Not np.ascontiguousarray, which turns a 0-d array into a 1-d one (and so would misreport
    # the shape a scalar was given with).
    return np.asarray(a, dtype=dtype, order="C")


def check_2d(x, features, what):
    """``InvalidValueError`` unless ``x`` has shape (batch >= 1, features)."""
    if x.ndim != 2 or x.shape[1] != features or x.shape[0] == 0:
        raise InvalidValueError(
            f"{_label(what)}: expected input of shape (batch, {features}), got {x.shape}"
        )


def check_called(saved, what):
    """``StateError`` when backward comes before any forward (``saved`` is None)."""
    if saved is None:
        raise StateError(f"{_label(what)}.backward called before forward")
