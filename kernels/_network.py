"""A whole network's training steps, and its forward pass, as single compiled calls.

The model comes as data, not as code: ``layers``, an int64 table with one row per layer (its
kind, its widths, its activation, and where its arrays lie: offsets into the flat parameter
and gradient buffers ``params`` and ``grads``, and into the flat work buffers ``work`` (the
model's dtype), ``iwork`` (int64), ``work64`` (float64) and ``stats`` (batch norm's running
statistics)), and ``fparams``, a float64 table of the same rows (activation parameter,
dropout probability, batch-norm eps and momentum). So sizes, depth and order of layers are
data: one compiled function serves every architecture. ``fastnn.nn.plan`` builds the tables
from a model and checks them; the kernels here trust them, as every kernel trusts its caller.

Same results as the layers, bit for bit: each layer runs the code its class runs, in the same
order, and the matrix products are the same BLAS calls (``blas.gemm``, which ``affine`` uses
too).

Threads: the step runs the kernels' serial row helpers (``_bias_act_rows`` for
``bias_act_forward``, ``_ce_labels_serial`` for ``softmax_cross_entropy_labels``, ...), not the
parallel kernels, except for batch norm and the optimizer updates; BLAS uses its own threads.
Elementwise and row-wise passes give the same bits however their rows are split, and the
serial losses sum the parallel kernels' chunks in the same order. Each parallel kernel costs
about a second of compiling in a fresh process (Numba compiles its loop body a second time,
and LLVM optimises everything it calls again inside the step), and at the batch sizes the
step is for, their passes are a few percent of a step (bench/NOTES.md, "Cold start"); the
optimizer's update over all of the parameters is the one pass large enough to keep.

Its reference is therefore not a NumPy twin but the per-layer path, whose every kernel has one:
``tests/test_compiled.py`` trains and predicts both ways and compares them bit for bit. (The
module's name starts with an underscore so that the rule "every public kernel has a NumPy twin
of its own" does not ask for a second network in NumPy.)

What a network does not use is not compiled. The layer kinds, the loss and the optimizer are
told by arguments that are either None or not (``maxout``, ``activation``, ``softmax``,
``stats`` for batch norm, ``uniforms`` for dropout, ``labels``/``targets`` for the loss, one
per optimizer kernel): Numba compiles one version per combination of those types and drops
the branches of the kinds that are None, so a model of Linear layers trained with Adam
compiles the Linear, cross-entropy and Adam kernels only, about what its layers compile.
(Every kernel in one function took minutes to compile: Numba compiles a function together
with all the kernels it can call.)

Layout of a layer's row (column names below): ``X`` and ``Y`` are the offsets in ``work`` of
its input and output (m rows of ``IN`` and ``OUT`` values), ``DOUT`` and ``DX`` of the
gradient it receives and the one it passes down (``DX`` < 0: not needed, the first layer);
a pass-through layer (identity, dropout in eval mode) has ``Y == X`` and ``DX == DOUT``.
``A1``-``A4`` are the kind's own work arrays, ``I1`` its int64 array, ``F1`` its float64
scratch, ``S1`` its running statistics, ``U`` its column in the dropout uniforms.
"""

import numpy as np
from numba import njit
from numba.np.ufunc import parallel as _parallel

from ._config import SERIAL, n_chunks
from .activations import (
    IDENTITY,
    _backward_range,
    _forward_range,
    _maxout_backward_rows,
    _maxout_forward_rows,
)
from .affine import _bias_act_rows, _dz_cols
from .batchnorm import (
    batchnorm_backward,
    batchnorm_forward_eval,
    batchnorm_forward_train,
    batchnorm_update_running,
)
from .blas import gemm
from .dropout import _dropout_backward_range, _dropout_forward_range
from .optim import (
    adadelta_step,
    adagrad_step,
    adam_step,
    adamw_step,
    flat_norm,
    rmsprop_step,
    scale_flat,
    sgd_step,
)
from .softmax_cross_entropy import (
    _ce_labels_serial,
    _ce_targets_serial,
    _mse_serial,
    _softmax_backward_rows,
    _softmax_rows,
    mse_backward,
)


