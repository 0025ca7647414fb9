"""The training loop: ``fit``, ``evaluate`` and the ``History`` they report.

``fit`` checks its inputs once (shapes against the model, label range, finite values, dtype),
then runs mini-batch epochs: each step gathers its rows into buffers allocated once, runs
forward, the fused loss, backward and one optimizer kernel call, checking only that the
loss and the gradient are finite (a diverging run stops with ``TrainingDivergedError``;
``clip_norm`` tames exploding gradients).

    history = fit(model, x, y, optimizer=optim.Adam(model.parameters(), lr=1e-3),
                  epochs=10, batch_size=64, validation_split=0.1, seed=0)
    history["val_accuracy"][-1]
"""

import math
import numbers
import signal
import sys
import threading
import time

import numpy as np

from . import files
from . import optim as _optim
from ._validation import as_float_array, check_bool, check_positive_int
from .callbacks import Callback
from .container import Sequential
from .dropout import Dropout
from .kernels.data import count_equal, gather_rows
from .linear import Linear, Maxout
from .losses import MSELoss, SoftmaxCrossEntropy, check_labels
from .losses import get as _get_loss
from .module import Module, eval_lock
from .normalization import BatchNorm

__all__ = ["History", "TrainingDivergedError", "evaluate", "fit"]

METRICS = ("accuracy",)


class TrainingDivergedError(FloatingPointError):
    """The loss, the gradient or the updated weights became NaN or infinite. ``epoch`` and
    ``step`` (1-based) say where, ``what`` which of the three ("loss", "gradient" or
    "weights"); ``history`` holds the epochs completed before."""

    def __init__(self, message, epoch, step, history, what="loss"):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.history = history
        self.what = what


class History:
    """Per-epoch figures of a ``fit``: ``history["loss"]``, ``["accuracy"]``, ``["val_loss"]``,
    ``["val_accuracy"]``, ``["lr"]`` (the learning rate used in the epoch) and
    ``["seconds"]`` (wall time of the epoch, validation included), one entry per epoch.

    ``interrupted`` is true when Ctrl-C ended training; ``stopped_early`` when a callback did.
    """

    def __init__(self, history=None):
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.interrupted = False
        self.stopped_early = False

    @property
    def epochs(self):
        """Number of completed epochs."""
        return len(next(iter(self.history.values()), []))

    def append(self, logs):
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, name):
        return self.history[name]

    def __contains__(self, name):
        return name in self.history

    def __len__(self):
        return self.epochs

    def keys(self):
        return self.history.keys()

    def last(self):
        """The last epoch's figures, name -> value."""
        return {k: v[-1] for k, v in self.history.items() if v}

    def to_dict(self):
        return {k: list(v) for k, v in self.history.items()}

    def plot(self, metrics=None):
        """A matplotlib Figure: one panel per figure (loss, accuracy, ...) with the training and
        validation curves. Needs the ``plot`` extra (matplotlib)."""
        from .plotting import plot_history

        return plot_history(self, metrics)

    def __repr__(self):
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items() if k != "seconds")
        return f"History(epochs={self.epochs}{', ' if last else ''}{last})"


# -- checks done once per fit ----------------------------------------------------------------
def io_sizes(model):
    """(input features, outputs) of ``model``, from its first and last sized layers."""
    sized = [m for m in model.modules() if not isinstance(m, Sequential)]
    n_in = n_out = None
    for m in sized:
        n_in = getattr(m, "in_features", None) or getattr(m, "num_features", None)
        if n_in is not None:
            break
    for m in reversed(sized):
        n_out = getattr(m, "out_features", None) or getattr(m, "num_features", None)
        if n_out is not None:
            break
    if n_in is None or n_out is None:
        raise ValueError(f"cannot tell the input and output sizes of {type(model).__name__}")
    return n_in, n_out


def _resolve_loss(loss):
    if isinstance(loss, str):
        return _get_loss(loss)
    if isinstance(loss, (SoftmaxCrossEntropy, MSELoss)):
        return type(loss)()
    raise TypeError(
        f"loss must be 'cross_entropy', 'mse', SoftmaxCrossEntropy() or MSELoss(), got {loss!r}"
    )


