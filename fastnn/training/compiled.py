"""fit's steps as compiled calls: one call of ``kernels._network.train_steps`` runs many steps
(gather, forward, loss, accuracy, backward, norm, clipping, update) without Python between
them, for models built from fastnn's own layers (``nn.plan``).

``CompiledSteps.start`` says whether a fit can run this way (fastnn's own layers, loss and
optimizer); ``run`` then does the steps of a range, after checking that the model is still
the one its plan describes (a new plan otherwise, made and checked by the layers' own
checks). Under ``distributed.fit`` (more than one rank) the ranks must sum their gradients
between backward and the update, so ``gradient`` does one step's forward, loss and backward
of this rank's rows in one call, and fit's loop sums, clips and updates as on the per-layer
path. The per-layer path stays for everything else, and gives the same results:
``tests/test_compiled.py`` and ``tests/test_distributed.py`` compare the two bit for bit.

``fastnn.compiled(False)`` (``nn.plan.compiled``) turns the compiled path off in the calling
thread: the tests and the benchmarks compare the two paths with it.
"""

from dataclasses import dataclass

import numpy as np

from .. import optim
from ..kernels import _network as k
from ..nn import MSELoss, SoftmaxCrossEntropy
from ..nn.plan import Plan, compilable, enabled

# Most steps per call: Ctrl-C and the dropout uniforms' buffer wait for the end of a call.
MAX_STEPS = 256
# Most dropout uniforms drawn for one call (values).
MAX_UNIFORMS = 1 << 22
# fastnn's own optimizers (exactly: a subclass may override its update).
_OPTIMIZERS = tuple(optim.OPTIMIZERS.values())


@dataclass
class Outcome:
    """What a range of steps gave: the loss summed over rows, correct rows, steps done, and,
    if a step diverged, what ("loss" or "gradient"), its value and its number."""

    total: float
    correct: int
    done: int
    failed: str = None
    value: float = 0.0
    step: int = -1


