"""Thread control: how many threads the kernels and BLAS use, and which Numba threading layer
runs the parallel kernels.

Threading layer. Unless the user chose one (``NUMBA_THREADING_LAYER``, or
``numba.config.THREADING_LAYER`` set before fastnn is imported), fastnn asks Numba for its
OpenMP layer, else TBB (``kernels._config.THREADING_LAYERS``). Both are thread-safe: several
Python threads may run fastnn at once (two models training in two threads, ``predict`` from a
server's threads). Numba's third layer, workqueue, aborts the whole process when two threads
launch parallel kernels at the same time. When workqueue is the layer that will run (the user
chose it, or chose "forksafe" on Linux without TBB, or neither OpenMP nor TBB loads), fastnn
serialises its kernels with one process-wide lock: concurrent use works, and the threads'
kernels take turns (their BLAS products and Python work still overlap).
``threading_layer()`` says which layer fastnn expects and whether it serialises.

Numba's thread count is per Python thread: ``set_num_threads`` applies to the thread that calls
it (and to BLAS everywhere); a new thread starts with ``numba.config.NUMBA_NUM_THREADS``.
"""

import os
import sys
import threading
import warnings

import numba
from numba.core.registry import CPUDispatcher

from . import kernels
from ._checks import check_int
from .kernels._config import THREADING_LAYERS


def set_num_threads(n):
    """Use ``n`` threads in Numba's parallel kernels (in the calling thread) and in BLAS
    (NumPy's and SciPy's, process-wide).

    ``n`` is at most ``numba.config.NUMBA_NUM_THREADS`` (the machine's cores unless the
    ``NUMBA_NUM_THREADS`` environment variable says otherwise).
    """
    n = check_int(n, "number of threads", low=1, high=numba.config.NUMBA_NUM_THREADS)
    numba.set_num_threads(n)
    # Numba's np.dot calls the BLAS that SciPy bundles; load it so threadpoolctl sees it too.
    import scipy.linalg.cython_blas  # noqa: F401
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")


def get_num_threads():
    """The number of threads Numba's parallel kernels use in the calling thread."""
    return numba.get_num_threads()


# -- the threading layer ------------------------------------------------------------------------
def _loadable(layer):
    """Whether Numba's ``layer`` ("omp" or "tbb") can be loaded here (without starting it)."""
    try:
        if layer == "tbb":
            from numba.np.ufunc.parallel import _check_tbb_version_compatible

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # an old TBB warns, then fails the check
                _check_tbb_version_compatible()
            import numba.np.ufunc.tbbpool  # noqa: F401
        elif layer == "omp":
            import numba.np.ufunc.omppool  # noqa: F401
        else:
            return layer == "workqueue"
    except ImportError:
        return False
    return True


def _resolve(name):
    """The layer Numba will pick for the setting ``name`` (Numba's own rules), or None when it
    will refuse to start (a named layer that does not load)."""
    if name in ("omp", "tbb", "workqueue"):
        return name if _loadable(name) else None
    if name == "default":
        candidates = list(numba.config.THREADING_LAYER_PRIORITY)
    elif name == "threadsafe":
        candidates = ["tbb", "omp"]
    elif name == "safe":
        candidates = ["tbb"]
    elif name == "forksafe":
        # GNU OpenMP (Linux) is not fork-safe, so Numba leaves it out there.
        candidates = ["tbb"] + ([] if sys.platform.startswith("linux") else ["omp"])
        candidates.append("workqueue")
    else:
        return None
    return next((c for c in candidates if _loadable(c)), None)


_layer = None  # what choose_threading_layer found: (layer, serialised)
_KERNEL_LOCK = threading.RLock()


def _started_layer():
    try:
        return numba.threading_layer()
    except ValueError:  # "Threading layer is not initialized": no parallel kernel ran yet
        return None


def choose_threading_layer():
    """Pick Numba's threading layer for fastnn (see the module docstring); return the layer
    that will run the parallel kernels ("omp", "tbb", "workqueue", or None if Numba will
    refuse the user's setting). Called once when fastnn is imported."""
    global _layer
    started = _started_layer()
    if started is not None:  # Numba's threads already run: nothing can be changed
        layer = started
    elif "NUMBA_THREADING_LAYER" in os.environ or numba.config.THREADING_LAYER != "default":
        layer = _resolve(str(numba.config.THREADING_LAYER).lower())
    else:
        layer = next((c for c in THREADING_LAYERS if _loadable(c)), "workqueue")
        numba.config.THREADING_LAYER = layer
    _layer = (layer, layer == "workqueue")
    if layer == "workqueue":
        _serialise_kernels()
    return layer


def threading_layer():
    """``(layer, serialised)``: the Numba threading layer fastnn's parallel kernels run on
    (the one running, once a parallel kernel has run) and whether fastnn makes them take turns
    between Python threads (true for workqueue)."""
    started = _started_layer()
    layer, serialised = _layer or (None, False)
    return (started or layer), serialised


class SerialisedKernel(CPUDispatcher):
    """A Numba kernel that runs while holding fastnn's process-wide kernel lock (the class
    fastnn gives its kernels under the workqueue threading layer)."""

    def __call__(self, *args, **kwargs):
        with _KERNEL_LOCK:
            return super().__call__(*args, **kwargs)


def _serialise_kernels():
    """Make every kernel in ``fastnn.kernels`` hold one process-wide lock while it runs, so
    that two Python threads never launch workqueue's pool at once.

    Serial kernels too: some call a parallel one from compiled code (``relu_forward`` calls
    ``_forward``), which no Python-level lock around the parallel kernel alone would see."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(kernels.__path__):
        if info.name == "reference":
            continue
        module = importlib.import_module(f"{kernels.__name__}.{info.name}")
        for value in vars(module).values():
            # Under NUMBA_DISABLE_JIT kernels are plain functions and there is no pool.
            if type(value) is CPUDispatcher:
                value.__class__ = SerialisedKernel
