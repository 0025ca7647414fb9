"""MNIST and Fashion-MNIST: IDX files, checked downloads, and an embedded offline sample.

    (x_train, y_train), (x_test, y_test) = load_mnist()             # 60,000 + 10,000, cached
    (x_train, y_train), (x_test, y_test) = load_mnist(sample=True)  # 8,000 + 2,000, offline

Images come as float arrays scaled to [0, 1], shape (n, 784) (or (n, 28, 28) with
``flatten=False``); labels as int64 in 0..9. Downloaded files are checked against the md5 sums
published with the datasets and written atomically, so an interrupted or corrupt download
leaves nothing behind. The embedded sample is the official MNIST test set (10,000 images),
shipped in ``fastnn/data/mnist`` under CC BY-SA 3.0 (see the README there).
"""

import functools
import hashlib
import http.client
import importlib.resources
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .._atomic import atomic_write
from .._checks import check_bool, check_dtype, check_int
from ..errors import ChecksumError, DatasetNotFoundError, InvalidValueError
from .idx import IDX_DTYPES, _parse_idx, read_idx, write_idx
from .preprocessing import split_indices

__all__ = [
    "ChecksumError",
    "DatasetNotFoundError",
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_MD5",
    "FASHION_MNIST_MIRRORS",
    "IDX_DTYPES",
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "SAMPLE_SIZE",
    "cache_dir",
    "load_fashion_mnist",
    "load_mnist",
    "load_mnist_sample",
    "read_idx",
    "write_idx",
]

# -- the datasets -----------------------------------------------------------------------------

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
# The md5 sums published with the datasets, by file name (Fashion-MNIST uses MNIST's names).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
# Tried in order; a file is taken from the first mirror that serves it with the right md5.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
# Fashion-MNIST's class names, by label.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
SAMPLE_SIZE = 10_000  # images in the embedded sample (the MNIST test set)
# Checked on first use; a copy, so patching MNIST_MD5 (as the tests do) leaves it alone.
_EMBEDDED_MD5 = {name: MNIST_MD5[name] for name in MNIST_FILES[2:]}

_DOWNLOAD_TIMEOUT_S = 60
_CHUNK = 1 << 20


def _spec(dataset):
    """(display name, md5 table, mirrors) of a dataset, read now so tests can patch them."""
    if dataset == "mnist":
        return "MNIST", MNIST_MD5, MNIST_MIRRORS
    return "Fashion-MNIST", FASHION_MNIST_MD5, FASHION_MNIST_MIRRORS


def cache_dir(dataset=None):
    """The folder datasets are kept in: ``$FASTNN_DATA`` if set, else the user cache folder.

    The user cache folder is ``platformdirs.user_cache_dir("fastnn")`` (~/.cache/fastnn on
    Linux). With ``dataset`` ("mnist", "fashion-mnist") the dataset's subfolder of it.
    """
    root = os.environ.get("FASTNN_DATA")
    if root:
        base = Path(root).expanduser()
    else:
        import platformdirs

        base = Path(platformdirs.user_cache_dir("fastnn"))
    if dataset is None:
        return base
    if not isinstance(dataset, str) or not dataset or "/" in dataset or "\\" in dataset:
        raise InvalidValueError(
            f"cache_dir: expected a dataset name such as 'mnist', got {dataset!r}"
        )
    return base / dataset


def _md5(path):
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _download(url, dest, md5):
    """Fetch ``url`` into ``dest`` atomically; ``ChecksumError`` (and no file) if md5 differs."""
    request = urllib.request.Request(url, headers={"User-Agent": "fastnn"})
    with urllib.request.urlopen(request, timeout=_DOWNLOAD_TIMEOUT_S) as response:
        with atomic_write(dest) as f:
            h = hashlib.md5(usedforsecurity=False)
            while chunk := response.read(_CHUNK):
                h.update(chunk)
                f.write(chunk)
            if h.hexdigest() != md5:
                raise ChecksumError(f"md5 {h.hexdigest()}, expected {md5}")


def _download_any(mirrors, name, md5, dest):
    """Try each mirror in turn; returns None on success, else why each one failed."""
    failures = []
    for mirror in mirrors:
        url = mirror + name
        try:
            _download(url, dest, md5)
            return None
        except (OSError, ValueError, http.client.HTTPException) as e:
            # URLError and socket errors are OSErrors; ValueError covers bad URLs and md5.
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            failures.append(f"{url}: {reason}")
    return "; ".join(failures) if failures else "no mirrors to download from"


