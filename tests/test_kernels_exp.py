"""fastexp's exp and expm1 against exp in higher precision, and ``exp_forward`` against its
NumPy twin.

Errors are in ulps of the result's dtype against a reference that is not rounded to it: the
ulp of a value is that of its binade, 2^(floor(log2 |value|) - 23) for float32 and - 52 for
float64, and 2^-149 or 2^-1074 in the subnormal range.

- float32 exp: EVERY float32 input. Those in [-110, 110] (2.24e9 bit patterns) against
  NumPy's exp of the input in float64 (within a few float64 ulps: 2^-29 float32 ulp, nothing
  at this scale); those beyond, and all NaNs, must give exactly 0, inf or NaN; results that
  round to 0 or overflow must too. About 10-20 s on 2 cores.
- float32 expm1 (x <= 0: what tanh and ELU use): every float32 in [-20, 0] against NumPy's
  expm1 in float64; every one below must give -1.
- float64 exp: a dense deterministic sweep, 2^23 points evenly spaced over [-746, 710] and
  2^22 bit patterns evenly spaced over the whole float64 line, against np.exp in
  np.longdouble (x87 extended precision, 11 more bits: about 0.0005 float64 ulp of its own
  error). float64 expm1: 2^22 points over [-40, 0] and 2^20 bit patterns over [-2, 0].
- Special values: NaN, +-inf, +-0, the thresholds where exp overflows, rounds to 0 and turns
  subnormal, with their neighbours, subnormal results and the largest finite inputs.

Maximum errors measured (ulp):

                       with FMA   without FMA
    float32 exp          0.951       1.212      (all inputs)
    float32 expm1        1.326       1.384      (x <= 0)
    float64 exp          0.901       1.169      (the sweep)
    float64 expm1        1.232       1.388      (the sweep)

"With FMA" is the development machine (AVX-512; LLVM contracts a * b + c into one fma under
the kernels' 'contract' flag); "without" is the same code compiled for a CPU without FMA
(NUMBA_CPU_NAME=x86-64), where each a * b + c rounds twice. The tests assert these, for the
kind of machine they run on, with 0.05 ulp to spare for another LLVM's choice of contractions.
"""

import numpy as np
import pytest
from numba import njit, prange

from conftest import tol
from fastnn.kernels import fastexp
from fastnn.kernels._config import PARALLEL_MIN
from fastnn.kernels.fastexp import _exp, _expm1
from fastnn.kernels.reference import fastexp as ref


@njit(fastmath={"contract"})
def _multiply_add(a, b, c):
    return a * b + c


# Whether Numba's code here fuses a * b + c: (1 + 2^-30)^2 - (1 + 2^-29) is 2^-60 exactly,
# 0 when the product is rounded first.
FMA = _multiply_add(1 + 2.0**-30, 1 + 2.0**-30, -(1 + 2.0**-29)) != 0
MAX_ULP = {  # (dtype, function): measured maximum error in ulps, see the docstring
    ("float32", "exp"): 0.951 if FMA else 1.212,
    ("float32", "expm1"): 1.326 if FMA else 1.384,
    ("float64", "exp"): 0.901 if FMA else 1.169,
    ("float64", "expm1"): 1.232 if FMA else 1.388,
}
SPARE = 0.05

F32_SWEEP = 110.0  # |x| <= this: against the reference; beyond: exactly 0 or inf
CHUNK = 1 << 22


# -- float32: every input --------------------------------------------------------------------------
@njit(parallel=True, error_model="numpy")
def _apply(x, out, which):
    # The function under test, in the same compiled, vectorised form as in the kernels.
    for i in prange(x.size):
        out[i] = _exp(x[i]) if which == 0 else _expm1(x[i])


# ulp of a float32 value with float64 biased exponent e: 2^(e - 1023 - 23), 2^-149 at least.
_ULP_F32 = np.ldexp(1.0, np.maximum(np.arange(2048) - 1023, -126) - 23)


@njit(parallel=True, error_model="numpy")
def _fill_bits(buf, start):
    for i in prange(buf.size):
        buf[i] = start + i


