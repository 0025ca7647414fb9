"""fastnn.datasets: the IDX reader against hand-built bytes, the embedded MNIST sample, and the
download path through file:// mirrors (no test touches the network)."""

import gzip
import hashlib
import socket
import struct
import urllib.request
from pathlib import Path

import numpy as np
import platformdirs
import pytest

import fastnn
from fastnn import datasets
from fastnn.datasets import (
    ChecksumError,
    DatasetNotFoundError,
    cache_dir,
    load_fashion_mnist,
    load_mnist,
    load_mnist_sample,
    read_idx,
    write_idx,
)

SHARED = Path("/work/shared/data/mnist")
FILES = datasets.MNIST_FILES


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """No sockets, no real mirrors, and a cache folder of the test's own."""

    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ())
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", ())
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "default-cache"))


def md5(data):
    return hashlib.md5(data).hexdigest()


# -- IDX files --------------------------------------------------------------------------------

# (type code, struct format of one item, dtype, values)
IDX_CASES = [
    (0x08, "B", np.uint8, [0, 1, 127, 128, 255, 7]),
    (0x09, "b", np.int8, [-128, -1, 0, 1, 127, 5]),
    (0x0B, "h", np.int16, [-32768, -2, 0, 3, 32767, 258]),
    (0x0C, "i", np.int32, [-(2**31), -5, 0, 6, 2**31 - 1, 65536 + 3]),
    (0x0D, "f", np.float32, [-1.5, 0.0, 0.25, 3e38, -1e-30, 1.0]),
    (0x0E, "d", np.float64, [-1.5, 0.0, 0.1, 1e300, -1e-300, 2.0]),
]


def idx_bytes(code, fmt, values, shape):
    """An IDX file written out by hand: 00 00 type ndim, big-endian dims, big-endian items."""
    header = struct.pack(f">2xBB{len(shape)}I", code, len(shape), *shape)
    return header + struct.pack(f">{len(values)}{fmt}", *values)


