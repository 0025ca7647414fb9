"""Preparing data for training: scaling, one-hot labels, stratified splits and mini-batches.

Everything here is plain NumPy; shapes are ``(n, features)`` unless a docstring says otherwise.
Random functions take a ``numpy.random.Generator`` or a seed, never NumPy's global state.
"""

import math
import numbers

import numpy as np

from .._checks import as_array, check_array, check_bool, check_int, check_real, check_seed
from ..errors import InvalidTypeError, InvalidValueError, StateError

__all__ = [
    "MinMaxScaler",
    "Standardizer",
    "batches",
    "min_max_scale",
    "normalize",
    "one_hot",
    "split_indices",
    "train_val_test_split",
]

# -- helpers ----------------------------------------------------------------------------------


def _float_dtype(a):
    """The dtype results take: ``a``'s own when it is floating point, else float32."""
    return a.dtype if a.dtype.kind == "f" else np.dtype(np.float32)


def _check_samples(a, what):
    """Raise ``ValueError`` unless ``a`` has a sample axis with at least one sample."""
    if a.ndim == 0 or a.shape[0] == 0:
        raise InvalidValueError(f"{what}: expected an array of shape (n >= 1, ...), got {a.shape}")


def _check_finite(a, what):
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise InvalidValueError(f"{what}: the input contains NaN or infinity")


def _check_range(feature_range):
    try:
        low, high = feature_range
    except (TypeError, ValueError):
        raise InvalidTypeError(
            f"feature_range must be a pair (low, high), got {feature_range!r}"
        ) from None
    low = check_real(low, "feature_range low")
    high = check_real(high, "feature_range high")
    if not low < high:
        raise InvalidValueError(f"invalid feature_range: {feature_range!r}; expected low < high")
    return low, high


# -- scaling ----------------------------------------------------------------------------------


def _check_fitted_input(x, fitted, what):
    """``x`` as a real array whose rows have the shape of ``fitted`` (a statistic from fit)."""
    if fitted is None:
        raise StateError(f"{what} called before fit")
    x = check_array(x, what)
    if x.shape[1:] != fitted.shape or x.ndim == 0:
        want = ("n",) + fitted.shape
        raise InvalidValueError(
            f"{what}: expected input of shape ({', '.join(map(str, want))}) as in fit, "
            f"got {x.shape}"
        )
    return x


def _fit_input(x, what):
    """What a scaler is fitted on: real, finite data with at least one sample, in float64."""
    x = check_array(x, what)
    _check_samples(x, what)
    _check_finite(x, what)
    return x.astype(np.float64, copy=False)


def _scaled(x, fitted, what, steps):
    """``x``, checked against the shape of the fitted statistic ``fitted``, as a new array of
    its float dtype with each ``(ufunc, value)`` of ``steps`` applied in place, in order."""
    x = _check_fitted_input(x, fitted, what)
    dt = _float_dtype(x)
    out = x.astype(dt)  # a copy we own and scale in place
    for ufunc, value in steps:
        ufunc(out, np.asarray(value).astype(dt), out=out)
    return out