@njit(parallel=True, error_model="numpy")
def _ulp_errors_f32(y, want, ulp, err):
    """err = error in ulps of float32 results y against float64 references want (NaN for a
    NaN result); returns how many results are on the wrong side of 0 or inf or NaN: where the
    reference rounds to 0 or overflows in float32 (or is NaN) the result must be exactly so.
    Branch-free, so that LLVM vectorises it."""
    bits = want.view(np.uint64)
    wrong = 0
    for i in prange(y.size):
        r = want[i]
        r32 = np.float32(r)
        got = y[i]
        special = (r32 == 0) | (r32 == np.inf) | (r != r)
        exact = (got == r32) | ((r != r) & (got != got))
        wrong += special & ~exact
        e = abs(np.float64(got) - r) / ulp[(bits[i] >> 52) & 0x7FF]
        err[i] = 0.0 if special else e
    return wrong


def _f32_sweep(which, lo, hi, reference):
    """(max ulp error, wrong-side count) of exp (which=0) or expm1 (which=1) over every
    float32 in [lo, hi]."""
    ranges = []  # bit patterns, as [first, last] pairs: the positive and the negative side
    if hi >= 0:
        ranges.append((0, int(np.float32(hi).view(np.uint32))))
    if lo <= 0:
        ranges.append((0x80000000, int(np.float32(lo).view(np.uint32))))
    bits = np.empty(CHUNK, np.uint32)  # buffers reused: fresh ones cost their page faults
    y = np.empty(CHUNK, np.float32)
    want = np.empty(CHUNK, np.float64)
    err = np.empty(CHUNK, np.float64)
    worst, wrong = 0.0, 0
    for first, last in ranges:
        for start in range(first, last + 1, CHUNK):
            n = min(CHUNK, last + 1 - start)
            _fill_bits(bits[:n], start)
            x = bits[:n].view(np.float32)
            _apply(x, y[:n], which)
            np.copyto(want[:n], x)
            with np.errstate(all="ignore"):
                reference(want[:n], out=want[:n])
            wrong += _ulp_errors_f32(y[:n], want[:n], _ULP_F32, err[:n])
            worst = max(worst, err[:n].max())  # NaN if any result is NaN where it must not be
    return worst, wrong


@njit(parallel=True, error_model="numpy")
def _count_not(which, first, last, value):
    """How many float32 bit patterns in [first, last] do not give ``value`` (NaN: any NaN)."""
    n = last - first + 1
    parts = 64
    miss = np.zeros(parts, np.int64)
    for p in prange(parts):
        buf = np.empty(1 << 16, np.uint32)
        x = buf.view(np.float32)
        lo = first + p * n // parts
        hi = first + (p + 1) * n // parts
        for start in range(lo, hi, buf.size):
            m = min(buf.size, hi - start)
            for i in range(m):
                buf[i] = start + i
            for i in range(m):
                got = _exp(x[i]) if which == 0 else _expm1(x[i])
                if not (got == value or (value != value and got != got)):
                    miss[p] += 1
    return miss.sum()


def _bits(v):
    return int(np.float32(v).view(np.uint32))


@pytest.mark.slow
def test_float32_exp_every_input():
    worst, wrong = _f32_sweep(0, -F32_SWEEP, F32_SWEEP, np.exp)
    assert wrong == 0
    assert worst <= MAX_ULP["float32", "exp"] + SPARE, worst
    # Beyond the sweep: overflow, underflow, and every NaN.
    assert _count_not(0, _bits(F32_SWEEP) + 1, _bits(np.inf), np.float32(np.inf)) == 0
    assert _count_not(0, _bits(-F32_SWEEP) + 1, _bits(-np.inf), np.float32(0)) == 0
    assert _count_not(0, _bits(np.inf) + 1, 0x7FFFFFFF, np.float32(np.nan)) == 0
    assert _count_not(0, _bits(-np.inf) + 1, 0xFFFFFFFF, np.float32(np.nan)) == 0


