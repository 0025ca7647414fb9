"""Models: ``Sequential`` chains layers; ``MLP`` builds a multilayer perceptron from sizes."""

import numpy as np

from ._validation import as_rng, check_bool, check_positive_int
from .activation import ELU, Identity, LeakyReLU, ReLU, Sigmoid, Softmax, Step, Tanh, _Activation
from .dropout import Dropout, _check_p
from .linear import Linear, Maxout
from .module import Module, check_dtype, pack_parameters
from .normalization import BatchNorm


class Sequential(Module):
    """Layers applied in order: forward runs them first to last, backward last to first.

    All layers share one dtype, and each sized layer (Linear, Maxout, BatchNorm) must take
    the width the sized layer before it gives (checked when the model is built). Their
    parameters are packed into one contiguous buffer (and their gradients into another) when
    the model is built, so an optimizer updates the whole model with one kernel call.
    """

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} is a {type(layer).__name__}, not a Module")
        dtypes = {layer.dtype for layer in layers}
        if len(dtypes) > 1:
            raise ValueError(f"Sequential: layers have mixed dtypes {sorted(map(str, dtypes))}")
        super().__init__(dtypes.pop() if dtypes else np.float32)
        self.layers = list(layers)
        _io_widths(self.layers)
        self._pack()

    def _pack(self):
        params = self.parameters()
        if params:
            pack_parameters(params)

    def _after_to(self):
        self._pack()

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, input_grad=True):
        """Back-propagate ``dout`` through every layer; returns dx (None if not ``input_grad``).

        ``input_grad=False`` lets the first layer skip computing the gradient of the input,
        which training never uses.
        """
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            layer = self.layers[i]
            if i == 0 and not input_grad and isinstance(layer, (Linear, Maxout, Sequential)):
                return layer.backward(dout, input_grad=False)
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


# Layers whose output has the shape of their input.
_SAME_WIDTH = (_Activation, Dropout, Identity, Softmax)


def _io_widths(layers):
    """(input width, output width) of ``layers`` run in order; None where it cannot be told.

    Raises ``ValueError`` when a sized layer does not take the width the one before gives, so a
    mismatch is reported when the model is built rather than at its first forward.
    """
    first = width = None
    previous = None
    for i, layer in enumerate(layers):
        if isinstance(layer, (Linear, Maxout)):
            lo, hi = layer.in_features, layer.out_features
        elif isinstance(layer, BatchNorm):
            lo = hi = layer.num_features
        elif isinstance(layer, Sequential):
            lo, hi = _io_widths(layer.layers)
        elif isinstance(layer, _SAME_WIDTH):
            continue
        else:  # a module of the user's own: its widths are unknown
            lo = hi = None
        if width is not None and lo is not None and lo != width:
            raise ValueError(
                f"Sequential: layer {i} ({layer!r}) expects inputs of width {lo}, but layer "
                f"{previous[0]} ({previous[1]!r}) gives outputs of width {width}"
            )
        if previous is None:
            first = lo
        previous = (i, layer)
        width = hi
    return first, width


_ACTIVATION_LAYERS = {
    "relu": ReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "step": Step,
}
# ReLU-like activations get He's initial scale, the others Xavier's.
_DEFAULT_INIT = {
    "relu": "he",
    "leaky_relu": "he",
    "elu": "he",
    "sigmoid": "xavier",
    "tanh": "xavier",
    "step": "xavier",
}


class MLP(Sequential):
    """A multilayer perceptron: Linear layers of ``sizes``, with an activation between them.

    ``sizes`` = (inputs, hidden..., outputs), e.g. (784, 100, 10). Each hidden layer is
    Linear -> [BatchNorm] -> activation -> [Dropout]; the last Linear outputs raw scores
    (logits; pair it with ``SoftmaxCrossEntropy``). Without batch norm the activation is fused
    into the Linear layer; with it, the Linear layers before batch norm have no bias (the
    batch-norm shift replaces it). ``init`` defaults to "he" for ReLU-like activations and
    "xavier" for sigmoid and tanh. ``seed`` (int, SeedSequence or Generator) makes weights and
    dropout masks reproducible.
    """

    def __init__(
        self,
        sizes,
        activation="relu",
        batchnorm=False,
        dropout=0.0,
        init=None,
        seed=None,
        dtype=np.float32,
    ):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(
                f"MLP: sizes must be a sequence of layer sizes such as (784, 100, 10), "
                f"got {type(sizes).__name__}"
            )
        sizes = [check_positive_int(s, "layer size") for s in sizes]
        if len(sizes) < 2:
            raise ValueError(f"MLP needs at least 2 sizes (inputs, outputs), got {sizes}")
        act = str(activation).lower()
        if act not in _ACTIVATION_LAYERS:
            raise ValueError(
                f"unknown activation {activation!r}; "
                f"expected one of {', '.join(_ACTIVATION_LAYERS)}"
            )
        dropout = _check_p(dropout)
        batchnorm = check_bool(batchnorm, "batchnorm")
        dtype = check_dtype(dtype)
        init = _DEFAULT_INIT[act] if init is None else init
        rng = as_rng(seed)
        hidden = len(sizes) - 2
        streams = rng.spawn(len(sizes) - 1 + hidden)
        layers = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            fused = None if last or batchnorm else act
            # Batch norm's shift (beta) takes the place of a bias before it.
            bias = last or not batchnorm
            layers.append(
                Linear(
                    sizes[i],
                    sizes[i + 1],
                    init=init,
                    bias=bias,
                    rng=streams[i],
                    activation=fused,
                    dtype=dtype,
                )
            )
            if last:
                break
            if batchnorm:
                layers.append(BatchNorm(sizes[i + 1], dtype=dtype))
                layers.append(_ACTIVATION_LAYERS[act](dtype=dtype))
            if dropout > 0:
                layers.append(Dropout(dropout, rng=streams[len(sizes) - 1 + i], dtype=dtype))
        super().__init__(*layers)
        self.sizes = tuple(sizes)
        self.activation = act
        self.batchnorm = bool(batchnorm)
        self.dropout = float(dropout)
        self.init = init