class Standardizer:
    """z-scores per feature: ``(x - mean_) / scale_``, the statistics taken over axis 0.

    ``fit(x)`` takes x of shape (n, ...) and stores ``mean_`` and ``scale_`` (the population
    standard deviation, ddof=0) of shape x.shape[1:], computed in float64. A constant feature
    gets scale 1, so it maps to 0 instead of NaN. ``transform`` returns x's float dtype (float32
    for integer input). ``state_dict()`` gives plain arrays that ``np.savez`` stores without
    pickle; ``Standardizer.from_state_dict(np.load(file))`` restores them.
    """

    def __init__(self):
        self.mean_ = None
        self.scale_ = None

    def fit(self, x):
        """x: (n, ...) -> self."""
        x64 = _fit_input(x, "Standardizer.fit")
        mean = x64.mean(axis=0)
        std = x64.std(axis=0)
        # Compare exactly rather than test std == 0: the float64 mean of n equal values can be
        # off by an ulp, which would leave a tiny nonzero std and huge z-scores.
        constant = (x64 == x64[0]).all(axis=0)
        self.mean_ = np.where(constant, x64[0], mean)
        self.scale_ = np.where(constant, 1.0, std)
        return self

    def transform(self, x):
        """x: (n, ...) of the fitted feature shape -> z-scores of the same shape."""
        return _scaled(
            x,
            self.mean_,
            "Standardizer.transform",
            [(np.subtract, self.mean_), (np.divide, self.scale_)],
        )

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def inverse_transform(self, z):
        """z: (n, ...) -> z * scale_ + mean_."""
        return _scaled(
            z,
            self.mean_,
            "Standardizer.inverse_transform",
            [(np.multiply, self.scale_), (np.add, self.mean_)],
        )

    def state_dict(self):
        """{"mean": array, "scale": array}: copies, for ``np.savez``."""
        if self.mean_ is None:
            raise StateError("Standardizer.state_dict called before fit")
        return {"mean": self.mean_.copy(), "scale": self.scale_.copy()}

    def load_state_dict(self, state):
        """Restore from a mapping with "mean" and "scale" (a dict or ``np.load``'s NpzFile)."""
        try:
            mean, scale = state["mean"], state["scale"]
        except (KeyError, TypeError):
            raise InvalidValueError(
                'Standardizer.load_state_dict: expected a mapping with "mean" and "scale"'
            ) from None
        mean = np.array(check_array(mean, "Standardizer mean"), dtype=np.float64)
        scale = np.array(check_array(scale, "Standardizer scale"), dtype=np.float64)
        if mean.shape != scale.shape:
            raise InvalidValueError(
                f"Standardizer.load_state_dict: mean has shape {mean.shape} but scale has "
                f"shape {scale.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise InvalidValueError(
                "Standardizer.load_state_dict: expected finite mean and positive scale"
            )
        self.mean_, self.scale_ = mean, scale
        return self

    @classmethod
    def from_state_dict(cls, state):
        return cls().load_state_dict(state)

    def __repr__(self):
        shape = None if self.mean_ is None else self.mean_.shape
        return f"Standardizer(features={shape})"


class MinMaxScaler:
    """Scale each feature linearly from [data_min_, data_max_] (over axis 0) to feature_range.

    A constant feature maps to the range's low end. ``transform`` returns x's float dtype
    (float32 for integer input); values outside the fitted range map outside feature_range.
    """

    def __init__(self, feature_range=(0, 1)):
        self.feature_range = _check_range(feature_range)
        self.data_min_ = None
        self.data_max_ = None
        self.scale_ = None

    def fit(self, x):
        """x: (n, ...) -> self."""
        x64 = _fit_input(x, "MinMaxScaler.fit")
        low, high = self.feature_range
        self.data_min_ = x64.min(axis=0)
        self.data_max_ = x64.max(axis=0)
        span = self.data_max_ - self.data_min_
        self.scale_ = (high - low) / np.where(span > 0, span, 1.0)
        return self

    def transform(self, x):
        """x: (n, ...) -> (x - data_min_) * scale_ + low, same shape."""
        low = self.feature_range[0]
        return _scaled(
            x,
            self.data_min_,
            "MinMaxScaler.transform",
            [(np.subtract, self.data_min_), (np.multiply, self.scale_), (np.add, low)],
        )

    def fit_transform(self, x):
        return self.fit(x).transform(x)

    def inverse_transform(self, z):
        """z: (n, ...) -> (z - low) / scale_ + data_min_."""
        low = self.feature_range[0]
        return _scaled(
            z,
            self.data_min_,
            "MinMaxScaler.inverse_transform",
            [(np.subtract, low), (np.divide, self.scale_), (np.add, self.data_min_)],
        )

    def __repr__(self):
        return f"MinMaxScaler(feature_range={self.feature_range})"


