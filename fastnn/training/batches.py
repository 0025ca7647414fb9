"""The rows of each training step: gathered from the shuffled data into buffers allocated once,
each rank taking its share of the global batch."""

import math

import numpy as np

from ..kernels.data import count_equal, gather_rows


class Batches:
    """The rows of each step, gathered into buffers allocated once (one set per batch size:
    the full one and the last), this rank's share of each global batch."""

    def __init__(self, x, t, labels, width, batch_size, ranks, track_accuracy, weights=None):
        self.x, self.t, self.labels = x, t, labels
        self.weights = weights  # None, or float64 (n,): fit's sample_weight
        self.width = width  # of the model's output, as checked against the targets
        self.batch_size, self.ranks = batch_size, ranks
        self.n = n = x.shape[0]
        self.steps = steps = math.ceil(n / batch_size)
        self.track_accuracy = track_accuracy
        self.separate_labels = t.ndim == 2 and track_accuracy  # targets, and labels apart
        last = n - (steps - 1) * batch_size
        sizes = {m for b in {batch_size, last} for m in ranks.slice_sizes(b)}
        # Rows of any shape (images (channels, height, width) too), gathered as flat rows.
        self.xb = {m: np.empty((m, *x.shape[1:]), dtype=x.dtype) for m in sizes}
        row = int(np.prod(x.shape[1:]))  # not -1: a rank's empty slice has 0 rows
        self._flat_x = x.reshape(self.n, row)
        self._flat_xb = {m: xb.reshape(m, row) for m, xb in self.xb.items()}  # views, made once
        self.tb = {m: np.empty((m,) + t.shape[1:], dtype=t.dtype) for m in sizes}
        self.lb = {m: np.empty(m, dtype=np.int64) for m in sizes}
        self.pred = {m: np.empty(m, dtype=np.intp) for m in sizes}

    def rows(self, order, step):
        """(rows of this rank m, rows of the global batch, their indices) for ``step``."""
        idx = order[step * self.batch_size : (step + 1) * self.batch_size]
        global_m = idx.shape[0]
        lo, hi = self.ranks.bounds(global_m)
        idx = idx[lo:hi]
        return idx.shape[0], global_m, idx

    def gather(self, idx):
        """The inputs and the loss's targets (labels or rows of targets) of rows ``idx``."""
        m = idx.shape[0]
        xs, ts = self.xb[m], self.tb[m]
        gather_rows(self._flat_x, idx, self._flat_xb[m])
        if self.t.ndim == 2:
            gather_rows(self.t, idx, ts)
        else:
            np.take(self.t, idx, out=ts)
        return xs, ts

    def count_correct(self, z, idx, ts):
        """How many of rows ``idx`` the scores ``z`` classify right."""
        m = idx.shape[0]
        labels = ts
        if self.separate_labels:
            labels = self.lb[m]
            np.take(self.labels, idx, out=labels)
        np.argmax(z, axis=1, out=self.pred[m])
        return count_equal(self.pred[m], labels)
