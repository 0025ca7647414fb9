"""A model described as data for the compiled network kernels (``fastnn.kernels._network``).

``Plan(model, rows, width, training)`` lays out, for batches of at most ``rows`` rows of
``width`` inputs, one row of integers per layer (its kind, widths, activation, and where its
parameters, gradients and work arrays lie in a few flat buffers) and allocates those buffers.
The kernels trust the tables completely, so everything that could make them wrong is checked
here, when the plan is made, by the layers' own checks; and ``current()`` tells, in a few
comparisons per layer, whether the model is still the one the plan was made from (no array
rebound, no size, activation or mode changed), so that a caller makes a new plan instead of
running a stale one.

Only models of fastnn's own layers have a plan (``compilable``): a module of your own, or a
subclass of a fastnn layer, runs its own Python ``forward`` and ``backward``, which no table
can describe.
"""

import contextlib
import contextvars

import numpy as np

from ..errors import InvalidTypeError, InvalidValueError
from ..kernels import _network as k
from ..kernels._config import n_chunks
from .activations import ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .dropout import Dropout
from .linear import Linear, Maxout
from .module import Parameter, check_state, pack_parameters
from .normalization import BatchNorm

_ENABLED = contextvars.ContextVar("fastnn_compiled", default=True)
_ACTIVATIONS = {ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh", Step: "step"}


@contextlib.contextmanager
def compiled(enabled=True):
    """Within the block, ``fit``, ``evaluate`` and ``predict`` in this thread run models of
    fastnn's own layers as compiled calls (``enabled=True``, the default everywhere) or layer
    by layer, through each layer's ``forward`` and ``backward`` (False). The two give the same
    results; the per-layer path is the reference the tests compare the compiled one with."""
    token = _ENABLED.set(bool(enabled))
    try:
        yield
    finally:
        _ENABLED.reset(token)


def enabled():
    """Whether the compiled path is on in this thread (``compiled``)."""
    return _ENABLED.get()


_LEAVES = (Linear, Maxout, BatchNorm, Dropout, Identity, Softmax, LeakyReLU, ELU, *_ACTIVATIONS)


def leaves(model):
    """The layers of ``model`` in the order they run, through nested ``Sequential``s; None when
    any of them is not one of fastnn's own (exactly: a subclass may override forward)."""
    if type(model).__dict__.get("_runs_only_its_layers"):  # Sequential, MLP
        out = []
        for layer in model.layers:
            sub = leaves(layer)
            if sub is None:
                return None
            out += sub
        return out
    return [model] if type(model) in _LEAVES else None


def compilable(model):
    """Whether ``model`` is built from fastnn's own layers only, all of one float dtype."""
    found = leaves(model)
    return bool(found) and model.dtype in (np.float32, np.float64)


def _signature(layers, modes):
    """What the tables depend on, per layer: compared before every run (``Plan.current``).
    The layers' modes count only for a training plan (``modes``)."""
    out = []
    for m in layers:
        t = type(m)
        if t is Linear:
            out.append((t, m.in_features, m.out_features, m._act, m.alpha, m.bias is None))
        elif t is Maxout:
            out.append((t, m.in_features, m.out_features, m.pieces))
        elif t is BatchNorm:
            out.append((t, m.num_features, m.eps, m.momentum, modes and m.training))
        elif t is Dropout:
            out.append((t, m.p, modes and m.training))
        elif t is LeakyReLU:
            out.append((t, m.negative_slope))
        elif t is ELU:
            out.append((t, m.alpha))
        else:
            out.append((t,))
        if m.dtype is not layers[0].dtype:
            out.append(m.dtype)
    return out


def _same_layers(found, layers):
    """Whether ``found`` (``leaves`` of the model now) are the plan's layer objects."""
    return (
        found is not None
        and len(found) == len(layers)
        and all(a is b for a, b in zip(found, layers, strict=True))
    )


class Plan:
    """Tables and work buffers of ``model`` for batches of at most ``rows`` rows of ``width``
    inputs, in training mode (``training``: every layer must be in it) or eval mode (whatever
    mode the layers are in: the plan runs them as eval mode does, so that ``predict`` need
    not switch every layer's mode and back, which cost more than a single row's forward)."""

    def __init__(self, model, rows, width, training):
        layers = leaves(model)
        if not layers:
            raise InvalidTypeError("only models of fastnn's own layers have a plan")
        if training and not all(m.training for m in model.modules()):
            raise InvalidValueError("every layer must be in the plan's mode")
        self.model, self.rows, self.width, self.training = model, rows, width, training
        k.launch_threads()  # before any compiled call of the plan's (see there)
        self.dtype = dtype = model.dtype
        self._layers = layers
        self._signature = _signature(layers, training)
        params = model.parameters()
        self.params, self.grads = pack_parameters(params) if params else (None, None)
        self._rebinds = Parameter.rebinds
        offsets, at = {}, 0
        for p in params:
            offsets[id(p)] = at
            at += p.size
        self._lay_out(layers, offsets, rows, width, dtype)

    # -- layout -------------------------------------------------------------------------------
    def _lay_out(self, layers, offsets, rows, width, dtype):
        sizes = {"work": 0, "iwork": 0, "work64": 0, "stats": 0}

        def take(kind, n):
            at = sizes[kind]
            sizes[kind] += n
            return at

        table = np.full((len(layers), k.COLUMNS), -1, dtype=np.int64)
        ftable = np.zeros((len(layers), k.FCOLUMNS), dtype=np.float64)
        zeros = []  # work regions that must hold zeros (a Linear's missing bias)
        self._norms, self._dropouts = [], []
        where = np.zeros(k.WHERE, dtype=np.int64)
        where[k.XB] = x = take("work", rows * width)
        where[k.NIN] = w = width
        units = 0  # rows of uniforms per dropout row
        for i, m in enumerate(layers):
            row, f = table[i], ftable[i]
            row[k.X] = x
            t = type(m)
            if t in (Linear, Maxout):
                m._check_params(grads=False)
                m._check_params(grads=True)
                if m.in_features != w:
                    raise InvalidValueError(
                        f"layer {i} ({m!r}) takes {m.in_features} inputs, gets {w}"
                    )
                out = m.out_features
            if t is Linear:
                row[k.KIND], row[k.ACT], f[k.ALPHA] = k.LINEAR, m._act, m.alpha
                row[k.W] = offsets[id(m.weight)]
                if m.bias is not None:
                    row[k.B] = offsets[id(m.bias)]
                else:
                    row[k.A2] = take("work", out)
                    zeros.append((row[k.A2], out))
                    row[k.A3] = take("work", out)
                row[k.A1] = take("work", rows * out)
            elif t is Maxout:
                row[k.KIND], row[k.PIECES] = k.MAXOUT, m.pieces
                row[k.W], row[k.B] = offsets[id(m.weight)], offsets[id(m.bias)]
                row[k.A1] = take("work", rows * out * m.pieces)
                row[k.A4] = take("work", rows * out * m.pieces)
                row[k.I1] = take("iwork", rows * out)
            elif t is BatchNorm:
                m._check_arrays(grads=False)
                m._check_arrays(grads=True)
                if m.num_features != w:
                    raise InvalidValueError(
                        f"layer {i} ({m!r}) takes {m.num_features} inputs, gets {w}"
                    )
                out = w
                row[k.KIND] = k.BATCHNORM
                f[k.EPS], f[k.MOMENTUM] = m.eps, m.momentum
                row[k.W], row[k.B] = offsets[id(m.weight)], offsets[id(m.bias)]
                for col in (k.A2, k.A3, k.A4):
                    row[col] = take("work", w)
                row[k.A1] = take("work", rows * w)
                row[k.F1] = take("work64", max(1, n_chunks(rows * w)) * 2 * w)
                row[k.S1] = take("stats", 2 * w)
                self._norms.append((m, int(row[k.S1])))
            elif t is Dropout and self.training and m.p > 0:
                out = w
                row[k.KIND], f[k.P] = k.DROPOUT, m.p
                row[k.A1] = take("work", rows * w)
                row[k.U] = units
                self._dropouts.append((m, units, w))
                units += w
            elif t in (Dropout, Identity):
                out = w
                row[k.KIND] = k.PASS
            elif t is Softmax:
                out = w
                row[k.KIND] = k.SOFTMAX
            else:  # an elementwise activation
                out = w
                row[k.KIND] = k.ACTIVATION
                if t is LeakyReLU:
                    row[k.ACT], f[k.ALPHA] = _code("leaky_relu"), m.negative_slope
                elif t is ELU:
                    row[k.ACT], f[k.ALPHA] = _code("elu"), m.alpha
                else:
                    row[k.ACT] = _code(_ACTIVATIONS[t])
            row[k.IN], row[k.OUT] = w, out
            if row[k.KIND] == k.PASS:
                row[k.Y] = x
            else:
                row[k.Y] = x = take("work", rows * out)
            w = out
        where[k.Z], where[k.NOUT] = x, w
        where[k.DZ] = dz = take("work", rows * w)
        where[k.T] = take("work", rows * w)
        where[k.LB] = take("iwork", rows)
        # Backward: each layer's gradient from above, and its own for the layer below.
        first = min((i for i in range(len(layers)) if table[i, k.KIND] != k.PASS), default=-1)
        for i in range(len(layers) - 1, -1, -1):
            row = table[i]
            row[k.DOUT] = dz
            if row[k.KIND] == k.PASS:
                row[k.DX] = dz
            elif i == first and row[k.KIND] in (k.LINEAR, k.MAXOUT):
                row[k.DX] = -1  # the network's input needs no gradient
            else:
                row[k.DX] = dz = take("work", rows * row[k.IN])
        self.layers, self.fparams, self.where = table, ftable, where
        self.units = units
        self.work = np.zeros(max(sizes["work"], 1), dtype=dtype)
        self.iwork = np.zeros(max(sizes["iwork"], 1), dtype=np.int64)
        self.work64 = np.zeros(max(sizes["work64"], 1), dtype=np.float64)
        self.stats = np.zeros(max(sizes["stats"], 1), dtype=dtype)
        self.out_width = w
        for at, n in zeros:
            self.work[at : at + n] = 0
        # The kernels' feature arguments: None for a kind the network does not have, so that
        # its code is not compiled (see kernels._network).
        kinds = set(table[:, k.KIND].tolist())
        self.maxout = True if k.MAXOUT in kinds else None
        self.activation = True if k.ACTIVATION in kinds else None
        self.softmax = True if k.SOFTMAX in kinds else None
        self.norms = self.stats if self._norms else None

    # -- state --------------------------------------------------------------------------------
    def current(self):
        """Whether the model is still what the plan describes: no parameter array rebound
        since (``Parameter.rebinds``), and every layer's sizes, activation, settings and mode
        as they were."""
        return (
            Parameter.rebinds == self._rebinds
            and _signature(self._layers, self.training) == self._signature
            and _same_layers(leaves(self.model), self._layers)
        )

    def load_statistics(self):
        """Copy the batch-norm layers' running statistics into the plan (checked first)."""
        for m, at in self._norms:
            d = m.num_features
            check_state(m, "running_mean", m.running_mean, (d,), writeable=self.training)
            check_state(m, "running_var", m.running_var, (d,), writeable=self.training)
            self.stats[at : at + d] = m.running_mean
            self.stats[at + d : at + 2 * d] = m.running_var

    def store_statistics(self):
        """Copy the running statistics back into the batch-norm layers."""
        for m, at in self._norms:
            d = m.num_features
            m.running_mean[...] = self.stats[at : at + d]
            m.running_var[...] = self.stats[at + d : at + 2 * d]

    def shared_generators(self):
        """Whether two dropout layers draw from one generator (then steps must draw in turn,
        one step at a time, as the layers do)."""
        return len({id(m.rng) for m, _, _ in self._dropouts}) < len(self._dropouts)

    def draw_uniforms(self, rows, out):
        """The dropout layers' uniforms for ``rows`` rows of steps, each from the layer's own
        generator as its forward draws them: into ``out`` (at least ``rows * units`` values),
        laid out as the kernels read them. Returns ``out``."""
        for m, at, w in self._dropouts:
            block = out[at * rows : (at + w) * rows]
            m.rng.random(out=block, dtype=block.dtype)
        return out

    def forward(self, x, out):
        """Eval-mode outputs of the rows of ``x`` (at most ``rows``, C-contiguous, the plan's
        dtype and width) into ``out``."""
        k.forward_rows(
            self.layers,
            self.fparams,
            self.where,
            self.params if self.params is not None else self.work,
            self.work,
            self.iwork,
            self.work64,
            self.norms,
            x,
            out,
            self.maxout,
            self.activation,
            self.softmax,
        )


def _code(name):
    from ..kernels.activations import ACTIVATIONS

    return ACTIVATIONS[name]


def predict(model, x, batch_size):
    """``model``'s eval-mode outputs for the rows of ``x`` (an array), through a plan kept on
    the model (made again when the model changed or a larger batch comes); None when the
    compiled path is off or cannot run this model or input (the per-layer path then runs,
    and reports what is wrong). The layers' modes are not touched: an eval plan runs every
    layer as eval mode does."""
    if not enabled() or x.ndim != 2:
        return None
    n, width = x.shape
    rows = min(batch_size, n)
    plan = model.__dict__.get("_eval_plan")
    if plan is None or plan.rows < rows or plan.width != width or not plan.current():
        if not compilable(model):
            return None
        try:
            plan = Plan(model, rows, width, training=False)
        except (ValueError, TypeError):
            return None
        model._eval_plan = plan
    plan.load_statistics()
    out = np.empty((n, plan.out_width), dtype=plan.dtype)
    # In batches of ``rows`` as the per-layer path runs them (a plan made for more rows
    # serves too): the products of a batch, hence their rounding, depend on its size.
    for lo in range(0, n, rows):
        block = np.ascontiguousarray(x[lo : lo + rows], dtype=plan.dtype)
        plan.forward(block, out[lo : lo + rows])
    return out
