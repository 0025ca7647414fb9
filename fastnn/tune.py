"""Hyperparameter search: random trials on any ``concurrent.futures`` executor.

The course's recipe: keep the test set aside, score each setting on a validation split, draw
the hyperparameters at random (log-uniformly for scales such as the learning rate), then
narrow the ranges to where the best trials landed and search again.

    from fastnn.tune import LogUniform, Uniform, Choice, mlp_trial, random_search
    space = {"lr": LogUniform(1e-5, 1e-2), "weight_decay": LogUniform(1e-8, 1e-4),
             "dropout": Uniform(0, 0.5), "layers": Choice([[100], [100, 100]]), "epochs": 3}
    result = random_search(mlp_trial, space, 20, data=(x_train, y_train), seed=0)
    print(result.table(5))
    space = result.narrow(5)           # round 2 searches where the 5 best trials were

A trial is ``train_fn(params, data, seed)`` returning a score (higher is better unless
``maximize=False``) or a mapping with a ``"score"`` and other figures. It runs on a local
process pool by default (one thread per worker), on ``mpi4py.futures.MPIPoolExecutor`` on a
cluster, or on any executor with ``submit`` returning futures; ``train_fn`` must then be a
module-level function (it is pickled).
"""

import argparse
import concurrent.futures as cf
import json
import math
import multiprocessing
import numbers
import os
import sys
import time
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

__all__ = [
    "Choice",
    "LogUniform",
    "SearchFailedError",
    "SearchResult",
    "SerialExecutor",
    "Trial",
    "Uniform",
    "add_parser",
    "make_executor",
    "mlp_trial",
    "random_search",
    "search_rounds",
    "validation_split",
]

EXECUTORS = ("process", "thread", "serial", "mpi")


