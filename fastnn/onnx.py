"""ONNX export: run a fastnn model where fastnn is not installed (ONNX Runtime from C++, C#,
Java, JavaScript, a browser).

    fastnn.export_onnx(model, "model.onnx")                     # y = model.predict(x)
    fastnn.export_onnx(model, "proba.onnx", output="proba")     # y = model.predict_proba(x)
    fastnn.export_onnx(clf, "clf.onnx")                         # y = clf.predict_proba(x)

The graph has one input ``x`` of shape (batch, in_features) and one output ``y``, both of the
model's dtype (float32 or float64; ONNX Runtime does not convert, so feed that dtype), with a
dynamic batch dimension. Opset ``OPSET`` (17) of the default ONNX domain, IR version 8: ONNX
Runtime 1.12 and later run it.

Each of fastnn's layers maps onto standard operators, in eval mode (as ``predict`` runs):

    Linear                Gemm (x @ W + b; W stored (in, out) as fastnn holds it), then its
                          activation as below
    ReLU, Sigmoid, Tanh   Relu, Sigmoid, Tanh
    LeakyReLU, ELU        LeakyRelu, Elu (float32); Where(x > 0, x, ...) with the slope or alpha
                          as a float64 constant (float64: ONNX's float attributes are float32,
                          and ONNX Runtime has no float64 Elu)
    Step                  Cast(Greater(x, 0)): 1 where x > 0, else 0 (0 at 0, as fastnn)
    Identity, Dropout     nothing (dropout is the identity in eval mode)
    Softmax               Softmax(axis=-1)
    Maxout                Gemm, Reshape to (batch, out_features, pieces), ReduceMax over pieces
    BatchNorm             (x - running_mean) * scale + bias, scale = weight / sqrt(running_var
                          + eps) computed in float64 at export, as fastnn's eval kernel does
    Conv2D                Conv (weight (out, in, kh, kw) as fastnn holds it; pads, strides),
                          then its activation
    MaxPool2D, AvgPool2D  MaxPool, AveragePool (count_include_pad=1, as fastnn)
    GlobalAvgPool2D       GlobalAveragePool, Flatten
    Flatten               Flatten(axis=1)
    Sequential, MLP       their layers in order

A module of your own has no ONNX form and is refused, naming its class.
"""

import json

import numpy as np

from ._atomic import atomic_write
from ._checks import check_choice
from ._version import __version__
from .errors import InvalidTypeError, InvalidValueError, MissingDependencyError, StateError
from .files import _path
from .nn import (
    ACTIVATIONS,
    ELU,
    LAYERS,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Identity,
    LeakyReLU,
    Linear,
    Maxout,
    MaxPool2D,
    Module,
    Sequential,
    Softmax,
)
from .nn.module import SAME, check_state, using

__all__ = ["OPSET", "export_onnx"]

OPSET = 17  # the default domain's opset the graphs use; stated in the model file
IR_VERSION = 8  # ONNX's IR version of opset 17, so that older runtimes load the file
OUTPUTS = ("predict", "proba")
# ONNX files are one protobuf message, which cannot exceed 2 GiB.
_MAX_BYTES = 2**31 - 2**20
_ACTIVATION_NAMES = {cls: name for name, cls in ACTIVATIONS.items()}


def _onnx():
    """The ``onnx`` package, or ``MissingDependencyError`` saying how to install it."""
    try:
        import onnx
    except ImportError as e:
        raise MissingDependencyError(
            f"ONNX export needs the onnx package: pip install 'fastnn[onnx]' ({e})"
        ) from None
    return onnx


