"""The training loop: ``fit``.

``fit`` checks its inputs once (``options``, ``inputs``), then runs mini-batch epochs: each
step gathers its rows into buffers allocated once, runs forward, the fused loss, backward and
one optimizer kernel call, and checks that the loss and the gradient's norm are finite (a
diverging run stops with ``TrainingDivergedError``; ``clip_norm`` tames exploding
gradients). What varies around that loop comes in as objects: the ranks it runs on
(``ranks``: one process, or MPI), and callbacks for everything else (early stopping,
checkpoints, schedules, the progress bar).

    history = fit(model, x, y, optimizer=optim.Adam(model.parameters(), lr=1e-3),
                  epochs=10, batch_size=64, validation_split=0.1, seed=0)
    history["val_accuracy"][-1]
"""

import math
import signal
import sys
import threading
import time

import numpy as np

from .._checks import check_int
from ..errors import InvalidTypeError, InvalidValueError
from ..nn import BatchNorm, Module, held_for_training
from ..optim.clip import global_norm
from . import checkpoint
from .batches import Batches
from .callbacks import Callback
from .compiled import CompiledSteps
from .history import History, TrainingDivergedError
from .inputs import check_sample_weight, check_xy, split_validation
from .options import FitOptions
from .progress import EpochLog, ProgressBar
from .ranks import LocalRanks


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
    sample_weight=None,
):
    """Train ``model`` on (x, y) with mini-batches; return a ``History``.

    - ``x``: (n, inputs); ``y``: integer labels (n,) or targets (n, outputs).
    - ``loss``: "cross_entropy" (softmax + cross-entropy on the logits), "mse",
      "binary_cross_entropy" (sigmoid + binary cross-entropy on the logits, targets in [0, 1]:
      multilabel), or an instance.
    - ``optimizer``: a name (``optim.get``'s, with its default hyperparameters) or an optimizer
      made over ``model.parameters()``.
    - ``epochs``: the total number of epochs (a resumed fit runs the ones left).
    - ``batch_size``: rows per step, at most n; each epoch visits every row once, in an order
      shuffled without replacement (``shuffle=False`` keeps the data's order); the last batch
      of an epoch may be smaller.
    - ``validation_data=(x_val, y_val)`` or ``validation_split`` (a fraction of (x, y) held out
      at random, seeded): evaluated after every epoch in eval mode.
    - ``metrics``: names among ``options.METRICS``; default accuracy for cross-entropy, none
      for mse.
    - ``callbacks``: ``fastnn.callbacks`` objects (EarlyStopping, ModelCheckpoint, schedules).
    - ``verbose``: 0 silent; 1 a progress bar per epoch on a terminal, else one line every
      ``log_every`` epochs (the ``progress`` callbacks).
    - ``seed``: seeds the shuffling and the validation split (None: a fresh seed, recorded in
      checkpoints). Dropout masks come from the model's own generators (``MLP(seed=...)``).
    - ``resume``: a checkpoint written by ``ModelCheckpoint``: the model, optimizer, epoch,
      history, callbacks and random generators continue exactly where it left off. The
      data and settings must be the ones the checkpoint was made with.
    - ``clip_norm``: None, or a finite max_norm > 0: before each update the gradient is
      scaled by max_norm / (norm + 1e-6) when its global L2 norm exceeds max_norm
      (``optim.clip_grad_norm``; an optimizer's own ``clip_norm`` also applies).
    - ``sample_weight``: None, or a weight >= 0 per row (n,): each step's loss is then the
      weighted mean sum_i w_i loss_i / sum_i w_i over its rows (a step whose rows all weigh 0
      changes nothing), so a weight of 2 counts a row as if it were there twice.
      ``validation_split`` holds out weights with their rows; the validation figures and the
      accuracy are unweighted. Runs the per-layer path (not the compiled step), in one
      process (not ``fastnn.distributed``).

    Inputs are checked once, here. Each step checks only that the loss and the gradient's
    global norm are finite (one dot product over the flat gradient), and each epoch that the
    weights are. A NaN or infinite loss or gradient stops training before the update, with
    ``TrainingDivergedError`` naming the epoch, the step and which one failed, so the model
    keeps its last finite weights: those from before the step that failed. Only an update
    that overflows the weights from a finite gradient (an extreme learning rate) is caught at
    the end of the epoch (or by the next step's loss); the weights then go back to those at
    the start of the epoch (batch-norm running statistics included). Ctrl-C stops after the
    current step (on the compiled path, after the steps of the call in progress: at most 256,
    usually well under a second) and returns the history of the completed epochs
    (``history.interrupted`` is then true).
    """
    # Every argument but the model and the data is an option: FitOptions has the same names,
    # in the same order, with the same defaults (a test keeps the two in step).
    options = FitOptions(**{k: v for k, v in locals().items() if k not in ("model", "x", "y")})
    return train(model, x, y, options, LocalRanks())