# -- the search space -------------------------------------------------------------------------
def _bound(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


class Uniform:
    """Values drawn uniformly from [lo, hi]; lo < hi."""

    log = False

    def __init__(self, lo, hi):
        self.lo = _bound(lo, f"{type(self).__name__} lo")
        self.hi = _bound(hi, f"{type(self).__name__} hi")
        if not self.lo < self.hi:
            raise ValueError(
                f"invalid range {self.lo:g}:{self.hi:g}; expected lo < hi ({type(self).__name__})"
            )

    def _to_axis(self, v):  # the axis the draws are uniform on
        return v

    def _from_axis(self, u):
        return u

    def sample(self, rng):
        """One value, from ``rng`` (a numpy Generator)."""
        u = rng.uniform(self._to_axis(self.lo), self._to_axis(self.hi))
        # exp(log(lo)) may round just outside [lo, hi]: clip back.
        return float(min(max(self._from_axis(u), self.lo), self.hi))

    def narrow(self, values, margin=0.0):
        """The range min(values)..max(values), widened by ``margin`` times its width on each
        side (on the axis the draws are uniform on: log for ``LogUniform``) and clipped to this
        range. A single distinct value gives that value, fixed."""
        values = [float(v) for v in values]
        lo, hi = min(values), max(values)
        if lo == hi:
            return lo
        a, b = self._to_axis(lo), self._to_axis(hi)
        pad = margin * (b - a)
        lo = max(self.lo, self._from_axis(a - pad)) if pad else lo
        hi = min(self.hi, self._from_axis(b + pad)) if pad else hi
        return type(self)(lo, hi)

    def to_dict(self):
        return {"uniform": [self.lo, self.hi]}

    def __eq__(self, other):
        return type(other) is type(self) and (self.lo, self.hi) == (other.lo, other.hi)

    def __repr__(self):
        return f"{type(self).__name__}({self.lo:g}, {self.hi:g})"


class LogUniform(Uniform):
    """Values whose logarithm is uniform on [log lo, log hi]; 0 < lo < hi. For scales such as
    learning rates and weight decays: each decade gets the same share of the draws."""

    log = True

    def __init__(self, lo, hi):
        super().__init__(lo, hi)
        if self.lo <= 0:
            raise ValueError(
                f"invalid range {self.lo:g}:{self.hi:g}; a log-uniform range needs 0 < lo < hi"
            )

    def _to_axis(self, v):
        return math.log(v)

    def _from_axis(self, u):
        return math.exp(u)

    def to_dict(self):
        return {"log_uniform": [self.lo, self.hi]}


class Choice:
    """One of ``options``, each equally likely."""

    def __init__(self, options):
        self.options = list(options)
        if not self.options:
            raise ValueError("Choice needs at least one option")

    def sample(self, rng):
        return self.options[int(rng.integers(len(self.options)))]

    def narrow(self, values, margin=0.0):
        """The options among ``values``, in their original order; a single one, fixed."""
        kept = [o for o in self.options if any(_same(o, v) for v in values)]
        return kept[0] if len(kept) == 1 else Choice(kept)

    def to_dict(self):
        return {"choice": list(self.options)}

    def __eq__(self, other):
        return type(other) is Choice and self.options == other.options

    def __repr__(self):
        return f"Choice({self.options!r})"


def _same(a, b):
    return (list(a) == list(b)) if isinstance(a, (list, tuple)) else a == b


_DISTRIBUTIONS = (Uniform, Choice)  # LogUniform is a Uniform


def _check_space(space):
    if not isinstance(space, dict):
        raise TypeError(f"space must be a dict of name -> range or value, got {type(space)}")
    for name in space:
        if not isinstance(name, str):
            raise TypeError(f"space keys must be parameter names (str), got {name!r}")
    return dict(space)


def sample(space, rng):
    """One set of parameters from ``space``: draws for the ranges, the fixed values as given.
    The draws are made in the space's key order."""
    return {k: v.sample(rng) if isinstance(v, _DISTRIBUTIONS) else v for k, v in space.items()}


def _space_to_dict(space):
    return {k: v.to_dict() if isinstance(v, _DISTRIBUTIONS) else v for k, v in space.items()}


# -- trials and results -----------------------------------------------------------------------
@dataclass
class Trial:
    """One trial: its ``params``, the ``seed`` given to the train function, its ``score``
    (None when it failed), the ``error`` message of a failure, other figures the train function
    returned (``metrics``) and its ``seconds`` (wall time in the worker)."""

    index: int
    params: dict
    seed: int
    score: float | None = None
    error: str | None = None
    seconds: float = 0.0
    metrics: dict = field(default_factory=dict)

    @property
    def ok(self):
        return self.error is None

    def to_dict(self):
        return {
            "index": self.index,
            "params": self.params,
            "seed": self.seed,
            "score": self.score,
            "error": self.error,
            "seconds": self.seconds,
            "metrics": self.metrics,
        }


class SearchFailedError(RuntimeError):
    """Every trial failed; ``result`` holds them with their errors."""

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


class SearchResult:
    """The trials of one ``random_search``, in trial order, and what to do with them.

    ``best`` is the best successful trial; ``ranked()`` the successful ones best first (ties in
    trial order); ``failed`` the failures; ``narrow(k)`` the space for the next round.
    """

    def __init__(self, space, trials, seed, maximize, seconds, executor):
        self.space = space
        self.trials = trials
        self.seed = seed
        self.maximize = maximize
        self.seconds = seconds
        self.executor = executor

    @property
    def failed(self):
        return [t for t in self.trials if not t.ok]

    def ranked(self):
        ok = [t for t in self.trials if t.ok]
        sign = -1.0 if self.maximize else 1.0
        return sorted(ok, key=lambda t: (sign * t.score, t.index))

    @property
    def best(self):
        ranked = self.ranked()
        if not ranked:
            raise SearchFailedError(f"all {len(self.trials)} trials failed", self)
        return ranked[0]

    def narrow(self, k=5, margin=0.0):
        """A new space: each range narrowed to the values of the ``k`` best trials (all the
        successful ones if fewer), from the smallest to the largest (on a log axis for
        ``LogUniform``), widened by ``margin`` times its width on each side but never beyond
        the old range; a range all of whose top values are equal becomes that fixed value.
        Choices keep the options the top trials used; fixed values stay."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
            raise ValueError(f"invalid k: {k!r}; expected a positive integer")
        margin = _bound(margin, "margin")
        if margin < 0:
            raise ValueError(f"invalid margin: {margin}; expected a number >= 0")
        top = self.ranked()[:k]
        if not top:
            raise SearchFailedError(f"all {len(self.trials)} trials failed", self)
        return {
            name: dist.narrow([t.params[name] for t in top], margin)
            if isinstance(dist, _DISTRIBUTIONS)
            else dist
            for name, dist in self.space.items()
        }

    def table(self, k=None):
        """The ``k`` best trials (all by default) as a text table, best first."""
        return format_table(self.ranked()[:k], self.space)

    def to_dict(self):
        return {
            "space": _space_to_dict(self.space),
            "seed": self.seed,
            "maximize": self.maximize,
            "seconds": self.seconds,
            "executor": self.executor,
            "trials": [t.to_dict() for t in self.trials],
        }

    def __repr__(self):
        return (
            f"SearchResult({len(self.trials)} trials, {len(self.failed)} failed, "
            f"{self.seconds:.1f} s on {self.executor})"
        )


def _format_value(v):
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return str(v)


def format_table(trials, space):
    """A text table of ``trials`` (in the order given): rank, trial, score, the parameters that
    vary in ``space``, seconds."""
    varying = [k for k, v in space.items() if isinstance(v, _DISTRIBUTIONS)]
    header = ["rank", "trial", "score", *varying, "seconds"]
    rows = [
        [
            str(i + 1),
            str(t.index),
            f"{t.score:.4f}",
            *(_format_value(t.params[k]) for k in varying),
            f"{t.seconds:.1f}",
        ]
        for i, t in enumerate(trials)
    ]
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(len(header))]
    return "\n".join(
        "  ".join(s.ljust(w) for s, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *rows]
    )


# -- executors --------------------------------------------------------------------------------
class SerialExecutor(cf.Executor):
    """Runs each call at ``submit``, in this process: for debugging and as a reference."""

    def submit(self, fn, /, *args, **kwargs):
        future = cf.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as e:
            future.set_exception(e)
        return future


def _init_worker(threads):
    """A pool worker's initializer: ``threads`` threads for the kernels and BLAS, so that
    workers side by side do not oversubscribe the cores."""
    import numba

    from .threads import set_num_threads

    set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def make_executor(kind="process", workers=None, threads_per_worker=1):
    """A new executor by name: "process" (a local process pool, started with forkserver where
    available, else spawn: Numba's and OpenMP's threads do not survive a fork), "thread",
    "serial" (runs each trial at submit, in this process) or "mpi"
    (``mpi4py.futures.MPIPoolExecutor``; under ``mpiexec -n N python -m mpi4py.futures`` its
    workers are the other N - 1 ranks). Pool workers use ``threads_per_worker`` threads.
    ``workers`` None: one per core for processes and threads, the MPI universe for "mpi"."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; expected one of {', '.join(EXECUTORS)}")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, numbers.Integral) or workers < 1
    ):
        raise ValueError(f"invalid number of workers: {workers!r}; expected a positive integer")
    if kind == "serial":
        return SerialExecutor()
    if kind == "thread":
        return cf.ThreadPoolExecutor(max_workers=workers or _cores())
    if kind == "process":
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        return cf.ProcessPoolExecutor(
            max_workers=workers or _cores(),
            mp_context=context,
            initializer=_init_worker,
            initargs=(threads_per_worker,),
        )
    try:
        from mpi4py.futures import MPIPoolExecutor
    except ImportError:
        raise ValueError(
            "executor 'mpi' needs mpi4py: pip install 'fastnn[mpi]' (or mpi4py and an MPI)"
        ) from None
    return MPIPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(threads_per_worker,)
    )


