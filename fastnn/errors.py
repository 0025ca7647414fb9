"""The exceptions fastnn raises on purpose: one family, ``FastnnError``.

Every error that says "you gave me something I cannot use" (a bad argument, bad data, a file
that is not a fastnn file, a model that diverged) is a ``FastnnError``. Each is also an
instance of the built-in exception it has always been, so ``except ValueError`` code keeps
working:

    FastnnError
     +-- InvalidValueError      (also ValueError)   a value out of range, a wrong shape
     |    +-- FileFormatError                        a file fastnn cannot read as one of its own
     |    +-- ChecksumError                          a dataset file with another md5 than published
     +-- InvalidTypeError       (also TypeError)    an argument of the wrong type
     +-- StateError             (also RuntimeError) a call out of order (backward before forward)
     +-- DatasetNotFoundError   (also FileNotFoundError)
     +-- MissingDependencyError (also ImportError)    an optional package is not installed
     +-- TrainingDivergedError  (also FloatingPointError; in fastnn.training)
     +-- SearchFailedError      (also RuntimeError; in fastnn.tune)

The command line prints a ``FastnnError`` (and an operating-system error such as a missing
file) as one line and exits with 2; anything else is a bug in fastnn: it prints the
traceback, asks for a report and exits with 1.
"""

from pathlib import Path

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "FastnnError",
    "FileFormatError",
    "InvalidTypeError",
    "InvalidValueError",
    "MissingDependencyError",
    "StateError",
]


class FastnnError(Exception):
    """Base class of the errors fastnn raises on purpose."""


class InvalidValueError(FastnnError, ValueError):
    """An argument or input with the right type but an unusable value or shape."""


class InvalidTypeError(FastnnError, TypeError):
    """An argument or input of the wrong type."""


class StateError(FastnnError, RuntimeError):
    """A method called when the object is not ready for it (backward before forward,
    transform before fit)."""


class FileFormatError(InvalidValueError):
    """A file that is not a fastnn file, or a damaged one."""


class ChecksumError(InvalidValueError):
    """A dataset file's md5 differs from the published one."""


class DatasetNotFoundError(FastnnError, FileNotFoundError):
    """Dataset files are missing and could not be downloaded.

    ``missing`` lists the file names, ``folder`` is where they belong.
    """

    def __init__(self, message, missing=(), folder=None):
        super().__init__(message)
        self.missing = list(missing)
        self.folder = None if folder is None else Path(folder)


class MissingDependencyError(FastnnError, ImportError):
    """A package an optional feature needs is not installed; the message says which extra to
    install (``pip install 'fastnn[onnx]'``)."""
