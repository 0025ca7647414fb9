"""Checkpoints of a running fit: what they hold beside the model (optimizer, epoch, history,
random generators, callbacks), and resuming from one exactly where it was written."""

import math

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
    """Put a checkpoint's generator state into ``rng``; ``FileFormatError`` if it is not one
    of this generator's states."""
    kind = type(rng.bit_generator).__name__
    if not isinstance(state, dict) or state.get("bit_generator") != kind:
        got = state.get("bit_generator") if isinstance(state, dict) else state
        raise FileFormatError(f"checkpoint random generator is {got!r:.60}, the model's is {kind}")
    try:
        rng.bit_generator.state = state
    except (KeyError, TypeError, ValueError, OverflowError) as e:
        raise FileFormatError(f"checkpoint random generator state is invalid ({e})") from None


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
    its training state (seed, epoch, shuffle generator, history, ...).

    Everything is checked before it is used: the header's training state against its schema
    (``check_training_state``), the arrays' shapes against the model and the optimizer before
    they are read; a checkpoint that does not fit raises ``FileFormatError``."""
    model, optimizer = trainer.model, trainer.optimizer
    name = str(path)
    with files.read(path) as f:
        if f.header["kind"] != "checkpoint":
            raise FileFormatError(
                f"{name}: a saved model, not a checkpoint (it has no training state)"
            )
        if f.header["model"] != files.architecture(model):
            raise FileFormatError(
                f"{name}: the checkpoint's architecture differs from this model's"
            )
        if f.header["dtype"] != str(model.dtype):
            raise FileFormatError(
                f"{name}: checkpoint dtype {f.header['dtype']}, model {model.dtype}"
            )
        state = check_training_state(f.header.get("training"), name, model, trainer.callbacks)
        own = {k: a.shape for k, a in model.named_state()}
        if f.shapes("model") != own:
            raise FileFormatError(f"{name}: the model's arrays differ from this model's")
        n = optimizer.num_values
        for key, shape in f.shapes("optimizer").items():
            if shape != (n,):
                raise FileFormatError(
                    f"{name}: optimizer/{key} has shape {shape}; the optimizer has {n} values"
                )
        values = sum(math.prod(s) for s in own.values())
        for i in range(len(state["callbacks"])):
            if sum(math.prod(s) for s in f.shapes(f"callback{i}").values()) > values:
                raise FileFormatError(f"{name}: callback {i} stores more values than the model")
        opt_state = dict(f.header.get("optimizer") or {})
        opt_state.update(f.group("optimizer"))
        try:
            model.load_state_dict(f.group("model"))
            optimizer.load_state_dict(opt_state)
            for layer, s in zip(dropout_layers(model), state["dropout_rngs"], strict=True):
                set_rng_state(layer.rng, s)
            for i, (cb, saved_cb) in enumerate(
                zip(trainer.callbacks, state["callbacks"], strict=False)
            ):
                if saved_cb["class"] == type(cb).__name__:
                    cb_state = dict(saved_cb["state"])
                    cb_state.update(f.group(f"callback{i}"))
                    cb.load_state_dict(cb_state)
        except (KeyError, TypeError, ValueError) as e:
            raise FileFormatError(f"{name}: {type(e).__name__}: {e}") from None
    trainer.resumed = True
    return state


def _rng_state_form(value):
    return isinstance(value, dict) and isinstance(value.get("bit_generator"), str)


def check_training_state(state, name, model, callbacks):
    """The ``training`` part of a checkpoint's header, checked against its schema: every
    field present, of its type and in its range, consistent with the model (one generator
    state per dropout layer) and with itself (a history of ``epoch`` entries)."""

    def bad(what):
        raise FileFormatError(f"{name}: invalid training state: {what}")

    if not isinstance(state, dict):
        bad(f"expected an object, got {type(state).__name__}")
    for key, kind in (
        ("seed", int),
        ("epochs", int),
        ("batch_size", int),
        ("epoch", int),
        ("stopped", bool),
        ("history", dict),
        ("shuffle_rng", dict),
        ("dropout_rngs", list),
        ("callbacks", list),
    ):
        value = state.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            bad(f"{key} must be {kind.__name__}, got {value!r:.80}")
    if state["seed"] < 0 or state["epochs"] < 1 or state["batch_size"] < 1:
        bad("seed, epochs and batch_size must be >= 0, >= 1 and >= 1")
    if not 0 <= state["epoch"] <= state["epochs"]:
        bad(f"epoch {state['epoch']} is not within 0..{state['epochs']}")
    for key, values in state["history"].items():
        if not isinstance(values, list) or len(values) != state["epoch"]:
            bad(f"history[{key!r}] must list one figure per epoch ({state['epoch']})")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            bad(f"history[{key!r}] must hold numbers")
    if not _rng_state_form(state["shuffle_rng"]):
        bad("shuffle_rng must be a random generator's state")
    layers = dropout_layers(model)
    if len(state["dropout_rngs"]) != len(layers) or not all(
        map(_rng_state_form, state["dropout_rngs"])
    ):
        bad(f"expected {len(layers)} dropout generator states, one per dropout layer")
    for cb in state["callbacks"]:
        if not (
            isinstance(cb, dict)
            and isinstance(cb.get("class"), str)
            and isinstance(cb.get("state"), dict)
        ):
            bad("each callback must be an object with a class and a state")
    ranks = state.get("rank_dropout_rngs")
    if ranks is not None and not (
        isinstance(ranks, list)
        and all(isinstance(r, list) and len(r) == len(layers) for r in ranks)
    ):
        bad("rank_dropout_rngs must list, per rank, one state per dropout layer")
    return state
