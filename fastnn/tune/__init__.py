"""Hyperparameter search: random trials on any ``concurrent.futures`` executor.

The course's recipe: keep the test set aside, score each setting on a validation split, draw
the hyperparameters at random (log-uniformly for scales such as the learning rate), then
narrow the ranges to where the best trials landed and search again.

    from fastnn.tune import LogUniform, Uniform, Choice, mlp_trial, random_search
    space = {"lr": LogUniform(1e-5, 1e-2), "weight_decay": LogUniform(1e-8, 1e-4),
             "dropout": Uniform(0, 0.5), "layers": Choice([[100], [100, 100]]), "epochs": 3}
    result = random_search(mlp_trial, space, 20, data=(x_train, y_train), seed=0)
    print(result.table(5))
    space = result.narrow(5)           # round 2 searches where the 5 best trials were

``space.py`` holds the distributions, ``search.py`` the search and its results,
``executors.py`` where trials run, ``mlp.py`` a ready-made trial. The command line's
``fastnn tune`` is ``fastnn.cli.tune``.
"""

from .executors import EXECUTORS, SerialExecutor, make_executor
from .mlp import MLP_DEFAULTS, mlp_trial, validation_split
from .search import SearchFailedError, SearchResult, Trial, random_search, search_rounds
from .space import Choice, LogUniform, Uniform, sample

__all__ = [
    "Choice",
    "EXECUTORS",
    "LogUniform",
    "MLP_DEFAULTS",
    "SearchFailedError",
    "SearchResult",
    "SerialExecutor",
    "Trial",
    "Uniform",
    "make_executor",
    "mlp_trial",
    "random_search",
    "sample",
    "search_rounds",
    "validation_split",
]
