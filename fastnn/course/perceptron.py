"""The perceptron: logic gates, the perceptron learning rule, and why XOR needs two layers.

    from fastnn.perceptron import AND, NAND, OR, XOR, train_perceptron
    AND([1, 1])                       # 1
    AND(1, 1)                         # 1, as the course calls it
    XOR([[0, 0], [1, 0]])             # array([0, 1])
    p, errors = train_perceptron(x, t, lr=0.1, epochs=20, seed=0)

A perceptron outputs y = 1 if w.x + b > 0 else 0. One perceptron draws a straight line through
the input plane, so it can be AND, NAND or OR but never XOR, whose 1s and 0s no line separates.
Stacking perceptrons fixes that: XOR(x) = AND(NAND(x), OR(x)). ``train_xor_network`` trains
such a two-layer network by backpropagation instead of by hand.
"""

import numpy as np

from .. import optim
from .._checks import check_array, check_int, check_real, check_seed
from ..errors import InvalidTypeError, InvalidValueError
from ..nn import MLP
from ..training import fit

__all__ = [
    "AND",
    "NAND",
    "OR",
    "XOR",
    "GATE_INPUTS",
    "Perceptron",
    "PerceptronNetwork",
    "train_perceptron",
    "train_xor_network",
]

# The four inputs of a two-input gate, in truth-table order, and XOR's targets.
GATE_INPUTS = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float64)
_XOR_TARGETS = np.array([0, 1, 1, 0], dtype=np.int64)


def _real_array(x, what):
    a = check_array(x, what).astype(np.float64)
    if not np.isfinite(a).all():
        raise InvalidValueError(f"{what}: the input contains NaN or infinity")
    return a


def _check_inputs(x, n_inputs, what):
    """``x`` as float64 of shape (n_inputs,) or (batch >= 1, n_inputs)."""
    x = _real_array(x, what)
    if x.ndim not in (1, 2) or x.shape[-1] != n_inputs or (x.ndim == 2 and x.shape[0] == 0):
        raise InvalidValueError(
            f"{what}: expected one input of shape ({n_inputs},) or a batch of shape "
            f"(batch, {n_inputs}), got {x.shape}"
        )
    return x


def _join_inputs(inputs, n_inputs, what):
    """A gate's arguments as one input: ``gate(x)`` with x of shape (n_inputs,) or (batch,
    n_inputs), or the course's ``gate(x1, x2)``: one argument per input (numbers, or equal-length
    1-D arrays for a batch), stacked into the last axis."""
    if len(inputs) == 1:
        return inputs[0]
    if len(inputs) != n_inputs:
        raise InvalidTypeError(
            f"{what}: expected one input of shape ({n_inputs},) or (batch, {n_inputs}), or "
            f"{n_inputs} separate inputs; got {len(inputs)} arguments"
        )
    parts = [_real_array(v, what) for v in inputs]
    if any(v.ndim > 1 for v in parts) or len({v.shape for v in parts}) != 1:
        raise InvalidValueError(
            f"{what}: separate inputs must be numbers or 1-D arrays of one length, got shapes "
            f"{[v.shape for v in parts]}"
        )
    return np.stack(parts, axis=-1)


def _check_targets(t, n, what):
    t = np.asarray(t)
    if t.shape != (n,):
        raise InvalidValueError(f"{what}: expected {n} targets of shape ({n},), got {t.shape}")
    if t.dtype.kind not in "biuf" or not np.isin(t, (0, 1)).all():
        raise InvalidValueError(f"{what}: targets must be 0 or 1")
    return t.astype(np.int64)


def _as_output(y, single):
    return int(y[0]) if single else y


class Perceptron:
    """y = 1 if w.x + b > 0 else 0.

    ``weights``: (n_inputs,), ``bias``: a number (the course's b = -theta). Calling it on one
    input of shape (n_inputs,) gives an int; on a batch (batch, n_inputs) an int64 array
    (batch,). Weights and bias are float64.
    """

    def __init__(self, weights, bias):
        w = _real_array(weights, "Perceptron weights")
        if w.ndim != 1 or w.size == 0:
            raise InvalidValueError(
                f"Perceptron: expected weights of shape (n_inputs,), got {w.shape}"
            )
        self.weights = w
        self.bias = check_real(bias, "bias")

    @property
    def n_inputs(self):
        return self.weights.size

    def net(self, x):
        """The weighted sum w.x + b: a float for one input, (batch,) float64 for a batch."""
        x = _check_inputs(x, self.n_inputs, f"{self!r}")
        a = np.atleast_2d(x) @ self.weights + self.bias
        return float(a[0]) if x.ndim == 1 else a

    def __call__(self, *x):
        """The output for ``x`` of shape (n_inputs,) (an int) or (batch, n_inputs) (an array);
        or, as the course writes it, one argument per input: ``AND(1, 0)``."""
        x = _join_inputs(x, self.n_inputs, f"{self!r}")
        x = _check_inputs(x, self.n_inputs, f"{self!r}")
        y = (np.atleast_2d(x) @ self.weights + self.bias > 0).astype(np.int64)
        return _as_output(y, x.ndim == 1)

    predict = __call__

    def fit(self, x, t, lr=0.1, epochs=20, rng=None, pocket=False):
        """Rosenblatt's learning rule, one example at a time, starting from the current weights.

        For each example (in an order shuffled every epoch by ``rng``; data order when None):
        y = self(x_i), then w <- w + lr (t_i - y) x_i and b <- b + lr (t_i - y). Stops after
        the first epoch with no mistake, or after ``epochs`` epochs. x: (n, n_inputs),
        t: (n,) of 0/1. Returns the list of mistakes per epoch (on all of x, after the epoch).

        ``fit`` changes this perceptron in place: to train from a ready-made gate, copy it
        first (``Perceptron(AND.weights, AND.bias)``).

        ``pocket=True`` (Gallant's pocket algorithm) ends with the weights that made the fewest
        mistakes of all those visited, the best line the rule found when none separates t.
        """
        x = _check_inputs(x, self.n_inputs, "Perceptron.fit")
        x = np.atleast_2d(x)
        t = _check_targets(t, len(x), "Perceptron.fit")
        lr = check_real(lr, "learning rate", low=0.0, closed="right")
        epochs = check_int(epochs, "epochs", low=1)
        shuffle = None if rng is None else check_seed(rng)
        best = (int(np.sum(self(x) != t)), self.weights.copy(), self.bias)
        mistakes = []
        for _ in range(epochs):
            order = np.arange(len(x)) if shuffle is None else shuffle.permutation(len(x))
            for i in order:
                error = t[i] - self(x[i])
                if error == 0:
                    continue
                self.weights += lr * error * x[i]
                self.bias += lr * error
                wrong = int(np.sum(self(x) != t)) if pocket else best[0]
                if wrong < best[0]:
                    best = (wrong, self.weights.copy(), self.bias)
            mistakes.append(int(np.sum(self(x) != t)))
            if mistakes[-1] == 0:
                break
        if pocket and best[0] < mistakes[-1]:
            self.weights, self.bias = best[1], best[2]
        return mistakes

    def __repr__(self):
        w = ", ".join(f"{v:g}" for v in self.weights)
        return f"Perceptron(weights=({w}), bias={self.bias:g})"


