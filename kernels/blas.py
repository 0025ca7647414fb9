"""Matrix products by BLAS, callable from Python and from inside other compiled kernels.

``gemm(a, b, c, trans_a, trans_b, beta)`` computes c = op(a) @ op(b) + beta * c by calling
BLAS's sgemm/dgemm, the ones SciPy exports in ``scipy.linalg.cython_blas``, with no check,
copy or allocation on the way. With SciPy's wheels that is the OpenBLAS SciPy bundles
(``scipy.libs/libscipy_openblas-*``, 32-bit integers), not NumPy's (``libscipy_openblas64_``):
two libraries, each with its own thread pool and thread count. ``threadpoolctl`` (hence
``fastnn.set_num_threads``) sets both.

``set_blas_threads(n)`` and ``blas_threads()`` set and read the thread count of the OpenBLAS
that ``gemm`` calls, from Python or from compiled code (a few ns there). The count is the
library's, for the whole process (not the calling thread's). Where SciPy's BLAS is not an
OpenBLAS found here, they do nothing and ``blas_threads()`` returns 0.

OpenBLAS already sizes its threads per product: 0.3.30 gives a product at most
m * n * k / 262144 threads (one below 524288), and runs those its small-matrix kernel takes
(float32 on SkylakeX kernels: m * n * k <= 1e6, but with b transposed only when c has at
most 1200 elements) on one. Choosing 1 or 2 threads per product on top of that did not
make a training step's products faster on 2 cores (``bench/blas_speed.py``,
bench/NOTES.md), so nothing here does.

Why not ctypes function pointers: a compiled function that calls one holds its address as a
constant, and Numba then refuses to cache that function ("uses dynamic globals") and every
kernel that calls it, so a compiled training step would be recompiled in every process.
Instead this module registers the addresses with LLVM under names of its own when it is
imported (``llvmlite.binding.add_symbol``) and compiled code calls those names: cached machine
code is linked to wherever SciPy's BLAS is in the process that loads it.
"""

import ctypes
import os

import llvmlite.binding as llvm
import numba
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import get_cython_function_address, intrinsic

from ._config import SERIAL

# The names compiled code calls; fastnn's own, so that no other library can provide them.
_SYMBOLS = {types.float32: "fastnn_blas_sgemm", types.float64: "fastnn_blas_dgemm"}
_GEMV_SYMBOLS = {types.float32: "fastnn_blas_sgemv", types.float64: "fastnn_blas_dgemv"}
_ADDRESSES = {
    f"fastnn_blas_{name}": get_cython_function_address("scipy.linalg.cython_blas", name)
    for name in ("sgemm", "dgemm", "sgemv", "dgemv")
}
for _name, _address in _ADDRESSES.items():
    llvm.add_symbol(_name, _address)

_N = ord("N")  # BLAS's transpose codes: 'N', and 'T' = _N + _T_MINUS_N
_T_MINUS_N = ord("T") - ord("N")


# -- the OpenBLAS behind scipy.linalg.cython_blas ---------------------------------------------
def _find_openblas():
    """threadpoolctl's controller of the OpenBLAS that SciPy's cython_blas calls, or None.

    It is the OpenBLAS with 32-bit integers (``sgemm_``, with or without SciPy's ``scipy_``
    symbol prefix; NumPy's has 64-bit ones, ``scipy_sgemm_64_``), preferring one inside
    SciPy's installation when several are loaded."""
    import scipy
    from threadpoolctl import ThreadpoolController

    found = []
    for lib in ThreadpoolController().lib_controllers:
        if lib.internal_api != "openblas":
            continue
        if any(hasattr(lib.dynlib, f"{p}sgemm_") for p in ("scipy_", "")):
            found.append(lib)
    scipy_dir = os.path.dirname(os.path.realpath(scipy.__file__))
    own = [lib for lib in found if os.path.realpath(lib.filepath).startswith(scipy_dir)]
    if len(own) == 1:
        return own[0]
    return found[0] if len(found) == 1 else None


