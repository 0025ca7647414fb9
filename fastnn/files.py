"""Saving and loading models and training checkpoints, without pickle.

A fastnn file is an ``.npz`` archive (``numpy.savez``) holding

- ``fastnn.json``: a 0-d string array with the JSON header: the format name and version, the
  model's architecture (layer classes and constructor arguments), its dtype, and for a
  checkpoint the optimizer's hyperparameters, the epoch, the history so far, the random
  generators' states and the callbacks' states;
- ``model/<name>``: every parameter and persistent buffer (``model.state_dict()``);
- ``optimizer/<name>``: a checkpoint's optimizer state buffers (Adam's moments, ...);
- ``callback<i>/<name>``: arrays a callback keeps (EarlyStopping's best weights);
- for a model trained on a table (``fastnn train --data table.csv``), a header entry
  ``tabular`` (task, target and feature columns, whether the features are standardized) and
  the arrays ``tabular/mean``, ``tabular/scale``, ``tabular/classes``,
  ``tabular/target_mean``, ``tabular/target_scale`` (see ``fastnn.data.tabular.Tabular``).
  Files without a table have neither.

Files are read with ``allow_pickle=False``, so loading a file from someone else cannot run
code; the architecture is rebuilt from fastnn's own layer classes (``fastnn.nn.LAYERS``). Writes are
atomic: the archive goes to a temporary file in the target's folder, which then replaces the
target, so a crash mid-save leaves the previous file as it was.
"""

import functools
import json
import os
import re

import numpy as np

from ._atomic import atomic_write
from ._checks import check_dtype
from ._npz import Archive
from .data import tabular as _tabular
from .errors import FileFormatError, InvalidTypeError
from .nn import LAYERS, MLP, Module, Sequential
from .nn.init import unfilled