def train_perceptron(x, t, lr=0.1, epochs=20, seed=0, pocket=False):
    """A perceptron learned from (x, t) by ``Perceptron.fit``, starting from zero weights and
    bias, examples shuffled by ``seed``. Returns ``(perceptron, mistakes per epoch)``.

    On AND or OR the mistakes reach 0 (the perceptron convergence theorem: a line separates
    the classes); on XOR no line does, so every epoch ends with at least one mistake.
    """
    x = np.atleast_2d(_real_array(x, "train_perceptron"))
    if x.ndim != 2 or x.shape[1] == 0:
        raise InvalidValueError(
            f"train_perceptron: expected x of shape (n, n_inputs), got {x.shape}"
        )
    p = Perceptron(np.zeros(x.shape[1]), 0.0)
    rng = check_seed(seed, allow_none=False)
    return p, p.fit(x, t, lr=lr, epochs=epochs, rng=rng, pocket=pocket)


class PerceptronNetwork:
    """Layers of perceptrons: each layer's outputs, in order, are the next layer's inputs.

    ``PerceptronNetwork([NAND, OR], [AND])`` is XOR. Called like a ``Perceptron``; the last
    layer must have a single perceptron.
    """

    def __init__(self, *layers):
        if not layers:
            raise InvalidValueError("PerceptronNetwork needs at least one layer")
        layers = [list(layer) for layer in layers]
        for i, layer in enumerate(layers):
            if not layer or not all(isinstance(p, Perceptron) for p in layer):
                raise InvalidTypeError(
                    f"PerceptronNetwork: layer {i} must be a non-empty list of Perceptrons"
                )
            want = len(layers[i - 1]) if i else layer[0].n_inputs
            if any(p.n_inputs != want for p in layer):
                raise InvalidValueError(
                    f"PerceptronNetwork: layer {i}'s perceptrons must all take {want} inputs, "
                    f"got {[p.n_inputs for p in layer]}"
                )
        if len(layers[-1]) != 1:
            raise InvalidValueError("PerceptronNetwork: the last layer must have one perceptron")
        self.layers = layers

    @property
    def n_inputs(self):
        return self.layers[0][0].n_inputs

    def __call__(self, *x):
        x = _join_inputs(x, self.n_inputs, "PerceptronNetwork")
        x = _check_inputs(x, self.n_inputs, "PerceptronNetwork")
        h = np.atleast_2d(x)
        for layer in self.layers:
            h = np.stack([p(h) for p in layer], axis=1)
        return _as_output(h[:, 0], x.ndim == 1)

    predict = __call__

    def __repr__(self):
        return "PerceptronNetwork(" + ", ".join(map(repr, self.layers)) + ")"


# The course's gates (weights and bias as in the book; many other values work).
AND = Perceptron((0.5, 0.5), -0.7)
NAND = Perceptron((-0.5, -0.5), 0.7)
OR = Perceptron((0.5, 0.5), -0.2)
XOR = PerceptronNetwork([NAND, OR], [AND])


def train_xor_network(seed=0, hidden=8, epochs=300, lr=0.05):
    """A two-layer network (2-``hidden``-2, tanh) trained by backprop to compute XOR.

    Uses ``fastnn.MLP`` and ``fastnn.fit`` (softmax cross-entropy, Adam, all four inputs in
    one batch). Returns ``(model, predictions)``, the predictions being the model's classes
    for ``GATE_INPUTS`` (int64 (4,); [0, 1, 1, 0] when it learned XOR).
    """
    hidden = check_int(hidden, "hidden", low=1)
    epochs = check_int(epochs, "epochs", low=1)
    x = GATE_INPUTS.astype(np.float32)
    model = MLP([2, hidden, 2], activation="tanh", seed=seed)
    opt = optim.Adam(model.parameters(), lr=lr)
    fit(model, x, _XOR_TARGETS, optimizer=opt, epochs=epochs, batch_size=4, verbose=0, seed=seed)
    return model, model.predict_classes(x)
