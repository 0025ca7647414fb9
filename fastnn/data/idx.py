"""The IDX file format of MNIST and Fashion-MNIST: a small header (type code, dimensions)
followed by the raw big-endian data, often gzip-compressed."""

import gzip
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


def _parse_idx(data, name):
    """The array held by the IDX bytes ``data``; ``name`` is the file named in errors."""
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise FileFormatError(f"{name}: corrupt gzip stream ({e})") from e
    if len(data) < 4:
        raise FileFormatError(
            f"{name}: not an IDX file: expected a header of at least 4 bytes, got {len(data)}"
        )
    if data[:2] != b"\x00\x00":
        raise FileFormatError(
            f"{name}: not an IDX file: expected the magic number to start with bytes 00 00, "
            f"got {data[:2].hex(' ')}"
        )
    code, ndim = data[2], data[3]
    if code not in IDX_DTYPES:
        codes = ", ".join(f"0x{c:02X} ({dt.name})" for c, dt in IDX_DTYPES.items())
        raise FileFormatError(
            f"{name}: unknown IDX type code 0x{code:02X}; expected one of {codes}"
        )
    if ndim == 0:
        raise FileFormatError(f"{name}: IDX header gives 0 dimensions; expected at least 1")
    start = 4 + 4 * ndim
    if len(data) < start:
        raise FileFormatError(
            f"{name}: truncated IDX header: expected {start} bytes for {ndim} dimensions, "
            f"got {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:start])
    dtype = IDX_DTYPES[code]
    expected = dtype.itemsize
    for d in shape:
        expected *= d
    got = len(data) - start
    if got != expected:
        what = "truncated IDX file" if got < expected else "trailing bytes after the IDX data"
        raise FileFormatError(
            f"{name}: {what}: expected {expected} bytes of data after the header "
            f"(shape {shape}, {dtype.name}), got {got}"
        )
    flat = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=start)
    return flat.astype(dtype.newbyteorder("=")).reshape(shape)  # a native-endian copy


def read_idx(path):
    """The array in the IDX file at ``path`` (raw or gzip, told apart by the gzip magic bytes).

    Returns a native-endian array of the shape and type the header gives (uint8, int8, int16,
    int32, float32 or float64). A malformed header, a truncated file, trailing bytes or a
    corrupt gzip stream raise ``ValueError`` naming the file.
    """
    name = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    return _parse_idx(data, name)


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