def _fetch(dataset, folder, *, download, user_folder):
    """Make sure ``folder`` holds the dataset's four files with the right md5 sums.

    Missing files are downloaded when ``download``. A file with the wrong md5 raises
    ``ChecksumError``, except in the cache (not ``user_folder``) with ``download``, where a
    fresh copy is fetched and replaces it once verified.
    """
    title, md5s, mirrors = _spec(dataset)
    missing, failures = [], {}
    for name in MNIST_FILES:
        md5 = md5s[name]
        file = folder / name
        bad = None
        if file.is_file():
            got = _md5(file)
            if got == md5:
                continue
            bad = f"{file}: md5 {got} differs from the published {md5}"
            if user_folder or not download:
                fix = "delete it" + ("" if user_folder else " or call with download=True")
                raise ChecksumError(
                    f"{bad}; the file is damaged or not the {title} file of this name ({fix})"
                )
        elif not download:
            missing.append(name)
            continue
        folder.mkdir(parents=True, exist_ok=True)
        why = _download_any(mirrors, name, md5, file)
        if why is None:
            continue
        if bad is not None:
            raise ChecksumError(f"{bad}, and downloading a fresh copy failed: {why}")
        missing.append(name)
        failures[name] = why
    if missing:
        lines = [
            f"  {name}" + (f" (download failed: {failures[name]})" if name in failures else "")
            for name in missing
        ]
        hint = "" if download else " (download=False)"
        sample = (
            " load_mnist(sample=True) works offline with 10,000 embedded MNIST images."
            if dataset == "mnist"
            else ""
        )
        raise DatasetNotFoundError(
            f"{title}: {len(missing)} file(s) missing from {folder}{hint}:\n"
            + "\n".join(lines)
            + f"\nDownload them from {' or '.join(mirrors) or 'the dataset site'} and put them "
            f"in {folder}, or pass path= the folder that holds them.{sample}",
            missing,
            folder,
        )


def _check_pair(images, labels, name):
    """Raise ``ValueError`` unless images (n, 28, 28) uint8 and labels (n,) uint8 in 0..9."""
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (28, 28):
        raise InvalidValueError(
            f"{name}: expected uint8 images of shape (n, 28, 28), got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.uint8 or labels.shape != (len(images),):
        raise InvalidValueError(
            f"{name}: expected {len(images)} uint8 labels to match the images, got "
            f"{labels.dtype} {labels.shape}"
        )
    if labels.size and labels.max() > 9:
        raise InvalidValueError(f"{name}: expected labels 0 to 9, got {labels.max()}")


def _prepare(images, labels, flatten, dt):
    """uint8 (n, 28, 28) and labels -> x in [0, 1] of dtype dt, (n, 784) if flatten; y int64."""
    n, rows, cols = images.shape
    x = images.reshape(n, rows * cols) if flatten else images
    x = x.astype(dt)
    x /= 255
    return x, labels.astype(np.int64)


def _load(dataset, path, download, cache_root, flatten, dtype):
    dt = check_dtype(dtype)
    flatten = check_bool(flatten, "flatten")
    if path is not None:
        folder, user_folder = Path(path).expanduser(), True
    else:
        root = cache_dir() if cache_root is None else Path(cache_root).expanduser()
        folder, user_folder = root / dataset, False
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"{folder}: expected a folder for the {_spec(dataset)[0]} files")
    download = check_bool(download, "download")
    _fetch(dataset, folder, download=download, user_folder=user_folder)
    names = MNIST_FILES
    arrays = [read_idx(folder / name) for name in names]
    out = []
    for i in (0, 2):
        _check_pair(arrays[i], arrays[i + 1], f"{folder}: {names[i]} and {names[i + 1]}")
        out.append(_prepare(arrays[i], arrays[i + 1], flatten, dt))
    return out[0], out[1]