class Trainer:
    """What callbacks see of a running fit."""

    def __init__(self, model, options, history, has_validation):
        self.model = model
        self.optimizer = options.optimizer
        self.loss = options.loss
        self.history = history
        self.epochs = options.epochs
        self.metrics = options.metrics
        self.has_validation = has_validation
        self.verbose = options.verbose
        self.steps = 0  # per epoch
        self.stop_training = False
        self.resumed = False
        self.callbacks = options.callbacks
        self.pending_checkpoints = []
        self.state = {}  # what a checkpoint keeps of the run: seed, epoch, generators

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
        checkpoint.write(path, self)

    def end_epoch(self, epoch, shuffle_rng, ranks):
        """Record what a checkpoint written now must hold of the run."""
        self.state["epoch"] = epoch + 1
        self.state["shuffle_rng"] = checkpoint.rng_state(shuffle_rng)
        self.state["dropout_rngs"] = [
            checkpoint.rng_state(d.rng) for d in checkpoint.dropout_layers(self.model)
        ]
        ranks.record_rngs(self.model, self.state)

    def write_pending_checkpoints(self, root):
        """Write the checkpoints callbacks asked for this epoch (on the root rank only)."""
        for path in self.pending_checkpoints:
            if root:
                self.write_checkpoint(path)
        self.pending_checkpoints.clear()


def train(model, x, y, options, ranks):
    """``fit``'s body: train ``model`` with ``options`` (a ``FitOptions``) on the rank group
    ``ranks`` (``LocalRanks()`` in one process; ``fastnn.distributed`` passes its own). The
    model is held for the whole run: other threads' predict, evaluate and fit on it refuse."""
    if not isinstance(model, Module):
        raise InvalidTypeError(f"fit: expected a fastnn model, got {type(model).__name__}")
    with held_for_training(model):
        return _train(model, x, y, options, ranks)