__all__ = [
    "FORMAT",
    "FastnnFile",
    "HEADER",
    "VERSION",
    "architecture",
    "build",
    "load",
    "load_tabular",
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
    _check_spec(spec, "invalid architecture", depth=0)
    return _build(spec, dtype)


def _build(spec, dtype):
    cls = LAYERS[spec["class"]]
    if cls is Sequential:
        return Sequential(*[_build(s, dtype) for s in spec["layers"]])
    config = spec.get("config", {})
    try:
        return cls(**config, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"invalid architecture: {cls.__name__}({config}): {e}") from None


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


def save(model, path, *, tabular=None):
    """Save ``model`` (architecture and weights) to the ``.npz`` file ``path``, atomically.

    ``fastnn.load(path)`` gives back an equal model. The path is used as given (no suffix is
    added). ``tabular``: a ``fastnn.data.tabular.Tabular`` saved beside it (what a model
    trained on a CSV table needs to predict for new rows; ``load_tabular`` reads it back).
    """
    if not isinstance(model, Module):
        raise InvalidTypeError(f"save: expected a fastnn model, got {type(model).__name__}")
    header = _model_header(model)
    arrays = {f"model/{k}": v for k, v in model.named_state()}
    if tabular is not None:
        if not isinstance(tabular, _tabular.Tabular):
            raise InvalidTypeError(f"save: expected tabular=Tabular, got {tabular!r:.80}")
        header["tabular"], extra = tabular.to_file()
        arrays.update({f"tabular/{k}": v for k, v in extra.items()})
    write_npz(path, header, arrays)


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
# What a file may hold, and how much: anything else is refused before it is read.
MEMBERS = re.compile(
    r"(fastnn\.json|model/[\w.]+|optimizer/\w+|callback\d+/[\w./]+"
    r"|tabular/(mean|scale|classes|target_mean|target_scale))"
)
MAX_HEADER_CHARS = 1 << 22  # 4 Mi characters of JSON (a checkpoint's history is a few KB)
MAX_DEPTH = 32  # Sequential models nested in each other
MAX_LAYERS = 100_000


class FastnnFile:
    """What ``read`` found in a fastnn file: ``header`` (dict, checked) and its arrays, read on
    demand and checked before they are inflated (``group``, ``arrays``, ``shapes``)."""

    def __init__(self, header, archive):
        self.header = header
        self._archive = archive

    def close(self):
        self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def shapes(self, prefix):
        """{name: shape} of the arrays under ``prefix + "/"``, from their headers alone."""
        p = prefix + "/"
        names = [k for k in self._archive.names if k.startswith(p)]
        return {k[len(p) :]: self._archive.shape_of(k) for k in names}

    def group(self, prefix):
        """Arrays whose names start with ``prefix + "/"``, keyed by the rest of the name."""
        p = prefix + "/"
        names = [k for k in self._archive.names if k.startswith(p)]
        return {k[len(p) :]: self._archive.read(k) for k in names}

    @property
    def arrays(self):
        """Every array of the file but the header, by full name."""
        return {k: self._archive.read(k) for k in self._archive.names if k != HEADER}


def read(path):
    """Read and check a fastnn file's header, and the sizes of its arrays; ``FileFormatError``
    (a ``ValueError``) for anything that is not a fastnn file, before it costs memory: members
    are checked against their headers and their compressed sizes before they are inflated,
    and only the members the format names are allowed."""
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
    archive = Archive(name, name)
    try:
        return FastnnFile(_read_header(archive, name), archive)
    except BaseException:
        archive.close()
        raise


def _read_header(archive, name):
    unknown = [k for k in archive.names if not MEMBERS.fullmatch(k)]
    if unknown:
        raise FileFormatError(f"{name}: not a fastnn file (unknown member {unknown[0]!r})")
    if HEADER not in archive.names:
        raise FileFormatError(f"{name}: not a fastnn file (no {HEADER} entry)")
    shape, dtype = archive.shape_of(HEADER), archive.dtype_of(HEADER)
    if dtype.kind != "U" or shape != () or dtype.itemsize // 4 > MAX_HEADER_CHARS:
        raise FileFormatError(f"{name}: malformed fastnn header ({dtype} {shape})")
    try:
        header = json.loads(str(archive.read(HEADER)))
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{name}: malformed fastnn header: {e}") from None
    except RecursionError:
        raise FileFormatError(f"{name}: malformed fastnn header: nested too deeply") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise FileFormatError(f"{name}: not a fastnn file (header format is not {FORMAT!r})")
    if header.get("version") != VERSION:
        raise FileFormatError(
            f"{name}: fastnn file version {header.get('version')!r}; this fastnn reads {VERSION}"
        )
    if header.get("kind") not in ("model", "checkpoint"):
        raise FileFormatError(f"{name}: invalid kind {header.get('kind')!r}")
    try:
        check_dtype(header.get("dtype"))
    except (TypeError, ValueError):
        raise FileFormatError(f"{name}: invalid model dtype {header.get('dtype')!r}") from None
    _check_spec(header.get("model"), name, depth=0)
    for key in ("optimizer", "training"):
        if key in header and not isinstance(header[key], dict):
            raise FileFormatError(f"{name}: {key} must be an object, got {header[key]!r:.80}")
    _check_tabular(header, archive, name)
    return header


def _check_tabular(header, archive, name):
    """The "tabular" entry's form, and its arrays' names, shapes and dtypes from their
    ``.npy`` headers: exactly those the entry declares."""
    stored = {k[len("tabular/") :] for k in archive.names if k.startswith("tabular/")}
    if "tabular" not in header:
        if stored:
            raise FileFormatError(f"{name}: tabular arrays without a tabular entry")
        return
    declared = _tabular.check_entry(header["tabular"], name)
    if stored != set(declared):
        raise FileFormatError(
            f"{name}: invalid tabular entry: expected the arrays {', '.join(sorted(declared))}, "
            f"found {', '.join(sorted(stored)) or 'none'}"
        )
    for key, shape in declared.items():
        got = archive.shape_of(f"tabular/{key}")
        dtype = archive.dtype_of(f"tabular/{key}")
        if dtype != np.float64 or (got != shape if shape is not None else len(got) != 1):
            raise FileFormatError(
                f"{name}: invalid tabular entry: tabular/{key} is {dtype} {got}, expected "
                f"float64 {shape if shape is not None else '(classes,)'}"
            )


def _check_spec(spec, name, depth):
    """The architecture's form: classes fastnn knows, configs as objects, nesting bounded."""
    if depth > MAX_DEPTH:
        raise FileFormatError(f"{name}: models nested more than {MAX_DEPTH} deep")
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise FileFormatError(f"{name}: invalid architecture entry: {spec!r:.200}")
    if spec["class"] not in LAYERS:
        raise FileFormatError(
            f"{name}: unknown layer class {spec['class']!r}; "
            f"expected one of {', '.join(sorted(LAYERS))}"
        )
    if spec["class"] == "Sequential":
        layers = spec.get("layers")
        if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
            raise FileFormatError(f"{name}: a Sequential entry needs a list of layers")
        for layer in layers:
            _check_spec(layer, name, depth + 1)
    elif not isinstance(spec.get("config", {}), dict):
        raise FileFormatError(f"{name}: config of {spec['class']} must be an object")


def state_shapes(spec, prefix=""):
    """{name: shape} of the arrays a model built from ``spec`` holds, without building it."""
    if spec["class"] == "Sequential":
        shapes = {}
        for i, layer in enumerate(spec["layers"]):
            shapes.update(state_shapes(layer, f"{prefix}{i}."))
        return shapes
    config = spec.get("config", {})
    found = LAYERS[spec["class"]].state_shapes(**config)
    return {prefix + k: v for k, v in found.items()}


def model_from(f, name="file"):
    """The model a ``FastnnFile`` describes, with its weights loaded.

    The arrays the architecture needs are compared with those stored, by name and shape,
    before anything is built; the model is then built without drawing initial weights (the
    file's replace them), so a file declaring a huge model with small arrays costs nothing.
    """
    dtype = check_dtype(f.header["dtype"])
    spec = f.header["model"]
    try:
        declared = state_shapes(spec)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{name}: invalid architecture: {e}") from None
    stored = f.shapes("model")
    if declared != stored:
        missing = sorted(set(declared) - set(stored))
        extra = sorted(set(stored) - set(declared))
        wrong = [k for k in declared if k in stored and declared[k] != stored[k]]
        detail = (
            f"missing arrays {missing[:5]}"
            if missing
            else f"unexpected arrays {extra[:5]}"
            if extra
            else f"{wrong[0]} is stored with shape {stored[wrong[0]]}, the architecture "
            f"declares {declared[wrong[0]]}"
        )
        raise FileFormatError(f"{name}: the arrays do not match the architecture: {detail}")
    try:
        with unfilled():
            model = _build(spec, dtype)
        model.load_state_dict(f.group("model"))
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{name}: {e}") from None
    return model


def load_tabular(path):
    """(model, ``Tabular`` or None): the model saved in ``path`` and what it keeps of the
    table it was trained on (None for a model trained on anything else), checked against
    the model's widths."""
    name = os.fspath(path)
    f = read(path)
    try:
        model = model_from(f, name)
        if "tabular" not in f.header:
            return model, None
        inputs, outputs = model.io_widths()
        entry = f.header["tabular"]
        if inputs is not None and inputs != len(entry["features"]):
            raise FileFormatError(
                f"{name}: invalid tabular entry: {len(entry['features'])} feature columns for "
                f"a model of {inputs} inputs"
            )
        return model, _tabular.from_file(entry, f.group("tabular"), outputs, name)
    finally:
        f.close()


def load(path):
    """The model saved in ``path`` by ``save`` (or a checkpoint's model), in training mode.

    Never unpickles, and refuses anything that is not a fastnn file with ``FileFormatError``
    (a ``ValueError``) before it costs memory (see ``read``).
    """
    f = read(path)
    try:
        return model_from(f, os.fspath(path))
    finally:
        f.close()
