"""The IDX file format of MNIST and Fashion-MNIST: a small header (type code, dimensions)
followed by the raw big-endian data, often gzip-compressed."""

import gzip
import io
import math
import os
import struct
import zlib

import numpy as np

from .._atomic import atomic_write
from ..errors import FileFormatError, InvalidTypeError, InvalidValueError

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

# IDX type code -> big-endian dtype of the items.
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in IDX_DTYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


# A gzip-compressed IDX file may declare at most this many times its own size of data (plus a
# MiB): MNIST's files inflate about 5 times. More is refused before anything is inflated.
MAX_RATIO = 100
SLACK = 1 << 20


def _read_stream(f, name, limit, raw_size=None):
    """The array in the IDX stream ``f`` (raw, or a gzip stream being inflated): the header
    first, then exactly the data it declares, if that is at most ``limit`` bytes (what the
    file can hold: its size raw, ``MAX_RATIO`` times it compressed), then one byte more to see
    whether anything trails. Nothing beyond that is read. ``raw_size``: the file's size, when
    it is not compressed (to say how many bytes trail)."""
    head = f.read(4)
    if len(head) < 4:
        raise FileFormatError(
            f"{name}: not an IDX file: expected a header of at least 4 bytes, got {len(head)}"
        )
    if head[:2] != b"\x00\x00":
        raise FileFormatError(
            f"{name}: not an IDX file: expected the magic number to start with bytes 00 00, "
            f"got {head[:2].hex(' ')}"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_DTYPES:
        codes = ", ".join(f"0x{c:02X} ({dt.name})" for c, dt in IDX_DTYPES.items())
        raise FileFormatError(
            f"{name}: unknown IDX type code 0x{code:02X}; expected one of {codes}"
        )
    if ndim == 0:
        raise FileFormatError(f"{name}: IDX header gives 0 dimensions; expected at least 1")
    dims = f.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise FileFormatError(
            f"{name}: truncated IDX header: expected {4 + 4 * ndim} bytes for {ndim} dimensions, "
            f"got {4 + len(dims)}"
        )
    shape = struct.unpack(f">{ndim}I", dims)
    dtype = IDX_DTYPES[code]
    expected = dtype.itemsize * math.prod(shape)
    if expected > limit:
        raise FileFormatError(
            f"{name}: truncated IDX file: the header declares {expected} bytes of data "
            f"(shape {shape}, {dtype.name}), more than the file can hold"
        )
    data = f.read(expected)
    trailing = f.read(1)
    if len(data) != expected or trailing:
        what = "truncated IDX file" if len(data) < expected else "trailing bytes after the IDX data"
        header = 4 + 4 * ndim
        got = len(data) if len(data) < expected else raw_size - header if raw_size else "more"
        raise FileFormatError(
            f"{name}: {what}: expected {expected} bytes of data after the header "
            f"(shape {shape}, {dtype.name}), got {got}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize)
    return flat.astype(dtype.newbyteorder("=")).reshape(shape)  # a native-endian copy


def _read(f, name, size):
    """The array in the IDX file object ``f`` of ``size`` bytes, raw or gzip-compressed."""
    if f.read(2) != _GZIP_MAGIC:
        f.seek(0)
        return _read_stream(f, name, limit=size, raw_size=size)
    f.seek(0)
    try:
        with gzip.GzipFile(fileobj=f, mode="rb") as z:
            return _read_stream(z, name, limit=MAX_RATIO * size + SLACK)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise FileFormatError(f"{name}: corrupt gzip stream ({e})") from None


def _parse_idx(data, name):
    """The array held by the IDX bytes ``data`` (raw or gzip); ``name`` is named in errors."""
    return _read(io.BytesIO(data), name, len(data))


def read_idx(path):
    """The array in the IDX file at ``path`` (raw or gzip, told apart by the gzip magic bytes).

    Returns a native-endian array of the shape and type the header gives (uint8, int8, int16,
    int32, float32 or float64). A malformed header, a truncated file, trailing bytes or a
    corrupt gzip stream raise ``ValueError`` naming the file. Only the data the header
    declares is read, and a gzip file may declare at most ``MAX_RATIO`` times its size: a
    small file that would inflate to gigabytes is refused before it is inflated.
    """
    name = os.fspath(path)
    with open(path, "rb") as f:
        return _read(f, name, os.fstat(f.fileno()).st_size)


def write_idx(path, array):
    """Write ``array`` to ``path`` as an IDX file, gzip-compressed when path ends in ".gz".

    array: uint8, int8, int16, int32, float32 or float64 with at least one dimension. The
    file is replaced atomically. ``read_idx(path)`` gives the array back.
    """
    a = np.asarray(array)
    dt = a.dtype.newbyteorder("=")
    if dt not in _IDX_CODES:
        names = ", ".join(d.name for d in IDX_DTYPES.values())
        raise InvalidTypeError(
            f"write_idx: IDX has no type for dtype {a.dtype}; expected one of {names}"
        )
    if not 1 <= a.ndim <= 255:
        raise InvalidValueError(
            f"write_idx: expected an array of 1 to 255 dimensions, got {a.shape}"
        )
    if max(a.shape) >= 2**32:
        raise InvalidValueError(f"write_idx: dimensions must be below 2**32, got {a.shape}")
    code = _IDX_CODES[dt]
    header = struct.pack(f">2xBB{a.ndim}I", code, a.ndim, *a.shape)
    data = header + np.ascontiguousarray(a, dtype=IDX_DTYPES[code]).tobytes()
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with atomic_write(path) as f:
        f.write(data)
