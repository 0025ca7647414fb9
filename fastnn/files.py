"""Saving and loading models and training checkpoints, without pickle.

A fastnn file is an ``.npz`` archive (``numpy.savez``) holding

- ``fastnn.json``: a 0-d string array with the JSON header: the format name and version, the
  model's architecture (layer classes and constructor arguments), its dtype, and for a
  checkpoint the optimizer's hyperparameters, the epoch, the history so far, the random
  generators' states and the callbacks' states;
- ``model/<name>``: every parameter and persistent buffer (``model.state_dict()``);
- ``optimizer/<name>``: a checkpoint's optimizer state buffers (Adam's moments, ...);
- ``callback<i>/<name>``: arrays a callback keeps (EarlyStopping's best weights).

Files are read with ``allow_pickle=False``, so loading a file from someone else cannot run
code; the architecture is rebuilt from fastnn's own layer classes (``fastnn.nn.LAYERS``). Writes are
atomic: the archive goes to a temporary file in the target's folder, which then replaces the
target, so a crash mid-save leaves the previous file as it was.
"""

import functools
import json
import os
import zipfile

import numpy as np

from ._atomic import atomic_write
from ._checks import check_dtype
from .errors import FileFormatError, InvalidTypeError
from .nn import LAYERS, MLP, Module, Sequential

__all__ = [
    "FORMAT",
    "FastnnFile",
    "HEADER",
    "VERSION",
    "architecture",
    "build",
    "load",
    "model_from",
    "read",
    "save",
    "save_checkpoint",
    "write_npz",
]

FORMAT = "fastnn"
VERSION = 1
HEADER = "fastnn.json"


# -- architecture <-> JSON -----------------------------------------------------------------------
@functools.lru_cache(maxsize=32)
def _built_layers_spec(spec_json, dtype):
    # Building an MLP draws all its initial weights (0.1 s for 4 M parameters); a training run
    # saves the same architecture every epoch, so build each one once.
    return _layers_spec(build(json.loads(spec_json), dtype))


def architecture(model):
    """The JSON-able description of ``model`` that ``build`` turns back into a model: its
    class name and ``get_config()``, or for a ``Sequential`` the list of its layers'."""
    cls = type(model)
    if cls is MLP:
        spec = {"class": "MLP", "config": model.get_config()}
        # An MLP whose layers were changed after it was built is saved as what it now is.
        key = json.dumps(spec, sort_keys=True, default=_json_default)
        if _layers_spec(model) == _built_layers_spec(key, model.dtype):
            return spec
        return {"class": "Sequential", "layers": _layers_spec(model)}
    if isinstance(model, Sequential):
        return {"class": "Sequential", "layers": _layers_spec(model)}
    config = model.get_config() if LAYERS.get(cls.__name__) is cls else None
    if config is None:
        raise InvalidTypeError(
            f"cannot save a {cls.__name__}: fastnn files hold the layers "
            f"{', '.join(sorted(LAYERS))} (and Sequential models of them)"
        )
    return {"class": cls.__name__, "config": config}


def _layers_spec(model):
    return [architecture(layer) for layer in model.layers]


def build(spec, dtype=np.float32):
    """A new model from ``architecture(...)``'s description; ``FileFormatError`` (a
    ``ValueError``) if it is invalid. Only the classes of ``fastnn.nn.LAYERS`` are built."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise FileFormatError(f"invalid architecture entry: {spec!r:.200}")
    name = spec["class"]
    cls = LAYERS.get(name)
    if cls is None:
        raise FileFormatError(
            f"unknown layer class {name!r}; expected one of {', '.join(sorted(LAYERS))}"
        )
    if cls is Sequential:
        layers = spec.get("layers")
        if not isinstance(layers, list):
            raise FileFormatError("invalid architecture: a Sequential entry needs a list of layers")
        return Sequential(*[build(s, dtype) for s in layers]) if layers else Sequential()
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise FileFormatError(f"invalid architecture: config of {name} must be an object")
    try:
        return cls(**config, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"invalid architecture: {name}({config}): {e}") from None


# -- writing ------------------------------------------------------------------------------------
def _json_default(value):
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    raise InvalidTypeError(f"cannot store {type(value).__name__} in a fastnn file header")


def _path(path, what):
    """``path`` as a str, or a TypeError that says what was expected."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise InvalidTypeError(f"{what}: expected a file path (str or os.PathLike), got {path!r}")
    return os.fsdecode(os.fspath(path))