def launch_threads():
    """Start Numba's threading layer, as the first call of a parallel kernel from Python does.
    Call it before the first ``train_steps`` or ``forward_rows`` of a process: they call the
    parallel kernels from compiled code, and when they were loaded from the cache, having
    been compiled in a process that had loaded those kernels from the cache too, nothing in
    them starts it (the call crashed: tests/test_kernel_cache.py). Idempotent."""
    _parallel._launch_threads()


# Layer kinds.
LINEAR, MAXOUT, BATCHNORM, DROPOUT, ACTIVATION, SOFTMAX, PASS = range(7)
# Columns of ``layers``.
KIND, IN, OUT, ACT, PIECES, W, B, X, Y, DOUT, DX, A1, A2, A3, A4, I1, F1, S1, U = range(19)
COLUMNS = 19
# Columns of ``fparams``.
ALPHA, P, EPS, MOMENTUM = range(4)
FCOLUMNS = 4
# Entries of ``where``, the offsets and widths of the whole network: the batch's inputs, the
# outputs, the loss gradient, the targets (work), the labels (iwork), the input and output
# widths.
XB, Z, DZ, T, LB, NIN, NOUT = range(7)
WHERE = 7
# Optimizer kernels, in the order of ``train_steps``'s optimizer arguments; ``args`` rows hold
# each one's scalars in its own order (``Optimizer._kernel``).
SGD, ADAGRAD, RMSPROP, ADADELTA, ADAM, ADAMW = range(6)
ARGS = 8
# Entries of ``result``.
CORRECT, DONE, STATUS, VALUE, FAILED_STEP = range(5)
RESULT = 5
# Status codes.
OK, BAD_LOSS, BAD_GRADIENT = range(3)

# The layer loops are inlined into the two entry points (Numba's IR inlining). Small helpers
# such as _view are ordinary compiled functions: inlined at ~40 call sites they made Numba
# type every copy again (the step's compile 4.0 -> 2.9 s without; bench/NOTES.md).
_INLINE = dict(SERIAL, inline="always")


@njit(**SERIAL)
def _view(a, offset, rows, cols):
    return a[offset : offset + rows * cols].reshape(rows, cols)


@njit(**SERIAL)
def _scratch(row, work64, m, d):
    # Batch norm's float64 scratch: one slot per chunk its kernels may split m rows into.
    slots = n_chunks(m * d)
    return work64[row[F1] : row[F1] + slots * 2 * d].reshape(slots, 2, d)


@njit(**_INLINE)
def _forward_layers(
    layers,
    fparams,
    params,
    work,
    iwork,
    work64,
    stats,
    uniforms,
    urows,
    urow,
    m,
    train,
    maxout,
    act,
    sm,
):
    """Every layer on the m rows at the input's offset; each writes its output region. In
    training mode (``train`` not None) batch norm normalises with the batch's statistics and
    updates its running ones; dropout's uniforms for this step start at row ``urow`` of each
    dropout layer's block of ``urows`` rows."""
    for i in range(layers.shape[0]):
        row = layers[i]
        kind = row[KIND]
        n_in = row[IN]
        n_out = row[OUT]
        if kind == PASS:
            continue
        x = _view(work, row[X], m, n_in)
        y = _view(work, row[Y], m, n_out)
        if kind == LINEAR:
            w = _view(params, row[W], n_in, n_out)
            gemm(x, w, y, False, False, 0.0)
            if row[B] >= 0:
                b = params[row[B] : row[B] + n_out]
            else:
                b = work[row[A2] : row[A2] + n_out]  # zeros
            _bias_act_rows(y, b, row[ACT], fparams[i, ALPHA], np.int64(0), m)
        elif maxout is not None and kind == MAXOUT:
            width = n_out * row[PIECES]
            z = _view(work, row[A1], m, width)
            gemm(x, _view(params, row[W], n_in, width), z, False, False, 0.0)
            _bias_act_rows(z, params[row[B] : row[B] + width], IDENTITY, 0.0, np.int64(0), m)
            _maxout_forward_rows(z, row[PIECES], y, _view(iwork, row[I1], m, n_out), np.int64(0), m)
        elif stats is not None and kind == BATCHNORM:
            gamma = params[row[W] : row[W] + n_in]
            beta = params[row[B] : row[B] + n_in]
            running_mean = stats[row[S1] : row[S1] + n_in]
            running_var = stats[row[S1] + n_in : row[S1] + 2 * n_in]
            scratch = _scratch(row, work64, m, n_in)
            if train is not None:
                mean = work[row[A2] : row[A2] + n_in]
                var = work[row[A3] : row[A3] + n_in]
                batchnorm_forward_train(
                    x,
                    gamma,
                    beta,
                    fparams[i, EPS],
                    y,
                    _view(work, row[A1], m, n_in),
                    mean,
                    var,
                    work[row[A4] : row[A4] + n_in],
                    scratch,
                )
                batchnorm_update_running(
                    running_mean, running_var, mean, var, fparams[i, MOMENTUM], m
                )
            else:
                batchnorm_forward_eval(
                    x, gamma, beta, running_mean, running_var, fparams[i, EPS], y, scratch
                )
        elif uniforms is not None and kind == DROPOUT:
            at = row[U] * urows + urow * n_in
            p = fparams[i, P]
            _dropout_forward_range(
                x.reshape(-1),
                uniforms[at : at + m * n_in],
                p,
                1.0 / (1.0 - p),  # as dropout_forward computes it
                y.reshape(-1),
                work[row[A1] : row[A1] + m * n_in],
                np.int64(0),
                m * n_in,
            )
        elif act is not None and kind == ACTIVATION:
            _forward_range(
                x.reshape(-1), y.reshape(-1), row[ACT], fparams[i, ALPHA], np.int64(0), m * n_in
            )
        elif sm is not None and kind == SOFTMAX:
            _softmax_rows(x, y, np.int64(0), m)