@pytest.mark.slow
def test_float32_expm1_every_nonpositive_input():
    worst, wrong = _f32_sweep(1, -20.0, 0.0, np.expm1)
    assert wrong == 0
    assert worst <= MAX_ULP["float32", "expm1"] + SPARE, worst
    assert _count_not(1, _bits(-20.0) + 1, _bits(-np.inf), np.float32(-1)) == 0
    assert _count_not(1, _bits(-np.inf) + 1, 0xFFFFFFFF, np.float32(np.nan)) == 0


# -- float64: dense sweeps -------------------------------------------------------------------------
def _ulp_errors_f64(x, y, reference):
    """Max error in float64 ulps of y against reference(x) in np.longdouble."""
    want = reference(x.astype(np.longdouble))
    finite = np.isfinite(want.astype(np.float64)) & (want.astype(np.float64) != 0)
    # Rounds to 0 or overflows in float64: must come out exactly so.
    assert np.array_equal(y[~finite], want[~finite].astype(np.float64), equal_nan=True)
    w = want[finite]
    e = np.maximum(np.frexp(np.abs(w))[1] - 1, -1022)
    err = np.abs(y[finite].astype(np.longdouble) - w) / np.ldexp(np.longdouble(1), e - 52)
    k = np.argmax(err)
    return float(err[k]), x[finite][k]


def _float64_points(lo, hi, dense, spread, spread_lo=None, spread_hi=None):
    """dense points evenly spaced over [lo, hi] and ``spread`` evenly spaced bit patterns
    (the float64 line in order: -inf ... -0, +0 ... +inf) over [spread_lo, spread_hi]."""
    spread_lo = -np.inf if spread_lo is None else spread_lo
    spread_hi = np.inf if spread_hi is None else spread_hi

    def order(v):  # the position of float64 v on the float64 line, as an integer
        b = int(np.float64(v).view(np.int64))
        return b if b >= 0 else -(b & 0x7FFFFFFFFFFFFFFF) - 1

    keys = np.linspace(order(spread_lo), order(spread_hi), spread).astype(np.int64)
    patterns = np.where(keys >= 0, keys, (-keys - 1) | np.int64(-0x8000000000000000))
    return np.concatenate([np.linspace(lo, hi, dense), patterns.view(np.float64)])


def _f64_longdouble_available():
    return np.finfo(np.longdouble).nmant >= 63


needs_longdouble = pytest.mark.skipif(
    not _f64_longdouble_available(), reason="np.longdouble is no wider than float64 here"
)


@needs_longdouble
def test_float64_exp_dense_sweep():
    x = _float64_points(-746.0, 710.0, 1 << 23, 1 << 22)
    x = x[~np.isnan(x)]
    y = np.empty_like(x)
    _apply(x, y, 0)
    with np.errstate(all="ignore"):
        worst, at = _ulp_errors_f64(x, y, np.exp)
    assert worst <= MAX_ULP["float64", "exp"] + SPARE, (worst, at)


@needs_longdouble
def test_float64_expm1_dense_sweep():
    x = _float64_points(-40.0, 0.0, 1 << 22, 1 << 20, -2.0, -0.0)
    y = np.empty_like(x)
    _apply(x, y, 1)
    with np.errstate(all="ignore"):
        worst, at = _ulp_errors_f64(x, y, np.expm1)
    assert worst <= MAX_ULP["float64", "expm1"] + SPARE, (worst, at)
    below = np.array([-40.0, -700.0, -1e300, -np.inf])
    _apply(below, y[:4], 1)
    np.testing.assert_array_equal(y[:4], -1.0)


