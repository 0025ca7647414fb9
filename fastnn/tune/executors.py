"""Where trials run: any ``concurrent.futures`` executor, or one made by name."""

import concurrent.futures as cf
import multiprocessing
import os

from .._checks import check_choice, check_int
from ..errors import InvalidTypeError, InvalidValueError
from ..threads import set_num_threads

EXECUTORS = ("process", "thread", "serial", "mpi")


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
    kind = check_choice(kind, "executor", EXECUTORS)
    if workers is not None:
        workers = check_int(workers, "number of workers", low=1)
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
        raise InvalidValueError(
            "executor 'mpi' needs mpi4py: pip install 'fastnn[mpi]' (or mpi4py and an MPI)"
        ) from None
    return MPIPoolExecutor(
        max_workers=workers, initializer=_init_worker, initargs=(threads_per_worker,)
    )


class Pool:
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
            raise InvalidTypeError(
                f"executor must be one of {', '.join(EXECUTORS)} or an object with submit(), "
                f"got {type(executor).__name__}"
            )

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.owned:
            self.executor.shutdown(wait=True, cancel_futures=True)