def _train(model, x, y, options, ranks):
    o = options.checked(model)
    trainer, batches, val, shuffle_rng, start_epoch = _prepare(model, x, y, o, ranks)
    history, optimizer, loss = trainer.history, o.optimizer, o.loss
    n, steps = batches.n, batches.steps
    params, grad = optimizer.flat_buffers()
    # Finite weights to fall back on, taken at the start of each epoch (see fit's docstring).
    snapshot = np.empty_like(params)
    persistent = [(a, np.empty_like(a)) for a in checkpoint.persistent_arrays(model)]

    def diverged(epoch, step, value, what="loss"):
        _diverged(params, snapshot, persistent, epoch, step, value, history, what)

    reporters = []
    if o.verbose:
        reporters.append(ProgressBar() if sys.stdout.isatty() else EpochLog(o.log_every))
    everyone = [*o.callbacks, *reporters]
    # Called every step, so only the callbacks that do something then.
    step_hooks = [cb for cb in everyone if type(cb).on_step_end is not Callback.on_step_end]
    order = np.arange(n)
    model.train()
    compiled = CompiledSteps.start(model, o, batches, ranks, step_hooks)
    for cb in o.callbacks:
        cb.on_train_begin(trainer)
    with _Interrupt(ranks.interruptible) as interrupt:
        for epoch in range(start_epoch, o.epochs):
            if trainer.stop_training:
                break
            began = time.perf_counter()
            for cb in everyone:
                cb.on_epoch_begin(trainer, epoch)
            lr = optimizer.lr
            if o.shuffle:
                order = shuffle_rng.permutation(n)
            np.copyto(snapshot, params)
            for a, copy in persistent:
                np.copyto(copy, a)
            total, correct, seen = 0.0, 0, 0
            # Overflow in a diverging step is caught below, with its epoch and step: keep
            # NumPy from warning (or raising, under np.errstate(all="raise")) first.
            with np.errstate(all="ignore"):
                step, done = -1, 0  # the last step done, and the steps done
                while done < steps:
                    ready = compiled is not None and compiled.ready()
                    if ready and not compiled.per_rank:
                        # A Ctrl-C already caught: the step in progress, as on the per-layer
                        # path (one caught during a call stops at the end of that call).
                        end = done + 1 if interrupt.requested else compiled.chunk_end(done, steps)
                        r = compiled.run(order, done, end)
                        total += r.total
                        correct += r.correct
                        if r.failed is not None:
                            diverged(epoch, r.step, r.value, r.failed)
                        done += r.done
                        seen = min(done * o.batch_size, n)
                    else:
                        if ready:  # distributed.fit: this rank's gradient, in one compiled call
                            value, m, right = compiled.gradient(order, done)
                        else:
                            value, m, right = _layer_step(
                                model, loss, optimizer, batches, order, done
                            )
                        total += value * m
                        seen += m
                        correct += right
                        _update(optimizer, ranks, value, o.clip_norm, diverged, epoch, done)
                        done += 1
                    step = done - 1
                    for cb in step_hooks:
                        cb.on_step_end(trainer, step, *_running(total, correct, seen, batches))
                    if interrupt.requested:
                        break
            if interrupt.requested:
                history.interrupted = True
                break
            total, correct = ranks.end_epoch(model, total, correct)
            if not np.isfinite(params).all():
                diverged(epoch, steps - 1, math.nan, "weights")
            logs = {"loss": total / n}
            if batches.track_accuracy:
                logs["accuracy"] = correct / n
            if val is not None:
                figures = ranks.evaluate(model, loss, *val, o.metrics, max(o.batch_size, 1024))
                logs.update({"val_" + k: v for k, v in figures.items()})
            logs["lr"] = lr
            logs["seconds"] = time.perf_counter() - began
            history.append(logs)
            trainer.end_epoch(epoch, shuffle_rng, ranks)
            for cb in o.callbacks:
                cb.on_epoch_end(trainer, epoch, logs)
            trainer.stop_training = ranks.agree_to_stop(trainer.stop_training)
            if trainer.stop_training:
                history.stopped_early = True
            trainer.write_pending_checkpoints(ranks.root)
            for cb in reporters:
                cb.on_epoch_end(trainer, epoch, logs)
    for cb in reporters:
        cb.on_train_end(trainer)
    if history.interrupted and o.verbose:
        trainer.log(
            f"interrupted in epoch {epoch + 1}, after step {step + 1} of {steps}; "
            f"returning the history of the {history.epochs} completed epochs"
        )
    for cb in o.callbacks:
        cb.on_train_end(trainer)
    return history


def _running(total, correct, seen, batches):
    """The epoch's running mean loss and accuracy (None without the metric)."""
    loss = total / seen if seen else math.nan
    if not batches.track_accuracy:
        return loss, None
    return loss, correct / seen if seen else math.nan


def _layer_step(model, loss, optimizer, batches, order, step):
    """Forward, loss and backward of ``step`` through the layers' own methods: (the mean loss
    of this rank's rows, their count, how many of them were classified right). The gradient
    is left in the optimizer's buffer."""
    m, global_m, idx = batches.rows(order, step)
    if m == 0:  # this rank's slice of the batch is empty: a zero gradient
        optimizer.flat_buffers()[1].fill(0)
        return 0.0, 0, 0
    xs, ts = batches.gather(idx)
    z = model.forward(xs)
    value = loss._forward_checked_once(z, ts, batches.width)
    right = batches.count_correct(z, idx, ts) if batches.track_accuracy else 0
    dout = loss.backward()
    if batches.weights is not None:
        value = _weigh(loss, z, ts, dout, batches.weights[idx])
    if m != global_m:
        # Mean over this rank's m rows, weighted m / global_m: the sum over ranks is the
        # gradient of the global batch's mean loss.
        dout *= m / global_m
    model.backward(dout, input_grad=False)
    return value, m, right


def _weigh(loss, z, ts, dout, w):
    """The weighted mean loss of a step's rows, sum_i w_i loss_i / sum_i w_i, and its
    gradient: the loss's dout (the plain mean's, rows scaled by 1 / m) with row i scaled by
    w_i m / sum w, in place. All-zero weights: loss 0 and a zero gradient."""
    total = w.sum()
    if total == 0:
        dout.fill(0)
        return 0.0
    dout *= (w * (w.shape[0] / total)).astype(dout.dtype)[:, None]
    return float(w @ loss.row_losses(z, ts)) / total


