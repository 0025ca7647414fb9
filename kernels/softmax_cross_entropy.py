"""Softmax, softmax fused with cross-entropy, and mean squared error.

Softmax subtracts each row's maximum before exponentiating, so logits of any size give
finite results. The fused kernels return the mean loss over the batch and write the gradient
of the logits in the same pass over the data:

    loss = mean_i [log(sum_j exp(z_ij)) - sum_j t_ij z_ij / sum_j t_ij ... ]  (see each kernel)
    dz   = (softmax(z) - t) / batch

Losses are accumulated in float64 whatever the data's dtype. Shapes: logits (batch, classes).

exp is fastexp's, which LLVM vectorises. The row maximum and the row sum of exp are vector
loops written in LLVM IR (``_row_max``, ``_row_sum``): without the 'reassoc' flag LLVM may not
reorder a float reduction, so it would add one value at a time (about 1 ns each); the IR keeps
32 partial sums in four vector registers and adds them up in a fixed order at the end, the
same on every path (serial or parallel) and on every machine, whatever its vector width.
"""

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic, overload

from ._config import FASTMATH, PARALLEL, SERIAL, chunk_bounds, n_chunks
from .fastexp import _cast, _exp

_OVERLOAD = {"jit_options": {"fastmath": FASTMATH, "error_model": "numpy"}}
# Inlined by Numba: called once a row, a call would cost more than a short row's work (LLVM
# does not inline these itself, and each call counts references to the row's array).
_INLINE = dict(_OVERLOAD, inline="always")
# Vector registers of partial results in the IR reductions: independent operations enough to
# hide the latency of a vector add.
_ACCUMULATORS = 4


def _contiguous_floats(a):
    return (
        isinstance(a, types.Array)
        and a.ndim == 1
        and a.layout == "C"
        and (isinstance(a.dtype, types.Float))
    )


def _reduce_ir(context, builder, aty, value, kind):
    """IR for the maximum (in the dtype) or the float64 sum of a 1-D C-contiguous array.

    _ACCUMULATORS vectors of 64 bytes (for the sum: 8 float64, the values widened) run over
    the array in blocks, then the first of them over the whole vectors left and over the last
    values (fewer than a vector, one masked load); they are combined lane by lane, then the
    lanes by halves (lanes j and j + lanes/2, ...): always in this order.
    """
    arr = context.make_array(aty)(context, builder, value)
    n = builder.extract_value(arr.shape, 0)
    intp = n.type
    elt = context.get_value_type(aty.dtype)
    acc_elt = elt if kind == "max" else ir.DoubleType()
    lanes = 16 if acc_elt == ir.FloatType() else 8
    vty = ir.VectorType(elt, lanes)
    acc_ty = ir.VectorType(acc_elt, lanes)
    itemsize = context.get_abi_sizeof(elt)
    block = lanes * _ACCUMULATORS
    i32 = ir.IntType(32)

    def const(v):
        return ir.Constant(intp, v)

    def widen(v):
        return v if elt == acc_elt else builder.fpext(v, acc_ty)

    def vector_at(i):
        return builder.bitcast(builder.gep(arr.data, [i]), vty.as_pointer())

    def combine(x, y):
        if kind == "max":  # y if y > x: a NaN in y is passed over (the exp pass keeps it)
            return builder.select(builder.fcmp_ordered(">", y, x), y, x)
        return builder.fadd(x, y)

    if kind == "max":
        # The row's first value in every lane: neutral for a maximum of the row.
        first = builder.load(arr.data)
        start = builder.insert_element(ir.Constant(vty, ir.Undefined), first, i32(0))
        start = builder.shuffle_vector(start, start, ir.Constant(ir.VectorType(i32, lanes), 0))
    else:
        start = ir.Constant(vty, [0.0] * lanes)
    accs = [cgutils.alloca_once_value(builder, widen(start)) for _ in range(_ACCUMULATORS)]
    # Both are powers of two: n rounded down to whole blocks and to whole vectors.
    blocks_end = builder.and_(n, const(-block))
    vectors_end = builder.and_(n, const(-lanes))
    with cgutils.for_range_slice(builder, const(0), blocks_end, const(block)) as (i, _):
        for k, acc in enumerate(accs):
            v = builder.load(vector_at(builder.add(i, const(k * lanes))), align=itemsize)
            builder.store(combine(builder.load(acc), widen(v)), acc)
    with cgutils.for_range_slice(builder, blocks_end, vectors_end, const(lanes)) as (i, _):
        v = builder.load(vector_at(i), align=itemsize)
        builder.store(combine(builder.load(accs[0]), widen(v)), accs[0])
    # The last n - vectors_end values: lanes past them are not read and give ``start``.
    suffix = {ir.FloatType(): "f32", ir.DoubleType(): "f64"}[elt]
    mask_ty = ir.VectorType(ir.IntType(1), lanes)
    masked_load = cgutils.get_or_insert_function(
        builder.module,
        ir.FunctionType(vty, [vty.as_pointer(), i32, mask_ty, vty]),
        f"llvm.masked.load.v{lanes}{suffix}.p0",
    )
    left = builder.sub(n, vectors_end)
    left = builder.insert_element(
        ir.Constant(ir.VectorType(intp, lanes), ir.Undefined), left, i32(0)
    )
    left = builder.shuffle_vector(left, left, ir.Constant(ir.VectorType(i32, lanes), 0))
    mask = builder.icmp_signed(
        "<", ir.Constant(ir.VectorType(intp, lanes), list(range(lanes))), left
    )
    tail = builder.call(masked_load, [vector_at(vectors_end), i32(itemsize), mask, start])
    builder.store(combine(builder.load(accs[0]), widen(tail)), accs[0])
    vectors = [builder.load(acc) for acc in accs]
    while len(vectors) > 1:
        vectors = [combine(x, y) for x, y in zip(vectors[::2], vectors[1::2], strict=True)]
    v = vectors[0]
    width = lanes
    while width > 1:
        width //= 2
        low = builder.shuffle_vector(
            v, v, ir.Constant(ir.VectorType(i32, width), list(range(width)))
        )
        high = builder.shuffle_vector(
            v, v, ir.Constant(ir.VectorType(i32, width), list(range(width, 2 * width)))
        )
        v = combine(low, high)
    return builder.extract_element(v, i32(0))