@pytest.mark.parametrize("code, fmt, dtype, values", IDX_CASES)
@pytest.mark.parametrize("shape", [(6,), (2, 3), (1, 2, 3)])
def test_read_idx_hand_built(tmp_path, code, fmt, dtype, values, shape):
    raw = idx_bytes(code, fmt, values, shape)
    want = np.array(values, dtype=dtype).reshape(shape)
    (tmp_path / "a.idx").write_bytes(raw)
    # Compression is told by the magic bytes, not the name: a gzip file without ".gz" and a
    # raw file named ".gz" both read.
    (tmp_path / "b.idx").write_bytes(gzip.compress(raw))
    (tmp_path / "c.gz").write_bytes(raw)
    for name in ("a.idx", "b.idx", "c.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        assert got.shape == shape
        np.testing.assert_array_equal(got, want)
    assert got.flags.writeable


@pytest.mark.parametrize("code, fmt, dtype, values", IDX_CASES)
def test_write_idx_gives_the_hand_built_bytes(tmp_path, code, fmt, dtype, values):
    a = np.array(values, dtype=dtype).reshape(3, 2)
    write_idx(tmp_path / "a.idx", a)
    assert (tmp_path / "a.idx").read_bytes() == idx_bytes(code, fmt, values, (3, 2))
    write_idx(tmp_path / "a.idx.gz", a)  # ".gz": compressed
    assert gzip.decompress((tmp_path / "a.idx.gz").read_bytes()) == idx_bytes(
        code, fmt, values, (3, 2)
    )
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx.gz"), a)
    # A byte-swapped array is written by value.
    write_idx(tmp_path / "b.idx", a.astype(a.dtype.newbyteorder()))
    assert (tmp_path / "b.idx").read_bytes() == (tmp_path / "a.idx").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.idx", "a.idx.gz", "b.idx"]


def test_write_idx_errors(tmp_path):
    with pytest.raises(TypeError, match="no type for dtype int64"):
        write_idx(tmp_path / "a.idx", np.arange(3))
    with pytest.raises(ValueError, match=r"1 to 255 dimensions, got \(\)"):
        write_idx(tmp_path / "a.idx", np.uint8(3))
    assert list(tmp_path.iterdir()) == []


GOOD = idx_bytes(0x08, "B", list(range(6)), (2, 3))
BAD_FILES = {
    "empty": (b"", "expected a header of at least 4 bytes, got 0"),
    "short": (b"\x00\x00\x08", "expected a header of at least 4 bytes, got 3"),
    "magic": (b"\x01" + GOOD[1:], "expected the magic number to start with bytes 00 00, got 01 00"),
    "type code": (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX type code 0x0A; expected one of"),
    "no dims": (b"\x00\x00\x08\x00", "0 dimensions; expected at least 1"),
    "header": (GOOD[:9], "truncated IDX header: expected 12 bytes for 2 dimensions, got 9"),
    "truncated": (
        GOOD[:-1],
        "truncated IDX file: expected 6 bytes of data after the header.*got 5",
    ),
    "trailing": (
        GOOD + b"\x00",
        "trailing bytes.*expected 6 bytes of data after the header.*got 7",
    ),
    "int32 size": (
        idx_bytes(0x0C, "i", [1, 2], (3,)),
        r"truncated IDX file: expected 12 bytes .*\(3,\), int32\), got 8",
    ),
    "gzip truncated": (gzip.compress(GOOD)[:-12], "corrupt gzip stream"),
    "gzip crc": (
        gzip.compress(GOOD)[:-8] + b"\xff\xff\xff\xff" + gzip.compress(GOOD)[-4:],
        "corrupt gzip",
    ),
    "gzip garbage": (b"\x1f\x8b" + b"\x08\x00" + b"\xff" * 40, "corrupt gzip stream"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_read_idx_errors_name_the_file(tmp_path, case):
    data, message = BAD_FILES[case]
    path = tmp_path / f"t10k-{case.replace(' ', '-')}.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope.idx")


# -- the embedded sample ----------------------------------------------------------------------


def shared_mnist_test():
    """The MNIST test set decoded without fastnn: a 16- and an 8-byte header, then bytes."""
    images = gzip.decompress((SHARED / FILES[2]).read_bytes())
    labels = gzip.decompress((SHARED / FILES[3]).read_bytes())
    assert struct.unpack(">4I", images[:16]) == (2051, 10000, 28, 28)
    assert struct.unpack(">2I", labels[:8]) == (2049, 10000)
    return (
        np.frombuffer(images, np.uint8, offset=16).reshape(10000, 784),
        np.frombuffer(labels, np.uint8, offset=8),
    )


def test_embedded_files_are_the_published_ones():
    folder = Path(fastnn.__file__).parent / "data" / "mnist"
    for name in FILES[2:]:
        assert md5((folder / name).read_bytes()) == datasets.MNIST_MD5[name]
    assert "CC BY-SA 3.0" in (folder / "README.md").read_text()


def test_sample_shapes_range_and_stratification():
    (x_train, y_train), (x_test, y_test) = load_mnist(sample=True)
    assert x_train.shape == (8000, 784) and x_test.shape == (2000, 784)
    assert x_train.dtype == x_test.dtype == np.float32
    assert y_train.dtype == y_test.dtype == np.int64
    assert y_train.shape == (8000,) and y_test.shape == (2000,)
    assert x_train.min() == 0 and x_train.max() == 1 and x_test.max() == 1
    counts = np.bincount(np.concatenate([y_train, y_test]), minlength=10)
    assert counts.sum() == 10000 and counts.min() > 800  # every digit, all 10,000 images
    for y, n in ((y_train, 8000), (y_test, 2000)):
        share = counts * n / 10000
        assert np.all(np.abs(np.bincount(y, minlength=10) - share) <= 1)
    # Not in class order.
    assert np.mean(y_train[1:] != y_train[:-1]) > 0.8


def rows_as_records(a):
    a = np.ascontiguousarray(a)
    return a.view(np.dtype((np.void, a.shape[1] * a.itemsize))).ravel()


@pytest.mark.skipif(not SHARED.is_dir(), reason="no shared MNIST copy on this machine")
def test_sample_pixels_match_the_shared_copy():
    # 8,000 + 2,000 use every image once: together they are the whole test set, pixel for pixel,
    # which also shows train and test share no image.
    images, labels = shared_mnist_test()
    (x_train, y_train), (x_test, y_test) = load_mnist_sample()
    x = np.rint(np.concatenate([x_train, x_test]) * 255).astype(np.uint8)
    y = np.concatenate([y_train, y_test])
    want = np.column_stack([labels, images])
    got = np.column_stack([y.astype(np.uint8), x])
    # Rows as opaque 785-byte records, so sorting compares them whole.
    np.testing.assert_array_equal(np.sort(rows_as_records(got)), np.sort(rows_as_records(want)))
    # Scaling is exactly pixel / 255.
    row = np.flatnonzero((images == x_test[0] * 255).all(axis=1))[0]
    np.testing.assert_array_equal(x_test[0], images[row].astype(np.float32) / np.float32(255))


def test_sample_disjoint_seeded_and_options():
    (a, ya), (b, yb) = load_mnist_sample(300, 200, seed=3)
    (a2, _), (b2, _) = load_mnist(sample=True, train_size=300, test_size=200, seed=3)
    np.testing.assert_array_equal(a, a2)
    np.testing.assert_array_equal(b, b2)
    (c, _), _ = load_mnist_sample(300, 200, seed=4)
    assert not np.array_equal(a, c)
    # Small draws share no image (MNIST holds no exact duplicates among these).
    rows = {r.tobytes() for r in a}
    assert not rows & {r.tobytes() for r in b}
    (f, _), (g, _) = load_mnist_sample(5, 0, flatten=False, dtype=np.float64)
    assert f.shape == (5, 28, 28) and f.dtype == np.float64 and g.shape == (0, 28, 28)


def test_sample_errors():
    with pytest.raises(ValueError, match="train_size \\+ test_size = 10001"):
        load_mnist_sample(9000, 1001)
    with pytest.raises(ValueError, match="invalid train_size: -1"):
        load_mnist_sample(-1)
    with pytest.raises(TypeError, match="test_size must be an integer"):
        load_mnist_sample(10, 0.5)
    with pytest.raises(ValueError, match="invalid dtype: int32"):
        load_mnist_sample(10, 10, dtype=np.int32)
    with pytest.raises(ValueError, match="path or sample=True"):
        load_mnist("somewhere", sample=True)
    with pytest.raises(ValueError, match="pass sample=True"):
        load_mnist(train_size=100)


# -- the full datasets, through file:// mirrors -----------------------------------------------


def small_dataset(seed):
    """Four IDX files of a tiny MNIST look-alike: 12 training and 5 test images."""
    rng = np.random.default_rng(seed)
    arrays = [
        rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=12, dtype=np.uint8),
        rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8),
        rng.integers(0, 10, size=5, dtype=np.uint8),
    ]
    files = {}
    for name, a in zip(FILES, arrays, strict=True):
        values = a.reshape(-1).tolist()
        files[name] = gzip.compress(idx_bytes(0x08, "B", values, a.shape))
    return arrays, files


@pytest.fixture
def mirrors(tmp_path, monkeypatch):
    """Three file:// mirrors: one empty, one serving damaged files, one serving good ones."""
    arrays, files = small_dataset(0)
    empty, damaged, good = (tmp_path / "mirrors" / m for m in ("empty", "damaged", "good"))
    for folder in (empty, damaged, good):
        folder.mkdir(parents=True)
    for name, data in files.items():
        (good / name).write_bytes(data)
        (damaged / name).write_bytes(data[:-20] + bytes(20))
    uris = tuple(f.as_uri() + "/" for f in (empty, damaged, good))
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", uris)
    monkeypatch.setattr(datasets, "MNIST_MD5", {n: md5(d) for n, d in files.items()})
    return arrays, files, uris


def assert_loaded(result, arrays):
    (x_train, y_train), (x_test, y_test) = result
    for x, y, images, labels in ((x_train, y_train, *arrays[:2]), (x_test, y_test, *arrays[2:])):
        assert x.dtype == np.float32 and x.shape == (len(images), 784)
        np.testing.assert_array_equal(x, images.reshape(len(images), -1) / np.float32(255))
        assert y.dtype == np.int64
        np.testing.assert_array_equal(y, labels)


def test_download_falls_back_across_mirrors(tmp_path, mirrors, monkeypatch):
    arrays, files, _ = mirrors
    root = tmp_path / "cache"
    assert_loaded(load_mnist(cache_dir=root), arrays)
    folder = root / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)  # no temporary files left
    for name, data in files.items():
        assert (folder / name).read_bytes() == data
    # Now cached: no mirror is needed.
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ())
    (x_train, _), _ = load_mnist(cache_dir=root, download=False, flatten=False)
    assert x_train.shape == (12, 28, 28)


