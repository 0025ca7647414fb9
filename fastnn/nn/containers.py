"""Models: ``Sequential`` chains layers; ``MLP`` builds a multilayer perceptron from sizes."""

import numpy as np

from .._checks import check_bool, check_choice, check_dtype, check_int, check_seed
from ..errors import InvalidTypeError, InvalidValueError
from .activations import ACTIVATIONS
from .dropout import Dropout, check_p
from .init import spec
from .linear import Linear
from .module import SAME, Module, pack_parameters
from .normalization import BatchNorm


class Sequential(Module):
    """Layers applied in order: forward runs them first to last, backward last to first.

    All layers share one dtype, and each layer must take the width the layer before it gives,
    as their ``io_widths()`` say (checked when the model is built). Their
    parameters are packed into one contiguous buffer (and their gradients into another) when
    the model is built, so an optimizer updates the whole model with one kernel call.
    """

    # Runs its layers and nothing else, so the compiled path may run them instead (``plan``);
    # looked up in the class's own namespace: a subclass may override forward.
    _runs_only_its_layers = True

    def __init__(self, *layers):
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise InvalidTypeError(
                    f"Sequential: layer {i} is a {type(layer).__name__}, not a Module"
                )
        dtypes = {layer.dtype for layer in layers}
        if len(dtypes) > 1:
            raise InvalidValueError(
                f"Sequential: layers have mixed dtypes {sorted(map(str, dtypes))}"
            )
        super().__init__(dtypes.pop() if dtypes else np.float32)
        self.layers = list(layers)
        self.io_widths()  # refuses layers whose widths do not chain
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
        for i in range(len(self.layers) - 1, 0, -1):
            dout = self.layers[i].backward(dout)
        if not self.layers:
            return dout
        return self.layers[0].backward(dout, input_grad=input_grad)

    def _predict(self, x, batch_size):
        # The compiled forward pass when the model is made of fastnn's own layers.
        from .plan import predict

        out = predict(self, x, batch_size)
        return super()._predict(x, batch_size) if out is None else out

    def io_widths(self):
        """The first layer's input width and the last one's output width, through layers that
        keep the width; ``InvalidValueError`` when a layer does not take the width the one
        before gives."""
        return chain_widths(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)


def chain_widths(layers):
    """(input width, output width) of ``layers`` run in order, from each one's ``io_widths()``;
    None where it cannot be told.

    Raises ``InvalidValueError`` when a layer does not take the width the one before gives,
    so that a mismatch is reported when the model is built rather than at its first forward.
    """
    first = width = previous = None
    for i, layer in enumerate(layers):
        lo, hi = layer.io_widths()
        if lo is None and hi == SAME:
            continue  # elementwise: passes on the width it is given
        if width is not None and lo is not None and lo != width:
            raise InvalidValueError(
                f"Sequential: layer {i} ({layer!r}) expects inputs of width {lo}, but layer "
                f"{previous[0]} ({previous[1]!r}) gives outputs of width {width}"
            )
        if previous is None:
            first = lo
        previous = (i, layer)
        width = lo if hi == SAME else hi
    return first, width


def _checked(sizes, activation, batchnorm, dropout):
    """MLP's settings, checked: (sizes, activation name, batchnorm, dropout)."""
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise InvalidTypeError(
            f"MLP: sizes must be a sequence of layer sizes such as (784, 100, 10), "
            f"got {type(sizes).__name__}"
        )
    sizes = [check_int(s, "layer size", low=1) for s in sizes]
    if len(sizes) < 2:
        raise InvalidValueError(f"MLP needs at least 2 sizes (inputs, outputs), got {sizes}")
    act = check_choice(activation, "activation", ACTIVATIONS)
    return sizes, act, check_bool(batchnorm, "batchnorm"), check_p(dropout)


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

    _runs_only_its_layers = True

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
        plan = self.plan(sizes, activation, batchnorm, dropout)
        sizes, act, batchnorm, dropout = _checked(sizes, activation, batchnorm, dropout)
        dtype = check_dtype(dtype)
        init = ACTIVATIONS[act].default_init if init is None else init
        rng = check_seed(seed, "seed")
        streams = rng.spawn(2 * len(sizes) - 3)  # one per Linear, then one per Dropout
        layers = []
        for cls, kwargs, stream in plan:
            if cls is Linear:
                kwargs = dict(kwargs, init=init)
            if stream is not None:
                kwargs = dict(kwargs, rng=streams[stream])
            layers.append(cls(**kwargs, dtype=dtype))
        super().__init__(*layers)
        self.sizes = tuple(sizes)
        self.activation = act
        self.batchnorm = batchnorm
        self.dropout = dropout
        self.init = init

    @staticmethod
    def plan(sizes, activation="relu", batchnorm=False, dropout=0.0):
        """The layers an MLP of these settings holds, in order, without building them: a list
        of (class, constructor arguments, index of its random stream or None)."""
        sizes, act, batchnorm, dropout = _checked(sizes, activation, batchnorm, dropout)
        plan = []
        for i in range(len(sizes) - 1):
            last = i == len(sizes) - 2
            # Batch norm's shift (beta) takes the place of a bias before it.
            linear = {"in_features": sizes[i], "out_features": sizes[i + 1]}
            linear.update(bias=last or not batchnorm, activation=None if last or batchnorm else act)
            plan.append((Linear, linear, i))
            if last:
                break
            if batchnorm:
                plan.append((BatchNorm, {"num_features": sizes[i + 1]}, None))
                plan.append((ACTIVATIONS[act], {}, None))
            if dropout > 0:
                plan.append((Dropout, {"p": dropout}, len(sizes) - 1 + i))
        return plan

    @classmethod
    def state_shapes(cls, sizes, activation="relu", batchnorm=False, dropout=0.0, init=None):
        """{name: shape} of the parameters and buffers an MLP of this config holds."""
        shapes = {}
        for i, (layer, kwargs, _) in enumerate(cls.plan(sizes, activation, batchnorm, dropout)):
            shapes.update({f"{i}.{k}": v for k, v in layer.state_shapes(**kwargs).items()})
        return shapes

    def get_config(self):
        return {
            "sizes": list(self.sizes),
            "activation": self.activation,
            "batchnorm": self.batchnorm,
            "dropout": self.dropout,
            "init": spec(self.init),
        }