def _check_axis(axis, ndim, what):
    axis = check_int(axis, f"{what} axis")
    if not -ndim <= axis < ndim:
        raise InvalidValueError(
            f"{what}: axis {axis} is out of range for an array of {ndim} dimensions"
        )
    return axis % ndim


def min_max_scale(x, feature_range=(0, 1), axis=0):
    """Scale x linearly so that its minimum and maximum along ``axis`` become feature_range.

    axis=0 scales each feature over the samples, as ``MinMaxScaler``; axis=None scales the
    whole array at once. Constant slices map to the low end. Returns x's float dtype (float32
    for integer input), same shape as x.
    """
    low, high = _check_range(feature_range)
    x = check_array(x, "min_max_scale")
    if x.size == 0:
        raise InvalidValueError(f"min_max_scale: expected a non-empty array, got shape {x.shape}")
    _check_finite(x, "min_max_scale")
    if axis is not None:
        axis = _check_axis(axis, x.ndim, "min_max_scale")
    dt = _float_dtype(x)
    x64 = x.astype(np.float64, copy=False)
    lo = x64.min(axis=axis, keepdims=True)
    span = x64.max(axis=axis, keepdims=True) - lo
    scale = (high - low) / np.where(span > 0, span, 1.0)
    return ((x64 - lo) * scale + low).astype(dt)


def normalize(x, ord=2, axis=-1):
    """Divide x by its Lp norm along ``axis`` (ord 1, 2 or np.inf); zero vectors stay zero.

    x: any shape with at least one dimension; returns x's float dtype (float32 for integer
    input), same shape. The default scales each row of an (n, features) array to unit length.
    """
    if isinstance(ord, (bool, np.bool_)) or ord not in (1, 2, np.inf):
        raise InvalidValueError(f"normalize: invalid ord {ord!r}; expected 1, 2 or np.inf")
    x = check_array(x, "normalize")
    if x.ndim == 0:
        raise InvalidValueError(
            "normalize: expected an array with at least one dimension, got a scalar"
        )
    axis = _check_axis(axis, x.ndim, "normalize")
    x64 = x.astype(np.float64, copy=False)  # float64 so float32 squares cannot overflow
    norm = np.linalg.norm(x64, ord=ord, axis=axis, keepdims=True)
    norm[norm == 0] = 1
    return (x64 / norm).astype(_float_dtype(x))


# -- labels -----------------------------------------------------------------------------------


def _check_labels(labels, what):
    """``labels`` as an int64 array; ``ValueError`` naming the first non-integer or negative one.

    Integer and boolean arrays are taken as they are; float arrays only when every value is a
    whole number (2.0 is label 2).
    """
    a = as_array(labels, what)
    if a.dtype.kind not in "biuf":
        raise InvalidTypeError(f"{what}: expected integer labels, got dtype {a.dtype}")
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            raise InvalidValueError(f"{what}: labels must be integers, got {a[bad][0].item()!r}")
    if a.dtype.kind in "if" and a.size and (neg := a < 0).any():
        raise InvalidValueError(f"{what}: labels must be >= 0, got {a[neg][0].item()!r}")
    # Checked before the cast, which would wrap 1e20 or a uint64 above 2**63 around.
    if a.dtype.kind in "uf" and a.size and (big := a >= 2**63).any():
        raise InvalidValueError(f"{what}: label {a[big][0].item()!r} is too large")
    return a.astype(np.int64)


