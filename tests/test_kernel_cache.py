"""The kernels' on-disk cache (``kernels._config``): a stamp over all of the kernels' source,
and data files named by signature, so that processes compiling at once cannot pair one
signature with another's machine code."""

import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
from numba.core import caching

from fastnn.kernels import activations


def _cache_files(dispatcher):
    cache = getattr(dispatcher, "_cache", None)
    if not isinstance(cache, caching.FunctionCache):
        pytest.skip("the kernels are not cached here (NUMBA_DISABLE_JIT)")
    return cache._cache_file


def test_two_processes_saving_different_signatures_keep_their_own_code(tmp_path):
    # Two processes each load the index before the other saves (both see it empty) and save
    # their own signature; the second's index is written first, so the first's index is the
    # one that stays, while the second's data file is written last. Numba's own naming gives
    # both the first free number: the index would pair the first signature with the second's
    # code. Named by signature, each key keeps its own data file.
    real = _cache_files(activations.relu_forward)
    base = f"race-test-{uuid.uuid4().hex}"
    first = caching.IndexDataCacheFile(real._cache_path, base, real._source_stamp)
    second = caching.IndexDataCacheFile(real._cache_path, base, real._source_stamp)
    keys = [("sig float32", "machine"), ("sig float64", "machine")]
    try:
        first._load_index = second._load_index = dict  # neither sees the other's entry
        second._save_index = lambda overloads: None  # overwritten by the first's index
        first.save(keys[0], ("code of", keys[0]))
        second.save(keys[1], ("code of", keys[1]))
        index = caching.IndexDataCacheFile(real._cache_path, base, real._source_stamp)
        assert index.load(keys[0]) == ("code of", keys[0])
        assert index.load(keys[1]) is None  # lost: compiled again next time, that is all
        index.save(keys[1], ("code of", keys[1]))
        assert index.load(keys[0]) == ("code of", keys[0])
        assert index.load(keys[1]) == ("code of", keys[1])
    finally:
        for name in os.listdir(real._cache_path):
            if name.startswith(base):
                os.remove(os.path.join(real._cache_path, name))


def test_cached_kernels_are_stamped_with_all_of_the_kernels_source():
    files = _cache_files(activations.relu_forward)
    from fastnn.kernels import optim

    # Every kernel file carries the same stamp: a change to any one recompiles them all.
    assert files._source_stamp == _cache_files(optim.sgd_step)._source_stamp
    assert isinstance(files._source_stamp, bytes) and len(files._source_stamp) == 32
    x = np.ones(3, np.float32)
    out = np.empty_like(x)
    activations.relu_forward(x, out)
    np.testing.assert_array_equal(out, x)


_FIT = """
import sys
import numpy as np
import fastnn as fn
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 20)).astype(np.float32)
y = rng.integers(0, 3, 64)
m = fn.MLP([20, 16, 3], seed=0)
with fn.compiled(sys.argv[1] == "compiled"):
    opt = fn.optim.Adam(m.parameters())
    fn.fit(m, x, y, optimizer=opt, epochs=1, batch_size=16, verbose=0, seed=0)
print(float(np.abs(m.parameters()[0].data).sum()))
"""


def test_a_cached_training_step_runs_in_a_process_that_ran_no_parallel_kernel(tmp_path):
    # The sequence that crashed: the per-layer path caches the parallel kernels; the next
    # process compiles the training step over them (loaded from the cache) and caches it; a
    # third loads it and calls it before any parallel kernel has started Numba's threads.
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    env.pop("NUMBA_DISABLE_JIT", None)
    outputs = []
    for path in ("layers", "compiled", "compiled"):
        proc = subprocess.run(
            [sys.executable, "-c", _FIT, path], env=env, capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, (path, proc.returncode, proc.stderr[-2000:])
        outputs.append(proc.stdout.strip())
    assert outputs[0] == outputs[1] == outputs[2]  # and the same weights on both paths


_WRAPPER = """
from numba import njit
from fastnn.kernels._config import SERIAL
from fastnn.kernels.optim import adam_step


@njit(**SERIAL)  # the training step's flags
def inside(p, g, m, v, vm, mask, ss, b1, b2, eps, wd, bc2, amsgrad):
    adam_step(p, g, m, v, vm, mask, ss, b1, b2, eps, wd, bc2, amsgrad)
"""

_ADAM = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from fastnn.kernels.optim import adam_step
from wrapper_for_test import inside


def run(step, amsgrad):
    rng = np.random.default_rng(1)
    p = rng.standard_normal(192).astype(np.float32)
    m, v, vm = (np.zeros(192, np.float32) for _ in range(3))
    mask = np.ones(192, np.uint8)
    for t in range(1, 30):
        g = rng.standard_normal(192).astype(np.float32)
        b2 = np.sqrt(1 - 0.999**t)
        step(p, g, m, v, vm, mask, 0.01 / (1 - 0.9**t), 0.9, 0.999, 1e-8, 0.0, b2, amsgrad)
    return p


if sys.argv[2] == "inside":
    run(inside, True)
else:
    for amsgrad in (False, True):
        print(amsgrad, int(np.count_nonzero(run(adam_step, amsgrad) != run(inside, amsgrad))))
"""


def test_a_kernel_compiled_alone_rounds_as_inside_code_another_process_compiled(tmp_path):
    # One process compiles Adam inside another compiled function (as the training step does)
    # and caches it; the next compiles Adam alone (its own cache entry removed) and runs both.
    # With LLVM free to fuse multiplies and adds ('contract'), the two rounded differently:
    # 16 of these 192 values with amsgrad.
    (tmp_path / "wrapper_for_test.py").write_text(_WRAPPER)
    cache = tmp_path / "cache"
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache))
    env.pop("NUMBA_DISABLE_JIT", None)

    def run(what):
        proc = subprocess.run(
            [sys.executable, "-c", _ADAM, str(tmp_path), what],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert proc.returncode == 0, (what, proc.stderr[-2000:])
        return proc.stdout.split()

    run("inside")
    removed = [p for p in cache.rglob("optim.*")]
    assert removed, "the first process cached no optimizer kernel"
    for p in removed:
        p.unlink()
    assert run("both") == ["False", "0", "True", "0"]


_IDS = """
import os
import fastnn  # noqa: F401
from numba.core import bytecode

first = next(bytecode.FunctionIdentity._unique_ids)
r, w = os.pipe()
if os.fork() == 0:
    os.write(w, str(next(bytecode.FunctionIdentity._unique_ids)).encode())
    os._exit(0)
os.wait()
print(first, os.read(r, 64).decode())
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_processes_and_forked_children_number_compiled_functions_apart():
    # Numba names compiled code with a counter every process starts at 1 and a forked child
    # continues: code loaded from another process's cache could share a name with different
    # code compiled here. fastnn starts each process's (and child's) count at random.
    runs = [
        subprocess.run([sys.executable, "-c", _IDS], capture_output=True, text=True, timeout=120)
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), [r.stderr[-1000:] for r in runs]
    ids = [int(v) for r in runs for v in r.stdout.split()]
    assert len(ids) == 4 and len(set(ids)) == 4 and min(ids) > 1000, ids
