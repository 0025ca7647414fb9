"""Checkpoints of a running fit: what they hold beside the model (optimizer, epoch, history,
random generators, callbacks), and resuming from one exactly where it was written."""

import numpy as np

from .. import files
from ..errors import FileFormatError
from ..nn import Dropout


def dropout_layers(model):
    return [m for m in model.modules() if isinstance(m, Dropout)]


def persistent_arrays(model):
    """The model's non-trainable saved arrays (batch-norm running statistics), in order."""
    return [getattr(m, name) for m in model.modules() for name in m._persistent]


def rng_state(rng):
    """The state of the Generator ``rng`` as plain JSON-able values."""

    def plain(v):
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return v.tolist()
        return v

    return plain(rng.bit_generator.state)


def set_rng_state(rng, state):
    if state.get("bit_generator") != type(rng.bit_generator).__name__:
        raise FileFormatError(
            f"checkpoint random generator is {state.get('bit_generator')}, "
            f"the model's is {type(rng.bit_generator).__name__}"
        )
    rng.bit_generator.state = state


def write(path, trainer):
    """Write ``trainer``'s model, optimizer, training state and callbacks to ``path``."""
    extra = dict(trainer.state)
    extra["history"] = trainer.history.to_dict()
    extra["stopped"] = trainer.stop_training
    extra["callbacks"] = []
    arrays = {}
    for i, cb in enumerate(trainer.callbacks):
        scalars = {}
        for k, v in cb.state_dict().items():
            if isinstance(v, np.ndarray):
                arrays[f"callback{i}/{k}"] = v
            else:
                scalars[k] = v
        extra["callbacks"].append({"class": type(cb).__name__, "state": scalars})
    files.save_checkpoint(path, trainer.model, trainer.optimizer, extra, arrays)


def resume(path, trainer):
    """Load the checkpoint ``path`` into the trainer's model, optimizer and callbacks; return
    its training state (seed, epoch, shuffle generator, history, ...)."""
    model, optimizer = trainer.model, trainer.optimizer
    f = files.read(path)
    name = str(path)
    if f.header.get("kind") != "checkpoint":
        raise FileFormatError(f"{name}: a saved model, not a checkpoint (it has no training state)")
    if f.header.get("model") != files.architecture(model):
        raise FileFormatError(f"{name}: the checkpoint's architecture differs from this model's")
    if f.header.get("dtype") != str(model.dtype):
        raise FileFormatError(
            f"{name}: checkpoint dtype {f.header.get('dtype')}, model {model.dtype}"
        )
    state = f.header.get("training") or {}
    opt_state = dict(f.header.get("optimizer") or {})
    opt_state.update(f.group("optimizer"))
    try:
        model.load_state_dict(f.group("model"))
        optimizer.load_state_dict(opt_state)
    except (TypeError, ValueError) as e:
        raise FileFormatError(f"{name}: {e}") from None
    layers = dropout_layers(model)
    saved = state.get("dropout_rngs", [])
    if len(saved) != len(layers):
        raise FileFormatError(
            f"{name}: checkpoint has {len(saved)} dropout generators, model {len(layers)}"
        )
    for layer, s in zip(layers, saved, strict=True):
        set_rng_state(layer.rng, s)
    for i, (cb, saved_cb) in enumerate(
        zip(trainer.callbacks, state.get("callbacks", []), strict=False)
    ):
        if saved_cb.get("class") == type(cb).__name__:
            cb_state = dict(saved_cb.get("state", {}))
            cb_state.update(f.group(f"callback{i}"))
            cb.load_state_dict(cb_state)
    trainer.resumed = True
    return state