@njit(**_INLINE)
def _backward_layers(
    layers, fparams, params, grads, work, iwork, work64, stats, uniforms, m, maxout, act, sm
):
    """Back-propagate from the loss gradient: each layer reads its DOUT region, writes its
    parameters' gradients and (unless DX < 0) its DX region."""
    for i in range(layers.shape[0] - 1, -1, -1):
        row = layers[i]
        kind = row[KIND]
        n_in = row[IN]
        n_out = row[OUT]
        if kind == PASS:
            continue
        dout = _view(work, row[DOUT], m, n_out)
        need_dx = row[DX] >= 0
        dx = _view(work, row[DX] if need_dx else row[X], m, n_in)
        if kind == LINEAR:
            # affine_backward
            x = _view(work, row[X], m, n_in)
            dz = _view(work, row[A1], m, n_out)
            if row[B] >= 0:
                db = grads[row[B] : row[B] + n_out]
            else:
                db = work[row[A3] : row[A3] + n_out]
            a = row[ACT]
            _dz_cols(
                dout,
                _view(work, row[Y], m, n_out),
                a,
                fparams[i, ALPHA],
                dz,
                db,
                np.int64(0),
                n_out,
            )
            g = dout if a == IDENTITY else dz
            gemm(x, g, _view(grads, row[W], n_in, n_out), True, False, 0.0)
            if need_dx:
                gemm(g, _view(params, row[W], n_in, n_out), dx, False, True, 0.0)
        elif maxout is not None and kind == MAXOUT:
            width = n_out * row[PIECES]
            x = _view(work, row[X], m, n_in)
            dz = _view(work, row[A4], m, width)
            _maxout_backward_rows(
                dout, _view(iwork, row[I1], m, n_out), row[PIECES], dz, np.int64(0), m
            )
            _dz_cols(dz, dz, IDENTITY, 0.0, dz, grads[row[B] : row[B] + width], np.int64(0), width)
            gemm(x, dz, _view(grads, row[W], n_in, width), True, False, 0.0)
            if need_dx:
                gemm(dz, _view(params, row[W], n_in, width), dx, False, True, 0.0)
        elif stats is not None and kind == BATCHNORM:
            batchnorm_backward(
                dout,
                _view(work, row[A1], m, n_in),
                params[row[W] : row[W] + n_in],
                work[row[A4] : row[A4] + n_in],
                dx,
                grads[row[W] : row[W] + n_in],
                grads[row[B] : row[B] + n_in],
                _scratch(row, work64, m, n_in),
            )
        elif uniforms is not None and kind == DROPOUT:
            n = m * n_in
            _dropout_backward_range(
                dout.reshape(-1), work[row[A1] : row[A1] + n], dx.reshape(-1), np.int64(0), n
            )
        elif act is not None and kind == ACTIVATION:
            y = _view(work, row[Y], m, n_out)
            _backward_range(
                dout.reshape(-1),
                y.reshape(-1),
                dx.reshape(-1),
                row[ACT],
                fparams[i, ALPHA],
                np.int64(0),
                m * n_in,
            )
        elif sm is not None and kind == SOFTMAX:
            _softmax_backward_rows(dout, _view(work, row[Y], m, n_out), dx, np.int64(0), m)


