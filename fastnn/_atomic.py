"""Writing files atomically: a crash mid-write leaves the old file (or none), never half a one."""

import os
import stat
import tempfile
from contextlib import contextmanager

from .errors import InvalidValueError


def target(path):
    """The file a write to ``path`` replaces: ``path`` itself, or for a symbolic link the file
    it points to (links are followed, as ``open`` and ``np.save`` follow them, and stay links).

    ``InvalidValueError`` when that exists and is not a regular file (a folder, a device, a
    pipe: replacing it would destroy it), ``FileNotFoundError`` when its folder does not
    exist; both name the path given.
    """
    given = os.fsdecode(os.fspath(path))
    real = os.path.realpath(given)
    if os.path.exists(real):
        mode = os.stat(real).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "a device, pipe or socket"
            shown = given if real == os.path.abspath(given) else f"{given} (-> {real})"
            raise InvalidValueError(f"cannot write {shown}: it is {kind}, not a regular file")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, f"cannot write {given}: the folder {folder} does not exist")
    return real


@contextmanager
def atomic_write(path):
    """A binary file object whose contents appear at ``path`` only if the block ends without an
    exception.

    The data goes to a temporary file in the target's folder (``.fastnn-*.tmp``), is flushed to
    disk, then replaces the target (``target(path)``: a symbolic link's file) with
    ``os.replace``, so readers never see a partial file; on any failure (Ctrl-C included) the
    temporary file is removed.
    """
    path = target(path)
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