def write_npz(path, header, arrays):
    """Write ``arrays`` and the JSON ``header`` to ``path`` atomically."""
    path = _path(path, "save")
    text = json.dumps(header, default=_json_default, allow_nan=True)
    with atomic_write(path) as f:
        np.savez(f, **{HEADER: np.array(text)}, **arrays)


def _model_header(model):
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": "model",
        "dtype": str(model.dtype),
        "model": architecture(model),
    }


def save(model, path):
    """Save ``model`` (architecture and weights) to the ``.npz`` file ``path``, atomically.

    ``fastnn.load(path)`` gives back an equal model. The path is used as given (no suffix is
    added).
    """
    if not isinstance(model, Module):
        raise InvalidTypeError(f"save: expected a fastnn model, got {type(model).__name__}")
    arrays = {f"model/{k}": v for k, v in model.named_state()}
    write_npz(path, _model_header(model), arrays)


def save_checkpoint(path, model, optimizer, extra, extra_arrays=None):
    """A model file that also holds ``optimizer``'s state and ``extra`` (JSON-able) training
    state; ``extra_arrays`` maps names to arrays stored beside it."""
    header = _model_header(model)
    header["kind"] = "checkpoint"
    opt_state = optimizer.state_dict()
    arrays = {f"model/{k}": v for k, v in model.named_state()}
    header["optimizer"] = {}
    for k, v in opt_state.items():
        if isinstance(v, np.ndarray):
            arrays[f"optimizer/{k}"] = v
        else:
            header["optimizer"][k] = list(v) if isinstance(v, tuple) else v
    header["training"] = extra
    arrays.update(extra_arrays or {})
    write_npz(path, header, arrays)


# -- reading ------------------------------------------------------------------------------------
class FastnnFile:
    """What ``read`` found in a fastnn file: ``header`` (dict) and ``arrays`` (name -> array)."""

    def __init__(self, header, arrays):
        self.header = header
        self.arrays = arrays

    def group(self, prefix):
        """Arrays whose names start with ``prefix + "/"``, keyed by the rest of the name."""
        p = prefix + "/"
        return {k[len(p) :]: v for k, v in self.arrays.items() if k.startswith(p)}


def read(path):
    """Read and check a fastnn file; ``FileFormatError`` (a ``ValueError``) for anything that
    is not one."""
    name = _path(path, "load")
    if os.path.isdir(name):
        raise FileFormatError(f"{name}: a folder, not a fastnn file")
    with open(name, "rb") as f:
        magic = f.read(6)
    if magic[:1] == b"\x80":
        raise FileFormatError(f"{name}: refused: a pickle file, which fastnn never loads")
    if magic == b"\x93NUMPY":
        raise FileFormatError(f"{name}: not a fastnn file (a single .npy array, not an .npz)")
    if magic[:4] != b"PK\x03\x04":
        raise FileFormatError(f"{name}: not a fastnn file (not an .npz archive)")
    try:
        with np.load(name, allow_pickle=False) as data:
            if HEADER not in data.files:
                raise FileFormatError(f"{name}: not a fastnn file (no {HEADER} entry)")
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise FileFormatError(
                f"{name}: refused: the file holds pickled objects ({e})"
            ) from None
        if str(e).startswith(name):
            raise
        raise FileFormatError(f"{name}: not a fastnn file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise FileFormatError(
            f"{name}: not a readable fastnn file ({type(e).__name__}: {e})"
        ) from None
    raw = arrays.pop(HEADER)
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise FileFormatError(f"{name}: malformed fastnn header")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{name}: malformed fastnn header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FileFormatError(f"{name}: not a fastnn file (header format is not {FORMAT!r})")
    if header.get("version") != VERSION:
        raise FileFormatError(
            f"{name}: fastnn file version {header.get('version')!r}; this fastnn reads {VERSION}"
        )
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise FileFormatError(f"{name}: entry {k!r} has dtype {a.dtype}; expected numbers")
    return FastnnFile(header, arrays)


def model_from(f, name="file"):
    """The model a ``FastnnFile`` describes, with its weights loaded."""
    try:
        dtype = check_dtype(f.header.get("dtype"))
    except (TypeError, ValueError):
        raise FileFormatError(f"{name}: invalid model dtype {f.header.get('dtype')!r}") from None
    try:
        model = build(f.header.get("model"), dtype)
        model.load_state_dict(f.group("model"))
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{name}: {e}") from None
    return model


def load(path):
    """The model saved in ``path`` by ``save`` (or a checkpoint's model), in training mode.

    Never unpickles: any file that is not a fastnn file gives ``ValueError``.
    """
    return model_from(read(path), os.fspath(path))