class _Graph:
    """The nodes and constants of the graph being built, with unique tensor names."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype = onnx, np.dtype(dtype)
        self.elem_type = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes, self.initializers, self.used = [], [], set()
        self.nbytes = 0
        self.rank = 2  # of the tensor the layers pass on: 2 rows, 4 images

    def name(self, stem):
        name, k = stem, 1
        while name in self.used:
            k += 1
            name = f"{stem}_{k}"
        self.used.add(name)
        return name

    def const(self, stem, value, dtype=None):
        """A constant tensor (an initializer) holding ``value`` in ``dtype`` (the model's)."""
        a = np.ascontiguousarray(np.asarray(value, dtype=dtype or self.dtype))
        name = self.name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(a, name))
        self.nbytes += a.nbytes
        return name

    def op(self, op_type, inputs, stem, **attrs):
        """Append a node; returns the name of its one output."""
        out = self.name(stem)
        self.nodes.append(self.onnx.helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


# -- layers ----------------------------------------------------------------------------------
def _activation(g, x, name, alpha, stem):
    """The elementwise activation ``name`` (a key of ``nn.ACTIVATIONS``, or "identity")."""
    if name == "identity":
        return x
    if name in ("relu", "sigmoid", "tanh"):
        return g.op({"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}[name], [x], stem)
    if name in ("leaky_relu", "elu") and g.dtype == np.float32:
        kind = {"leaky_relu": "LeakyRelu", "elu": "Elu"}[name]
        return g.op(kind, [x], stem, alpha=float(alpha))
    zero = g.const(f"{stem}.zero", 0)
    if name == "step":
        return g.op("Cast", [g.op("Greater", [x, zero], f"{stem}.positive")], stem, to=g.elem_type)
    a = g.const(f"{stem}.alpha", alpha)
    if name == "leaky_relu":
        negative = g.op("Mul", [x, a], f"{stem}.negative")
    else:  # elu: alpha * (exp(min(x, 0)) - 1)
        e = g.op("Exp", [g.op("Min", [x, zero], f"{stem}.min")], f"{stem}.exp")
        em1 = g.op("Sub", [e, g.const(f"{stem}.one", 1)], f"{stem}.expm1")
        negative = g.op("Mul", [em1, a], f"{stem}.negative")
    positive = g.op("Greater", [x, zero], f"{stem}.positive")
    return g.op("Where", [positive, x, negative], stem)


def _gemm(g, layer, x, stem, shape, bias):
    check_state(layer, "weight.data", layer.weight.data, shape)
    inputs = [x, g.const(f"{stem}.weight", layer.weight.data)]
    if bias is not None:
        check_state(layer, "bias.data", bias.data, shape[1:])
        inputs.append(g.const(f"{stem}.bias", bias.data))
    return g.op("Gemm", inputs, f"{stem}.gemm")


def _layer(g, layer, x, stem):
    """Append ``layer``'s nodes reading tensor ``x``; returns the name of its output."""
    cls = type(layer)
    if isinstance(layer, Sequential):
        for i, child in enumerate(layer.layers):
            x = _layer(g, child, x, f"{stem}.{i}" if stem else str(i))
        return x
    stem = stem or cls.__name__
    if cls is Linear:
        shape = (layer.in_features, layer.out_features)
        z = _gemm(g, layer, x, stem, shape, layer.bias)
        return _activation(g, z, layer.activation, layer.alpha, f"{stem}.{layer.activation}")
    if cls is Maxout:
        units, pieces = layer.out_features, layer.pieces
        z = _gemm(g, layer, x, stem, (layer.in_features, units * pieces), layer.bias)
        shape = g.const(f"{stem}.shape", [0, units, pieces], np.int64)  # 0: keep the batch
        groups = g.op("Reshape", [z, shape], f"{stem}.groups")
        return g.op("ReduceMax", [groups], f"{stem}.max", axes=[2], keepdims=0)
    if cls is BatchNorm:
        d = (layer.num_features,)
        for name in ("weight.data", "bias.data", "running_mean", "running_var"):
            obj, _, attr = name.partition(".")
            value = getattr(getattr(layer, obj), attr) if attr else getattr(layer, obj)
            check_state(layer, name, value, d)
        var = layer.running_var.astype(np.float64)
        scale = layer.weight.data.astype(np.float64) / np.sqrt(var + layer.eps)
        # Over the channels of images (n, c, h, w): the constants as (c, 1, 1).
        per = (lambda a: np.reshape(a, (-1, 1, 1))) if g.rank == 4 else np.asarray
        mean = g.const(f"{stem}.running_mean", per(layer.running_mean))
        centred = g.op("Sub", [x, mean], stem)
        scaled = g.op("Mul", [centred, g.const(f"{stem}.scale", per(scale))], f"{stem}.scaled")
        shift = g.const(f"{stem}.bias", per(layer.bias.data))
        return g.op("Add", [scaled, shift], f"{stem}.out")
    if cls is Conv2D:
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
        check_state(layer, "weight.data", layer.weight.data, layer._weight_shape())
        inputs = [x, g.const(f"{stem}.weight", layer.weight.data)]
        if layer.bias is not None:
            check_state(layer, "bias.data", layer.bias.data, (layer.out_channels,))
            inputs.append(g.const(f"{stem}.bias", layer.bias.data))
        z = g.op(
            "Conv", inputs, stem, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw]
        )
        return _activation(g, z, layer.activation, layer.alpha, f"{stem}.{layer.activation}")
    if cls in (MaxPool2D, AvgPool2D):
        (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
        extra = {"count_include_pad": 1} if cls is AvgPool2D else {}
        op = "MaxPool" if cls is MaxPool2D else "AveragePool"
        return g.op(
            op, [x], stem, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw], **extra
        )
    if cls is GlobalAvgPool2D:
        g.rank = 2
        pooled = g.op("GlobalAveragePool", [x], stem)
        return g.op("Flatten", [pooled], f"{stem}.flat", axis=1)
    if cls is Flatten:
        g.rank = 2
        return g.op("Flatten", [x], stem, axis=1)
    if cls in (Identity, Dropout):
        return x
    if cls is Softmax:
        return g.op("Softmax", [x], stem, axis=-1)
    if cls in _ACTIVATION_NAMES:
        name = _ACTIVATION_NAMES[cls]
        alpha = layer.negative_slope if cls is LeakyReLU else layer.alpha if cls is ELU else 0
        return _activation(g, x, name, alpha, stem)
    raise AssertionError(f"no ONNX form for {cls.__name__}")  # _refuse_foreign lets none by


def _image_channels(net):
    """The channels of the images ``net`` takes, when its first layer takes images (a
    convolution: its in_channels; a pooling layer or Flatten: "channels"), else None."""
    first = net
    while isinstance(first, Sequential) and len(first.layers):
        first = first.layers[0]
    if isinstance(first, Conv2D):
        return first.in_channels
    if isinstance(first, (MaxPool2D, AvgPool2D, GlobalAvgPool2D, Flatten)):
        return "channels"
    return None


def _refuse_foreign(model, where="the model"):
    """``InvalidTypeError`` naming the first module of ``model`` that is not one of fastnn's
    own layers (``nn.LAYERS``, exactly: a subclass of one may compute something else)."""
    cls = type(model)
    if LAYERS.get(cls.__name__) is not cls:
        raise InvalidTypeError(
            f"export_onnx: {where} is a {cls.__module__}.{cls.__qualname__}, a module of your "
            f"own; ONNX export covers fastnn's layers only ({', '.join(LAYERS)})"
        )
    if isinstance(model, Sequential):
        for i, layer in enumerate(model.layers):
            _refuse_foreign(layer, f"layer {i} of {where}")


# -- what is exported ------------------------------------------------------------------------
def _estimator(est, output):
    """(fastnn model, final operator or None, 1-D output?, metadata) of a fitted
    ``fastnn.sklearn`` estimator: its ``predict_proba`` for a classifier, ``predict`` for a
    regressor."""
    from . import sklearn as fsk

    kind = type(est).__name__
    if not isinstance(est, (fsk.MLPClassifier, fsk.MLPRegressor)):
        raise InvalidTypeError(f"export_onnx: cannot export a {kind}")
    if not hasattr(est, "model_"):
        raise StateError(f"export_onnx: this {kind} is not fitted yet; call fit first")
    expected = "proba" if isinstance(est, fsk.MLPClassifier) else "predict"
    if output is not None and check_choice(output, "output", OUTPUTS) != expected:
        raise InvalidValueError(
            f"export_onnx: a {kind} exports its {expected} output (output={expected!r} or None), "
            f"got output={output!r}"
        )
    final = {"softmax": "Softmax", "logistic": "Sigmoid", "identity": None}.get(
        getattr(est, "out_activation_", None), False
    )
    if final is False:
        raise InvalidValueError(
            f"export_onnx: {kind}.out_activation_ is {getattr(est, 'out_activation_', None)!r}; "
            "expected 'softmax', 'logistic' or 'identity'"
        )
    meta = {
        "estimator": kind,
        "output": f"{kind}.predict_proba" if expected == "proba" else f"{kind}.predict",
    }
    if expected == "proba":
        meta["classes"] = json.dumps(np.asarray(est.classes_).tolist(), default=str)
    one_d = expected == "predict" and getattr(est, "n_outputs_", None) == 1
    return est.model_, final, one_d, meta


def _what(model, output):
    """(fastnn model, final operator or None, 1-D output?, metadata) of ``export_onnx``'s
    arguments."""
    if type(model).__module__.startswith("fastnn.sklearn"):
        return _estimator(model, output)
    if not isinstance(model, Module):
        raise InvalidTypeError(
            f"export_onnx: expected a fastnn model or a fitted fastnn.sklearn estimator, got "
            f"{type(model).__name__}"
        )
    output = "predict" if output is None else check_choice(output, "output", OUTPUTS)
    final = "Softmax" if output == "proba" else None
    return model, final, False, {"output": f"{type(model).__name__}.{output}"}


def _shape(width, name):
    return width if isinstance(width, int) else name


def _tabular_ends(g, tabular, x, net):
    """What a model trained on a CSV table (``fastnn train --data FILE.csv``) adds around the
    network: its features' standardizer before, regression's target scale after. Returns
    (input of the network, a function from the network's output to y, 1-D output?, metadata)."""
    from .data.tabular import Tabular

    if not isinstance(tabular, Tabular):
        raise InvalidTypeError(
            f"export_onnx: tabular must be a fastnn.data.tabular.Tabular, got {tabular!r:.80}"
        )
    meta = {"task": tabular.task}
    if tabular.feature_names is not None:
        meta["features"] = json.dumps(tabular.feature_names)
    if tabular.mean is not None:
        x = g.op("Sub", [x, g.const("feature_mean", tabular.mean)], "standardized")
        x = g.op("Div", [x, g.const("feature_scale", tabular.scale)], "standardized")
    if tabular.task == "classification":
        meta["classes"] = json.dumps(np.asarray(tabular.classes).tolist())
        return x, lambda y: y, False, meta
    if tabular.target_name is not None:
        meta["target"] = tabular.target_name

    def unscale(y):
        y = g.op("Mul", [y, g.const("target_scale", [tabular.target_scale])], "output")
        return g.op("Add", [y, g.const("target_mean", [tabular.target_mean])], "output")

    return x, unscale, True, meta


def export_onnx(model, path, *, output=None, tabular=None):
    """Write ``model`` to ``path`` as an ONNX graph (opset 17) that computes, in eval mode,
    ``y = model.predict(x)``, or with ``output="proba"`` ``y = model.predict_proba(x)`` (the
    softmax of each row).

    ``model``: a fastnn model (``Sequential``, ``MLP`` or any of fastnn's layers) or a fitted
    ``fastnn.sklearn`` estimator, whose graph gives ``predict_proba`` (``MLPClassifier``; the
    columns in ``classes_`` order, which the file's metadata ``classes`` lists as JSON) or
    ``predict`` (``MLPRegressor``; shape (batch,) for one target). Input ``x``: (batch,
    in_features); output ``y``: (batch, outputs); both of the model's dtype. The file is
    written atomically; returns its path.

    Run it with ONNX Runtime:

        session = onnxruntime.InferenceSession("model.onnx")
        y = session.run(None, {"x": x.astype(np.float32)})[0]

    ``tabular``: for a model trained on a CSV table, what ``fastnn.files.load_tabular`` gives
    beside it (``fastnn export`` passes it): the graph then standardizes the features as
    ``fastnn predict`` does (input: the feature columns, in the training file's order without
    the target), and a regression's y is in the target's units, shape (batch,); the metadata
    names the features, and the classes a classifier's outputs stand for.

    Needs the ``onnx`` package (``pip install 'fastnn[onnx]'``); a module of your own is
    refused with ``InvalidTypeError`` naming it.
    """
    path = _path(path, "export_onnx")
    net, final, one_d, meta = _what(model, output)
    _refuse_foreign(net)
    onnx = _onnx()
    g = _Graph(onnx, net.dtype)
    g.used.update(("x", "y"))
    channels = _image_channels(net)
    if channels is not None:
        g.rank = 4
    x, after = "x", None
    if tabular is not None:
        x, after, table_1d, more = _tabular_ends(g, tabular, x, net)
        one_d = one_d or (table_1d and final is None)
        meta.update(more)
    with using(net):  # the weights of one moment, not of a fit in another thread
        y = _layer(g, net, x, "")
    if final is not None:
        y = g.op(final, [y], "output", **({"axis": -1} if final == "Softmax" else {}))
    elif after is not None:
        y = after(y)
    if one_d:
        y = g.op("Reshape", [y, g.const("flat", [-1], np.int64)], "output")
    if y == "x":  # no layer computes anything (Identity, Dropout): y is a copy of x
        y = g.op("Identity", ["x"], "output")
    assert g.nodes[-1].output[0] == y  # the last node computes the output: name it y
    g.nodes[-1].output[0] = "y"
    if g.nbytes > _MAX_BYTES:
        raise InvalidValueError(
            f"export_onnx: the model's {g.nbytes / 2**30:.1f} GiB of weights exceed what one "
            "ONNX file holds (2 GiB)"
        )

    n_in, n_out = net.io_widths()
    x_shape = ["batch", _shape(n_in, "features")]
    if channels is not None:
        x_shape = ["batch", channels, "height", "width"]
    if n_out == SAME or n_out is None:
        n_out = x_shape[1] if len(x_shape) == 2 else "outputs"
    else:
        n_out = _shape(n_out, "outputs")
    h = onnx.helper
    graph = h.make_graph(
        g.nodes,
        "fastnn",
        [h.make_tensor_value_info("x", g.elem_type, x_shape)],
        [h.make_tensor_value_info("y", g.elem_type, ["batch"] if one_d else ["batch", n_out])],
        initializer=g.initializers,
    )
    proto = h.make_model(
        graph,
        opset_imports=[h.make_opsetid("", OPSET)],
        producer_name="fastnn",
        producer_version=__version__,
        doc_string=f"y = {meta['output']}(x), exported by fastnn {__version__}",
    )
    proto.ir_version = IR_VERSION
    h.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    with atomic_write(path) as f:
        f.write(proto.SerializeToString())
    return path