@njit(**SERIAL)
def forward_rows(
    layers, fparams, where, params, work, iwork, work64, stats, x, out, maxout, act, sm
):
    """The network's outputs for the rows of ``x`` (m, NIN) in eval mode, into ``out``
    (m, NOUT); m at most the rows the work buffers were laid out for. ``stats``: None without
    batch norm; ``maxout``, ``act``, ``sm``: None without Maxout, activation or Softmax
    layers."""
    m = x.shape[0]
    n_in = where[NIN]
    n_out = where[NOUT]
    xb = _view(work, where[XB], m, n_in)
    for i in range(m):
        for j in range(n_in):
            xb[i, j] = x[i, j]
    _forward_layers(
        layers, fparams, params, work, iwork, work64, stats, None, 0, 0, m, None, maxout, act, sm
    )
    z = _view(work, where[Z], m, n_out)
    for i in range(m):
        for j in range(n_out):
            out[i, j] = z[i, j]


# -- clipping ----------------------------------------------------------------------------------
@njit(**SERIAL)
def _clip(grads, max_norm, norm):
    # fit's clip_norm and an optimizer's own: scale to max_norm / (norm + 1e-6) when larger.
    if max_norm > 0.0 and norm > max_norm and np.isfinite(norm):
        scale_flat(grads, max_norm / (norm + 1e-6))


@njit(**SERIAL)
def _argmax_row(z, i):
    # np.argmax's rules: the first maximum, and the first NaN if there is one.
    best = 0
    top = z[i, 0]
    if np.isnan(top):
        return 0
    for j in range(1, z.shape[1]):
        v = z[i, j]
        if np.isnan(v):
            return j
        if v > top:
            top = v
            best = j
    return best


