"""Writing files atomically: a crash mid-write leaves the old file (or none), never half a one."""

import os
import tempfile
from contextlib import contextmanager


@contextmanager
def atomic_write(path):
    """A binary file object whose contents appear at ``path`` only if the block ends without an
    exception.

    The data goes to a temporary file in the target's folder (``.fastnn-*.tmp``), is flushed to
    disk, then replaces ``path`` with ``os.replace``, so readers never see a partial file; on
    any failure (Ctrl-C included) the temporary file is removed. The folder must exist:
    ``FileNotFoundError`` names it otherwise (not the temporary file).
    """
    path = os.fsdecode(os.fspath(path))
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, f"cannot write {path}: the folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".tmp", dir=folder)
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
