"""Checks that stand between users' data and the kernels (which check nothing)."""

import numbers

import numpy as np


def _label(what, suffix=""):
    # ``what`` may be a callable (a layer's bound ``__repr__``), so that the hot path never
    # formats a message it does not need.
    return (what() if callable(what) else what) + suffix


def as_array(x, what, suffix=""):
    """``np.asarray(x)``, with the error for ragged nested lists naming ``what`` + ``suffix``."""
    try:
        return np.asarray(x)
    except ValueError as e:  # "inhomogeneous shape": rows of different lengths
        raise ValueError(
            f"{_label(what, suffix)}: could not make an array of the input "
            f"(rows of different lengths?): {e}"
        ) from None


def as_float_array(x, dtype, what, suffix=""):
    """``x`` as a C-contiguous array of ``dtype``; no copy when it already is one.

    Lists are turned into arrays; float64 input to a float32 layer (and the reverse) is
    converted, as are integer and boolean input; non-contiguous arrays (slices such as
    ``x[:, ::2]``, Fortran order) are copied into C order, giving the same results as a
    contiguous copy. Object, string and complex input is refused with ``TypeError`` naming
    ``what`` (a string, or a callable giving one) + ``suffix``.
    """
    a = as_array(x, what, suffix)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{_label(what, suffix)}: expected an array of real numbers, got dtype {a.dtype}"
        )
    # Not np.ascontiguousarray, which turns a 0-d array into a 1-d one (and so would misreport
    # the shape a scalar was given with).
    return np.asarray(a, dtype=dtype, order="C")


def check_2d(x, features, what):
    """Raise ``ValueError`` unless ``x`` has shape (batch >= 1, features)."""
    if x.ndim != 2 or x.shape[1] != features or x.shape[0] == 0:
        raise ValueError(
            f"{_label(what)}: expected input of shape (batch, {features}), got {x.shape}"
        )


def check_same_shape(a, b, what):
    if a.shape != b.shape:
        raise ValueError(f"{what}: expected the shape {a.shape} given before, got {b.shape}")


def check_called(saved, what):
    """Raise ``RuntimeError`` when backward comes before any forward (``saved`` is None)."""
    if saved is None:
        raise RuntimeError(f"{_label(what)}.backward called before forward")


def check_bool(value, name):
    """``value`` as a bool; ``TypeError`` unless it is True or False (a string is not)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_real(value, name, low=None, high=None, low_open=False, high_open=False):
    """``value`` as a finite float within the bounds given, else ``TypeError``/``ValueError``.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; NaN and infinity are
    always refused.
    """
    # NumPy's float and integer scalars are registered as numbers.Real; its complex ones not.
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    bad = not np.isfinite(v)
    bad |= low is not None and (v <= low if low_open else v < low)
    bad |= high is not None and (v >= high if high_open else v > high)
    if bad:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        raise ValueError(
            f"invalid {name}: {value}; expected a finite number {' and '.join(bounds)}".rstrip()
        )
    return v


def check_positive_int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"invalid {name}: {value}; expected a positive integer")
    return int(value)


def as_rng(rng, allow_none=True):
    """A ``numpy.random.Generator`` from a Generator, an int seed or a SeedSequence.

    None gives a fresh, unseeded generator where ``allow_none``; NumPy's global random state is
    never used.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, np.random.SeedSequence):
        # A copy: spawning from the generator would otherwise advance the caller's sequence,
        # and the same SeedSequence given twice would give different streams.
        rng = np.random.SeedSequence(
            rng.entropy,
            spawn_key=rng.spawn_key,
            pool_size=rng.pool_size,
            n_children_spawned=rng.n_children_spawned,
        )
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)) and rng < 0:
        raise ValueError(f"invalid seed: {rng}; expected an integer >= 0")
    seed_like = (numbers.Integral, np.random.SeedSequence)
    if not isinstance(rng, (bool, np.bool_)) and (
        isinstance(rng, seed_like) or (rng is None and allow_none)
    ):
        return np.random.default_rng(rng)
    accepted = "a numpy.random.Generator, an int seed" + (" or None" if allow_none else "")
    raise TypeError(f"rng must be {accepted}, got {type(rng).__name__}")
