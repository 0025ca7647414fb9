"""Loss functions over a mini-batch, each with ``forward(pred, target) -> float`` and
``backward() -> dpred`` (the gradient of the returned loss)."""

import numpy as np

from .._checks import as_array, check_array, check_choice
from ..errors import InvalidTypeError, InvalidValueError, StateError
from ..kernels import softmax_cross_entropy as _k
from ..kernels._config import PARALLEL_MIN


def check_labels(t, batch, classes, what):
    """``t`` as an int64 array of ``batch`` labels in [0, classes), or a clear error.

    Kernels index with the labels without bounds checks, so this runs before every kernel call.
    """
    t = as_array(t, what, " labels")
    if t.dtype.kind == "f":
        if not np.all(np.isfinite(t)) or not np.all(t == np.round(t)):
            bad = t[~np.isfinite(t) | (t != np.round(t))].flat[0]
            raise InvalidValueError(f"{what}: labels must be whole numbers, got {bad}")
    elif t.dtype.kind not in "iub":
        raise InvalidTypeError(f"{what}: expected integer labels, got dtype {t.dtype}")
    if t.shape != (batch,):
        raise InvalidValueError(
            f"{what}: expected {batch} labels of shape ({batch},), got shape {t.shape}"
        )
    # The range is checked in the labels' own dtype: casting 1e20 or a uint64 above 2**63 to
    # int64 first would wrap it around.
    lo, hi = t.min().item(), t.max().item()
    if lo < 0 or hi >= classes:
        bad = lo if lo < 0 else hi
        shown = f"{bad:g}" if isinstance(bad, float) else bad
        raise InvalidValueError(f"{what}: labels must be in [0, {classes - 1}], got {shown}")
    return np.ascontiguousarray(t, dtype=np.int64)


def check_output(z, t, width, what):
    """The model's output ``z`` for validated targets ``t`` (labels (batch,) in [0, width), or
    targets (batch, width)) must be an array of shape (batch, width), of the targets' float
    dtype, before a loss kernel indexes it."""
    if (
        not isinstance(z, np.ndarray)
        or z.shape != (t.shape[0], width)
        or z.dtype.char not in "fd"  # float32 or float64
        or (t.ndim == 2 and z.dtype != t.dtype)
    ):
        got = f"{z.dtype} {z.shape}" if isinstance(z, np.ndarray) else type(z).__name__
        dtype = t.dtype if t.ndim == 2 else "float32 or float64"
        raise InvalidValueError(
            f"{what}: the model returned {got} for {t.shape[0]} rows; expected {dtype} outputs "
            f"of shape ({t.shape[0]}, {width}) (a module that changes the output width must "
            "say so in io_widths())"
        )


# The parallel loss kernels only for work that they split into chunks; below PARALLEL_MIN
# elements they run one chunk, and their serial forms (the same chunks, the same bits, also
# what the compiled training step calls) spare a process compiling a parallel kernel.
def _ce_labels(size):
    return _k.softmax_cross_entropy_labels if size >= PARALLEL_MIN else _k._ce_labels_serial


def _ce_targets(size):
    return _k.softmax_cross_entropy_targets if size >= PARALLEL_MIN else _k._ce_targets_serial


def _mse(size):
    return _k.mse_forward if size >= PARALLEL_MIN else _k._mse_serial


def _bce(size):
    return _k.sigmoid_cross_entropy if size >= PARALLEL_MIN else _k._bce_serial


def check_unit_targets(t, what):
    """Targets of a binary cross-entropy must lie in [0, 1] (NaN does not)."""
    inside = (t >= 0) & (t <= 1)
    if not inside.all():
        bad = t[~inside].flat[0]
        raise InvalidValueError(
            f"{what}: binary cross-entropy targets must be in [0, 1], got {bad}"
        )


def _log_sum_exp(z):
    """Each row's log(sum_j exp(z_ij)) in float64."""
    mx = z.max(axis=1, keepdims=True)
    return (mx + np.log(np.exp(z - mx).sum(axis=1, keepdims=True)))[:, 0]