class CompiledSteps:
    """fit's steps over ``batches`` for ``model`` with ``optimizer``, ``loss`` and
    ``clip_norm``, as compiled calls."""

    @classmethod
    def start(cls, model, options, batches, ranks, step_hooks):
        """A ``CompiledSteps`` when this fit can run compiled, else None."""
        if not (
            enabled()
            and compilable(model)
            and type(options.optimizer) in _OPTIMIZERS
            and type(options.loss) in (SoftmaxCrossEntropy, MSELoss)
            and batches.x.dtype == model.dtype
            and batches.weights is None
        ):
            return None
        return cls(model, options, batches, one_step=bool(step_hooks), per_rank=ranks.size > 1)

    def __init__(self, model, options, batches, one_step, per_rank=False):
        self.model, self.batches = model, batches
        # distributed.fit: one rank's gradient per call (``gradient``), not whole steps.
        self.per_rank = per_rank
        self.optimizer, self.loss = options.optimizer, options.loss
        self.clip_norm = 0.0 if options.clip_norm is None else float(options.clip_norm)
        self.one_step = one_step
        b = batches
        # The loss and accuracy arguments of train_steps: None where unused.
        self.mse = True if isinstance(self.loss, MSELoss) else None
        self.labels = b.t if b.t.ndim == 1 else None
        self.targets = b.t if b.t.ndim == 2 else None
        self.acc_labels = b.labels if b.track_accuracy else None
        self.plan = None
        self.result = np.zeros(k.RESULT)
        self.losses = np.zeros(MAX_STEPS)
        self.args = np.zeros((MAX_STEPS, k.ARGS))
        self.uniforms = np.empty(0, model.dtype)

    def chunk_end(self, step, steps):
        """The end of the range of steps one call runs from ``step``."""
        if self.one_step or (self.plan is not None and self.plan.shared_generators()):
            return step + 1  # dropout layers sharing a generator draw step by step
        count = MAX_STEPS
        units = self.plan.units if self.plan is not None else 0
        if units:
            count = min(count, max(1, MAX_UNIFORMS // (units * self.batches.batch_size)))
        return min(steps, step + count)

    def ready(self):
        """Whether the next steps can run compiled: the model and optimizer are still what a
        plan can describe (a new plan is made when the old one is stale)."""
        model, opt = self.model, self.optimizer
        params, grads = opt.flat_buffers()
        plan = self.plan
        if plan is None or not plan.current() or not _same(plan.params, params):
            if not compilable(model) or model.dtype != self.batches.x.dtype:
                return False
            if any(not m.training for m in model.modules()):
                return False
            plan = Plan(model, self.batches.batch_size, self.batches.x.shape[1], True)
            if not (_same(plan.params, params) and _same(plan.grads, grads)):
                return False
            self.plan = plan
        # The loss kernels index the output with labels checked against this width.
        return plan.out_width == self.batches.width

    def _uniforms(self, rows):
        """The dropout layers' uniforms for ``rows`` rows, or None without dropout."""
        plan = self.plan
        if not plan.units:
            return None
        if self.uniforms.size < rows * plan.units:
            self.uniforms = np.empty(rows * plan.units, plan.dtype)
        return plan.draw_uniforms(rows, self.uniforms)

    def _call(self, order, batch_size, step0, step1, uniforms, clips, which, bufs, first, weight):
        """One ``train_steps`` call over the plan, with the batch-norm statistics loaded into
        its buffers before and stored back after."""
        plan, opt, b = self.plan, self.optimizer, self.batches
        plan.load_statistics()
        try:
            k.train_steps(
                plan.layers,
                plan.fparams,
                plan.where,
                plan.params,
                plan.grads,
                plan.work,
                plan.iwork,
                plan.work64,
                plan.norms,
                b.x,
                self.labels,
                self.targets,
                self.mse,
                self.acc_labels,
                order,
                batch_size,
                step0,
                step1,
                uniforms,
                plan.maxout,
                plan.activation,
                plan.softmax,
                *clips,
                *which,
                *bufs,
                opt._decay_mask,
                self.args,
                first,
                self.losses,
                self.result,
                weight,
            )
        finally:
            plan.store_statistics()

    def run(self, order, step0, step1):
        """Steps ``step0`` to ``step1 - 1`` of the epoch whose row order is ``order``; call
        ``ready()`` first."""
        opt, b = self.optimizer, self.batches
        n = b.n
        uniforms = self._uniforms(min(step1 * b.batch_size, n) - step0 * b.batch_size)
        code, buffers, scalars = opt._kernel(opt.step_count + 1)
        first = code == k.SGD and buffers[0] is not None and buffers[0][0] not in opt.state
        bufs = [opt._unused if spec is None else opt._buffer(*spec) for spec in buffers]
        bufs += [opt._unused] * (3 - len(bufs))
        args = self.args
        for i in range(step1 - step0):
            scalars = opt._kernel(opt.step_count + 1 + i)[2]
            args[i, : len(scalars)] = scalars
        which = [None] * 6
        which[code] = True
        opt_clip = 0.0 if opt.clip_norm is None else float(opt.clip_norm)
        clips = (self.clip_norm, opt_clip)
        self._call(order, b.batch_size, step0, step1, uniforms, clips, which, bufs, first, None)
        r = self.result
        done = int(r[k.DONE])
        opt.step_count += done
        # The loss summed over the rows as fit's per-layer loop sums it, step by step (the
        # kernel's own sum could fuse the multiply-add and round differently).
        total = 0.0
        steps = done + (r[k.STATUS] != k.OK)
        for i in range(steps):
            lo = (step0 + i) * b.batch_size
            total += float(self.losses[i]) * (min(lo + b.batch_size, n) - lo)
        outcome = Outcome(total, int(r[k.CORRECT]), done)
        if r[k.STATUS] != k.OK:
            outcome.failed = "loss" if r[k.STATUS] == k.BAD_LOSS else "gradient"
            outcome.value, outcome.step = float(r[k.VALUE]), int(r[k.FAILED_STEP])
        return outcome

    def gradient(self, order, step):
        """``distributed.fit``'s step ``step`` on this rank, as the per-layer step does it:
        forward, loss and backward of the rank's share of the global batch, the loss's gradient
        weighted by that share; the gradient is left in the optimizer's buffer for the ranks'
        sum, clipping and the update. Returns (this rank's mean loss, its rows, rows classified
        right). Call ``ready()`` first."""
        m, global_m, idx = self.batches.rows(order, step)
        if m == 0:  # this rank's slice of the batch is empty: a zero gradient
            self.plan.grads.fill(0)
            return 0.0, 0, 0
        unused = self.optimizer._unused
        no_update = [None] * 6
        self._call(
            idx, m, 0, 1, self._uniforms(m), (0.0, 0.0), no_update, (unused,) * 3, False,
            m / global_m,
        )  # fmt: skip
        return float(self.losses[0]), m, int(self.result[k.CORRECT])


def _same(a, b):
    """Whether two 1-D arrays are the same memory (the same flat buffer)."""
    return (
        a is not None
        and b is not None
        and a.size == b.size
        and a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
    )
