"""Weight initialisers: in-place fillers in the style of ``torch.nn.init``.

Layout. fastnn layers compute ``x @ W``, so a weight matrix has shape
``(in_features, out_features)``: **fan_in = shape[0] and fan_out = shape[1]**. This is the
transpose of PyTorch's ``(out_features, in_features)``. For arrays with more than two axes the
trailing axes count as a receptive field: fan_in = shape[0] * prod(shape[2:]) and
fan_out = shape[1] * prod(shape[2:]).

Every filler writes into ``a`` in place (views included) and returns it. Values are drawn in
float64 from an explicit ``numpy.random.Generator`` (an int seed is turned into one with
``np.random.default_rng``) and stored in ``a``'s own dtype, so one seed gives the same numbers,
up to rounding, in float32 and float64.

Standard deviations (n_in = fan_in, n_out = fan_out):

- ``xavier_normal_``: gain * sqrt(2 / (n_in + n_out)), Glorot & Bengio (2010);
  ``xavier_uniform_`` has bound gain * sqrt(6 / (n_in + n_out)).
- ``he_normal_``: gain / sqrt(n_in) with gain sqrt(2) for ReLU, He et al. (2015);
  ``he_uniform_`` has bound gain * sqrt(3 / n_in).
- ``lecun_normal_``: 1 / sqrt(n_in); ``lecun_uniform_`` has bound sqrt(3 / n_in).

Note on names: the "Xavier initial value" of the course (std 1 / sqrt(n), n the number of
units of the previous layer) is ``lecun_normal_`` here; ``xavier_normal_`` is Glorot's
fan-averaged version. The course's "He initial value" (std sqrt(2 / n)) is ``he_normal_``.
"""

import contextvars
import math
import numbers
import warnings
from contextlib import contextmanager

import numpy as np

from .._checks import check_choice, check_int, check_real, check_seed
from ..errors import InvalidTypeError, InvalidValueError

