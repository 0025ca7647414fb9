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
code; the architecture is rebuilt from a fixed table of fastnn layer classes. Writes are
atomic: the archive goes to a temporary file in the target's folder, which then replaces the
target, so a crash mid-save leaves the previous file as it was.
"""

import functools
import json
import numbers
import os
import tempfile
import zipfile

import numpy as np

from .activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh
from .container import MLP, Sequential
from .dropout import Dropout
from .linear import Linear, Maxout
from .module import Module, check_dtype
from .normalization import BatchNorm

FORMAT = "fastnn"
VERSION = 1
HEADER = "fastnn.json"


# -- architecture <-> JSON -----------------------------------------------------------------------
def _init_spec(init):
    # A callable initialiser cannot be written down; the weights are saved anyway.
    if isinstance(init, str):
        return init
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        return float(init)
    return None


def _linear_config(m):
    return {
        "in_features": m.in_features,
        "out_features": m.out_features,
        "bias": m.bias is not None,
        "activation": None if m.activation == "identity" else m.activation,
        "alpha": m.alpha,
        "init": _init_spec(m.init) or "he",
    }


_CONFIG = {
    Linear: _linear_config,
    Maxout: lambda m: {
        "in_features": m.in_features,
        "out_features": m.out_features,
        "pieces": m.pieces,
        "init": _init_spec(m.init) or "xavier",
    },
    BatchNorm: lambda m: {"num_features": m.num_features, "momentum": m.momentum, "eps": m.eps},
    Dropout: lambda m: {"p": m.p},
    LeakyReLU: lambda m: {"negative_slope": m.negative_slope},
    ELU: lambda m: {"alpha": m.alpha},
    ReLU: lambda m: {},
    Sigmoid: lambda m: {},
    Tanh: lambda m: {},
    Step: lambda m: {},
    Identity: lambda m: {},
    Softmax: lambda m: {},
}
_CLASSES = {cls.__name__: cls for cls in (*_CONFIG, Sequential, MLP)}


def _mlp_config(m):
    return {
        "sizes": list(m.sizes),
        "activation": m.activation,
        "batchnorm": m.batchnorm,
        "dropout": m.dropout,
        "init": _init_spec(m.init),
    }


@functools.lru_cache(maxsize=32)
def _built_layers_spec(spec_json, dtype):
    # Building an MLP draws all its initial weights (0.1 s for 4 M parameters); a training run
    # saves the same architecture every epoch, so build each one once.
    return _layers_spec(build(json.loads(spec_json), dtype))


def architecture(model):
    """The JSON-able description of ``model`` that ``build`` turns back into a model."""
    cls = type(model)
    if cls is MLP:
        spec = {"class": "MLP", "config": _mlp_config(model)}
        # An MLP whose layers were changed after it was built is saved as what it now is.
        key = json.dumps(spec, sort_keys=True, default=_json_default)
        if _layers_spec(model) == _built_layers_spec(key, model.dtype):
            return spec
        return {"class": "Sequential", "layers": _layers_spec(model)}
    if isinstance(model, Sequential):
        return {"class": "Sequential", "layers": _layers_spec(model)}
    if cls in _CONFIG:
        return {"class": cls.__name__, "config": _CONFIG[cls](model)}
    raise TypeError(
        f"cannot save a {cls.__name__}: fastnn files hold the layers "
        f"{', '.join(sorted(_CLASSES))} (and Sequential models of them)"
    )


def _layers_spec(model):
    return [architecture(layer) for layer in model.layers]


def build(spec, dtype=np.float32):
    """A new model from ``architecture(...)``'s description; ``ValueError`` if it is invalid."""
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise ValueError(f"invalid architecture entry: {spec!r:.200}")
    name = spec["class"]
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(
            f"unknown layer class {name!r}; expected one of {', '.join(sorted(_CLASSES))}"
        )
    if cls is Sequential:
        layers = spec.get("layers")
        if not isinstance(layers, list):
            raise ValueError("invalid architecture: a Sequential entry needs a list of layers")
        return Sequential(*[build(s, dtype) for s in layers]) if layers else Sequential()
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise ValueError(f"invalid architecture: config of {name} must be an object")
    try:
        return cls(**config, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"invalid architecture: {name}({config}): {e}") from None


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
    raise TypeError(f"cannot store {type(value).__name__} in a fastnn file header")


def _path(path, what):
    """``path`` as a str, or a TypeError that says what was expected."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(f"{what}: expected a file path (str or os.PathLike), got {path!r}")
    return os.fsdecode(os.fspath(path))


def write_npz(path, header, arrays):
    """Write ``arrays`` and the JSON ``header`` to ``path`` atomically."""
    path = _path(path, "save")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        # Said here: the temporary file's name in mkstemp's error would puzzle.
        raise FileNotFoundError(2, f"cannot save {path}: the folder {folder} does not exist")
    text = json.dumps(header, default=_json_default, allow_nan=True)
    fd, tmp = tempfile.mkstemp(prefix=".fastnn-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{HEADER: np.array(text)}, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


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
        raise TypeError(f"save: expected a fastnn model, got {type(model).__name__}")
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
    """Read and check a fastnn file; ``ValueError`` for anything that is not one."""
    name = _path(path, "load")
    if os.path.isdir(name):
        raise ValueError(f"{name}: a folder, not a fastnn file")
    with open(name, "rb") as f:
        magic = f.read(6)
    if magic[:1] == b"\x80":
        raise ValueError(f"{name}: refused: a pickle file, which fastnn never loads")
    if magic == b"\x93NUMPY":
        raise ValueError(f"{name}: not a fastnn file (a single .npy array, not an .npz)")
    if magic[:4] != b"PK\x03\x04":
        raise ValueError(f"{name}: not a fastnn file (not an .npz archive)")
    try:
        with np.load(name, allow_pickle=False) as data:
            if HEADER not in data.files:
                raise ValueError(f"{name}: not a fastnn file (no {HEADER} entry)")
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except ValueError as e:
        if "pickle" in str(e):
            raise ValueError(f"{name}: refused: the file holds pickled objects ({e})") from None
        if str(e).startswith(name):
            raise
        raise ValueError(f"{name}: not a fastnn file ({e})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise ValueError(f"{name}: not a readable fastnn file ({type(e).__name__}: {e})") from None
    raw = arrays.pop(HEADER)
    if raw.dtype.kind != "U" or raw.ndim != 0:
        raise ValueError(f"{name}: malformed fastnn header")
    try:
        header = json.loads(str(raw))
    except json.JSONDecodeError as e:
        raise ValueError(f"{name}: malformed fastnn header: {e}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{name}: not a fastnn file (header format is not {FORMAT!r})")
    if header.get("version") != VERSION:
        raise ValueError(
            f"{name}: fastnn file version {header.get('version')!r}; this fastnn reads {VERSION}"
        )
    for k, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{name}: entry {k!r} has dtype {a.dtype}; expected numbers")
    return FastnnFile(header, arrays)


def model_from(f, name="file"):
    """The model a ``FastnnFile`` describes, with its weights loaded."""
    try:
        dtype = check_dtype(f.header.get("dtype"))
    except (TypeError, ValueError):
        raise ValueError(f"{name}: invalid model dtype {f.header.get('dtype')!r}") from None
    try:
        model = build(f.header.get("model"), dtype)
        model.load_state_dict(f.group("model"))
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: {e}") from None
    return model


def load(path):
    """The model saved in ``path`` by ``save`` (or a checkpoint's model), in training mode.

    Never unpickles: any file that is not a fastnn file gives ``ValueError``.
    """
    return model_from(read(path), os.fspath(path))