def test_only_missing_files_are_downloaded(tmp_path, mirrors, monkeypatch):
    arrays, files, uris = mirrors
    folder = tmp_path / "cache" / "mnist"
    folder.mkdir(parents=True)
    (folder / FILES[0]).write_bytes(files[FILES[0]])
    fetched = []
    real = datasets._download

    def spy(url, dest, md5):
        fetched.append(url.rsplit("/", 1)[1])
        return real(url, dest, md5)

    monkeypatch.setattr(datasets, "_download", spy)
    assert_loaded(load_mnist(cache_dir=tmp_path / "cache"), arrays)
    assert FILES[0] not in fetched and set(fetched) == set(FILES[1:])


def test_all_mirrors_failing_leaves_nothing_and_says_what_is_missing(
    tmp_path, mirrors, monkeypatch
):
    _, _, uris = mirrors
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", uris[:2])  # the empty and the damaged one
    root = tmp_path / "cache"
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(cache_dir=root)
    folder = root / "mnist"
    assert list(folder.iterdir()) == []  # no partial or temporary file
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert info.value.missing == list(FILES) and info.value.folder == folder
    for name in FILES:
        assert name in message
    assert str(folder) in message and "load_mnist(sample=True)" in message
    assert "md5" in message  # why the damaged mirror was refused