class _Pool:
    """The executor to run on: ``executor`` as given (left running), or a new one by name
    (shut down at the end)."""

    def __init__(self, executor, workers, threads_per_worker):
        if executor is None:
            executor = "process"
        if isinstance(executor, str):
            self.name = executor
            self.executor = make_executor(executor, workers, threads_per_worker)
            self.owned = True
        elif callable(getattr(executor, "submit", None)):
            self.name = type(executor).__name__
            self.executor = executor
            self.owned = False
        else:
            raise TypeError(
                f"executor must be one of {', '.join(EXECUTORS)} or an object with submit(), "
                f"got {type(executor).__name__}"
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.owned:
            self.executor.shutdown(wait=True, cancel_futures=True)


# -- the search -------------------------------------------------------------------------------
def _run_trial(train_fn, params, data, seed):
    """(score, metrics, error, seconds): runs in the worker; an exception becomes the error
    message, so the search goes on."""
    began = time.perf_counter()
    try:
        out = train_fn(params, data, seed)
        metrics = {}
        if isinstance(out, dict):
            if "score" not in out:
                raise TypeError(f"train function returned a dict without 'score': {list(out)}")
            metrics = {k: v for k, v in out.items() if k != "score"}
            out = out["score"]
        if isinstance(out, (bool, np.bool_)) or not isinstance(out, numbers.Real):
            raise TypeError(f"train function returned {type(out).__name__}, expected a number")
        score = float(out)
        if not math.isfinite(score):
            raise ValueError(f"train function returned a score of {score}")
        return score, metrics, None, time.perf_counter() - began
    except Exception as e:
        message = f"{type(e).__name__}: {e}".strip()
        return None, {}, message, time.perf_counter() - began


def _finish(trial, future, callback):
    try:
        trial.score, trial.metrics, trial.error, trial.seconds = future.result()
    except Exception as e:  # the worker died or the call could not be sent
        trial.error = f"{type(e).__name__}: {e}".strip()
    if callback is not None:
        callback(trial)


def _root_seed(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if seed is None:
        return np.random.SeedSequence()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"invalid seed: {seed!r}; expected a non-negative integer or None")
    return np.random.SeedSequence(int(seed))


def _check_positive(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"invalid {name}: {value!r}; expected a positive integer")
    return int(value)


def random_search(
    train_fn,
    space,
    n_trials,
    data=None,
    *,
    seed=None,
    executor=None,
    workers=None,
    threads_per_worker=1,
    maximize=True,
    callback=None,
):
    """Run ``n_trials`` trials of ``train_fn(params, data, seed)`` with parameters drawn from
    ``space``; return a ``SearchResult``.

    - ``space``: name -> ``LogUniform``, ``Uniform``, ``Choice`` or a fixed value.
    - ``seed``: an int, a ``SeedSequence`` or None (fresh entropy, kept in ``result.seed``).
      ``SeedSequence(seed).spawn(n_trials)`` gives each trial its sequence, which spawns two:
      one draws the parameters, the other gives the integer ``seed`` passed to ``train_fn``;
      so a seed gives the same trials whatever the executor and the order trials finish in.
    - ``executor``: "process" (default), "thread", "serial", "mpi", or an executor (anything
      with ``submit`` returning ``concurrent.futures`` futures), used as is and not shut down.
      ``workers`` and ``threads_per_worker`` apply to the executors made here.
    - ``maximize``: whether a higher score is better.
    - ``callback``: called with each ``Trial`` as it finishes.

    A trial that raises or returns a non-finite score is kept with its ``error``; the search
    goes on. If every trial fails, ``SearchFailedError`` (with the result) is raised.
    """
    if not callable(train_fn):
        raise TypeError(f"train_fn must be callable, got {type(train_fn).__name__}")
    space = _check_space(space)
    n_trials = _check_positive(n_trials, "number of trials")
    threads_per_worker = _check_positive(threads_per_worker, "threads per worker")
    root = _root_seed(seed)
    trials = []
    for i, child in enumerate(root.spawn(n_trials)):
        draw, run = child.spawn(2)
        params = sample(space, np.random.default_rng(draw))
        trials.append(Trial(i, params, int(run.generate_state(1, np.uint64)[0])))

    began = time.perf_counter()
    with _Pool(executor, workers, threads_per_worker) as pool:
        futures = {}
        try:
            for t in trials:
                future = pool.executor.submit(_run_trial, train_fn, t.params, data, t.seed)
                if future.done():  # a serial executor: report it now, in trial order
                    _finish(t, future, callback)
                else:
                    futures[future] = t
            for future in cf.as_completed(futures):
                _finish(futures[future], future, callback)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    seed_value = (
        root.entropy
        if not root.spawn_key
        else {"entropy": root.entropy, "spawn_key": list(root.spawn_key)}
    )
    result = SearchResult(
        space, trials, seed_value, maximize, time.perf_counter() - began, pool.name
    )
    if not any(t.ok for t in trials):
        raise SearchFailedError(f"all {n_trials} trials failed; trial 0: {trials[0].error}", result)
    return result


def search_rounds(
    train_fn,
    space,
    n_trials,
    data=None,
    *,
    rounds=2,
    top=5,
    margin=0.0,
    seed=None,
    executor=None,
    workers=None,
    threads_per_worker=1,
    maximize=True,
    callback=None,
):
    """``rounds`` random searches, each in the space narrowed around the ``top`` best trials of
    the round before (``SearchResult.narrow(top, margin)``), on one executor; a list of
    ``SearchResult``. Round r's trials are seeded from ``SeedSequence(seed).spawn(rounds)[r]``.
    ``n_trials``: an int, or one per round. Other arguments as for ``random_search``."""
    rounds = _check_positive(rounds, "number of rounds")
    top = _check_positive(top, "top")
    counts = [n_trials] * rounds if isinstance(n_trials, numbers.Integral) else list(n_trials)
    if len(counts) != rounds:
        raise ValueError(f"expected {rounds} trial counts (one per round), got {len(counts)}")
    results = []
    with _Pool(executor, workers, _check_positive(threads_per_worker, "threads")) as pool:
        for n, round_seed in zip(counts, _root_seed(seed).spawn(rounds), strict=True):
            if results:
                space = results[-1].narrow(top, margin)
            results.append(
                random_search(
                    train_fn,
                    space,
                    n,
                    data,
                    seed=round_seed,
                    executor=pool.executor,
                    maximize=maximize,
                    callback=callback,
                )
            )
            results[-1].executor = pool.name
    return results


# -- a ready-made trial: an MLP on (x, y) -----------------------------------------------------
MLP_DEFAULTS = {
    "layers": [100, 100],
    "activation": "relu",
    "batchnorm": False,
    "dropout": 0.0,
    "init": None,
    "optimizer": "adam",
    "lr": 1e-3,
    "weight_decay": 0.0,
    "epochs": 3,
    "batch_size": 64,
    "val": 0.2,
    "split_seed": 0,
    "dtype": "float32",
}


def validation_split(y, val=0.2, seed=0):
    """(train indices, validation indices) into ``y`` (n,): a stratified random split with
    ``val`` a fraction in (0, 1) or a count; the same ``seed`` gives the same split, so every
    trial is scored on the same rows."""
    from .preprocessing import _split_size, split_indices

    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"validation_split: expected labels of shape (n,), got {y.shape}")
    n = len(y)
    n_val = _split_size(val, n, "val")
    if not 1 <= n_val < n:
        raise ValueError(f"a validation split of {val} out of {n} rows leaves an empty part")
    train, valid = split_indices(y, [n - n_val, n_val], stratify=True, rng=seed)
    return train, valid


