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
# (kernels must propagate NaN and inf so that training can detect a diverging loss). No
# 'contract' either: with it LLVM fuses a multiply and an add into one FMA where the code around
# them makes that look worthwhile, so one kernel compiled alone and the same kernel compiled
# inside the training step rounded differently (Adam with amsgrad, 16 of 192 values, once the
# two came from processes sharing a cache). Fused operations are written out (fastexp._fma).
FASTMATH = {"nsz", "arcp"}

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


# -- the on-disk cache: one stamp for all of the kernels' source ----------------------------------
# Numba keys each cached function by the source of its own file only, but the compiled code of a
# kernel holds the code of every kernel it calls (kernels._network calls nearly all of them). After
# an edit of activations.py, say, a cached training step would run the old activation, or crash.
# So every kernel file is stamped with the hash of all of them: editing any one recompiles all.
def _install_kernels_stamp():
    import functools
    import hashlib
    import os
    import pickle

    from numba.core import caching

    here = os.path.dirname(os.path.abspath(__file__))

    @functools.lru_cache(maxsize=8)
    def stamp(state):
        digest = hashlib.sha256()
        for path, _, _ in state:
            with open(path, "rb") as f:
                digest.update(path.encode() + b"\0" + f.read())
        return digest.digest()

    def kernels_stamp(self):
        files = sorted(
            os.path.join(here, name) for name in os.listdir(here) if name.endswith(".py")
        )
        return stamp(tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in files))

    def ours(cls):
        class Locator(cls):
            get_source_stamp = kernels_stamp

            @classmethod
            def from_function(cls, py_func, py_file):
                if os.path.dirname(os.path.abspath(py_file)) != here:
                    return None
                return super().from_function(py_func, py_file)

            def get_cache_path(self):
                path = super().get_cache_path()
                ours_dirs.add(os.path.abspath(path))
                return path

        Locator.__name__ = "Kernels" + cls.__name__
        return Locator

    # Numba names a new entry's data file by the first number its index does not use yet. Two
    # processes that compile different signatures of one kernel at once (pytest -n 2, a
    # process pool: the training step has a signature per combination of layer kinds) can
    # both pick the same number, and the index then maps one signature to the other's machine
    # code: a crash when it is loaded. For the kernels' cache, the number is a hash of the
    # signature (and the stamp) instead, so a race can lose an index entry (one recompile)
    # but never pair a signature with another's code.
    ours_dirs = set()
    save = caching.IndexDataCacheFile.save

    def save_by_key(self, key, data):
        if os.path.dirname(os.path.abspath(self._index_path)) not in ours_dirs:
            return save(self, key, data)
        overloads = self._load_index()
        digest = hashlib.sha256(pickle.dumps((self._source_stamp, key), protocol=4))
        overloads[key] = self._data_name(int.from_bytes(digest.digest()[:7], "big"))
        self._save_index(overloads)
        self._save_data(overloads[key], data)

    impl = caching.CacheImpl if hasattr(caching, "CacheImpl") else caching._CacheImpl
    if not any(c.__name__.startswith("Kernels") for c in impl._locator_classes):
        impl._locator_classes = [ours(c) for c in impl._locator_classes] + impl._locator_classes
        caching.IndexDataCacheFile.save = save_by_key


# Numba names compiled code by the function's qualified name, a number from a counter that
# every process starts at 1 (and a forked child continues from its parent's), and the argument
# types. Code loaded from the cache keeps the names it was compiled under in another process,
# so two different functions can meet under one name: a parallel kernel's loop body is named
# after the address of an object (``__numba_parfor_gufunc_0x...``), and the same name, number
# and types turn up in two processes for two different loops. The process then calls one of
# them for the other: under ``pytest -n 2`` with an empty cache, Adam with amsgrad gave
# different bits through the training step than through the layers, in one worker only
# (numba/numba#10486 describes the counter). Each process (and each forked child) counts from
# a random start instead, so names from different processes do not meet.
def _install_distinct_ids():
    import itertools
    import os
    import secrets

    from numba.core import bytecode

    def reseed():
        bytecode.FunctionIdentity._unique_ids = itertools.count(secrets.randbits(40) + 1)

    reseed()
    os.register_at_fork(after_in_child=reseed)


try:
    _install_kernels_stamp()
except Exception:  # pragma: no cover - another Numba's internals: keep its own stamps
    pass

try:
    _install_distinct_ids()
except Exception:  # pragma: no cover - another Numba's internals
    pass