def _resolve_metrics(metrics, loss):
    if metrics is None:
        return ("accuracy",) if isinstance(loss, SoftmaxCrossEntropy) else ()
    if isinstance(metrics, str):
        metrics = (metrics,)
    out = tuple(metrics)
    for m in out:
        if m not in METRICS:
            raise ValueError(f"unknown metric {m!r}; expected one of {', '.join(METRICS)}")
    return out


def _check_xy(model, loss, x, y, what, check_finite):
    """(x, y for the loss, labels for accuracy or None), checked and converted once."""
    check_finite = check_bool(check_finite, f"{what}: check_finite")
    n_in, n_out = io_sizes(model)
    x = as_float_array(x, model.dtype, f"{what} x")
    if x.ndim != 2 or x.shape[1] != n_in or x.shape[0] == 0:
        raise ValueError(f"{what}: expected x of shape (n, {n_in}) with n >= 1, got {x.shape}")
    n = x.shape[0]
    if check_finite and not np.isfinite(x).all():
        raise ValueError(f"{what}: x holds NaN or infinite values (check_finite=False allows them)")
    y_arr = np.asarray(y)
    if isinstance(loss, SoftmaxCrossEntropy) and y_arr.ndim == 1:
        labels = check_labels(y_arr, n, n_out, f"{what} y")
        return x, labels, labels
    if isinstance(loss, MSELoss) and y_arr.ndim == 1 and n_out == 1:
        y_arr = y_arr.reshape(-1, 1)
    t = as_float_array(y_arr, model.dtype, f"{what} y")
    if t.shape != (n, n_out):
        kind = "labels of shape (n,) or targets" if isinstance(loss, SoftmaxCrossEntropy) else "y"
        raise ValueError(f"{what}: expected {kind} of shape ({n}, {n_out}), got {t.shape}")
    if check_finite and not np.isfinite(t).all():
        raise ValueError(f"{what}: y holds NaN or infinite values")
    return x, t, t.argmax(axis=1).astype(np.int64)


def _check_optimizer(optimizer, model):
    if isinstance(optimizer, str):
        return _optim.get(optimizer, model.parameters())
    if not isinstance(optimizer, _optim.Optimizer):
        raise TypeError(f"optimizer must be a name or a fastnn optimizer, got {optimizer!r}")
    if [id(p) for p in optimizer.params] != [id(p) for p in model.parameters()]:
        raise ValueError("the optimizer was not made over this model's parameters, in order")
    return optimizer


def _backward(model, dout):
    if isinstance(model, (Sequential, Linear, Maxout)):
        model.backward(dout, input_grad=False)
    else:
        model.backward(dout)


# -- evaluation ------------------------------------------------------------------------------
def _evaluate(model, loss, x, t, labels, metrics, batch_size):
    was_training = model.training
    model.eval()
    total = 0.0
    correct = 0
    try:
        for lo in range(0, x.shape[0], batch_size):
            z = model.forward(x[lo : lo + batch_size])
            tb = t[lo : lo + batch_size]
            total += loss._forward_checked_once(z, tb) * z.shape[0]
            if "accuracy" in metrics:
                correct += int(np.count_nonzero(z.argmax(axis=1) == labels[lo : lo + batch_size]))
    finally:
        model.train(was_training)
    out = {"loss": total / x.shape[0]}
    if "accuracy" in metrics:
        out["accuracy"] = correct / x.shape[0]
    return out


def evaluate(model, x, y, loss="cross_entropy", metrics=None, batch_size=1024, check_finite=True):
    """The mean loss and the metrics of ``model`` on (x, y) in eval mode, as a dict
    (``{"loss": ..., "accuracy": ...}``). ``y``: labels (n,) or targets (n, outputs)."""
    if not isinstance(model, Module):
        raise TypeError(f"evaluate: expected a fastnn model, got {type(model).__name__}")
    loss = _resolve_loss(loss)
    metrics = _resolve_metrics(metrics, loss)
    batch_size = check_positive_int(batch_size, "batch_size")
    x, t, labels = _check_xy(model, loss, x, y, "evaluate", check_finite)
    with eval_lock(model):  # as predict: several threads may evaluate one model
        return _evaluate(model, loss, x, t, labels, metrics, batch_size)