@intrinsic
def _vector_max(typingctx, a):
    if not _contiguous_floats(a):
        return None

    def codegen(context, builder, signature, args):
        return _reduce_ir(context, builder, signature.args[0], args[0], "max")

    return a.dtype(a), codegen


@intrinsic
def _vector_sum(typingctx, a):
    if not _contiguous_floats(a):
        return None

    def codegen(context, builder, signature, args):
        return _reduce_ir(context, builder, signature.args[0], args[0], "sum")

    return types.float64(a), codegen


def _row_max(a):
    """Largest value of the 1-D array ``a`` (not empty). A NaN may or may not come out; the
    exp pass turns a NaN anywhere in the row into a NaN sum, so the row comes out NaN."""
    return a.max()


@overload(_row_max, **_INLINE)
def _row_max_compiled(a):
    if _contiguous_floats(a):
        return lambda a: _vector_max(a)

    def impl(a):  # strided rows: one value at a time
        mx = a[0]
        for j in range(1, a.size):
            v = a[j]
            mx = v if v > mx else mx
        return mx

    return impl


def _row_sum(a):
    """Sum of the 1-D array ``a`` in float64."""
    return float(a.sum(dtype=np.float64))


@overload(_row_sum, **_INLINE)
def _row_sum_compiled(a):
    if _contiguous_floats(a):
        return lambda a: _vector_sum(a)

    def impl(a):
        s = 0.0
        for j in range(a.size):
            s += a[j]
        return s

    return impl


def _exp_rows(a, lo, hi):
    """a[lo:hi] = exp(a[lo:hi]) in place, for a 2-D array."""
    a[lo:hi] = np.exp(a[lo:hi])


@overload(_exp_rows, **_OVERLOAD)
def _exp_rows_compiled(a, lo, hi):
    if a.layout == "C":
        # Rows lo to hi are one run of memory: one loop over all of it, which LLVM vectorises
        # whatever the row length (a row of 10 classes is shorter than one vector).
        def impl(a, lo, hi):
            flat = a[lo:hi].reshape(-1)
            for f in range(np.uint64(flat.size)):
                flat[f] = _exp(flat[f])

        return impl

    def impl(a, lo, hi):
        for i in range(lo, hi):
            ai = a[i]
            for j in range(np.uint64(ai.size)):
                ai[j] = _exp(ai[j])

    return impl


# The row kernels below take their rows in blocks of about BLOCK values (small enough to stay
# in the L1 cache) and make three passes over each block: z - max into the output, exp of the
# whole block in place (_exp_rows), then each row's sum and scaling. The scale factor is
# rounded to the data's dtype so that float32 rows are scaled in float32.
BLOCK = 4096