def _symbol(lib, name):
    for prefix in ("scipy_", ""):
        fn = getattr(lib.dynlib, prefix + name, None)
        if fn is not None:
            return ctypes.cast(fn, ctypes.c_void_p).value
    return None


OPENBLAS = _find_openblas()
"""threadpoolctl's controller of the OpenBLAS ``gemm`` calls (``.filepath``, ``.version``,
``.architecture``, ``.num_threads``), or None when there is none to be found."""

# Compiled code reads the two function pointers from this cell at every call, so cached code
# never holds an address: [openblas_set_num_threads, openblas_get_num_threads], NULL if absent.
_THREAD_FNS = (ctypes.c_void_p * 2)()
if OPENBLAS is not None:
    _THREAD_FNS[0] = _symbol(OPENBLAS, "openblas_set_num_threads")
    _THREAD_FNS[1] = _symbol(OPENBLAS, "openblas_get_num_threads")
llvm.add_symbol("fastnn_blas_thread_fns", ctypes.addressof(_THREAD_FNS))


# -- compiled calls -----------------------------------------------------------------------------
def _by_reference(context, builder, args, argtypes, kinds):
    """Fortran's arguments, all by pointer: an array's data pointer where ``kinds`` has None,
    else a stack slot of the calling function holding the value cast to that type."""
    ptrs = []
    for value, ty, kind in zip(args, argtypes, kinds, strict=True):
        if kind is None:
            ptrs.append(context.make_array(ty)(context, builder, value).data)
        else:
            cast = context.cast(builder, value, ty, kind)
            ptrs.append(cgutils.alloca_once_value(builder, cast))
    return ptrs


@intrinsic
def _xgemm(typingctx, ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):
    """One call of the Fortran ?gemm with alpha = 1 on column-major operands. Fortran takes
    every argument by pointer: the scalars go in stack slots of the calling function."""
    arrays = (a, b, c)
    if not all(isinstance(x, types.Array) and x.dtype == c.dtype for x in arrays):
        return None  # a typing error at compile time: mixed dtypes
    if c.dtype not in _SYMBOLS:
        return None
    dtype = c.dtype
    sig = types.void(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc)

    def codegen(context, builder, signature, args):
        fl = context.get_value_type(dtype)
        p8, p32, pf = ir.IntType(8).as_pointer(), ir.IntType(32).as_pointer(), fl.as_pointer()
        fnty = ir.FunctionType(
            ir.VoidType(), [p8, p8, p32, p32, p32, pf, pf, p32, pf, p32, pf, pf, p32]
        )
        fn = cgutils.get_or_insert_function(builder.module, fnty, _SYMBOLS[dtype])
        # What each argument becomes: an array's data pointer, or a slot of this C type.
        kinds = [
            types.int8, types.int8, types.int32, types.int32, types.int32, None,
            types.int32, None, types.int32, dtype, None, types.int32,
        ]  # fmt: skip
        ptrs = _by_reference(context, builder, args, signature.args, kinds)
        alpha = cgutils.alloca_once_value(builder, ir.Constant(fl, 1.0))
        builder.call(fn, ptrs[:5] + [alpha] + ptrs[5:])
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _xgemv(typingctx, trans, m, n, a, lda, x, beta, y):
    """One call of the Fortran ?gemv with alpha = 1 and unit strides: y = op(A) x + beta y,
    A column-major (m, n) with leading dimension lda."""
    if not all(isinstance(v, types.Array) and v.dtype == y.dtype for v in (a, x, y)):
        return None
    if y.dtype not in _GEMV_SYMBOLS:
        return None
    dtype = y.dtype
    sig = types.void(trans, m, n, a, lda, x, beta, y)

    def codegen(context, builder, signature, args):
        fl = context.get_value_type(dtype)
        p8, p32, pf = ir.IntType(8).as_pointer(), ir.IntType(32).as_pointer(), fl.as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [p8, p32, p32, pf, pf, p32, pf, p32, pf, pf, p32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, _GEMV_SYMBOLS[dtype])
        kinds = [types.int8, types.int32, types.int32, None, types.int32, None, dtype, None]
        ptrs = _by_reference(context, builder, args, signature.args, kinds)
        one = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(32), 1))
        alpha = cgutils.alloca_once_value(builder, ir.Constant(fl, 1.0))
        trans_, m_, n_, a_, lda_, x_, beta_, y_ = ptrs
        builder.call(fn, [trans_, m_, n_, alpha, a_, lda_, x_, one, beta_, y_, one])
        return context.get_dummy_value()

    return sig, codegen