def _update(optimizer, ranks, value, clip_norm, diverged, epoch, step):
    """The gradient summed over the ranks, checked finite, clipped, and the update."""
    grad = optimizer.flat_buffers()[1]
    if not ranks.sum_gradient(grad, value):
        diverged(epoch, step, value if not math.isfinite(value) else math.nan)
    norm = global_norm(grad)
    if not math.isfinite(norm):
        diverged(epoch, step, norm, "gradient")
    if clip_norm is not None and norm > clip_norm:
        grad *= clip_norm / (norm + 1e-6)
    optimizer.step()


def _prepare(model, x, y, o, ranks):
    """Everything before the first step: the data checked (and split for validation), the
    checkpoint resumed, the seed agreed, the ranks started, the batch buffers allocated.
    Returns (trainer, batches, validation rows or None, shuffle generator, first epoch)."""
    x, t, labels, width = check_xy(model, o.loss, x, y, "fit", o.check_finite)
    weights = None
    if o.sample_weight is not None:
        if ranks.size > 1:
            raise InvalidValueError("sample_weight: fastnn.distributed.fit does not take weights")
        weights = check_sample_weight(o.sample_weight, x.shape[0], "fit")
    has_validation = o.validation_data is not None or o.validation_split is not None
    trainer = Trainer(model, o, History(), has_validation)
    seed, start_epoch, saved = o.seed, 0, None
    if o.resume is not None:
        saved = checkpoint.resume(o.resume, trainer)
        seed, start_epoch = saved["seed"], int(saved["epoch"])
        trainer.history.history = {k: list(v) for k, v in saved.get("history", {}).items()}
        trainer.stop_training = bool(saved.get("stopped"))
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    seed = check_int(ranks.agree_seed(seed), "seed", low=0)
    split_seq, shuffle_seq = np.random.SeedSequence(seed).spawn(2)
    shuffle_rng = np.random.default_rng(shuffle_seq)
    if saved is not None:
        checkpoint.set_rng_state(shuffle_rng, saved["shuffle_rng"])
    val = None
    if o.validation_split is not None:
        split_rng = np.random.default_rng(split_seq)
        (x, t, labels, _), val, weights = split_validation(
            x, t, labels, width, o.validation_split, split_rng, weights
        )
        if weights is not None and not weights.any():
            raise InvalidValueError(
                "fit: every row left for training after validation_split weighs 0"
            )
    elif o.validation_data is not None:
        val = check_xy(model, o.loss, *o.validation_data, "fit validation_data", o.check_finite)
    n, batch_size = x.shape[0], o.batch_size
    if batch_size > n:
        raise InvalidValueError(f"batch_size {batch_size} is larger than the {n} training rows")
    trainer.state = {"seed": seed, "epochs": o.epochs, "batch_size": batch_size}
    _check_batch_norm(model, n, batch_size, ranks, before_start=True)
    ranks.start(model, o, x, val, seed, saved)
    _check_batch_norm(model, n, batch_size, ranks, before_start=False)
    batches = Batches(x, t, labels, width, batch_size, ranks, "accuracy" in o.metrics, weights)
    trainer.steps = batches.steps
    return trainer, batches, val, shuffle_rng, start_epoch


def _check_batch_norm(model, n, batch_size, ranks, before_start):
    """Batch norm needs 2 rows per batch (per rank): refuse a batch size that leaves 1."""
    if not any(isinstance(m, BatchNorm) for m in model.modules()):
        return
    last = n - (math.ceil(n / batch_size) - 1) * batch_size
    if before_start and last == 1:
        raise InvalidValueError(
            f"batch norm needs at least 2 rows per batch, and {n} rows in batches of "
            f"{batch_size} leave a last batch of 1; choose another batch_size"
        )
    if not before_start and 1 in ranks.slice_sizes(batch_size) + ranks.slice_sizes(last):
        raise InvalidValueError(
            f"batch norm needs at least 2 rows per rank and batch, and batches of "
            f"{batch_size} (last {last}) split over {ranks.size} ranks leave a rank 1 "
            "row; choose another batch_size"
        )


_DIVERGED = {
    "loss": "the loss became {value}",
    "gradient": "the gradient became non-finite (global norm {value}) while the loss was finite",
    "weights": "the weights became NaN or infinite after the update",
}


def _diverged(params, snapshot, persistent, epoch, step, value, history, what="loss"):
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
