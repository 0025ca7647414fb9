"""Checks that stand between users' data and the kernels (which check nothing)."""

import numbers

import numpy as np


def _label(what, suffix=""):
    # ``what`` may be a callable (a layer's bound ``__repr__``), so that the hot path never
    # formats a message it does not need.
    return (what() if callable(what) else what) + suffix


def as_float_array(x, dtype, what, suffix=""):
    """``x`` as a C-contiguous array of ``dtype``; no copy when it already is one.

    Integer and boolean input is converted; object, string and complex input is refused with
    ``TypeError`` naming ``what`` (a string, or a callable giving one) + ``suffix``.
    """
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{_label(what, suffix)}: expected an array of real numbers, got dtype {a.dtype}"
        )
    return np.ascontiguousarray(a, dtype=dtype)


def check_2d(x, features, what):
    """Raise ``ValueError`` unless ``x`` has shape (batch >= 1, features)."""
    if x.ndim != 2 or x.shape[1] != features or x.shape[0] == 0:
        raise ValueError(
            f"{_label(what)}: expected input of shape (batch, {features}), got {x.shape}"
        )


def check_same_shape(a, b, what):
    if a.shape != b.shape:
        raise ValueError(f"{what}: expected the shape {a.shape} given before, got {b.shape}")


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
    seed_like = (numbers.Integral, np.random.SeedSequence)
    if not isinstance(rng, (bool, np.bool_)) and (
        isinstance(rng, seed_like) or (rng is None and allow_none)
    ):
        return np.random.default_rng(rng)
    accepted = "a numpy.random.Generator, an int seed" + (" or None" if allow_none else "")
    raise TypeError(f"rng must be {accepted}, got {type(rng).__name__}")