@njit(**SERIAL)
def _softmax_rows(x, out, lo, hi):
    m = np.uint64(x.shape[1])
    step = max(1, BLOCK // x.shape[1])
    for first in range(lo, hi, step):
        last = min(hi, first + step)
        for i in range(first, last):
            xi, oi = x[i], out[i]
            mx = _row_max(xi)
            for j in range(m):
                oi[j] = xi[j] - mx
        _exp_rows(out, first, last)
        for i in range(first, last):
            oi = out[i]
            inv = _cast(1.0 / _row_sum(oi), oi)
            for j in range(m):
                oi[j] *= inv


@njit(**PARALLEL)
def softmax_forward(x, out):
    """out[i] = exp(x[i] - max x[i]) / sum_j exp(x[i, j] - max x[i])."""
    n = x.shape[0]
    c = n_chunks(x.size)
    if c == 1:
        _softmax_rows(x, out, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _softmax_rows(x, out, lo, hi)


@njit(**SERIAL)
def _softmax_backward_rows(dout, y, dx, lo, hi):
    m = y.shape[1]
    for i in range(lo, hi):
        s = 0.0
        for j in range(m):
            s += dout[i, j] * y[i, j]
        for j in range(m):
            dx[i, j] = y[i, j] * (dout[i, j] - s)


@njit(**PARALLEL)
def softmax_backward(dout, y, dx):
    """dx = y * (dout - sum_j dout_j * y_j) per row, y = softmax(x)."""
    n = y.shape[0]
    c = n_chunks(y.size)
    if c == 1:
        _softmax_backward_rows(dout, y, dx, np.int64(0), n)
    else:
        for k in prange(c):
            lo, hi = chunk_bounds(k, c, n)
            _softmax_backward_rows(dout, y, dx, lo, hi)


@njit(**SERIAL)
def _ce_labels_rows(z, t, dz, scale, lo, hi):
    # Returns the sum over rows [lo, hi) of  log(sum_j exp(z_ij - max)) - (z_it - max).
    m = np.uint64(z.shape[1])
    step = max(1, BLOCK // z.shape[1])
    total = 0.0
    for first in range(lo, hi, step):
        last = min(hi, first + step)
        for i in range(first, last):
            zi, di = z[i], dz[i]
            mx = _row_max(zi)
            for j in range(m):
                di[j] = zi[j] - mx
            total -= np.float64(di[t[i]])
        _exp_rows(dz, first, last)
        for i in range(first, last):
            di = dz[i]
            s = _row_sum(di)
            total += np.log(s)
            inv = _cast(scale / s, di)
            for j in range(m):
                di[j] *= inv
            di[t[i]] -= scale
    return total


@njit(**PARALLEL)
def softmax_cross_entropy_labels(z, t, dz):
    """Mean cross-entropy of softmax(z) against integer labels ``t``; writes dz.

    z: (batch, classes) logits; t: (batch,) integer labels in [0, classes);
    dz: (batch, classes) receives (softmax(z) - onehot(t)) / batch. Returns the mean loss.
    ``t`` must be in range: the kernel does not check it.
    """
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    if c == 1:
        return _ce_labels_rows(z, t, dz, scale, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _ce_labels_rows(z, t, dz, scale, lo, hi)
    return part.sum() / n


@njit(**SERIAL)
def _ce_targets_rows(z, t, dz, scale, lo, hi):
    # loss_i = sum_j t_ij * (lse_i - z_ij) = lse_i * T_i - sum_j t_ij z_ij, with T_i = sum_j t_ij.
    m = np.uint64(z.shape[1])
    step = max(1, BLOCK // z.shape[1])
    total = 0.0
    for first in range(lo, hi, step):
        last = min(hi, first + step)
        for i in range(first, last):
            zi, ti, di = z[i], t[i], dz[i]
            mx = _row_max(zi)
            for j in range(m):
                di[j] = zi[j] - mx
            tz = 0.0
            for j in range(m):
                tz += np.float64(ti[j]) * np.float64(di[j])
            total -= tz
        _exp_rows(dz, first, last)
        for i in range(first, last):
            ti, di = t[i], dz[i]
            s = _row_sum(di)
            tsum = _row_sum(ti)
            total += np.log(s) * tsum
            inv = tsum / s
            for j in range(m):
                di[j] = (di[j] * inv - ti[j]) * scale
    return total


@njit(**PARALLEL)
def softmax_cross_entropy_targets(z, t, dz):
    """Mean cross-entropy of softmax(z) against target distributions ``t`` (one-hot or soft).

    z, t, dz: (batch, classes). loss = mean_i sum_j -t_ij log softmax(z)_ij;
    dz = (softmax(z) * sum_j t_ij - t) / batch, which is (softmax(z) - t) / batch when each
    row of t sums to 1. Returns the mean loss.
    """
    n = z.shape[0]
    scale = 1.0 / n
    c = n_chunks(z.size)
    if c == 1:
        return _ce_targets_rows(z, t, dz, scale, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _ce_targets_rows(z, t, dz, scale, lo, hi)
    return part.sum() / n


@njit(**SERIAL)
def _squared_error_sum(y, t, lo, hi):
    s = 0.0
    for i in range(lo, hi):
        d = np.float64(y[i]) - np.float64(t[i])  # float() would stay float32 in Numba
        s += d * d
    return s


@njit(**PARALLEL)
def mse_forward(y, t):
    """mean((y - t)**2) over all elements of the 1-D arrays y and t (PyTorch's MSELoss),
    summed in float64 (per chunk, then over the chunks in order)."""
    n = y.size
    c = n_chunks(n)
    if c == 1:
        return _squared_error_sum(y, t, np.int64(0), n) / n
    part = np.zeros(c)
    for k in prange(c):
        lo, hi = chunk_bounds(k, c, n)
        part[k] = _squared_error_sum(y, t, lo, hi)
    return part.sum() / n


@njit(**SERIAL)
def mse_backward(y, t, dy):
    """dy = 2 (y - t) / n, the gradient of mse_forward; 1-D arrays."""
    scale = 2.0 / y.size
    for i in range(y.size):
        dy[i] = (y[i] - t[i]) * scale