# -- the loop --------------------------------------------------------------------------------
class _Trainer:
    """What callbacks see of a running fit."""

    def __init__(self, model, optimizer, loss, history, epochs, metrics, has_validation, verbose):
        self.model = model
        self.optimizer = optimizer
        self.loss = loss
        self.history = history
        self.epochs = epochs
        self.metrics = metrics
        self.has_validation = has_validation
        self.verbose = verbose
        self.stop_training = False
        self.resumed = False
        self.callbacks = []
        self.pending_checkpoints = []
        self.state = {}

    def log_names(self):
        names = ["loss", *self.metrics]
        if self.has_validation:
            names += ["val_" + n for n in names]
        return names

    def log(self, message):
        print(message, flush=True)

    def save_checkpoint(self, path):
        """Write a checkpoint at the end of this epoch, after every callback has run."""
        self.pending_checkpoints.append(path)

    def write_checkpoint(self, path):
        extra = dict(self.state)
        extra["history"] = self.history.to_dict()
        extra["stopped"] = self.stop_training
        extra["callbacks"] = []
        arrays = {}
        for i, cb in enumerate(self.callbacks):
            scalars = {}
            for k, v in cb.state_dict().items():
                if isinstance(v, np.ndarray):
                    arrays[f"callback{i}/{k}"] = v
                else:
                    scalars[k] = v
            extra["callbacks"].append({"class": type(cb).__name__, "state": scalars})
        files.save_checkpoint(path, self.model, self.optimizer, extra, arrays)


def _dropout_layers(model):
    return [m for m in model.modules() if isinstance(m, Dropout)]


def _rng_state(rng):
    state = rng.bit_generator.state

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return v.tolist()
        return v

    return plain(state)


def _set_rng_state(rng, state):
    if state.get("bit_generator") != type(rng.bit_generator).__name__:
        raise ValueError(
            f"checkpoint random generator is {state.get('bit_generator')}, "
            f"the model's is {type(rng.bit_generator).__name__}"
        )
    rng.bit_generator.state = state


def _resume(path, trainer, model, optimizer, callbacks):
    """Load a checkpoint into the model, optimizer and callbacks; returns its training state."""
    f = files.read(path)
    name = str(path)
    if f.header.get("kind") != "checkpoint":
        raise ValueError(f"{name}: a saved model, not a checkpoint (it has no training state)")
    if f.header.get("model") != files.architecture(model):
        raise ValueError(f"{name}: the checkpoint's architecture differs from this model's")
    if f.header.get("dtype") != str(model.dtype):
        raise ValueError(f"{name}: checkpoint dtype {f.header.get('dtype')}, model {model.dtype}")
    state = f.header.get("training") or {}
    opt_state = dict(f.header.get("optimizer") or {})
    opt_state.update(f.group("optimizer"))
    try:
        model.load_state_dict(f.group("model"))
        optimizer.load_state_dict(opt_state)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {e}") from None
    layers = _dropout_layers(model)
    saved = state.get("dropout_rngs", [])
    if len(saved) != len(layers):
        raise ValueError(
            f"{name}: checkpoint has {len(saved)} dropout generators, model {len(layers)}"
        )
    for layer, s in zip(layers, saved, strict=True):
        _set_rng_state(layer.rng, s)
    for i, (cb, saved_cb) in enumerate(zip(callbacks, state.get("callbacks", []), strict=False)):
        if saved_cb.get("class") == type(cb).__name__:
            cb_state = dict(saved_cb.get("state", {}))
            cb_state.update(f.group(f"callback{i}"))
            cb.load_state_dict(cb_state)
    trainer.resumed = True
    return state


def _format_logs(epoch, epochs, logs):
    parts = [f"epoch {epoch + 1}/{epochs}"]
    for k, v in logs.items():
        if k == "lr":
            parts.append(f"lr {v:.3g}")
        elif k == "seconds":
            parts.append(f"{v:.2f} s")
        else:
            parts.append(f"{k} {v:.4f}")
    return "  ".join(parts)