@lru_cache(maxsize=2)
def _load_training_part(spec):
    """The training part of the ``--data`` value ``spec`` (its test part is never returned),
    loaded once per process."""
    from .cli import _flatten, load_data

    (x, y), _ = load_data(spec)
    return _flatten(x), np.asarray(y)


def mlp_trial(params, data, seed):
    """Train an ``MLP`` with ``params`` on part of ``data``; return the accuracy on the rest.

    ``data``: (x, y) with x (n, features) and integer labels y (n,), the rows to search on (keep
    the test set out of them), or a ``fastnn train --data`` value ("sample", an .npz, ...), of
    which only the training part is loaded (once per worker process). ``params`` (defaults in
    ``MLP_DEFAULTS``): layers (hidden sizes), activation, batchnorm, dropout, init, optimizer,
    lr, weight_decay, epochs, batch_size, dtype, and val / split_seed: the validation
    fraction held out of (x, y) and the seed of that split, the same for every trial. ``seed``
    draws the initial weights, dropout masks and batch order. Returns ``{"score": validation
    accuracy, "val_loss": validation loss}``.
    """
    from . import optim
    from .container import MLP
    from .training import evaluate, fit

    unknown = set(params) - set(MLP_DEFAULTS)
    if unknown:
        raise ValueError(
            f"mlp_trial: unknown parameters {sorted(unknown)}; expected some of "
            f"{', '.join(MLP_DEFAULTS)}"
        )
    p = {**MLP_DEFAULTS, **params}
    if isinstance(data, str):
        x, y = _load_training_part(data)
    else:
        x, y = data
        x, y = np.asarray(x), np.asarray(y)
    train, valid = validation_split(y, p["val"], p["split_seed"])
    if isinstance(p["layers"], numbers.Integral):
        p["layers"] = [p["layers"]]
    classes = int(y.max()) + 1
    init_seed, fit_seed = np.random.SeedSequence(seed).spawn(2)
    model = MLP(
        [x.shape[1], *p["layers"], classes],
        activation=p["activation"],
        batchnorm=p["batchnorm"],
        dropout=p["dropout"],
        init=p["init"],
        seed=init_seed,
        dtype=p["dtype"],
    )
    opt = optim.get(p["optimizer"], model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    fit(
        model,
        x[train],
        y[train],
        optimizer=opt,
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        verbose=0,
        seed=int(fit_seed.generate_state(1)[0]),
    )
    result = evaluate(model, x[valid], y[valid])
    return {"score": result["accuracy"], "val_loss": result["loss"]}


# -- the command line -------------------------------------------------------------------------
def _parse_item(kind, text, flag):
    """One value of ``flag`` (``kind``: float, int, sizes or a tuple of accepted names)."""
    text = text.strip()
    try:
        if kind == "sizes":
            sizes = [int(s) for s in text.split(",") if s.strip()]
            if not sizes or min(sizes) < 1:
                raise ValueError
            return sizes
        if isinstance(kind, tuple):
            if text not in kind:
                raise ValueError
            return text
        value = kind(text)
    except ValueError:
        expected = (
            {
                "sizes": "layer sizes like 100,100",
                float: "a number",
                int: "an integer",
            }.get(kind)
            if not isinstance(kind, tuple)
            else "one of " + ", ".join(kind)
        )
        raise ValueError(f"{flag} {text!r}: expected {expected}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{flag} {text!r}: expected a finite number")
    return value


def _parse_flag(flag, text, kind, log=False, check=None):
    """A ``--flag`` value: "lo:hi" a range (log-uniform when ``log``), "a/b/c" a choice, or a
    fixed value. ``check(value)`` returns an error message for a bad fixed value or bound."""
    text = str(text)
    if ":" in text:
        if kind not in (float,):
            raise ValueError(f"{flag} {text!r}: a range lo:hi is for numbers; give a/b/c")
        parts = text.split(":")
        if len(parts) != 2:
            raise ValueError(f"{flag} {text!r}: expected a range lo:hi")
        lo, hi = (_parse_item(float, s, flag) for s in parts)
        if not lo < hi:
            raise ValueError(f"{flag} {text!r}: expected a range lo:hi with lo < hi")
        if log and lo <= 0:
            raise ValueError(f"{flag} {text!r}: a log range needs 0 < lo < hi")
        for v in (lo, hi):
            problem = check and check(v)
            if problem:
                raise ValueError(f"{flag} {text!r}: {problem}")
        return LogUniform(lo, hi) if log else Uniform(lo, hi)
    values = [_parse_item(kind, s, flag) for s in text.split("/")]
    for v in values:
        problem = check and check(v)
        if problem:
            raise ValueError(f"{flag} {text!r}: {problem}")
    return values[0] if len(values) == 1 else Choice(values)


_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adadelta", "adam", "adamw")
_ACTIVATIONS = ("relu", "sigmoid", "tanh", "leaky_relu", "elu")


def space_from_args(args):
    """The search space of ``fastnn tune``'s flags."""

    def positive(v):
        return None if v > 0 else f"expected values > 0, got {v:g}"

    def non_negative(v):
        return None if v >= 0 else f"expected values >= 0, got {v:g}"

    def fraction(v):
        return None if 0 <= v < 1 else f"expected values in [0, 1), got {v:g}"

    def at_least_one(v):
        return None if v >= 1 else f"expected values >= 1, got {v}"

    return {
        "lr": _parse_flag("--lr", args.lr, float, log=True, check=positive),
        "weight_decay": _parse_flag(
            "--weight-decay", args.weight_decay, float, log=True, check=non_negative
        ),
        "dropout": _parse_flag("--dropout", args.dropout, float, check=fraction),
        "layers": _parse_flag("--layers", args.layers, "sizes"),
        "epochs": _parse_flag("--epochs", args.epochs, int, check=at_least_one),
        "batch_size": _parse_flag("--batch-size", args.batch_size, int, check=at_least_one),
        "optimizer": _parse_flag("--optimizer", args.optimizer, _OPTIMIZERS),
        "activation": _parse_flag("--activation", args.activation, _ACTIVATIONS),
        "batchnorm": bool(args.batchnorm),
        "val": args.val,
        "split_seed": args.seed,
        "dtype": args.dtype,
    }


def _format_space(space):
    return ", ".join(
        f"{k} {v.lo:.3g}:{v.hi:.3g}{' (log)' if v.log else ''}"
        if isinstance(v, Uniform)
        else f"{k} {'/'.join(_format_value(o) for o in v.options)}"
        if isinstance(v, Choice)
        else f"{k} {_format_value(v)}"
        for k, v in space.items()
        if k not in ("split_seed",)
    )


def tune_cmd(args):
    """``fastnn tune``: print each round's best trials and the narrowed ranges."""
    from .cli import UsageError, load_data

    if args.executor not in EXECUTORS:
        raise UsageError(f"--executor {args.executor!r}: expected one of {', '.join(EXECUTORS)}")
    if not 0 < args.val < 1:
        raise UsageError(f"--val {args.val}: expected a fraction in (0, 1)")
    if not args.margin >= 0:
        raise UsageError(f"--margin {args.margin}: expected a number >= 0")
    if args.seed < 0:
        raise UsageError(f"--seed {args.seed}: expected an integer >= 0")
    if args.top is None:
        args.top = min(5, args.trials)
    if args.top > args.trials:
        raise UsageError(f"--top {args.top} is more than --trials {args.trials}")
    space = space_from_args(args)
    (x, y), (x_test, _) = load_data(args.data)  # checked here, loaded again in each worker
    n_val = len(validation_split(np.asarray(y), args.val, args.seed)[1])
    print(
        f"data: {args.data}, {len(x)} rows searched on ({len(x) - n_val} training, {n_val} "
        f"validation); the {len(x_test)} test rows are kept aside"
    )
    workers = args.workers
    where = f"{args.executor} executor" + (f", {workers} workers" if workers else "")
    print(f"{args.trials} trials x {args.rounds} round(s) on the {where}; seed {args.seed}")
    done = [0]

    def progress(t):
        done[0] += 1
        if args.quiet:
            return
        what = f"score {t.score:.4f}" if t.ok else f"failed: {t.error}"
        print(f"  trial {t.index:3d} ({done[0]}/{args.trials})  {what}  {t.seconds:.1f} s")

    results = []
    space_now = space
    try:
        with _Pool(args.executor, workers, args.threads) as pool:
            for r, round_seed in enumerate(np.random.SeedSequence(args.seed).spawn(args.rounds)):
                if results:
                    space_now = results[-1].narrow(args.top, args.margin)
                    print(f"\nround {r + 1}: narrowed to {_format_space(space_now)}")
                else:
                    print(f"\nround 1: {_format_space(space_now)}")
                done[0] = 0
                result = random_search(
                    mlp_trial,
                    space_now,
                    args.trials,
                    args.data,
                    seed=round_seed,
                    executor=pool.executor,
                    callback=progress,
                )
                result.executor = pool.name
                results.append(result)
                print(f"round {r + 1}: {result.seconds:.1f} s; the best {args.top} trials:")
                print(result.table(args.top))
                for t in result.failed:
                    print(f"trial {t.index} failed: {t.error}")
    except SearchFailedError as e:
        print(f"fastnn tune: error: {e}", file=sys.stderr)
        return 1
    best = min((res.best for res in results), key=lambda t: -t.score)
    print(
        f"\nbest: validation accuracy {best.score:.4f} with "
        + ", ".join(f"{k} {_format_value(best.params[k])}" for k in space if k != "split_seed")
    )
    if args.json:
        record = {
            "data": args.data,
            "seed": args.seed,
            "rounds": [res.to_dict() for res in results],
            "best": best.to_dict(),
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def add_parser(subparsers):
    """Add ``fastnn tune`` to the CLI's subparsers; return its parser."""
    from .cli import _positive_int

    p = subparsers.add_parser(
        "tune",
        help="random hyperparameter search for an MLP on a validation split",
        description=(
            "Random search over MLP hyperparameters, scored by validation accuracy on part of "
            "the training data (the test set is kept aside). A value lo:hi is a range "
            "(log-uniform for --lr and --weight-decay, uniform for --dropout), a/b/c a choice, "
            "anything else fixed. On a cluster: mpiexec -n N python -m mpi4py.futures -m "
            "fastnn tune --executor mpi ..."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--data", default="sample", help="as for fastnn train; its test part unused")
    p.add_argument("--trials", type=_positive_int, default=20, help="trials per round")
    p.add_argument("--lr", default="1e-5:1e-2", help="learning rate: lo:hi (log), a/b, or a")
    p.add_argument(
        "--weight-decay", default="1e-8:1e-4", help="weight decay: lo:hi (log), a/b, or a"
    )
    p.add_argument("--dropout", default="0", help="dropout: lo:hi (uniform), a/b, or a")
    p.add_argument("--layers", default="100,100", help="hidden sizes; choices as 50/100,100")
    p.add_argument("--epochs", default="3", help="epochs per trial (or a/b)")
    p.add_argument("--batch-size", default="64", help="batch size (or a/b/c)")
    p.add_argument("--optimizer", default="adam", help="optimizer (or a/b)")
    p.add_argument("--activation", default="relu", help="activation (or a/b)")
    p.add_argument("--batchnorm", action="store_true", help="batch norm in every trial")
    p.add_argument(
        "--val", type=float, default=0.2, help="validation fraction of the training data"
    )
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--executor", default="process", help="process, thread, serial or mpi")
    p.add_argument(
        "--workers",
        type=_positive_int,
        default=None,
        help="pool size (default: one per core; mpi: the ranks given by mpiexec)",
    )
    p.add_argument("--threads", type=_positive_int, default=1, help="threads per worker")
    p.add_argument("--rounds", type=_positive_int, default=1, help="search rounds")
    p.add_argument(
        "--top",
        type=_positive_int,
        default=None,
        help="best trials shown and narrowed around (default: 5, at most --trials)",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="widen narrowed ranges by this fraction of their width on each side",
    )
    p.add_argument("--seed", type=int, default=0, help="seeds the trials and the split")
    p.add_argument("--json", default=None, help="write every trial to this JSON file")
    p.add_argument("--quiet", "-q", action="store_true", help="no line per trial")
    p.set_defaults(run=tune_cmd)
    return p
