"""Reading ``.npz`` archives that may come from anyone: member by member, each one's size
checked against its ``.npy`` header and its compressed size before anything is inflated.

``np.load`` on an archive reads every member it is asked for in full, trusting the sizes the
archive declares; a small file can then cost gigabytes (a deflated member of zeros, a header
declaring a huge array). Here nothing is read that the caller did not name, a member's data
must be exactly what its header declares, and a compressed member may not inflate to more
than ``MAX_RATIO`` times its stored size (plus ``SLACK`` bytes): fastnn writes its files
uncompressed (``np.savez``), and weights never compress far.
"""

import math
import zipfile

import numpy as np

from .errors import FileFormatError

MAX_MEMBERS = 10_000
MAX_RATIO = 100
SLACK = 1 << 20
MAX_NPY_HEADER = 10_000  # bytes of a member's .npy header (NumPy's own default limit)


class Archive:
    """An open ``.npz`` archive: ``names`` (the keys, without ``.npy``), ``shape_of(key)`` and
    ``dtype_of(key)`` from the member's header alone, ``read(key)`` the array."""

    def __init__(self, path, name):
        self.name = name
        try:
            self._zip = zipfile.ZipFile(path)
            infos = self._zip.infolist()
        except (OSError, EOFError, zipfile.BadZipFile, ValueError) as e:
            raise FileFormatError(f"{name}: not a readable .npz archive ({e})") from None
        if len(infos) > MAX_MEMBERS:
            self.close()
            raise FileFormatError(f"{name}: {len(infos)} members; a fastnn file has fewer")
        self._infos = {}
        for info in infos:
            if not info.filename.endswith(".npy") or info.is_dir():
                self.close()
                raise FileFormatError(f"{name}: member {info.filename!r} is not an .npy array")
            self._infos[info.filename[: -len(".npy")]] = info
        self._headers = {}

    @property
    def names(self):
        return list(self._infos)

    def _header(self, key):
        """(shape, dtype, fortran_order, offset of the data) of member ``key``, checked."""
        if key in self._headers:
            return self._headers[key]
        info = self._infos[key]
        what = f"{self.name}: member {key!r}"
        if info.compress_type != zipfile.ZIP_STORED and info.file_size > (
            MAX_RATIO * info.compress_size + SLACK
        ):
            raise FileFormatError(
                f"{what} would inflate from {info.compress_size} to {info.file_size} bytes; "
                f"refused (more than {MAX_RATIO} times)"
            )
        try:
            with self._zip.open(info) as f:
                version = np.lib.format.read_magic(f)
                reader = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = reader(f, max_header_size=MAX_NPY_HEADER)
                offset = f.tell()
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, RuntimeError) as e:
            raise FileFormatError(f"{what} has no valid .npy header ({e})") from None
        if dtype.hasobject:
            raise FileFormatError(f"{what}: refused: it holds pickled objects (dtype {dtype})")
        if dtype.kind not in "biufU":
            raise FileFormatError(f"{what} has dtype {dtype}; expected numbers")
        size = math.prod(shape) * dtype.itemsize
        if info.file_size != offset + size:
            raise FileFormatError(
                f"{what} declares a {dtype} array of shape {shape} ({size} bytes) but holds "
                f"{info.file_size - offset} bytes of data"
            )
        self._headers[key] = (tuple(shape), dtype, fortran, offset)
        return self._headers[key]

    def shape_of(self, key):
        return self._header(key)[0]

    def dtype_of(self, key):
        return self._header(key)[1]

    def read(self, key):
        """The array of member ``key``: its size checked first, then read (never unpickled)."""
        self._header(key)
        try:
            with self._zip.open(self._infos[key]) as f:
                return np.lib.format.read_array(
                    f, allow_pickle=False, max_header_size=MAX_NPY_HEADER
                )
        except (OSError, EOFError, ValueError, zipfile.BadZipFile, RuntimeError) as e:
            raise FileFormatError(f"{self.name}: member {key!r} is damaged ({e})") from None

    def close(self):
        self._zip.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