class _Interrupt:
    """Turns the first Ctrl-C during fit into a request to stop after the current step."""

    def __init__(self, enabled=True):
        self.requested = False
        self.enabled = enabled
        self._old = None

    def __enter__(self):
        if self.enabled and threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:  # a second Ctrl-C: stop at once
            signal.signal(signal.SIGINT, self._old)
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _split_validation(x, t, labels, fraction, rng):
    if isinstance(fraction, bool) or not isinstance(fraction, numbers.Real):
        raise TypeError(f"validation_split must be a fraction, got {fraction!r}")
    if not 0 < fraction < 1:
        raise ValueError(f"invalid validation_split: {fraction}; expected 0 < fraction < 1")
    n = x.shape[0]
    n_val = int(round(n * fraction))
    if not 1 <= n_val < n:
        raise ValueError(f"validation_split={fraction} of {n} rows leaves an empty split")
    order = rng.permutation(n)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return (x[train], t[train], labels[train]), (x[val], t[val], labels[val])


def fit(
    model,
    x,
    y,
    loss="cross_entropy",
    optimizer="adam",
    epochs=10,
    batch_size=32,
    validation_data=None,
    validation_split=None,
    metrics=None,
    callbacks=(),
    verbose=1,
    seed=None,
    resume=None,
    shuffle=True,
    check_finite=True,
    log_every=1,
    clip_norm=None,
):
    """Train ``model`` on (x, y) with mini-batches; return a ``History``.

    - ``x``: (n, inputs); ``y``: integer labels (n,) or targets (n, outputs).
    - ``loss``: "cross_entropy" (softmax + cross-entropy on the logits), "mse", or an instance.
    - ``optimizer``: a name (``optim.get``'s, with its default hyperparameters) or an optimizer
      made over ``model.parameters()``.
    - ``epochs``: the total number of epochs (a resumed fit runs the ones left).
    - ``batch_size``: rows per step, at most n; each epoch visits every row once, in an order
      shuffled without replacement (``shuffle=False`` keeps the data's order); the last batch
      of an epoch may be smaller.
    - ``validation_data=(x_val, y_val)`` or ``validation_split`` (a fraction of (x, y) held out
      at random, seeded): evaluated after every epoch in eval mode.
    - ``metrics``: names among ``METRICS``; default accuracy for cross-entropy, none for mse.
    - ``callbacks``: ``fastnn.callbacks`` objects (EarlyStopping, ModelCheckpoint, schedules).
    - ``verbose``: 0 silent; 1 a progress bar per epoch on a terminal, else one line every
      ``log_every`` epochs.
    - ``seed``: seeds the shuffling and the validation split (None: a fresh seed, recorded in
      checkpoints). Dropout masks come from the model's own generators (``MLP(seed=...)``).
    - ``resume``: a checkpoint written by ``ModelCheckpoint``: the model, optimizer, epoch,
      history, callbacks and random generators continue exactly where it left off. The
      data and settings must be the ones the checkpoint was made with.
    - ``clip_norm``: None, or a finite max_norm > 0: before each update the gradient is
      scaled by max_norm / (norm + 1e-6) when its global L2 norm exceeds max_norm
      (``optim.clip_grad_norm``; an optimizer's own ``clip_norm`` also applies).

    Inputs are checked once, here. Each step checks only that the loss and the gradient's
    global norm are finite (one dot product over the flat gradient), and each epoch that the
    weights are. A NaN or infinite loss or gradient stops training before the update, with
    ``TrainingDivergedError`` naming the epoch, the step and which one failed, so the model
    keeps its last finite weights: those from before the step that failed. Only an update
    that overflows the weights from a finite gradient (an extreme learning rate) is caught at
    the end of the epoch (or by the next step's loss); the weights then go back to those at
    the start of the epoch (batch-norm running statistics included). Ctrl-C stops after the
    current step and returns the history of the completed
    epochs (``history.interrupted`` is then true).
    """
    return _fit(
        model,
        x,
        y,
        loss,
        optimizer,
        epochs,
        batch_size,
        validation_data,
        validation_split,
        metrics,
        callbacks,
        verbose,
        seed,
        resume,
        shuffle,
        check_finite,
        log_every,
        parallel=None,
        clip_norm=clip_norm,
    )