# -- special values --------------------------------------------------------------------------------
def _special(dtype):
    """Inputs at every edge of exp in ``dtype``: special values, and each threshold (exp
    overflows above, rounds to 0 below, is subnormal below) with its neighbours, and inputs
    across the subnormal results."""
    f = np.dtype(dtype).type
    info = np.finfo(dtype)
    big = np.log(np.float64(info.max))
    tiny = np.log(np.float64(info.smallest_subnormal)) - np.log(2.0)  # half the smallest
    normal = np.log(np.float64(info.smallest_normal))
    values = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, info.max, -info.max, info.tiny]
    values += [-info.tiny, info.smallest_subnormal, 1.0, -1.0]
    for t in (big, tiny, normal):
        v = f(t)
        values += [np.nextafter(v, f(-np.inf)), v, np.nextafter(v, f(np.inf))]
    return np.concatenate([np.array(values, dtype), np.linspace(tiny, normal, 33).astype(dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_special_values(dtype):
    x = _special(dtype)
    y = np.empty_like(x)
    _apply(x, y, 0)
    info = np.finfo(dtype)
    with np.errstate(all="ignore"):
        wide = np.float64 if dtype == np.float32 else np.longdouble
        exact = np.exp(x.astype(wide))  # the reference, before rounding to dtype
        want = exact.astype(dtype)
        numpy_exp = np.exp(x)
    # NaN, +inf and 0 exactly where the rounded reference has them, and where np.exp has
    # them (which rounds the same at these thresholds); subnormal where they are.
    for got in (want, numpy_exp):
        np.testing.assert_array_equal(np.isnan(y), np.isnan(got))
        np.testing.assert_array_equal(np.isposinf(y), np.isposinf(got))
        np.testing.assert_array_equal(y == 0, got == 0)
        np.testing.assert_array_equal(np.abs(y) < info.tiny, np.abs(got) < info.tiny)
    np.testing.assert_array_equal(y[4:6], [1.0, 1.0])  # exp(+-0)
    finite = np.isfinite(want) & (want != 0)
    e = np.maximum(np.frexp(exact[finite])[1] - 1, info.minexp)
    err = np.abs(y[finite].astype(wide) - exact[finite]) / np.ldexp(wide(1), e - info.nmant)
    bound = MAX_ULP[np.dtype(dtype).name, "exp"] + SPARE
    assert err.max() <= bound, (err.max(), x[finite][np.argmax(err)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_expm1_special_values(dtype):
    info = np.finfo(dtype)
    x = np.array(
        [np.nan, -np.inf, -0.0, 0.0, -info.smallest_subnormal, -info.tiny, -1e-30, -0.3, -1.0],
        dtype,
    )
    y = np.empty_like(x)
    _apply(x, y, 1)
    assert np.isnan(y[0])
    np.testing.assert_array_equal(y[1:6], [-1.0, 0.0, 0.0, x[4], x[5]])  # exp(x) - 1 = x here
    np.testing.assert_allclose(y[6:], np.expm1(x[6:].astype(np.float64)), rtol=2 * info.eps)


# -- the kernel against its twin -------------------------------------------------------------------
@pytest.mark.nojit
@pytest.mark.parametrize("n", [0, 1, 7, 100, 1001])
def test_exp_forward_matches_reference(n, dtype, rng):
    x = (rng.standard_normal(n) * 30).astype(dtype)
    x[: min(n, 4)] = [np.nan, np.inf, -np.inf, 1e4][: min(n, 4)]
    y, y_ref = np.empty_like(x), np.empty_like(x)
    with np.errstate(all="ignore"):
        fastexp.exp_forward(x, y)
        ref.exp_forward(x, y_ref)
    np.testing.assert_allclose(y, y_ref, **tol(dtype))


def test_exp_forward_parallel_path_matches_serial(rng):
    n = PARALLEL_MIN * 3 + 5
    x = (rng.standard_normal(n) * 40).astype(np.float32)
    y = np.empty_like(x)
    fastexp.exp_forward(x, y)
    for lo in range(0, n, n // 5):
        piece = np.ascontiguousarray(x[lo : lo + 999])
        ys = np.empty_like(piece)
        fastexp.exp_forward(piece, ys)
        np.testing.assert_array_equal(y[lo : lo + 999], ys)
    # Within 2 ulp (2^-23 relative each) of exp in float64 rounded to float32 (inf above
    # the overflow threshold), or of a subnormal result.
    with np.errstate(over="ignore"):
        want = np.exp(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_allclose(y, want, rtol=2.4e-7, atol=2.0**-148)
