"""Data-parallel training over MPI: ``fit`` and ``evaluate`` mirroring ``fastnn.fit`` and
``fastnn.evaluate``, run under ``mpiexec`` (needs the ``mpi`` extra: mpi4py and an MPI).

Every rank holds a full copy of the model and of the data. Rank 0's parameters are broadcast at
the start; every global batch of ``batch_size`` rows (the same shuffle on every rank, from the
seed) is split into contiguous slices, one per rank, sizes differing by at most 1. After
backward each rank's gradient is weighted by its share of the rows (n_rank / batch_size), one
in-place ``Allreduce`` sums the optimizer's flat gradient buffer, and every rank applies the same
optimizer step, so the parameters stay identical. For models of fastnn's own layers, a rank's
forward, loss and backward are one compiled call (``fastnn.training.compiled``), with the
per-layer path's results. Without dropout and batch norm, N ranks give
the parameters of one process with the same ``batch_size``, within float rounding.

    # mpiexec -n 4 python train.py
    from fastnn import MLP, distributed
    model = MLP([784, 256, 10], seed=0)
    history = distributed.fit(model, x, y, epochs=10, batch_size=256, seed=0)

- Batch norm normalises each rank's slice with that slice's statistics (per-rank statistics,
  not synchronised batch norm); the running averages are averaged over the ranks at the end of
  every epoch, so every rank evaluates and saves the same model.
- Dropout masks come from per-rank streams spawned from the seed
  (``SeedSequence(seed).spawn``), so a run is reproducible for a given number of ranks (the
  masks differ from a one-process ``fastnn.fit``, which draws from the model's own generators).
- Only rank 0 prints and writes checkpoints (``ModelCheckpoint``); ``resume`` reads the
  checkpoint on every rank (a shared file system) and needs the same number of ranks.
- The epoch's loss and accuracy, and the validation figures, are reduced over all ranks.
- A loss that is NaN or infinite on any rank raises ``TrainingDivergedError`` on every rank.
- Ctrl-C ends the job (a graceful stop on one rank would leave the others waiting).
- An uncaught exception on any rank prints its traceback and aborts the whole job
  (``MPI.Abort``), so a failing rank never leaves the others waiting.
"""

import inspect
import math
import os
import sys
import time
import traceback

import numpy as np

from .. import files
from ..errors import FastnnError, InvalidTypeError, InvalidValueError
from ..threads import set_num_threads
from . import checkpoint
from .evaluate import checked_evaluation, evaluate_rows
from .loop import fit as _local_fit
from .loop import train
from .options import FitOptions
from .ranks import LocalRanks

__all__ = [
    "abort",
    "abort_on_error",
    "evaluate",
    "fit",
    "parameters_agree",
    "share_of_cores",
    "world",
]


def _mpi():
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError(
            'fastnn.distributed needs mpi4py and an MPI library: pip install "fastnn[mpi]"'
        ) from e
    return MPI


def world():
    """``MPI.COMM_WORLD`` (imports mpi4py, which initialises MPI)."""
    return _mpi().COMM_WORLD


def _comm(comm):
    if comm is None:
        return world()
    for name in ("Get_rank", "Get_size", "Allreduce", "Bcast", "bcast", "allgather"):
        if not callable(getattr(comm, name, None)):
            raise InvalidTypeError(
                f"comm must be an mpi4py communicator, got {type(comm).__name__}"
            )
    return comm