def _fit(
    model,
    x,
    y,
    loss,
    optimizer,
    epochs,
    batch_size,
    validation_data,
    validation_split,
    metrics,
    callbacks,
    verbose,
    seed,
    resume,
    shuffle,
    check_finite,
    log_every,
    parallel,
    clip_norm=None,
):
    """``fit``'s body. ``parallel`` is None for one process, or the hooks of a data-parallel
    run (``fastnn.distributed._Ranks``): it agrees the seed across ranks, gives each rank its
    slice of every global batch, sums the gradients after backward, and reduces the epoch's
    figures; only its root rank writes checkpoints. The gradient is checked and clipped
    after that sum, so every rank sees the same norm and makes the same decision."""
    if not isinstance(model, Module):
        raise TypeError(f"fit: expected a fastnn model, got {type(model).__name__}")
    loss = _resolve_loss(loss)
    metrics = _resolve_metrics(metrics, loss)
    optimizer = _check_optimizer(optimizer, model)
    epochs = check_positive_int(epochs, "epochs")
    batch_size = check_positive_int(batch_size, "batch_size")
    log_every = check_positive_int(log_every, "log_every")
    clip_norm = _optim._max_norm("clip_norm", clip_norm)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be fastnn.callbacks.Callback objects, got {cb!r}")
    if validation_data is not None and validation_split is not None:
        raise ValueError("pass validation_data or validation_split, not both")
    x, t, labels = _check_xy(model, loss, x, y, "fit", check_finite)

    history = History()
    trainer = _Trainer(
        model,
        optimizer,
        loss,
        history,
        epochs,
        metrics,
        validation_data is not None or validation_split is not None,
        verbose,
    )
    trainer.callbacks = callbacks
    start_epoch = 0
    shuffle_state = None
    saved = None
    if resume is not None:
        saved = _resume(resume, trainer, model, optimizer, callbacks)
        seed = saved["seed"]
        start_epoch = int(saved["epoch"])
        shuffle_state = saved["shuffle_rng"]
        history.history = {k: list(v) for k, v in saved.get("history", {}).items()}
        if saved.get("stopped"):
            trainer.stop_training = True
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    if parallel is not None:
        seed = parallel.agree_seed(seed)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"invalid seed: {seed!r}; expected a non-negative integer or None")
    split_seq, shuffle_seq = np.random.SeedSequence(int(seed)).spawn(2)
    shuffle_rng = np.random.default_rng(shuffle_seq)
    if shuffle_state is not None:
        _set_rng_state(shuffle_rng, shuffle_state)

    if validation_split is not None:
        (x, t, labels), val = _split_validation(
            x, t, labels, validation_split, np.random.default_rng(split_seq)
        )
    elif validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (x_val, y_val)")
        val = _check_xy(model, loss, *validation_data, "fit validation_data", check_finite)
    else:
        val = None
    n = x.shape[0]
    if batch_size > n:
        raise ValueError(f"batch_size {batch_size} is larger than the {n} training rows")
    trainer.state = {"seed": int(seed), "epochs": epochs, "batch_size": batch_size}
    last = n - (math.ceil(n / batch_size) - 1) * batch_size
    has_bn = any(isinstance(m, BatchNorm) for m in model.modules())
    if last == 1 and has_bn:
        raise ValueError(
            f"batch norm needs at least 2 rows per batch, and {n} rows in batches of "
            f"{batch_size} leave a last batch of 1; choose another batch_size"
        )
    if parallel is not None:
        parallel.start(model, optimizer, x, val, seed, batch_size, epochs, shuffle, saved)
        if has_bn and 1 in parallel.all_slice_sizes(batch_size) + parallel.all_slice_sizes(last):
            raise ValueError(
                f"batch norm needs at least 2 rows per rank and batch, and batches of "
                f"{batch_size} (last {last}) split over {parallel.size} ranks leave a rank 1 "
                "row; choose another batch_size"
            )

    # Buffers the steps gather their rows into: one set per batch size (full and last).
    steps = math.ceil(n / batch_size)
    sizes = {batch_size, n - (steps - 1) * batch_size}
    if parallel is not None:
        sizes = {parallel.slice_size(m) for m in sizes}
    xb = {m: np.empty((m, x.shape[1]), dtype=x.dtype) for m in sizes}
    tb = {m: np.empty((m,) + t.shape[1:], dtype=t.dtype) for m in sizes}
    lb = {m: np.empty(m, dtype=np.int64) for m in sizes}
    pred = {m: np.empty(m, dtype=np.intp) for m in sizes}
    track_acc = "accuracy" in metrics
    separate_labels = t.ndim == 2 and track_acc
    # Finite weights to fall back on, taken at the start of each epoch (see the docstring).
    params = optimizer._data
    grad = optimizer._grad
    snapshot = np.empty_like(params)
    persistent = [(a, np.empty_like(a)) for m in model.modules() for a in _persistent(m)]

    def diverged(epoch, step, value, what="loss"):
        _diverged(model, params, snapshot, persistent, epoch, step, value, history, what)

    order = np.arange(n)

    use_bar = verbose and sys.stdout.isatty()
    evaluate_rows = _evaluate if parallel is None else parallel.evaluate
    model.train()
    for cb in callbacks:
        cb.on_train_begin(trainer)
    with _Interrupt(enabled=parallel is None) as interrupt:
        for epoch in range(start_epoch, epochs):
            if trainer.stop_training:
                break
            began = time.perf_counter()
            for cb in callbacks:
                cb.on_epoch_begin(trainer, epoch)
            lr = optimizer.lr
            if shuffle:
                order = shuffle_rng.permutation(n)
            bar = _bar(epoch, epochs, steps) if use_bar else None
            np.copyto(snapshot, params)
            for a, copy in persistent:
                np.copyto(copy, a)
            total = 0.0
            correct = 0
            seen = 0
            # Overflow in a diverging step is caught below, with its epoch and step: keep
            # NumPy from warning (or raising, under np.errstate(all="raise")) first.
            with np.errstate(all="ignore"):
                for step in range(steps):
                    idx = order[step * batch_size : (step + 1) * batch_size]
                    if parallel is not None:
                        global_m = idx.shape[0]
                        idx = idx[slice(*parallel.bounds(global_m))]
                    m = idx.shape[0]
                    if parallel is not None and m == 0:
                        # An empty slice contributes a zero gradient to the sum, no rows.
                        optimizer._grad.fill(0)
                        value = 0.0
                    else:
                        xs, ts = xb[m], tb[m]
                        gather_rows(x, idx, xs)
                        if t.ndim == 2:
                            gather_rows(t, idx, ts)
                        else:
                            np.take(t, idx, out=ts)
                        z = model.forward(xs)
                        value = loss._forward_checked_once(z, ts)
                        if parallel is None and not math.isfinite(value):
                            diverged(epoch, step, value)
                        total += value * m
                        seen += m
                        if track_acc:
                            ls = lb[m]
                            if separate_labels:
                                np.take(labels, idx, out=ls)
                            else:
                                ls = ts
                            np.argmax(z, axis=1, out=pred[m])
                            correct += count_equal(pred[m], ls)
                        dout = loss.backward()
                        if parallel is not None and m != global_m:
                            # Mean over this rank's m rows, weighted m / global_m: the sum over
                            # ranks is the gradient of the global batch's mean loss.
                            dout *= m / global_m
                        _backward(model, dout)
                    if parallel is not None and not parallel.sum_gradient(grad, value):
                        value = value if not math.isfinite(value) else math.nan
                        diverged(epoch, step, value)
                    norm = _optim._global_norm(grad)
                    if not math.isfinite(norm):
                        diverged(epoch, step, norm, "gradient")
                    if clip_norm is not None and norm > clip_norm:
                        grad *= clip_norm / (norm + 1e-6)
                    optimizer.step()
                    if bar is not None:
                        _bar_step(bar, total / seen, correct / seen if track_acc else None)
                    if interrupt.requested:
                        break
            if interrupt.requested:
                if bar is not None:
                    bar.close()
                history.interrupted = True
                if verbose:
                    trainer.log(
                        f"interrupted in epoch {epoch + 1}, after step {step + 1} of {steps}; "
                        f"returning the history of the {history.epochs} completed epochs"
                    )
                break
            if parallel is not None:
                total, correct = parallel.end_epoch(model, total, correct)
            if not np.isfinite(params).all():
                diverged(epoch, steps - 1, math.nan, "weights")
            logs = {"loss": total / n}
            if track_acc:
                logs["accuracy"] = correct / n
            if val is not None:
                figures = evaluate_rows(model, loss, *val, metrics, max(batch_size, 1024))
                logs.update({"val_" + k: v for k, v in figures.items()})
            logs["lr"] = lr
            logs["seconds"] = time.perf_counter() - began
            history.append(logs)
            trainer.state["epoch"] = epoch + 1
            trainer.state["shuffle_rng"] = _rng_state(shuffle_rng)
            trainer.state["dropout_rngs"] = [_rng_state(d.rng) for d in _dropout_layers(model)]
            if parallel is not None:
                parallel.record_rngs(model, trainer.state)
            for cb in callbacks:
                cb.on_epoch_end(trainer, epoch, logs)
            if trainer.stop_training:
                history.stopped_early = True
            for path in trainer.pending_checkpoints:
                if parallel is None or parallel.root:
                    trainer.write_checkpoint(path)
            trainer.pending_checkpoints.clear()
            if bar is not None:
                _bar_close(bar, logs)
            elif verbose and ((epoch + 1) % log_every == 0 or epoch + 1 == epochs):
                trainer.log(_format_logs(epoch, epochs, logs))
    for cb in callbacks:
        cb.on_train_end(trainer)
    return history