# -- training steps -----------------------------------------------------------------------------
@njit(**SERIAL)
def train_steps(
    layers,
    fparams,
    where,
    params,
    grads,
    work,
    iwork,
    work64,
    stats,
    x,
    labels,
    targets,
    mse,
    acc_labels,
    order,
    batch_size,
    step0,
    step1,
    uniforms,
    maxout,
    act,
    sm,
    clip_norm,
    opt_clip,
    sgd,
    adagrad,
    rmsprop,
    adadelta,
    adam,
    adamw,
    b0,
    b1,
    b2,
    decay_mask,
    args,
    first,
    losses,
    result,
    weight,
):
    """Training steps ``step0`` to ``step1 - 1`` of an epoch, each as ``fit`` runs it: gather
    the step's rows of ``order`` (``batch_size`` a step, the last step possibly fewer), forward
    in training mode, the loss and its gradient, the accuracy count, backward, the gradient's
    global norm, clipping (``clip_norm``, then the optimizer's own ``opt_clip``; 0 for none)
    and the update. Stops before the update of a step whose loss or gradient norm is not
    finite.

    The loss: cross-entropy against ``labels`` (int64) when they are not None; else, against
    ``targets`` (2-D), cross-entropy when ``mse`` is None and mean squared error when it is
    not. Features (None when absent): ``stats`` (batch norm),
    ``uniforms`` (dropout: a block of (rows of these steps) x width per dropout layer),
    ``maxout``, ``act`` (activation layers), ``sm`` (softmax layers), ``acc_labels`` (count
    rows classified right against these labels). The optimizer: exactly one of ``sgd`` ...
    ``adamw`` is not None; ``b0``-``b2`` are its state buffers, ``args[k]`` its scalars for
    step ``step0 + k`` (``Optimizer._kernel``'s order), ``first`` whether SGD's momentum
    buffer is new.

    ``weight`` (None, or a float): a rank's share of a global batch in ``distributed.fit``:
    ``order`` holds the rank's rows, the loss's gradient is weighted by ``weight`` (its rows
    over the global batch's, as the per-layer step weights it) and the steps stop after
    backward, the gradient left in ``grads`` for the caller to sum over the ranks, clip and
    apply (then the optimizer arguments are all None).

    ``losses[k]`` receives step ``step0 + k``'s mean loss (the caller sums them with the rows,
    as fit does), and ``result`` (float64) the count of rows classified right, the steps done
    (updated), a status (OK, BAD_LOSS, BAD_GRADIENT), the offending value and that step's
    number.
    """
    n = order.shape[0]
    n_in = where[NIN]
    n_out = where[NOUT]
    correct = 0
    done = 0
    status = OK
    bad = 0.0
    failed = -1
    urows = min(step1 * batch_size, n) - step0 * batch_size
    urow = 0
    for s in range(step0, step1):
        lo = s * batch_size
        m = min(lo + batch_size, n) - lo
        xb = _view(work, where[XB], m, n_in)
        for i in range(m):
            src = x[order[lo + i]]
            dst = xb[i]
            for j in range(n_in):
                dst[j] = src[j]
        _forward_layers(
            layers, fparams, params, work, iwork, work64, stats, uniforms, urows, urow, m, True,
            maxout, act, sm,
        )  # fmt: skip
        urow += m
        z = _view(work, where[Z], m, n_out)
        dz = _view(work, where[DZ], m, n_out)
        # Each argument that may be None is used only under its own test, which Numba
        # resolves when it compiles (an else branch would be compiled with the None).
        value = 0.0
        if labels is not None:
            lb = iwork[where[LB] : where[LB] + m]
            for i in range(m):
                lb[i] = labels[order[lo + i]]
            value = _ce_labels_serial(z, lb, dz)
        if targets is not None:
            tb = _view(work, where[T], m, n_out)
            for i in range(m):
                src = targets[order[lo + i]]
                for j in range(n_out):
                    tb[i, j] = src[j]
            if mse is None:
                value = _ce_targets_serial(z, tb, dz)
            else:
                value = _mse_serial(z.reshape(-1), tb.reshape(-1))
                mse_backward(z.reshape(-1), tb.reshape(-1), dz.reshape(-1))
        losses[s - step0] = value
        if acc_labels is not None:
            for i in range(m):
                correct += _argmax_row(z, i) == acc_labels[order[lo + i]]
        if weight is not None:
            w = dz.dtype.type(weight)  # as NumPy's ``dout *= weight`` rounds it
            for i in range(m):
                for j in range(n_out):
                    dz[i, j] *= w
        _backward_layers(
            layers, fparams, params, grads, work, iwork, work64, stats, uniforms, m,
            maxout, act, sm,
        )  # fmt: skip
        if weight is not None:
            done += 1
            continue  # the caller sums the ranks' gradients, checks, clips and updates
        if not np.isfinite(value):
            status, bad, failed = BAD_LOSS, value, s
            break
        norm = flat_norm(grads)
        if not np.isfinite(norm):
            status, bad, failed = BAD_GRADIENT, norm, s
            break
        _clip(grads, clip_norm, norm)
        if opt_clip > 0.0:
            _clip(grads, opt_clip, flat_norm(grads))
        a = args[s - step0]
        if sgd is not None:
            sgd_step(params, grads, b0, decay_mask, a[0], a[1], a[2], a[3], a[4] != 0, first)
        elif adagrad is not None:
            adagrad_step(params, grads, b0, decay_mask, a[0], a[1], a[2])
        elif rmsprop is not None:
            rmsprop_step(
                params, grads, b0, b1, b2, decay_mask, a[0], a[1], a[2], a[3], a[4], a[5] != 0
            )
        elif adadelta is not None:
            adadelta_step(params, grads, b0, b1, decay_mask, a[0], a[1], a[2], a[3])
        elif adam is not None:
            adam_step(
                params, grads, b0, b1, b2, decay_mask, a[0], a[1], a[2], a[3], a[4], a[5],
                a[6] != 0,
            )  # fmt: skip
        elif adamw is not None:
            adamw_step(
                params, grads, b0, b1, b2, decay_mask, a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                a[7] != 0,
            )  # fmt: skip
        first = False
        done += 1
    result[CORRECT] = correct
    result[DONE] = done
    result[STATUS] = status
    result[VALUE] = bad
    result[FAILED_STEP] = failed
