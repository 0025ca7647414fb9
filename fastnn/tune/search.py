"""Random search and what it returns: ``random_search``, ``search_rounds``, ``SearchResult``.

A trial is ``train_fn(params, data, seed)`` returning a score (higher is better unless
``maximize=False``) or a mapping with a ``"score"`` and other figures. Each trial's parameters
and seed come from its own child of ``SeedSequence(seed)``, so a seed gives the same trials on
any executor and in any order of completion. On an executor of other processes ``train_fn``
must be a module-level function (it is pickled).
"""

import concurrent.futures as cf
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_int, check_real
from .._table import format_table as format_table_lines
from ..errors import FastnnError, InvalidTypeError, InvalidValueError
from .executors import Pool
from .space import DISTRIBUTIONS, check_space, format_value, sample, space_to_dict


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


class SearchFailedError(FastnnError, RuntimeError):
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
        k = check_int(k, "k", low=1)
        margin = check_real(margin, "margin", low=0.0)
        top = self.ranked()[:k]
        if not top:
            raise SearchFailedError(f"all {len(self.trials)} trials failed", self)
        return {
            name: dist.narrow([t.params[name] for t in top], margin)
            if isinstance(dist, DISTRIBUTIONS)
            else dist
            for name, dist in self.space.items()
        }

    def table(self, k=None):
        """The ``k`` best trials (all by default) as a text table, best first."""
        return format_table(self.ranked()[:k], self.space)

    def to_dict(self):
        return {
            "space": space_to_dict(self.space),
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


def format_table(trials, space):
    """A text table of ``trials`` (in the order given): rank, trial, score, the parameters that
    vary in ``space``, seconds."""
    varying = [k for k, v in space.items() if isinstance(v, DISTRIBUTIONS)]
    rows = [
        [
            i + 1,
            t.index,
            f"{t.score:.4f}",
            *(format_value(t.params[k]) for k in varying),
            f"{t.seconds:.1f}",
        ]
        for i, t in enumerate(trials)
    ]
    return "\n".join(format_table_lines(["rank", "trial", "score", *varying, "seconds"], rows))


def _run_trial(train_fn, params, data, seed):
    """(score, metrics, error, seconds): runs in the worker; an exception becomes the error
    message, so the search goes on."""
    began = time.perf_counter()
    try:
        out = train_fn(params, data, seed)
        metrics = {}
        if isinstance(out, dict):
            if "score" not in out:
                raise InvalidTypeError(
                    f"train function returned a dict without 'score': {list(out)}"
                )
            metrics = {k: v for k, v in out.items() if k != "score"}
            out = out["score"]
        score = check_real(out, "score returned by the train function")
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
    return np.random.SeedSequence(check_int(seed, "seed", low=0))


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
        raise InvalidTypeError(f"train_fn must be callable, got {type(train_fn).__name__}")
    space = check_space(space)
    n_trials = check_int(n_trials, "number of trials", low=1)
    threads_per_worker = check_int(threads_per_worker, "threads per worker", low=1)
    root = _root_seed(seed)
    trials = []
    for i, child in enumerate(root.spawn(n_trials)):
        draw, run = child.spawn(2)
        params = sample(space, np.random.default_rng(draw))
        trials.append(Trial(i, params, int(run.generate_state(1, np.uint64)[0])))

    began = time.perf_counter()
    with Pool(executor, workers, threads_per_worker) as pool:
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
    **options,
):
    """``rounds`` random searches, each in the space narrowed around the ``top`` best trials of
    the round before (``SearchResult.narrow(top, margin)``), on one executor; a list of
    ``SearchResult``. Round r's trials are seeded from ``SeedSequence(seed).spawn(rounds)[r]``.
    ``n_trials``: an int, or one per round. The other arguments, and ``options``
    (``maximize``, ``callback``), as for ``random_search``."""
    rounds = check_int(rounds, "number of rounds", low=1)
    top = check_int(top, "top", low=1)
    counts = [n_trials] * rounds if isinstance(n_trials, numbers.Integral) else list(n_trials)
    if len(counts) != rounds:
        raise InvalidValueError(
            f"expected {rounds} trial counts (one per round), got {len(counts)}"
        )
    results = []
    with Pool(executor, workers, check_int(threads_per_worker, "threads", low=1)) as pool:
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
                    **options,
                )
            )
            results[-1].executor = pool.name
    return results