def test_interrupted_download_leaves_nothing(tmp_path, mirrors, monkeypatch):
    class Broken:
        def __init__(self):
            self.calls = 0

        def read(self, n):
            self.calls += 1
            if self.calls > 1:
                raise ConnectionResetError("connection reset by peer")
            return b"\x1f\x8b partial"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Broken())
    with pytest.raises(DatasetNotFoundError, match="connection reset by peer"):
        load_mnist(cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "mnist").iterdir()) == []


def test_missing_files_without_download(tmp_path, mirrors):
    _, files, _ = mirrors
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in FILES[:2]:
        (folder / name).write_bytes(files[name])
    with pytest.raises(DatasetNotFoundError) as info:
        load_mnist(folder, download=False)
    assert info.value.missing == list(FILES[2:])
    assert FILES[0] not in str(info.value) and FILES[3] in str(info.value)
    assert f"put them in {folder}" in str(info.value)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES[:2])
    with pytest.raises(DatasetNotFoundError):
        load_mnist(cache_dir=tmp_path / "cache", download=False)
    assert not (tmp_path / "cache").exists()


def test_wrong_checksum(tmp_path, mirrors):
    arrays, files, _ = mirrors
    # A user's folder is never overwritten, even with download=True.
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    (folder / FILES[2]).write_bytes(b"not mnist")
    with pytest.raises(ChecksumError, match=f"{FILES[2]}: md5 {md5(b'not mnist')} differs"):
        load_mnist(folder)
    assert (folder / FILES[2]).read_bytes() == b"not mnist"
    # In the cache a damaged file is fetched again, unless download=False.
    cached = tmp_path / "cache" / "mnist"
    cached.mkdir(parents=True)
    (cached / FILES[1]).write_bytes(b"damaged")
    with pytest.raises(ChecksumError, match="download=True"):
        load_mnist(cache_dir=tmp_path / "cache", download=False)
    assert_loaded(load_mnist(cache_dir=tmp_path / "cache"), arrays)
    assert (cached / FILES[1]).read_bytes() == files[FILES[1]]


def test_user_folder_is_read_as_is(tmp_path, mirrors, monkeypatch):
    arrays, files, _ = mirrors
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ())
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    assert_loaded(load_mnist(folder), arrays)
    assert_loaded(load_mnist(str(folder), download=False), arrays)


def test_fastnn_data_is_the_cache(tmp_path, mirrors, monkeypatch):
    arrays, _, _ = mirrors
    monkeypatch.setenv("FASTNN_DATA", str(tmp_path / "data"))
    assert cache_dir() == tmp_path / "data"
    assert cache_dir("mnist") == tmp_path / "data" / "mnist"
    assert_loaded(load_mnist(), arrays)
    assert sorted(p.name for p in (tmp_path / "data" / "mnist").iterdir()) == sorted(FILES)
    monkeypatch.delenv("FASTNN_DATA")
    assert cache_dir() == Path(platformdirs.user_cache_dir("fastnn"))
    with pytest.raises(ValueError, match="dataset name"):
        cache_dir("../x")


def test_fashion_mnist_uses_its_own_folder_and_tables(tmp_path, monkeypatch):
    arrays, files = small_dataset(1)
    mirror = tmp_path / "fashion"
    mirror.mkdir()
    for name, data in files.items():
        (mirror / name).write_bytes(data)
    monkeypatch.setattr(datasets, "FASHION_MNIST_MIRRORS", (mirror.as_uri() + "/",))
    monkeypatch.setattr(datasets, "FASHION_MNIST_MD5", {n: md5(d) for n, d in files.items()})
    assert_loaded(load_fashion_mnist(cache_dir=tmp_path / "cache"), arrays)
    assert sorted(p.name for p in (tmp_path / "cache" / "fashion-mnist").iterdir()) == sorted(FILES)
    assert len(datasets.FASHION_MNIST_CLASSES) == 10
    # Without files, no MNIST sample is offered for Fashion-MNIST.
    with pytest.raises(DatasetNotFoundError) as info:
        load_fashion_mnist(cache_dir=tmp_path / "other", download=False)
    assert "Fashion-MNIST" in str(info.value) and "sample" not in str(info.value)


def test_bad_contents_are_refused(tmp_path, monkeypatch):
    # Right checksums (patched) but labels that are no digits.
    arrays, files = small_dataset(2)
    files[FILES[1]] = gzip.compress(idx_bytes(0x08, "B", [10] * 12, (12,)))
    folder = tmp_path / "mine"
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    monkeypatch.setattr(datasets, "MNIST_MD5", {n: md5(d) for n, d in files.items()})
    with pytest.raises(ValueError, match="expected labels 0 to 9, got 10"):
        load_mnist(folder)


def test_published_checksums():
    assert datasets.MNIST_MD5 == {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    assert set(datasets.FASHION_MNIST_MD5) == set(FILES)
    assert datasets.MNIST_MIRRORS == ()  # patched by the autouse fixture
