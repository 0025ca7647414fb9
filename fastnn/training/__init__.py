"""Training: ``fit`` (the loop), ``evaluate``, the ``History`` they report, callbacks, the
progress report, checkpoints, and data-parallel training over MPI (``distributed``).

    loop.py        fit, the one training loop, and what callbacks see of it (Trainer)
    batches.py     the rows of each step, gathered into buffers allocated once
    options.py     FitOptions: fit's settings, checked once
    inputs.py      the data checks made once per fit or evaluate
    ranks.py       LocalRanks: the rank group of a one-process fit
    distributed.py MPIRanks, and fit/evaluate over MPI
    evaluate.py    evaluate
    history.py     History, TrainingDivergedError
    callbacks.py   EarlyStopping, ModelCheckpoint, learning-rate schedules
    progress.py    the progress bar and per-epoch lines, as callbacks
    checkpoint.py  what a checkpoint holds beside the model, and resuming from one
"""

from .evaluate import evaluate
from .history import History, TrainingDivergedError
from .loop import fit
from .options import FitOptions

__all__ = ["FitOptions", "History", "TrainingDivergedError", "evaluate", "fit"]