class SoftmaxCrossEntropy:
    """Softmax then cross-entropy, fused, averaged over the batch.

    ``pred``: logits (batch, classes). ``target``: integer labels (batch,) or target
    distributions (batch, classes) (one-hot or soft). Loss: mean_i -sum_j t_ij log softmax(z)_ij.
    ``backward()`` returns (softmax(z) - t) / batch. Stable for any logits (max-subtracted).
    """

    def __init__(self):
        self._dz = None

    def forward(self, pred, target):
        what = "SoftmaxCrossEntropy"
        z = np.asarray(pred)
        dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.float32
        z = check_array(z, what, dtype)
        if z.ndim != 2 or z.size == 0:
            raise InvalidValueError(
                f"{what}: expected logits of shape (batch, classes), got {z.shape}"
            )
        if self._dz is None or self._dz.shape != z.shape or self._dz.dtype != z.dtype:
            self._dz = np.empty_like(z)
        target = np.asarray(target)
        if target.ndim == 2:
            t = check_array(target, what + " targets", z.dtype)
            if t.shape != z.shape:
                raise InvalidValueError(
                    f"{what}: expected targets of shape {z.shape}, got {t.shape}"
                )
            return float(_ce_targets(z.size)(z, t, self._dz))
        t = check_labels(target, z.shape[0], z.shape[1], what)
        return float(_ce_labels(z.size)(z, t, self._dz))

    __call__ = forward

    def _forward_checked_once(self, z, t, width):
        """``forward`` for targets the caller has already validated (``fastnn.fit`` checks the
        labels once per fit, not once per step): ``t`` int64 labels in [0, width) or float
        targets of shape (batch, width). The model's output ``z`` is checked here, on every
        call (a few comparisons): a module may return something other than its widths said,
        and the kernel writes ``dz[i, label]`` without bounds checks."""
        check_output(z, t, width, "SoftmaxCrossEntropy")
        if self._dz is None or self._dz.shape != z.shape or self._dz.dtype != z.dtype:
            self._dz = np.empty_like(z)
        if t.ndim == 2:
            return float(_ce_targets(z.size)(z, t, self._dz))
        return float(_ce_labels(z.size)(z, t, self._dz))

    def backward(self):
        if self._dz is None:
            raise StateError("SoftmaxCrossEntropy.backward called before forward")
        return self._dz

    @staticmethod
    def row_losses(z, t):
        """Each row's loss (float64, (batch,)), whose mean ``forward`` returns: for weighting
        rows (``fit(sample_weight=...)``). ``z``, ``t`` as ``_forward_checked_once`` takes."""
        z = z.astype(np.float64)
        lse = _log_sum_exp(z)
        if t.ndim == 1:
            return lse - z[np.arange(z.shape[0]), t]
        t = t.astype(np.float64)
        return lse * t.sum(axis=1) - (t * z).sum(axis=1)

    def __repr__(self):
        return "SoftmaxCrossEntropy()"


class MSELoss:
    """Mean squared error over all elements, as PyTorch's ``MSELoss``: mean((y - t)**2).

    ``backward()`` returns 2 (y - t) / y.size. The course's form, 0.5 * sum((y - t)**2), is
    ``sum_squared_error``.
    """

    def __init__(self):
        self._dy = None

    def forward(self, pred, target):
        y = np.asarray(pred)
        dtype = y.dtype if y.dtype in (np.float32, np.float64) else np.float32
        y = check_array(y, "MSELoss", dtype)
        t = check_array(target, "MSELoss target", dtype)
        if t.shape != y.shape:
            raise InvalidValueError(f"MSELoss: expected target of shape {y.shape}, got {t.shape}")
        if y.size == 0:
            raise InvalidValueError("MSELoss: got empty predictions")
        if self._dy is None or self._dy.shape != y.shape or self._dy.dtype != y.dtype:
            self._dy = np.empty_like(y)
        self._y, self._t = y, t
        return float(_mse(y.size)(y.reshape(-1), t.reshape(-1)))

    __call__ = forward

    def _forward_checked_once(self, y, t, width):
        """``forward`` for targets the caller has already validated; the model's output ``y``
        is checked on every call (see SoftmaxCrossEntropy)."""
        check_output(y, t, width, "MSELoss")
        if self._dy is None or self._dy.shape != y.shape or self._dy.dtype != y.dtype:
            self._dy = np.empty_like(y)
        self._y, self._t = y, t
        return float(_mse(y.size)(y.reshape(-1), t.reshape(-1)))

    @staticmethod
    def row_losses(y, t):
        """Each row's mean squared error (float64, (batch,)): their mean is ``forward``'s."""
        d = y.astype(np.float64) - t
        return (d * d).mean(axis=1)

    def backward(self):
        if self._dy is None:
            raise StateError("MSELoss.backward called before forward")
        _k.mse_backward(self._y.reshape(-1), self._t.reshape(-1), self._dy.reshape(-1))
        return self._dy

    def __repr__(self):
        return "MSELoss()"