def one_hot(labels, num_classes=None, dtype=np.float32):
    """One-hot rows: labels of shape (n,) (or any shape s) -> (n, num_classes) (or s + (k,)).

    num_classes defaults to max(labels) + 1. Labels must be integers in [0, num_classes).
    """
    y = _check_labels(labels, "one_hot")
    if num_classes is None:
        if y.size == 0:
            raise InvalidValueError("one_hot: num_classes is needed when labels is empty")
        num_classes = int(y.max()) + 1
    else:
        num_classes = check_int(num_classes, "num_classes", low=1)
        if y.size and (big := y >= num_classes).any():
            raise InvalidValueError(
                f"one_hot: label {y[big][0]} is out of range for num_classes={num_classes}; "
                f"expected labels in [0, {num_classes})"
            )
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise InvalidTypeError(f"one_hot: expected a numeric dtype, got {dtype!r}") from None
    if dt.kind not in "biuf":
        raise InvalidTypeError(f"one_hot: expected a numeric dtype, got {dt}")
    out = np.zeros((y.size, num_classes), dtype=dt)
    out[np.arange(y.size), y.reshape(-1)] = 1
    return out.reshape(y.shape + (num_classes,))


# -- splits -----------------------------------------------------------------------------------


def _allocate(class_counts, sizes):
    """Per-class counts, shape (len(sizes), len(class_counts)), for a stratified split.

    sizes must sum to sum(class_counts) = n. Entry (s, k) is floor or ceil of the proportional
    share sizes[s] * class_counts[k] / n (so within 1 of it), each row sums to sizes[s] exactly
    and each column to class_counts[k]. The floors' leftovers form a 0/1 matrix with known row
    and column sums; Ryser's greedy fills it (each row takes the columns with the most ones
    still owed, so it never gets stuck), preferring the largest remainders on ties. With two
    splits this is the largest-remainder method.
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    n = int(counts.sum())
    if n == 0:
        return np.zeros((len(sizes), len(counts)), dtype=np.int64)
    share = np.outer(sizes, counts)  # share / n is the exact proportional allocation
    alloc, remainder = np.divmod(share, n)
    col_owed = counts - alloc.sum(axis=0)
    for s in range(len(sizes)):
        owed = int(sizes[s] - alloc[s].sum())
        if owed == 0:
            continue
        order = np.lexsort((-remainder[s], -col_owed))
        chosen = order[:owed]
        if (col_owed[chosen] <= 0).any():  # impossible when sizes sum to n
            raise AssertionError("stratified allocation failed")
        alloc[s, chosen] += 1
        col_owed[chosen] -= 1
    return alloc


def split_indices(y, sizes, *, stratify=True, rng=None):
    """Disjoint random index arrays of the given sizes into ``y`` (n,).

    sizes: non-negative integers summing to at most n (the rest is left out). With
    ``stratify`` each part keeps the class proportions of y: each class contributes floor or
    ceil of its proportional share, the part sizes stay exact. ``y`` may hold any sortable
    labels when stratifying; without stratification only its length counts. Each returned
    array is in random order. rng: a Generator, an int seed or None.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise InvalidValueError(f"split_indices: expected labels of shape (n,), got {y.shape}")
    n = len(y)
    sizes = [check_int(s, "size", low=0) for s in sizes]
    if sum(sizes) > n:
        raise InvalidValueError(f"split_indices: sizes {sizes} add up to {sum(sizes)} > n = {n}")
    rng = check_seed(rng)
    parts = sizes + [n - sum(sizes)]
    if not stratify:
        order = rng.permutation(n)
        bounds = np.cumsum([0] + parts)
        return [order[bounds[i] : bounds[i + 1]] for i in range(len(sizes))]
    try:
        _, y_class = np.unique(y, return_inverse=True)
    except TypeError:  # e.g. None among object labels
        raise InvalidTypeError(
            f"split_indices: stratify needs labels that can be sorted, got dtype {y.dtype}"
        ) from None
    y_class = y_class.reshape(-1)
    by_class = np.argsort(y_class, kind="stable")
    counts = np.bincount(y_class)
    alloc = _allocate(counts, parts)
    pieces = [[] for _ in parts]
    start = 0
    for k, c in enumerate(counts):
        members = by_class[start : start + c][rng.permutation(c)]
        start += c
        bounds = np.cumsum(np.concatenate([[0], alloc[:, k]]))
        for s in range(len(parts)):
            pieces[s].append(members[bounds[s] : bounds[s + 1]])
    out = []
    for s in range(len(sizes)):
        idx = np.concatenate(pieces[s]) if pieces[s] else np.empty(0, dtype=np.intp)
        out.append(idx[rng.permutation(len(idx))])
    return out


