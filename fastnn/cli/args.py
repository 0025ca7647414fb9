"""What the commands share: the parser, its argument types (built on ``fastnn._checks``, so
a bad flag is refused with the wording the library uses), the error for bad input, and the
shape a model takes its data in."""

import argparse
from pathlib import Path

from .._atomic import target
from .._checks import check_int, check_real
from ..data.sources import as_images, flatten
from ..errors import FastnnError, InvalidValueError
from ..nn import Conv2D, Sequential


class UsageError(InvalidValueError):
    """A bad flag value or input file: reported in one line, exit code 2."""


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), like every other error here."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each flag's default, "(default: X)", unless the help text already says
    what the default is or there is none to show (None, or a switch that is off)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        return super()._get_help_string(action)


def check_folder(path, flag):
    """``UsageError`` unless ``path`` can be written: its folder exists and it is not a
    folder, a device or another file that is not a regular one (checked before training, not
    after it)."""
    folder = Path(path).parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    try:
        target(path)
    except (FastnnError, OSError) as e:
        raise UsageError(f"{flag} {path}: {e}") from None


def integer(name, low=None):
    """An argparse type: an integer, checked by ``check_int``."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        try:
            return check_int(value, name, low=low)
        except InvalidValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def real(name, low=None, high=None, closed="both"):
    """An argparse type: a number, checked by ``check_real`` (NaN and infinity refused)."""

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        try:
            return check_real(value, name, low, high, closed)
        except InvalidValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def sizes(text):
    """Layer sizes such as 256,128."""
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 256,128, got {text!r}") from None
    if any(s < 1 for s in values):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return values


def init_arg(text):
    """An initialiser's name, or a standard deviation."""
    try:
        return float(text)
    except ValueError:
        return text


def model_input(model, x, what="--data"):
    """``x`` shaped for ``model``: images (n, channels, height, width) for a model that starts
    with a convolution (``fastnn.data.sources.as_images``), else rows (``flatten``)."""
    first = model
    while isinstance(first, Sequential) and len(first):
        first = first[0]
    return as_images(x, what) if isinstance(first, Conv2D) else flatten(x)
