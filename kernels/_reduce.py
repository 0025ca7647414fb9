"""Reductions over 1-D contiguous float arrays written in LLVM IR, in a fixed order.

Without the 'reassoc' flag LLVM may not reorder a float reduction, so a plain loop adds one
value at a time (about 1 ns each); with it, the order (and so the result's last bits) is
LLVM's choice, which may differ between a kernel compiled alone and the same kernel inlined
into the training step. These keep 32 partial results in four vector registers and combine
them in a fixed order at the end: the same bits on every path (serial or parallel, alone or
inlined) and on every machine, whatever its vector width.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

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
    """IR for the maximum (in the dtype), the float64 sum or the float64 sum of squares
    ("max", "sum", "squares") of a 1-D C-contiguous array.

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
        # A flag of its own, so that Numba's fastmath pass (which flags only instructions
        # that have none) does not add 'contract': LLVM could then fuse a square and its sum
        # into one FMA in some compiled contexts and not in others.
        return builder.fadd(x, y, flags=("nsz",))

    def accumulate(acc, v):
        if kind == "squares":
            return combine(acc, builder.fmul(v, v, flags=("nsz",)))
        return combine(acc, v)

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
            builder.store(accumulate(builder.load(acc), widen(v)), acc)
    with cgutils.for_range_slice(builder, blocks_end, vectors_end, const(lanes)) as (i, _):
        v = builder.load(vector_at(i), align=itemsize)
        builder.store(accumulate(builder.load(accs[0]), widen(v)), accs[0])
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
    builder.store(accumulate(builder.load(accs[0]), widen(tail)), accs[0])
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


@intrinsic
def _vector_sum_squares(typingctx, a):
    if not _contiguous_floats(a):
        return None

    def codegen(context, builder, signature, args):
        return _reduce_ir(context, builder, signature.args[0], args[0], "squares")

    return types.float64(a), codegen
