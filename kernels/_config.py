"""Numba settings for every kernel, in one place.

Kernels use ``SERIAL`` and ``PARALLEL`` (keyword dicts for ``numba.njit``) and split their
loops with ``n_chunks``/``chunk_bounds``. Every kernel is compiled with ``cache=True``; set
``NUMBA_CACHE_DIR`` to choose where the compiled code is kept.

The settings are constants on purpose. Numba freezes global values into compiled code and
its on-disk cache is keyed by the kernel's source file, not by these values, so a setting read
from the environment would be silently ignored once the cache is warm. The thread count is
likewise not read inside kernels (doing so makes them uncacheable): a parallel kernel splits
its work into a fixed number of chunks that depends only on the work's size, and Numba's
scheduler spreads those chunks over however many threads ``fastnn.set_num_threads`` allows.
"""

from numba import njit

# Numba threading layers fastnn asks for, in order, unless the user chose one with
# NUMBA_THREADING_LAYER: both let several Python threads run parallel kernels at once (OpenMP
# first: it is the layer the OMP_WAIT_POLICY tuning in fastnn/__init__.py was measured with).
# The third layer, workqueue, aborts the process on concurrent use; fastnn.threads serialises
# fastnn's kernels when it is the one that runs.
THREADING_LAYERS = ("omp", "tbb")

# No 'reassoc' (it lets LLVM reorder reductions, which changes sums) and no 'nnan'/'ninf'
# (kernels must propagate NaN and inf so that training can detect a diverging loss).
FASTMATH = {"nsz", "arcp", "contract"}

# error_model "numpy": a float division by zero gives inf or NaN as in NumPy and PyTorch
# instead of raising, and without the zero check LLVM can vectorise the loop.
SERIAL = {"cache": True, "fastmath": FASTMATH, "nogil": True, "error_model": "numpy"}
PARALLEL = dict(SERIAL, parallel=True)

# Below this many elements of work a kernel runs its serial path. A parallel launch costs
# about 10 us on two cores, an elementwise pass over 128k float32 values about 60-100 us.
PARALLEL_MIN = 131072
# Most chunks one loop is split into (enough to balance 64 threads).
MAX_CHUNKS = 64


@njit(**SERIAL)
def n_chunks(work):
    """How many pieces to split ``work`` elements of work into; 1 means run serially."""
    if work < PARALLEL_MIN:
        return 1
    return min(MAX_CHUNKS, work // (PARALLEL_MIN // 2))


@njit(**SERIAL)
def chunk_bounds(k, chunks, n):
    """[lo, hi) of piece ``k`` out of ``chunks`` near-equal pieces of ``range(n)``."""
    return k * n // chunks, (k + 1) * n // chunks
