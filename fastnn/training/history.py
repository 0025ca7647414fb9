"""What a ``fit`` reports: its ``History``, and the error that stops a diverging run."""

from ..errors import FastnnError


class TrainingDivergedError(FastnnError, FloatingPointError):
    """The loss, the gradient or the updated weights became NaN or infinite. ``epoch`` and
    ``step`` (1-based) say where, ``what`` which of the three ("loss", "gradient" or
    "weights"); ``history`` holds the epochs completed before."""

    def __init__(self, message, epoch, step, history, what="loss"):
        super().__init__(message)
        self.epoch = epoch
        self.step = step
        self.history = history
        self.what = what


class History:
    """Per-epoch figures of a ``fit``: ``history["loss"]``, ``["accuracy"]``, ``["val_loss"]``,
    ``["val_accuracy"]``, ``["lr"]`` (the learning rate used in the epoch) and
    ``["seconds"]`` (wall time of the epoch, validation included), one entry per epoch.

    ``interrupted`` is true when Ctrl-C ended training; ``stopped_early`` when a callback did.
    """

    def __init__(self, history=None):
        self.history = {k: list(v) for k, v in (history or {}).items()}
        self.interrupted = False
        self.stopped_early = False

    @property
    def epochs(self):
        """Number of completed epochs."""
        return len(next(iter(self.history.values()), []))

    def append(self, logs):
        for k, v in logs.items():
            self.history.setdefault(k, []).append(float(v))

    def __getitem__(self, name):
        return self.history[name]

    def __contains__(self, name):
        return name in self.history

    def __len__(self):
        return self.epochs

    def keys(self):
        return self.history.keys()

    def last(self):
        """The last epoch's figures, name -> value."""
        return {k: v[-1] for k, v in self.history.items() if v}

    def to_dict(self):
        return {k: list(v) for k, v in self.history.items()}

    def plot(self, metrics=None):
        """A matplotlib Figure: one panel per figure (loss, accuracy, ...) with the training and
        validation curves. Needs the ``plot`` extra (matplotlib)."""
        from ..plotting import plot_history

        return plot_history(self, metrics)

    def __repr__(self):
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last().items() if k != "seconds")
        return f"History(epochs={self.epochs}{', ' if last else ''}{last})"