def _persistent(module):
    return [getattr(module, name) for name in module._persistent]


_DIVERGED = {
    "loss": "the loss became {value}",
    "gradient": "the gradient became non-finite (global norm {value}) while the loss was finite",
    "weights": "the weights became NaN or infinite after the update",
}


def _diverged(model, params, snapshot, persistent, epoch, step, value, history, what="loss"):
    """Put back the weights from the start of the epoch if they are no longer finite, then
    raise ``TrainingDivergedError``. ``snapshot`` and ``persistent`` hold the epoch's copies."""
    restored = False
    if not np.isfinite(params).all():
        np.copyto(params, snapshot)
        restored = True
    for a, copy in persistent:
        if not np.isfinite(a).all():
            np.copyto(a, copy)
            restored = True
    kept = (
        f"the weights were restored to those at the start of epoch {epoch + 1}"
        if restored
        else "the model keeps its last (finite) weights"
    )
    cause = _DIVERGED[what].format(value=value)
    raise TrainingDivergedError(
        f"{cause} in epoch {epoch + 1}, step {step + 1}; training stopped and {kept}. Try a "
        "smaller learning rate, gradient clipping (clip_norm), gradient-friendly "
        "initialisation or batch norm.",
        epoch + 1,
        step + 1,
        history,
        what,
    )


def _bar(epoch, epochs, steps):
    from tqdm.auto import tqdm

    return tqdm(
        total=steps,
        desc=f"epoch {epoch + 1}/{epochs}",
        unit="step",
        file=sys.stdout,
        leave=True,
        mininterval=0.2,
        bar_format=(
            "{desc} {percentage:3.0f}%|{bar:20}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]"
            "{postfix}"
        ),
    )


_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc"}


def _figures(logs):
    return "  ".join(
        f"{_SHORT.get(k, k)} {v:.4f}" for k, v in logs.items() if k not in ("lr", "seconds")
    )


def _bar_step(bar, loss, accuracy):
    bar.update(1)
    # Formatting the figures costs more than the update: do it only when the bar redraws.
    if bar.n == bar.total or bar.last_print_n == bar.n:
        logs = {"loss": loss} if accuracy is None else {"loss": loss, "accuracy": accuracy}
        bar.set_postfix_str(_figures(logs), refresh=False)


def _bar_close(bar, logs):
    bar.set_postfix_str(_figures(logs), refresh=True)
    bar.close()
