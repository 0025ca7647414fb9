"""Every kernel against its NumPy twin on inputs holding NaN and +-inf (issue 14, item 7):
kernels must propagate NaN and infinity as their twins, NumPy and PyTorch do, so that a
diverging run is detected and ``predict`` on NaN rows does not answer with confidence.

The inputs are the benchmarks' (``bench/benchmarks/cases.py``: every kernel, with arguments
of the right shapes) with NaN, +inf and -inf written into every float array, at the start, in
the middle and at the end, at a small size and at one large enough for the parallel paths.
Where the twin gives NaN the kernel must give NaN; where it gives +-inf, a non-finite value
(a one-pass batch statistic of an infinite column may be NaN where NumPy's two-pass one is
inf); where it gives a finite value, a finite value.
"""

import copy
import importlib
import inspect
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench" / "benchmarks"))
import cases  # noqa: E402

MODULES = cases.KERNEL_MODULES
SCRATCH = {"work"}  # kernel-only workspace, which the twins do not use


def _find(name, package):
    for module in MODULES:
        found = getattr(importlib.import_module(f"{package}.{module}"), name, None)
        if found is not None:
            return found
    raise LookupError(name)


def _poison(args):
    for a in args:
        if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size >= 3:
            flat = a.reshape(-1)
            flat[:3] = [np.nan, np.inf, -np.inf]
            flat[flat.size // 2] = np.nan
            flat[-1] = -np.inf
    return args


def _agree(kernel_value, twin_value, what):
    k = np.asarray(kernel_value, dtype=np.float64)
    t = np.asarray(twin_value, dtype=np.float64)
    assert k.shape == t.shape, what
    lost_nan = np.isnan(t) & ~np.isnan(k)
    assert not lost_nan.any(), (
        f"{what}: NaN lost at {np.flatnonzero(lost_nan)[:5]}: {k[lost_nan][:5]}"
    )
    lost_inf = np.isinf(t) & np.isfinite(k)
    assert not lost_inf.any(), f"{what}: infinity lost at {np.flatnonzero(lost_inf)[:5]}"
    made = np.isfinite(t) & ~np.isfinite(k)
    assert not made.any(), (
        f"{what}: non-finite where the twin is finite at {np.flatnonzero(made)[:5]}"
    )


@pytest.mark.parametrize("size", [(7, 5), (600, 512)], ids=["small", "parallel"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", sorted(cases.CASES))
def test_kernels_propagate_nan_and_inf_as_their_twins(name, dtype, size):
    kernel = _find(name, "fastnn.kernels")
    twin = _find(name, "fastnn.kernels.reference")
    args = _poison(cases.CASES[name](*size, dtype, np.random.default_rng(0)))
    names = list(inspect.signature(twin).parameters)
    kernel_args, twin_args = copy.deepcopy(args), copy.deepcopy(args)
    with np.errstate(all="ignore"):
        got = kernel(*kernel_args)
        want = twin(*twin_args)
    if want is not None:
        _agree(got, want, f"{name} result")
    for arg_name, k, t in zip(names, kernel_args, twin_args, strict=True):
        if isinstance(k, np.ndarray) and k.dtype.kind == "f" and arg_name not in SCRATCH:
            _agree(k, t, f"{name} {arg_name}")


def test_relu_keeps_nan_in_predictions():
    # The example: predict on all-NaN rows answered with confident class-0 outputs.
    import fastnn as fn

    model = fn.MLP([3, 4, 2], seed=0)
    out = model.predict(np.full((2, 3), np.nan, np.float32))
    assert np.isnan(out).all()
    np.testing.assert_array_equal(fn.ReLU()(np.array([np.nan, -1.0, 2.0])), [np.nan, 0.0, 2.0])