__all__ = [
    "calculate_gain",
    "INITIALIZERS",
    "constant_",
    "he_normal_",
    "he_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "lecun_normal_",
    "lecun_uniform_",
    "lsuv_",
    "normal_",
    "orthogonal_",
    "resolve",
    "spec",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


# -- checks ------------------------------------------------------------------------------
def _check_array(a, who, min_ndim=0):
    """``a`` must be a writeable float NumPy array (the fillers write into it in place)."""
    if not isinstance(a, np.ndarray):
        raise InvalidTypeError(f"{who}: expected a numpy array, got {type(a).__name__}")
    if not np.issubdtype(a.dtype, np.floating):
        raise InvalidTypeError(f"{who}: expected a float array, got dtype {a.dtype}")
    if a.ndim < min_ndim:
        raise InvalidValueError(
            f"{who}: expected an array with at least {min_ndim} dimensions "
            f"(in_features, out_features, ...), got shape {a.shape}"
        )
    if not a.flags.writeable:
        raise InvalidValueError(f"{who}: the array is read-only")


def _rng(rng):
    return check_seed(rng, allow_none=False)


def _fans(shape):
    """(fan_in, fan_out) of a weight of ``shape`` in fastnn's (in, out, ...) layout."""
    receptive = math.prod(shape[2:])
    return shape[0] * receptive, shape[1] * receptive


def _fill_normal(a, rng, mean, std):
    if a.size:
        a[...] = rng.normal(mean, std, size=a.shape)
    return a


def _fill_uniform(a, rng, low, high):
    if a.size:
        a[...] = rng.uniform(low, high, size=a.shape)
    return a


# -- plain fillers -----------------------------------------------------------------------
def normal_(a, rng, mean=0.0, std=0.01):
    """Fill ``a`` with N(mean, std**2) samples; return ``a``."""
    _check_array(a, "normal_")
    rng = _rng(rng)
    mean = check_real(mean, "mean")
    std = check_real(std, "std", low=0.0)
    return _fill_normal(a, rng, mean, std)


def uniform_(a, rng, low=-0.05, high=0.05):
    """Fill ``a`` with U(low, high) samples; return ``a``."""
    _check_array(a, "uniform_")
    rng = _rng(rng)
    low = check_real(low, "low")
    high = check_real(high, "high")
    if low > high:
        raise InvalidValueError(f"invalid uniform range: low {low} > high {high}")
    return _fill_uniform(a, rng, low, high)


def constant_(a, value):
    """Fill ``a`` with ``value``; return ``a``.

    Fine for biases, wrong for weights: if every weight of a layer is equal, every hidden
    unit computes the same output and receives the same gradient, so the units stay
    identical through training and the layer behaves like a single unit. Random weights
    break that symmetry.
    """
    _check_array(a, "constant_")
    a[...] = check_real(value, "value")
    return a


def zeros_(a):
    """Fill ``a`` with zeros; return ``a``. For biases (see ``constant_`` for weights)."""
    _check_array(a, "zeros_")
    a[...] = 0
    return a


# -- gains -------------------------------------------------------------------------------
_LINEAR_NAMES = (
    "linear",
    "identity",
    "sigmoid",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
)
_GAIN_NAMES = (*_LINEAR_NAMES, "tanh", "relu", "leaky_relu", "selu")


def calculate_gain(nonlinearity, param=None):
    """Recommended gain for ``nonlinearity`` (the table of ``torch.nn.init.calculate_gain``).

    linear/identity/sigmoid/conv*: 1; tanh: 5/3; relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope**2)) with slope = ``param`` (default 0.01); selu: 3/4.
    """
    name = check_choice(nonlinearity, "nonlinearity", _GAIN_NAMES)
    if name in _LINEAR_NAMES:
        return 1.0
    if name == "tanh":
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "leaky_relu":
        slope = 0.01 if param is None else check_real(param, "negative_slope")
        return math.sqrt(2.0 / (1.0 + slope * slope))
    return 0.75  # selu


def _check_gain(gain):
    return check_real(gain, "gain", low=0.0)


# -- fan-based fillers -------------------------------------------------------------------
def _glorot(a, rng, gain, c, who):
    """(generator, gain * sqrt(c / (fan_in + fan_out))) for Glorot's fillers; the scale is
    None for an empty array (nothing to fill)."""
    _check_array(a, who, min_ndim=2)
    rng = _rng(rng)
    gain = _check_gain(gain)
    if not a.size:
        return rng, None
    fan_in, fan_out = _fans(a.shape)
    return rng, gain * math.sqrt(c / (fan_in + fan_out))


def xavier_normal_(a, rng, gain=1.0):
    """Glorot normal: std = gain * sqrt(2 / (fan_in + fan_out)); return ``a``."""
    rng, std = _glorot(a, rng, gain, 2.0, "xavier_normal_")
    return a if std is None else _fill_normal(a, rng, 0.0, std)


def xavier_uniform_(a, rng, gain=1.0):
    """Glorot uniform: U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)); return ``a``."""
    rng, bound = _glorot(a, rng, gain, 6.0, "xavier_uniform_")
    return a if bound is None else _fill_uniform(a, rng, -bound, bound)


def _he_fan_gain(a, who, nonlinearity, negative_slope, mode):
    _check_array(a, who, min_ndim=2)
    mode = check_choice(mode, "mode", ("fan_in", "fan_out"))
    gain = calculate_gain(nonlinearity, negative_slope)
    if not a.size:
        return 1, gain
    fan_in, fan_out = _fans(a.shape)
    return (fan_in if mode == "fan_in" else fan_out), gain


def he_normal_(a, rng, nonlinearity="relu", negative_slope=0.0, mode="fan_in"):
    """He (Kaiming) normal: std = gain / sqrt(fan); return ``a``.

    gain = ``calculate_gain(nonlinearity, negative_slope)``: sqrt(2) for relu,
    sqrt(2 / (1 + negative_slope**2)) for leaky_relu. ``mode="fan_in"`` (default) keeps the
    forward activations' variance, ``"fan_out"`` the backward gradients'.
    """
    fan, gain = _he_fan_gain(a, "he_normal_", nonlinearity, negative_slope, mode)
    rng = _rng(rng)
    return _fill_normal(a, rng, 0.0, gain / math.sqrt(fan))


def he_uniform_(a, rng, nonlinearity="relu", negative_slope=0.0, mode="fan_in"):
    """He (Kaiming) uniform: U(-b, b), b = gain * sqrt(3 / fan); return ``a``.

    gain as in ``he_normal_``.
    """
    fan, gain = _he_fan_gain(a, "he_uniform_", nonlinearity, negative_slope, mode)
    rng = _rng(rng)
    bound = gain * math.sqrt(3.0 / fan)
    return _fill_uniform(a, rng, -bound, bound)


kaiming_normal_ = he_normal_
kaiming_uniform_ = he_uniform_


def lecun_normal_(a, rng):
    """LeCun normal: std = 1 / sqrt(fan_in); return ``a``.

    This is the course's "Xavier initial value" (std 1 / sqrt(n), n = units of the previous
    layer). Plain normal, not truncated.
    """
    _check_array(a, "lecun_normal_", min_ndim=2)
    rng = _rng(rng)
    if not a.size:
        return a
    fan_in, _ = _fans(a.shape)
    return _fill_normal(a, rng, 0.0, 1.0 / math.sqrt(fan_in))


def lecun_uniform_(a, rng):
    """LeCun uniform: U(-b, b), b = sqrt(3 / fan_in) (std 1 / sqrt(fan_in)); return ``a``."""
    _check_array(a, "lecun_uniform_", min_ndim=2)
    rng = _rng(rng)
    if not a.size:
        return a
    fan_in, _ = _fans(a.shape)
    bound = math.sqrt(3.0 / fan_in)
    return _fill_uniform(a, rng, -bound, bound)


def orthogonal_(a, rng, gain=1.0):
    """Fill ``a`` with gain times a random orthogonal matrix; return ``a``.

    ``a`` is seen as (shape[0], prod(shape[1:])). Tall or square (rows >= cols): orthonormal
    columns, W.T @ W = gain**2 I. Wide: orthonormal rows, W @ W.T = gain**2 I. The Q of a
    Gaussian matrix's QR has its columns' signs tied to LAPACK's choice for R's diagonal;
    multiplying by sign(diag(R)) removes that bias, so Q is uniform (Haar) distributed.
    """
    _check_array(a, "orthogonal_", min_ndim=2)
    rng = _rng(rng)
    gain = _check_gain(gain)
    if not a.size:
        return a
    rows = a.shape[0]
    cols = a.size // rows
    g = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(g)
    signs = np.sign(np.diagonal(r))
    signs[signs == 0] = 1.0
    q *= signs
    if rows < cols:
        q = q.T
    a[...] = (gain * q).reshape(a.shape)
    return a


# -- building without filling ------------------------------------------------------------
_UNFILLED = contextvars.ContextVar("fastnn_unfilled_weights", default=False)


@contextmanager
def unfilled():
    """Layers built inside this block skip their initialiser and leave their weights
    unfilled: for a caller that overwrites every weight right after (``fastnn.load``), so that
    building costs no random draws. Per thread (a context variable)."""
    token = _UNFILLED.set(True)
    try:
        yield
    finally:
        _UNFILLED.reset(token)


def filling():
    """False inside ``unfilled()``."""
    return not _UNFILLED.get()


# -- by name -----------------------------------------------------------------------------
def _zeros_fill(a, rng=None):
    return zeros_(a)


# The initialisers by name, as layers' ``init=`` takes them.
INITIALIZERS = {
    "he": he_normal_,
    "he_normal": he_normal_,
    "kaiming": he_normal_,
    "kaiming_normal": he_normal_,
    "he_uniform": he_uniform_,
    "kaiming_uniform": he_uniform_,
    "xavier": xavier_normal_,
    "glorot": xavier_normal_,
    "xavier_normal": xavier_normal_,
    "glorot_normal": xavier_normal_,
    "xavier_uniform": xavier_uniform_,
    "glorot_uniform": xavier_uniform_,
    "lecun": lecun_normal_,
    "lecun_normal": lecun_normal_,
    "lecun_uniform": lecun_uniform_,
    "orthogonal": orthogonal_,
    "normal": normal_,
    "uniform": uniform_,
    "zeros": _zeros_fill,
}


def resolve(init):
    """Turn ``init`` into a callable ``fill(a, rng)`` that fills ``a`` in place and returns it.

    ``init`` is one of:

    - a name, case-insensitive: he / he_normal / kaiming / kaiming_normal, he_uniform /
      kaiming_uniform, xavier / glorot / xavier_normal / glorot_normal, xavier_uniform /
      glorot_uniform, lecun / lecun_normal, lecun_uniform, orthogonal, normal (std 0.01),
      uniform (+-0.05), zeros;
    - a number: the std of a zero-mean normal (the course's ``weight_init_std``); 0 gives
      zeros, a negative value is a ``ValueError``;
    - a callable ``f(a, rng)`` filling ``a`` in place (if it returns a different array
      instead, that array is copied into ``a``).
    """
    if isinstance(init, str):
        return INITIALIZERS[check_choice(init, "init", INITIALIZERS)]
    if isinstance(init, (bool, np.bool_)):
        raise InvalidTypeError(
            "init must be a name, a std (number) or a callable (a, rng), got bool"
        )
    if isinstance(init, (numbers.Real, np.number)):
        std = check_real(init, "init std", low=0.0)
        if std == 0.0:
            return _zeros_fill

        def fill(a, rng):
            return normal_(a, rng, 0.0, std)

        fill.__qualname__ = fill.__name__ = f"normal_(std={std})"
        return fill
    if callable(init):

        def fill(a, rng):
            out = init(a, rng)
            if out is not None and out is not a:
                out = np.asarray(out)
                if out.shape != a.shape:
                    raise InvalidValueError(
                        f"init callable returned shape {out.shape}, expected {a.shape}"
                    )
                a[...] = out
            return a

        return fill
    raise InvalidTypeError(
        f"init must be a name, a std (number) or a callable (a, rng), got {type(init).__name__}"
    )


def spec(init, default=None):
    """What a file can store of ``init``: its name, its std as a float, or ``default`` for a
    callable (which cannot be written down; the weights are saved anyway)."""
    if isinstance(init, str):
        return init
    if isinstance(init, numbers.Real) and not isinstance(init, (bool, np.bool_)):
        return float(init)
    return default


# -- data-dependent ----------------------------------------------------------------------
def _weight_of(layer):
    w = getattr(layer, "weight", None)
    data = getattr(w, "data", None)
    if isinstance(data, np.ndarray) and data.ndim == 2:
        return data
    return None


def lsuv_(model, x, rng=None, tol=0.1, max_iter=10):
    """Layer-sequential unit-variance initialisation (Mishkin & Matas, 2015); return ``model``.

    ``model.layers`` is walked in order. Each layer with a 2-D ``weight`` (in, out) gets an
    orthogonal weight, then the weight is divided by sqrt(var) of that layer's output on the
    batch ``x`` (variance over all its elements) until |var - 1| < ``tol`` or ``max_iter``
    rescalings; a RuntimeWarning says when a layer did not get there (e.g. a large bias
    dominates the variance). Biases are left as they are.

    The layers before the current one are not changed any more, so their output on ``x`` is
    computed once and reused; only the current layer is re-run. The model runs in whatever
    mode it is in (batch-norm layers in training mode update their running statistics).
    ``rng``: Generator or int seed; None draws a fresh, unreproducible seed.
    """
    layers = getattr(model, "layers", None)
    if layers is None or isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise InvalidTypeError(
            f"lsuv_: expected a Sequential model with .layers, got {type(model).__name__}"
        )
    layers = list(layers)
    weights = [_weight_of(layer) for layer in layers]
    if all(w is None for w in weights):
        raise InvalidValueError("lsuv_: the model has no layer with a 2-D weight (in, out)")
    tol = check_real(tol, "tol", low=0.0, closed="right")
    max_iter = check_int(max_iter, "max_iter", low=1)
    rng = check_seed(rng)
    x = np.asarray(x)
    if x.ndim != 2:
        raise InvalidValueError(f"lsuv_: expected x of shape (batch, features), got {x.shape}")
    if x.size == 0:
        raise InvalidValueError(f"lsuv_: x is empty, shape {x.shape}")
    dtype = next(w for w in weights if w is not None).dtype
    h = np.array(x, dtype=dtype, order="C")

    last = max(i for i, w in enumerate(weights) if w is not None)
    for i, (layer, w) in enumerate(zip(layers, weights, strict=True)):
        if i > last:
            break
        if w is None:
            # A copy: the layer may reuse its output buffer on its next call.
            h = np.array(layer.forward(h), copy=True)
            continue
        w = _weight_of(layer)
        orthogonal_(w, rng)
        for _ in range(max_iter):
            var = _output_var(layer, h, i)
            if abs(var - 1.0) < tol:
                break
            w *= 1.0 / math.sqrt(var)
        else:
            var = _output_var(layer, h, i)
            if not abs(var - 1.0) < tol:
                warnings.warn(
                    f"lsuv_: layer {i} ({type(layer).__name__}) output variance {var:.4g} "
                    f"after {max_iter} iterations (tol {tol})",
                    RuntimeWarning,
                    stacklevel=2,
                )
        if i < last:
            h = np.array(layer.forward(h), copy=True)
    return model


def _output_var(layer, h, i):
    var = float(np.var(np.asarray(layer.forward(h)), dtype=np.float64))
    if not (math.isfinite(var) and var > 0.0):
        raise InvalidValueError(
            f"lsuv_: output of layer {i} ({type(layer).__name__}) has variance {var}; "
            "cannot scale it to unit variance"
        )
    return var
