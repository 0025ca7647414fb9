"""An exp that LLVM vectorises, for the loops of the exp-based kernels, and ``exp_forward``.

Numba compiles ``np.exp`` to a call into libm for every value (llvmlite's LLVM has no vector
math library), which keeps LLVM from vectorising any loop that calls it: about 2 ns a value.
``_exp`` is plain arithmetic, which LLVM inlines into the caller's loop and vectorises (16
float32 or 8 float64 values an instruction with AVX-512):

    k = round(x / ln2), r = x - k ln2_hi - k ln2_lo    (|r| <= ln2/2; Cody and Waite: ln2_hi
                                                          has few bits, so k ln2_hi is exact)
    exp(r) = 1 + r w(r)                                (w: minimax polynomial, see _POLY)
    exp(x) = (1 + r w) 2^k1 2^k2,  k1 + k2 = k

The powers of two are built from their exponent bits (``_scale``). Two of them, because 2^k
alone would leave the exponent range for results that overflow or are subnormal; of the two
products only the last can round, so a subnormal result is 1 + r w rounded once more, to the
subnormal's precision. Everything is computed in the data's dtype (float32 data in float32,
which is where the speed is), without branches: the input is clamped with selects.

Special values are those of ``np.exp``: NaN gives NaN; +inf, and anything whose exp exceeds
the dtype's largest float, +inf; -inf, and anything whose exp is below half the smallest
subnormal, 0; results in the subnormal range are subnormal, not flushed to 0 (float32 below
x = -87.34, float64 below -708.40). Accuracy, measured by tests/test_kernels_exp.py against
exp in higher precision: at most 0.95 ulp for float32 over every float32 input and 0.90 ulp
for float64 over a dense sweep (1.21 and 1.17 ulp on a CPU without FMA).

``_expm1`` is exp(x) - 1 for x <= 0 from the same reduction: exp(x) - 1 = 2^k r w + 2^k - 1,
which is r w itself for |x| <= ln2/2, so it keeps its digits near 0 where exp(x) - 1 would
lose them to cancellation (at most 1.33 ulp, 1.39 without FMA). tanh and ELU use it.

Both are scalar functions for other kernels' loops, compiled with the kernels' fastmath flags
whatever the caller's and inlined by LLVM (Numba's own inlining, ``inline="always"``, trips its
IR scope checks when they are inlined into a select, with a NumbaIRAssumptionWarning; the
machine code is the same). Outside compiled code (NUMBA_DISABLE_JIT=1) they are ``np.exp``
and ``np.expm1``. The flags stay those of ``_config``: the reduction relies on t - shifter not
being reassociated, and NaN and inf on 'nnan' and 'ninf' being off.
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic, overload
from numba.np.numpy_support import as_dtype

from ._config import FASTMATH, PARALLEL, SERIAL, chunk_bounds, n_chunks

_OVERLOAD = {"inline": "never", "jit_options": {"fastmath": FASTMATH, "error_model": "numpy"}}

# Fraction bits and exponent bias of float32 and float64.
_LAYOUT = {32: (23, 127), 64: (52, 1023)}

# w(r) ~ (exp(r) - 1) / r on |r| <= ln2/2: minimax polynomials (lowest degree first) for the
# relative error, fitted by Remez exchange in 60-digit arithmetic (mpmath), then rounded to
# the dtype. Their own relative error is 1.1e-8 (float32, degree 5) and 1.8e-17 (float64,
# degree 10), about 0.1 ulp: the rest of the error is rounding.
_POLY = {
    32: (
        1.000000010640679382538,
        0.499999981225588154094,
        0.1666650609139393451603,
        0.041667136579529065548,
        0.008369082852554637066489,
        0.001388887311140080573446,
    ),
    64: (
        1.000000000000000002581,
        0.5000000000000005559101,
        0.1666666666666656333044,
        0.04166666666657376020456,
        0.008333333333397934667828,
        0.001388888893231086607234,
        0.0001984126970731116095493,
        0.00002480150453605024841181,
        0.00000275574148615165371173,
        2.762629035079899937672e-7,
        2.505209811334651450336e-8,
    ),
}


class _Constants:
    """The constants of one dtype, as NumPy scalars of that dtype (Numba freezes them into
    the compiled code with their type, so float32 arithmetic stays float32)."""

    def __init__(self, width, ln2_hi, ln2_lo, exp_lo, exp_hi, expm1_lo):
        f = np.dtype(f"f{width // 8}").type
        mant, bias = _LAYOUT[width]
        self.one = f(1.0)
        self.log2e = f(1.4426950408889634)
        # Adding 1.5 * 2^mant rounds x / ln2 to an integer k (to nearest, in the fma) and
        # leaves k + offset in the low bits of t; the offset (2 biases for exp's two powers of
        # two, one for expm1's one) spares adding the exponent bias afterwards (_scale, _pow2).
        self.shifter_exp = f(1.5 * 2.0**mant + 2 * bias)
        self.shifter_expm1 = f(1.5 * 2.0**mant + bias)
        self.ln2_hi = f(ln2_hi)
        self.ln2_lo = f(ln2_lo)
        # Highest degree first, for Horner's scheme.
        self.poly = tuple(f(c) for c in reversed(_POLY[width]))
        # exp clamps its input to [exp_lo, exp_hi], beyond which exp is 0 or inf anyway; k
        # then leaves both powers of two in the exponent range.
        self.exp_lo, self.exp_hi = f(exp_lo), f(exp_hi)
        # expm1 clamps at expm1_lo, below which the result is -1 in this dtype and 2^k normal.
        self.expm1_lo = f(expm1_lo)


# ln2 = ln2_hi + ln2_lo, ln2_lo rounded from the exact difference (not from float64's ln2,
# whose own error, times k ~ 1000, would cost float64 200 ulp). ln2_hi has 9 (float32) and
# 32 (float64) significant bits: k ln2_hi is exact for every k of a clamped input (|k| < 2^8,
# 2^11). float64's split is fdlibm's.
_CONSTANTS = {
    32: _Constants(32, 0.693359375, -2.1219444005469057e-4, -110.0, 89.0, -80.0),
    64: _Constants(64, 0.693147180369123816490, 1.9082149292705877e-10, -750.0, 710.0, -700.0),
}


def _bits(builder, t, width, shift):
    """The bits of float t as an integer, shifted left by ``shift`` >= mant - 1. For
    t = shifter + K the shifter's own bits shift out (its lowest set bit is 2^(mant-1)),
    leaving K << shift."""
    ity = ir.IntType(width)
    return builder.shl(builder.bitcast(t, ity), ity(shift))


@intrinsic
def _scale(typingctx, p, t):
    """p * 2^k, t = shifter_exp + k (see _Constants), as (p * 2^k1) * 2^k2 with k1 + k2 = k.

    One power of two cannot hold 2^k for every k whose product is finite and nonzero (from
    2^-150 to 2^128 for float32); two can, each built from its exponent bits: with
    K = k + 2 bias, the biased exponents K >> 1 and K - (K >> 1), shifted into place.
    """
    if not (isinstance(p, types.Float) and p == t):
        return None

    def codegen(context, builder, signature, args):
        p_value, t_value = args
        width = signature.return_type.bitwidth
        mant, _ = _LAYOUT[width]
        ity = ir.IntType(width)
        exponent_field = ity(((1 << (width - 1 - mant)) - 1) << mant)
        k_half = builder.and_(_bits(builder, t_value, width, mant - 1), exponent_field)
        k_rest = builder.sub(_bits(builder, t_value, width, mant), k_half)
        once = builder.fmul(p_value, builder.bitcast(k_half, p_value.type))
        return builder.fmul(once, builder.bitcast(k_rest, p_value.type))

    return p(p, t), codegen


@intrinsic
def _pow2(typingctx, t):
    """2^k for t = shifter_expm1 + k (see _Constants); k must lie in the normal range."""
    if not isinstance(t, types.Float):
        return None

    def codegen(context, builder, signature, args):
        (t_value,) = args
        width = signature.return_type.bitwidth
        mant, _ = _LAYOUT[width]
        return builder.bitcast(_bits(builder, t_value, width, mant), t_value.type)

    return t(t), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c, rounded once where the CPU has a fused multiply-add (LLVM's ``fmuladd``:
    the machine decides, not the surrounding code). The kernels' flags leave out 'contract'
    (see _config), so every fused operation is one of these, written where it is wanted."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fmuladd", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)

    return a(a, b, c), codegen


# Like the overloads below, left to LLVM to inline (see the module's docstring).
@njit(**SERIAL)
def _reduce(x, log2e, shifter, ln2_hi, ln2_lo, poly):
    """(t, r, w): x = k ln2 + r, t holds k = round(x / ln2) in its low bits, and
    exp(r) = 1 + r w, which the caller computes with one fma."""
    # Without reassoc, t - shifter stays as written.
    t = _fma(x, log2e, shifter)
    kf = t - shifter
    r = _fma(-kf, ln2_lo, _fma(-kf, ln2_hi, x))
    w = poly[0]
    for c in poly[1:]:
        w = _fma(w, r, c)
    return t, r, w


def _exp(x):
    """exp(x) (compiled: the vectorisable form of this module; in Python: np.exp)."""
    return np.exp(x)


@overload(_exp, **_OVERLOAD)
def _exp_compiled(x):
    if not isinstance(x, types.Float):
        return None
    c = _CONSTANTS[x.bitwidth]
    one, lo, hi = c.one, c.exp_lo, c.exp_hi
    log2e, shifter, ln2_hi, ln2_lo, poly = c.log2e, c.shifter_exp, c.ln2_hi, c.ln2_lo, c.poly

    def impl(x):
        # Selects, not branches; a NaN fails both comparisons and goes on as NaN.
        x = hi if x > hi else x
        x = lo if x < lo else x
        t, r, w = _reduce(x, log2e, shifter, ln2_hi, ln2_lo, poly)
        return _scale(_fma(r, w, one), t)

    return impl


def _expm1(x):
    """exp(x) - 1 for x <= 0 (compiled: from this module's reduction, any value for x > 0,
    which its callers replace with a select; in Python: np.expm1, 0 for x > 0)."""
    return np.expm1(np.minimum(x, 0))


@overload(_expm1, **_OVERLOAD)
def _expm1_compiled(x):
    if not isinstance(x, types.Float):
        return None
    c = _CONSTANTS[x.bitwidth]
    one, lo = c.one, c.expm1_lo
    log2e, shifter, ln2_hi, ln2_lo, poly = c.log2e, c.shifter_expm1, c.ln2_hi, c.ln2_lo, c.poly

    def impl(x):
        # No upper clamp: callers select another value for x > 0 (a NaN stays NaN here).
        x = lo if x < lo else x
        t, r, w = _reduce(x, log2e, shifter, ln2_hi, ln2_lo, poly)
        s = _pow2(t)
        # exp(x) - 1 = 2^k r w + (2^k - 1): r w itself when k = 0, where the digits matter;
        # s r and s - 1 are exact, the fma rounds once.
        return _fma(s * r, w, s - one)

    return impl


def _cast(c, like):
    """c as a scalar of the float type of ``like`` (a float or an array of floats): Numba
    computes float32 op float64 in float64, so float32 code needs float32 constants."""
    return np.asarray(like).dtype.type(c)


@overload(_cast, inline="always")
def _cast_compiled(c, like):
    kind = like.dtype if isinstance(like, types.Array) else like
    if not isinstance(kind, types.Float):
        return None
    to = as_dtype(kind).type

    def impl(c, like):
        return to(c)

    return impl


@njit(**SERIAL)
def _exp_range(x, out, lo, hi):
    # Unsigned indices spare Numba's negative-index check, which keeps LLVM from vectorising.
    for i in range(np.uint64(lo), np.uint64(hi)):
        out[i] = _exp(x[i])


@njit(**PARALLEL)
def exp_forward(x, out):
    """out = exp(x), 1-D, as np.exp (see the module's docstring for the accuracy)."""
    n = x.size
    c = n_chunks(n)
    if c == 1:
        _exp_range(x, out, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _exp_range(x, out, lo, hi)