@functools.lru_cache(maxsize=1)
def _embedded_mnist_test():
    """The embedded MNIST test set as read-only uint8 (10000, 28, 28) images and labels.

    Read and md5-checked once per process.
    """
    folder = importlib.resources.files("fastnn") / "data" / "mnist"
    arrays = []
    for name in MNIST_FILES[2:]:
        data = (folder / name).read_bytes()
        got = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if got != _EMBEDDED_MD5[name]:
            raise ChecksumError(
                f"embedded {name}: md5 {got} differs from the published {_EMBEDDED_MD5[name]}; "
                f"the fastnn installation is damaged (reinstall it)"
            )
        a = _parse_idx(data, f"embedded {name}")
        a.flags.writeable = False
        arrays.append(a)
    _check_pair(arrays[0], arrays[1], "embedded MNIST test set")
    return arrays[0], arrays[1]


def load_mnist_sample(train_size=8000, test_size=2000, seed=0, flatten=True, dtype=np.float32):
    """A stratified split of the embedded MNIST test set (10,000 images); works offline.

    train_size + test_size <= 10,000 images are drawn without overlap, each set keeping the
    digits' proportions (each digit within 1 image of its share); seed (an int or a Generator)
    fixes the draw. Returns ((x_train, y_train), (x_test, y_test)): x of ``dtype`` in [0, 1],
    shape (n, 784) or (n, 28, 28) without ``flatten``; y int64. Accuracy on this test set is not
    comparable with published MNIST results, which use all 10,000 images as the test set.
    """
    train_size = check_int(train_size, "train_size", low=0)
    test_size = check_int(test_size, "test_size", low=0)
    if train_size + test_size > SAMPLE_SIZE:
        raise InvalidValueError(
            f"train_size + test_size = {train_size + test_size}; the embedded sample holds "
            f"{SAMPLE_SIZE} images"
        )
    dt = check_dtype(dtype)
    flatten = check_bool(flatten, "flatten")
    images, labels = _embedded_mnist_test()
    train, test = split_indices(labels, [train_size, test_size], stratify=True, rng=seed)
    return tuple(_prepare(images[i], labels[i], flatten, dt) for i in (train, test))


def load_mnist(
    path=None,
    *,
    sample=False,
    download=True,
    cache_dir=None,
    flatten=True,
    dtype=np.float32,
    train_size=8000,
    test_size=2000,
    seed=0,
):
    """MNIST: ((x_train, y_train), (x_test, y_test)), 60,000 and 10,000 handwritten digits.

    x: ``dtype`` (float32 or float64) scaled to [0, 1], shape (n, 784), or (n, 28, 28) without
    ``flatten``; y: int64 digits 0..9.

    The four standard files (``MNIST_FILES``) are read from the folder ``path`` if given, else
    from ``cache_dir / "mnist"`` (``cache_dir`` defaults to ``datasets.cache_dir()``:
    ``$FASTNN_DATA`` or the user cache folder). Missing files are downloaded from
    ``MNIST_MIRRORS`` when ``download``, checked against the published md5 and written
    atomically; when they cannot be had, ``DatasetNotFoundError`` (a ``FileNotFoundError``)
    lists them. A file with the wrong md5 raises ``ChecksumError``, except a cached one with
    ``download``, which is fetched again.

    ``sample=True`` instead returns ``load_mnist_sample(train_size, test_size, seed)``: a
    stratified split of the 10,000 embedded images, offline. train_size, test_size and seed
    apply only to the sample.
    """
    if sample:
        if path is not None:
            raise InvalidValueError("load_mnist: pass either path or sample=True, not both")
        return load_mnist_sample(train_size, test_size, seed, flatten=flatten, dtype=dtype)
    if (train_size, test_size) != (8000, 2000):
        raise InvalidValueError(
            "load_mnist: train_size and test_size choose the split of the embedded sample; "
            "pass sample=True to use them"
        )
    return _load("mnist", path, download, cache_dir, flatten, dtype)


def load_fashion_mnist(path=None, *, download=True, cache_dir=None, flatten=True, dtype=np.float32):
    """Fashion-MNIST: ((x_train, y_train), (x_test, y_test)), 60,000 and 10,000 clothing images.

    Same files, shapes and rules as ``load_mnist`` (cache subfolder "fashion-mnist", mirrors
    ``FASHION_MNIST_MIRRORS``); ``FASHION_MNIST_CLASSES[y]`` names label y. No embedded sample.
    """
    return _load("fashion-mnist", path, download, cache_dir, flatten, dtype)