def _thread_fn(builder, context, index, fnty):
    """(pointer to ``_THREAD_FNS[index]`` as ``fnty``, whether it is non-NULL)."""
    i8p = ir.IntType(8).as_pointer()
    cell = context.get_c_value(builder, ir.ArrayType(i8p, 2), "fastnn_blas_thread_fns")
    fp = builder.load(cgutils.gep(builder, cell, 0, index))
    return builder.bitcast(fp, fnty.as_pointer()), cgutils.is_not_null(builder, fp)


@intrinsic
def _set_threads(typingctx, n):
    if not isinstance(n, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fn, ok = _thread_fn(builder, context, 0, ir.FunctionType(ir.VoidType(), [i32]))
        with builder.if_then(ok):
            builder.call(fn, [context.cast(builder, args[0], signature.args[0], types.int32)])
        return context.get_dummy_value()

    return types.void(n), codegen


@intrinsic
def _get_threads(typingctx):
    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        fn, ok = _thread_fn(builder, context, 1, ir.FunctionType(i32, []))
        out = cgutils.alloca_once_value(builder, i32(0))
        with builder.if_then(ok):
            builder.store(builder.call(fn, []), out)
        return builder.sext(builder.load(out), ir.IntType(64))

    return types.int64(), codegen


if numba.config.DISABLE_JIT:
    # Intrinsics exist only in compiled code. Under NUMBA_DISABLE_JIT (coverage runs, the
    # nojit tests) the same calls go through ctypes, so the Python logic around them runs.
    _P = ctypes.c_void_p
    _CFUNCS = {
        np.dtype(t.name): ctypes.CFUNCTYPE(None, *[_P] * 13)(_ADDRESSES[s])
        for t, s in _SYMBOLS.items()
    }
    _GEMV_CFUNCS = {
        np.dtype(t.name): ctypes.CFUNCTYPE(None, *[_P] * 11)(_ADDRESSES[s])
        for t, s in _GEMV_SYMBOLS.items()
    }

    def _xgemm(ta, tb, m, n, k, a, lda, b, ldb, beta, c, ldc):  # noqa: F811
        ref, ct = ctypes.byref, np.ctypeslib.as_ctypes_type(c.dtype)
        chars = [ctypes.c_char(bytes([int(t)])) for t in (ta, tb)]
        ints = [ctypes.c_int(int(v)) for v in (m, n, k, lda, ldb, ldc)]
        alpha, beta_ = ct(1.0), ct(beta)
        _CFUNCS[c.dtype](
            ref(chars[0]), ref(chars[1]), ref(ints[0]), ref(ints[1]), ref(ints[2]), ref(alpha),
            a.ctypes.data, ref(ints[3]), b.ctypes.data, ref(ints[4]), ref(beta_),
            c.ctypes.data, ref(ints[5]),
        )  # fmt: skip

    def _xgemv(trans, m, n, a, lda, x, beta, y):  # noqa: F811
        ref, ct = ctypes.byref, np.ctypeslib.as_ctypes_type(y.dtype)
        t = ctypes.c_char(bytes([int(trans)]))
        ints = [ctypes.c_int(int(v)) for v in (m, n, lda, 1)]
        alpha, beta_ = ct(1.0), ct(beta)
        _GEMV_CFUNCS[y.dtype](
            ref(t), ref(ints[0]), ref(ints[1]), ref(alpha), a.ctypes.data, ref(ints[2]),
            x.ctypes.data, ref(ints[3]), ref(beta_), y.ctypes.data, ref(ints[3]),
        )  # fmt: skip

    def _set_threads(n):  # noqa: F811
        if _THREAD_FNS[0]:
            ctypes.CFUNCTYPE(None, ctypes.c_int)(_THREAD_FNS[0])(int(n))

    def _get_threads():  # noqa: F811
        return ctypes.CFUNCTYPE(ctypes.c_int)(_THREAD_FNS[1])() if _THREAD_FNS[1] else 0


@njit(**SERIAL)
def gemm(a, b, c, trans_a, trans_b, beta):
    """c <- op(a) @ op(b) + beta * c, by BLAS (sgemm for float32, dgemm for float64).

    op(x) is x.T when its flag is true, else x. Preconditions (none is checked; breaking one
    gives wrong numbers or a crash, not an error):

    - ``a``, ``b``, ``c``: 2-D, C-contiguous, of one dtype, float32 or float64 (other or mixed
      dtypes are a typing error when the call is compiled). A transposed operand is passed as
      the C-contiguous array with its flag set, never as a ``.T`` view;
    - shapes: op(a) is (m, k), op(b) is (k, n) and c is (m, n), each of m, n, k from 0 to
      2**31 - 1 (BLAS's 32-bit integers);
    - ``c`` is writeable and shares no memory with ``a`` or ``b``;
    - ``trans_a``, ``trans_b``: bools (or integers, nonzero meaning true); ``beta``: a real
      number, converted to the arrays' dtype.

    As in BLAS: beta == 0 overwrites c without reading it (NaN or inf in c do not carry
    over); k == 0 gives beta * c (zeros when beta == 0); m == 0 or n == 0 does nothing.
    float32 products accumulate in float32, in an order of BLAS's choosing, so they differ
    from ``np.matmul`` by rounding. The call runs on the OpenBLAS's thread count
    (``set_blas_threads``); OpenBLAS runs small products on one thread by itself.
    """
    m, n = c.shape
    k = a.shape[0] if trans_a else a.shape[1]
    if m == 1 and n > 1 and k > 0:
        # One row: a matrix-vector product (OpenBLAS's gemm with one row runs several times
        # slower than its gemv: 250 against 38 us for 1 x 1024 x 1024 on 2 threads). op(a)'s
        # k values are contiguous either way; c.T = op(b).T @ a.T, and b read column-major
        # is b.T, so 'N' on b as an (n, k) column-major matrix when b is not transposed.
        if trans_b:
            _xgemv(_N + _T_MINUS_N, k, n, b, max(1, k), a, beta, c)
        else:
            _xgemv(_N, n, k, b, max(1, n), a, beta, c)
        return
    # BLAS is column-major, and a C-contiguous (r, s) array read column-major is its (s, r)
    # transpose. So c.T = op(b).T @ op(a).T is computed: operands swapped, flags unchanged.
    # Reference BLAS wants leading dimensions >= 1 even when a dimension is 0 (OpenBLAS
    # accepts 0, other BLAS libraries SciPy may be built with do not).
    _xgemm(
        _N + _T_MINUS_N * np.int64(bool(trans_b)),
        _N + _T_MINUS_N * np.int64(bool(trans_a)),
        n,
        m,
        k,
        b,
        max(1, b.shape[1]),
        a,
        max(1, a.shape[1]),
        beta,
        c,
        max(1, n),
    )


@njit(**SERIAL)
def set_blas_threads(n):
    """Make the OpenBLAS ``gemm`` calls use at most ``n`` threads (process-wide; n >= 1,
    unchecked). Does nothing where that BLAS is not an OpenBLAS found at import."""
    _set_threads(n)


@njit(**SERIAL)
def blas_threads():
    """The thread count of the OpenBLAS ``gemm`` calls, or 0 where there is none."""
    return _get_threads()