# -- failure handling ------------------------------------------------------------------------
def abort(comm, code):
    """Flush what this rank printed, give mpiexec a moment to forward it, then end the
    whole job with exit ``code``."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        # Give mpiexec a moment to forward what was printed before the job is killed.
        time.sleep(0.2)
    finally:
        comm.Abort(code)


def abort_on_error(comm=None):
    """Install a ``sys.excepthook`` that prints the traceback of an uncaught exception, naming
    the rank, then calls ``comm.Abort(1)``: the whole job exits non-zero instead of the other
    ranks waiting forever in a collective. Does nothing with one rank or when already
    installed. ``fit`` and ``evaluate`` call it."""
    comm = _comm(comm)
    size = comm.Get_size()
    if size == 1 or getattr(sys.excepthook, "_fastnn_comm", None) is comm:
        return
    rank = comm.Get_rank()
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            sys.stderr.write(f"fastnn.distributed: rank {rank} of {size} failed:\n")
            traceback.print_exception(kind, value, tb, file=sys.stderr)
            sys.stderr.write(f"fastnn.distributed: aborting all {size} ranks\n")
        finally:
            abort(comm, 1)

    hook._fastnn_comm = comm
    hook._fastnn_previous = previous
    sys.excepthook = hook


# -- threads ---------------------------------------------------------------------------------
def _ranks_on_this_node(comm):
    MPI = _mpi()
    split = getattr(comm, "Split_type", None)
    if split is None:
        return comm.Get_size()
    local = split(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def share_of_cores(comm=None):
    """``max(1, os.cpu_count() // ranks on this node)``: the threads each rank should use so
    the ranks of one machine do not oversubscribe its cores (ranks are counted per node with
    ``Split_type(COMM_TYPE_SHARED)``)."""
    comm = _comm(comm)
    return max(1, (os.cpu_count() or 1) // _ranks_on_this_node(comm))


def _set_threads(comm, threads):
    import numba

    if threads is None:
        return
    if threads == "auto":
        threads = min(share_of_cores(comm), numba.config.NUMBA_NUM_THREADS)
    elif isinstance(threads, str):
        raise InvalidTypeError(f"threads must be 'auto', None or an integer, got {threads!r}")
    set_num_threads(threads)


# -- the ranks of an MPI job, as fit's loop sees them ----------------------------------------
def _describe(model):
    """The model's layers and settings as comparable data (a fastnn file's architecture, or,
    for modules of a user's own, their classes and widths)."""
    try:
        return files.architecture(model)
    except FastnnError:
        return [(type(m).__name__, m.io_widths()) for m in model.modules()]


def _describe_callback(cb):
    """A callback's class and its plain settings (numbers, strings, flags)."""
    plain = (bool, int, float, str, type(None))
    return [type(cb).__name__, {k: v for k, v in vars(cb).items() if isinstance(v, plain)}]


def _slice_bounds(m, rank, size):
    """Rows [lo, hi) of a global batch of ``m`` rows that ``rank`` of ``size`` takes."""
    return (rank * m) // size, ((rank + 1) * m) // size


class MPIRanks(LocalRanks):
    """The rank group of a data-parallel fit over the communicator ``comm``: the methods of
    ``fastnn.training.ranks.LocalRanks``, each doing its part over MPI."""

    interruptible = False  # Ctrl-C ends the job: a graceful stop on one rank would hang the rest

    def __init__(self, comm):
        self.MPI = _mpi()
        self.comm = comm
        self.rank = comm.Get_rank()
        self.size = comm.Get_size()
        self.root = self.rank == 0
        self._persistent = []

    def bounds(self, m):
        return _slice_bounds(m, self.rank, self.size)

    def slice_sizes(self, m):
        return [hi - lo for lo, hi in (_slice_bounds(m, r, self.size) for r in range(self.size))]

    def agree_seed(self, seed):
        return self.comm.bcast(seed, root=0)

    def start(self, model, options, x, val, seed, saved):
        """Check the ranks agree, broadcast rank 0's parameters, seed per-rank dropout.

        The ranks must agree on everything that shapes the training: the data's sizes, the
        model (its layers and their settings), the loss, every optimizer hyperparameter, the
        fit's settings and the callbacks (their classes and settings); a rank with another
        learning rate, say, would train another model without an error."""
        o, optimizer = options, options.optimizer
        n_val = 0 if val is None else val[0].shape[0]
        facts = {
            "training rows": x.shape[0],
            "features": list(x.shape[1:]),
            "validation rows": n_val,
            "model": _describe(model),
            "parameters": optimizer.flat_buffers()[0].size,
            "dtype": str(optimizer.flat_buffers()[0].dtype),
            "loss": type(o.loss).__name__,
            "metrics": list(o.metrics),
            "optimizer": type(optimizer).__name__,
            "optimizer hyperparameters": optimizer.hyperparameters(),
            "optimizer step count": optimizer.step_count,
            "batch_size": o.batch_size,
            "epochs": o.epochs,
            "shuffle": o.shuffle,
            "clip_norm": o.clip_norm,
            "validation_split": o.validation_split,
            "callbacks": [_describe_callback(cb) for cb in o.callbacks],
            "resumed epoch": None if saved is None else int(saved["epoch"]),
        }
        every = self.comm.allgather(facts)
        for name in facts:
            values = [f[name] for f in every]
            if any(repr(v) != repr(values[0]) for v in values):  # repr: NaN equals NaN
                raise InvalidValueError(
                    f"the ranks disagree on {name}: {values} (rank 0 first); every rank must "
                    "load the same data and build the same model and settings"
                )
        self.comm.Bcast(optimizer.flat_buffers()[0], root=0)
        self._persistent = checkpoint.persistent_arrays(model)
        for a in self._persistent:
            self.comm.Bcast(a, root=0)
        layers = checkpoint.dropout_layers(model)
        if not layers:
            return
        if saved is not None:
            states = saved.get("rank_dropout_rngs")
            if states is None or len(states) != self.size:
                written = "an unknown number of" if states is None else len(states)
                raise InvalidValueError(
                    f"the checkpoint's dropout generators were written by {written} ranks; "
                    f"resume with that many (this run has {self.size})"
                )
            for layer, state in zip(layers, states[self.rank], strict=True):
                checkpoint.set_rng_state(layer.rng, state)
            return
        # Key (2,): fit uses the first two children of SeedSequence(seed) for the split and
        # the shuffle; the dropout streams are its third child's children.
        dropout_seq = np.random.SeedSequence(int(seed), spawn_key=(2,))
        rank_seq = dropout_seq.spawn(self.size)[self.rank]
        for layer, s in zip(layers, rank_seq.spawn(len(layers)), strict=True):
            layer.rng = np.random.default_rng(s)

    def agree_to_stop(self, stop):
        """Rank 0's decision to end training, for every rank: a callback deciding otherwise on
        another rank (or present on rank 0 only) cannot leave a rank waiting in a collective."""
        return bool(self.comm.bcast(bool(stop), root=0))

    def sum_gradient(self, grad, value):
        """Sum the ranks' weighted gradients in place; false when any rank's loss is not
        finite (that rank writes NaN into the sum, so every rank learns it from this call)."""
        if not math.isfinite(value):
            grad[0] = np.nan
        self.comm.Allreduce(self.MPI.IN_PLACE, grad, op=self.MPI.SUM)
        return math.isfinite(grad[0])

    def end_epoch(self, model, total, correct):
        """The epoch's loss and correct-count sums over the ranks; the batch-norm running
        averages become their mean over the ranks."""
        sums = np.array([total, correct], dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, sums, op=self.MPI.SUM)
        for a in self._persistent:
            self.comm.Allreduce(self.MPI.IN_PLACE, a, op=self.MPI.SUM)
            a /= self.size
        return float(sums[0]), int(round(sums[1]))

    def evaluate(self, model, loss, x, t, labels, width, metrics, batch_size):
        """``evaluate_rows`` over this rank's contiguous share of the rows, reduced."""
        lo, hi = _slice_bounds(x.shape[0], self.rank, self.size)
        sums = np.zeros(3, dtype=np.float64)
        if hi > lo:
            figures = evaluate_rows(
                model, loss, x[lo:hi], t[lo:hi], labels[lo:hi], width, metrics, batch_size
            )
            sums[:] = figures["loss"] * (hi - lo), figures.get("accuracy", 0.0) * (hi - lo), hi - lo
        self.comm.Allreduce(self.MPI.IN_PLACE, sums, op=self.MPI.SUM)
        out = {"loss": sums[0] / sums[2]}
        if "accuracy" in metrics:
            out["accuracy"] = sums[1] / sums[2]
        return out

    def record_rngs(self, model, state):
        """Every rank's dropout generator states, for rank 0's checkpoint."""
        layers = checkpoint.dropout_layers(model)
        if layers:
            mine = [checkpoint.rng_state(d.rng) for d in layers]
            state["rank_dropout_rngs"] = self.comm.allgather(mine)


# -- public API ------------------------------------------------------------------------------
def fit(model, x, y, *args, comm=None, threads="auto", **kwargs):
    """``fastnn.fit`` on every rank of ``comm`` (default ``MPI.COMM_WORLD``), data-parallel.

    Takes ``fastnn.fit``'s arguments, plus ``comm`` and ``threads``. Call it on every rank
    with the same model (rank 0's parameters are broadcast), the same data and the same
    settings; the ranks check that they agree on the sizes and settings. ``batch_size`` is the
    global batch: each step, rank r of N trains on rows [r * B // N, (r + 1) * B // N) of the
    batch. ``seed`` None: rank 0 draws one and broadcasts it. ``verbose`` applies to rank 0;
    the other ranks print nothing. ``threads``: "auto" sets Numba and BLAS threads to
    ``share_of_cores(comm)``, an integer sets that many, None leaves them as they are.
    ``clip_norm`` clips the global norm of the gradient summed over the ranks, so every rank
    scales it alike.

    Returns the ``History`` (the same on every rank: figures reduced over the ranks). See the
    module docstring for batch norm, dropout, checkpoints and failures.
    """
    comm = _comm(comm)
    abort_on_error(comm)
    options = FitOptions(*args, **kwargs)
    _set_threads(comm, threads)
    ranks = MPIRanks(comm)
    if not ranks.root:
        options.verbose = 0
    return train(model, x, y, options, ranks)


# Shown by help(): fastnn.fit's parameters, then comm and threads.
fit.__signature__ = inspect.signature(_local_fit).replace(
    parameters=[
        *inspect.signature(_local_fit).parameters.values(),
        inspect.Parameter("comm", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default="auto"),
    ]
)


def evaluate(
    model,
    x,
    y,
    loss="cross_entropy",
    metrics=None,
    batch_size=1024,
    check_finite=True,
    comm=None,
):
    """``fastnn.evaluate`` with the rows split over the ranks of ``comm`` and the figures
    reduced: every rank passes the same (x, y) and gets the same dict."""
    comm = _comm(comm)
    abort_on_error(comm)
    loss, metrics, batch_size, rows = checked_evaluation(
        model, x, y, loss, metrics, batch_size, check_finite
    )
    return MPIRanks(comm).evaluate(model, loss, *rows, metrics, batch_size)


def parameters_agree(model, comm=None):
    """True on every rank when ``model``'s parameters and batch-norm running averages are
    bitwise the same on all ranks of ``comm`` (an elementwise MIN and MAX Allreduce)."""
    MPI = _mpi()
    comm = _comm(comm)
    arrays = [p.data for p in model.parameters()]
    arrays += checkpoint.persistent_arrays(model)
    flat = np.concatenate([np.ravel(a) for a in arrays]) if arrays else np.zeros(0)
    low, high = np.empty_like(flat), np.empty_like(flat)
    comm.Allreduce(flat, low, op=MPI.MIN)
    comm.Allreduce(flat, high, op=MPI.MAX)
    return bool(np.array_equal(low, high, equal_nan=True))