class BinaryCrossEntropy:
    """Sigmoid then binary cross-entropy, fused, on logits: one yes/no decision per output.

    ``pred``: logits (batch, outputs). ``target``: (batch, outputs) in [0, 1] (0/1 labels of a
    multilabel problem, or probabilities); with one output also (batch,). Loss, summed over
    the outputs and averaged over the batch:
    mean_i sum_j -[t_ij log s_ij + (1 - t_ij) log(1 - s_ij)], s = sigmoid(z), computed as
    max(z, 0) - z t + log(1 + exp(-|z|)), finite for any logit. ``backward()`` returns
    (sigmoid(z) - t) / batch. PyTorch's ``BCEWithLogitsLoss(reduction="sum")`` divided by the
    batch (its default "mean" also divides by the outputs); scikit-learn's multilabel loss.
    The model's outputs stay logits: ``sigmoid`` of them are the probabilities.
    """

    def __init__(self):
        self._dz = None

    def forward(self, pred, target):
        what = "BinaryCrossEntropy"
        z = np.asarray(pred)
        dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.float32
        z = check_array(z, what, dtype)
        if z.ndim != 2 or z.size == 0:
            raise InvalidValueError(
                f"{what}: expected logits of shape (batch, outputs), got {z.shape}"
            )
        t = check_array(target, what + " targets", z.dtype)
        if t.ndim == 1 and z.shape[1] == 1:
            t = t.reshape(-1, 1)
        if t.shape != z.shape:
            raise InvalidValueError(f"{what}: expected targets of shape {z.shape}, got {t.shape}")
        check_unit_targets(t, what)
        return self._forward_checked_once(z, t, z.shape[1])

    __call__ = forward

    def _forward_checked_once(self, z, t, width):
        """``forward`` for targets the caller has already validated (shape, dtype, [0, 1]);
        the model's output ``z`` is checked on every call (see SoftmaxCrossEntropy)."""
        check_output(z, t, width, "BinaryCrossEntropy")
        if self._dz is None or self._dz.shape != z.shape or self._dz.dtype != z.dtype:
            self._dz = np.empty_like(z)
        return float(_bce(z.size)(z, t, self._dz))

    def backward(self):
        if self._dz is None:
            raise StateError("BinaryCrossEntropy.backward called before forward")
        return self._dz

    @staticmethod
    def row_losses(z, t):
        """Each row's loss (float64, (batch,)): their mean is ``forward``'s."""
        z, t = z.astype(np.float64), t.astype(np.float64)
        return (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).sum(axis=1)

    def __repr__(self):
        return "BinaryCrossEntropy()"


def sum_squared_error(y, t):
    """The course's mean-squared-error form: 0.5 * sum((y - t)**2) (no division by the batch)."""
    y = np.asarray(y, dtype=np.float64)
    return 0.5 * float(np.sum((y - np.asarray(t, dtype=np.float64)) ** 2))


# The losses by name, as ``fit(loss=...)`` takes them.
LOSSES = {
    "cross_entropy": SoftmaxCrossEntropy,
    "softmax_cross_entropy": SoftmaxCrossEntropy,
    "mse": MSELoss,
    "binary_cross_entropy": BinaryCrossEntropy,
}


def get(name):
    """A new loss by name: "cross_entropy" (also "softmax_cross_entropy"), "mse" or
    "binary_cross_entropy"."""
    return LOSSES[check_choice(name, "loss", LOSSES)]()
