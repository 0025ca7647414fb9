"""The ranks a fit runs on, as one small object: ``fit`` is the same loop for one process and
for the ranks of an MPI job, and asks this object at the few points where they differ.

``LocalRanks`` is one process: one rank that holds every row, whose methods do nothing (or the
obvious thing). ``fastnn.distributed`` gives ``MPIRanks``, the same methods over an MPI
communicator: it splits each batch over the ranks, sums their gradients and reduces their
figures.
"""

import math

from .evaluate import evaluate_rows


class LocalRanks:
    """The rank group of a fit in one process."""

    size = 1
    rank = 0
    root = True  # the rank that writes checkpoints
    interruptible = True  # Ctrl-C ends the fit after the current step (one process only)

    def agree_seed(self, seed):
        """The seed every rank uses (rank 0's)."""
        return seed

    def bounds(self, m):
        """Rows [lo, hi) of a global batch of ``m`` rows that this rank trains on."""
        return 0, m

    def slice_sizes(self, m):
        """How many rows of a global batch of ``m`` each rank takes."""
        return [m]

    def start(self, model, options, x, val, seed, saved):
        """Before the first epoch: check that the ranks agree, give them the same model."""

    def agree_to_stop(self, stop):
        """Whether training ends after this epoch, the same on every rank."""
        return stop

    def sum_gradient(self, grad, value):
        """After backward: the gradient of the global batch in ``grad`` (summed over the
        ranks); false when the loss ``value`` of any rank is not finite."""
        return math.isfinite(value)

    def end_epoch(self, model, total, correct):
        """The epoch's loss sum and correct count over all ranks."""
        return total, correct

    def evaluate(self, model, loss, x, t, labels, width, metrics, batch_size):
        """``evaluate_rows`` over every rank's share of the rows."""
        return evaluate_rows(model, loss, x, t, labels, width, metrics, batch_size)

    def record_rngs(self, model, state):
        """Add what a checkpoint needs of the ranks' random generators to ``state``."""