def _split_size(value, n, name):
    """A split size from a fraction in [0, 1) of n (rounded to nearest) or an integer count."""
    if isinstance(value, (int, np.integer)):  # bool too, which check_int refuses
        return check_int(value, name, low=0)
    if not isinstance(value, numbers.Real):
        raise InvalidTypeError(f"{name} must be a fraction or an integer count, got {value!r}")
    fraction = check_real(value, name, low=0.0, high=1.0, closed="left")
    return math.floor(fraction * n + 0.5)


def train_val_test_split(x, y, val=0.1, test=0.1, stratify=True, seed=None):
    """Split (x, y) at random into training, validation and test sets.

    x: (n, ...), y: (n,). val and test: fractions of n in [0, 1) (rounded to the nearest count)
    or integer counts; the training set gets the rest (at least one sample). With ``stratify``
    each set keeps y's class proportions (each class within 1 of its share; set sizes exact).
    seed: an int, a Generator or None. Returns ((x_train, y_train), (x_val, y_val),
    (x_test, y_test)), each in random order.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y):
        raise InvalidValueError(
            f"train_val_test_split: expected x of shape (n, ...) and y of shape (n,), got "
            f"{x.shape} and {y.shape}"
        )
    n = len(x)
    n_val = _split_size(val, n, "val")
    n_test = _split_size(test, n, "test")
    if n_val + n_test >= n:
        raise InvalidValueError(
            f"train_val_test_split: val ({n_val}) + test ({n_test}) samples leave no training "
            f"data out of n = {n}"
        )
    stratify = check_bool(stratify, "stratify")
    train, val_idx, test_idx = split_indices(
        y, [n - n_val - n_test, n_val, n_test], stratify=stratify, rng=seed
    )
    return tuple((x[i], y[i]) for i in (train, val_idx, test_idx))


# -- mini-batches -----------------------------------------------------------------------------


def batches(x, y, batch_size, shuffle=True, rng=None, drop_last=False):
    """Mini-batches over one epoch: a generator of (x_batch, y_batch), or x_batch if y is None.

    x: (n, ...), y: (n, ...) or None. With ``shuffle`` each call draws a fresh permutation from
    rng, so every sample appears exactly once per epoch: pass one Generator for a new order
    every epoch (an int seed repeats the same order; None draws an unseeded one). Without it
    the batches are slices in order (views of x and y). The last batch is shorter when
    batch_size does not divide n, unless ``drop_last`` leaves it out. Arguments are checked
    when ``batches`` is called, not at the first batch.
    """
    x = np.asarray(x)
    if x.ndim == 0 or len(x) == 0:
        raise InvalidValueError(f"batches: expected x of shape (n >= 1, ...), got {x.shape}")
    n = len(x)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise InvalidValueError(
                f"batches: expected y with {n} samples to match x {x.shape}, got {y.shape}"
            )
    batch_size = check_int(batch_size, "batch_size", low=1)
    shuffle = check_bool(shuffle, "shuffle")
    drop_last = check_bool(drop_last, "drop_last")
    if drop_last and batch_size > n:
        raise InvalidValueError(
            f"batches: batch_size {batch_size} > {n} samples with drop_last=True gives no batch"
        )
    rng = check_seed(rng)
    order = rng.permutation(n) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    return _batches(x, y, batch_size, order, stop)


def _batches(x, y, batch_size, order, stop):
    for lo in range(0, stop, batch_size):
        hi = min(lo + batch_size, stop)
        idx = slice(lo, hi) if order is None else order[lo:hi]
        yield x[idx] if y is None else (x[idx], y[idx])
