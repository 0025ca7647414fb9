"""Conv2D, the pooling layers, Flatten and BatchNorm over images: float64 gradient checks,
forward and backward against torch.nn.functional, input checks, models, save and load."""

import numpy as np
import pytest

import fastnn as fn
from fastnn.errors import InvalidTypeError, InvalidValueError, StateError
from fastnn.nn import LAYERS

F64 = np.float64
# (batch, channels, height, width, kernel, stride, padding): kernels 1, 3, 5, strides 1 and 2,
# paddings 0-2, odd sizes, batch 1.
GEOMETRIES = [
    (1, 2, 7, 5, 3, 1, 0),
    (2, 3, 9, 8, 3, 2, 1),
    (3, 1, 6, 7, 5, 1, 2),
    (2, 2, 5, 5, 1, 2, 0),
    (1, 3, 11, 9, 5, 2, 2),
    (2, 1, 8, 6, 3, 1, 1),
]
IDS = ["n{}c{}h{}w{}k{}s{}p{}".format(*g) for g in GEOMETRIES]


def _input_gradcheck(layer, x, rng):
    """Max relative error of backward's dx against float64 central differences."""
    g = rng.standard_normal(layer.forward(x).shape)

    def f(xx):
        return float(np.sum(layer.forward(xx) * g))

    f(x)
    dx = layer.backward(g).copy()
    num = fn.numerical_gradient(f, x.copy())
    return np.abs(dx - num).max() / max(np.abs(dx).max(), np.abs(num).max(), 1e-7)


def _image_layers():
    return {
        "conv": lambda: fn.Conv2D(2, 3, 3, stride=2, padding=1, rng=0, dtype=F64),
        "conv-k1-nobias": lambda: fn.Conv2D(2, 4, 1, bias=False, rng=0, dtype=F64),
        "conv-k5-tanh": lambda: fn.Conv2D(2, 3, 5, padding=2, activation="tanh", rng=0, dtype=F64),
        "conv-rect-elu": lambda: fn.Conv2D(
            2, 3, (3, 2), stride=(1, 2), padding=(2, 1), activation="elu", rng=0, dtype=F64
        ),
        "maxpool": lambda: fn.MaxPool2D(3, stride=2, padding=1, dtype=F64),
        "maxpool-2": lambda: fn.MaxPool2D(2, dtype=F64),
        "avgpool": lambda: fn.AvgPool2D(3, stride=2, padding=1, dtype=F64),
        "avgpool-5": lambda: fn.AvgPool2D(5, stride=1, padding=2, dtype=F64),
        "globalavgpool": lambda: fn.GlobalAvgPool2D(dtype=F64),
        "flatten": lambda: fn.Flatten(dtype=F64),
        "batchnorm2d": lambda: fn.BatchNorm(2, dtype=F64),
        "batchnorm2d-eval": lambda: fn.BatchNorm(2, dtype=F64).eval(),
        "dropout": lambda: fn.Dropout(0.3, rng=0, dtype=F64),
        "relu": lambda: fn.ReLU(dtype=F64),
        "sigmoid": lambda: fn.Sigmoid(dtype=F64),
    }


@pytest.mark.parametrize("name", list(_image_layers()))
def test_layer_gradcheck(name, rng):
    layer = _image_layers()[name]()
    # Values far apart, so that no max-pool window holds a near-tie the differences cross.
    x = rng.permutation(2 * 2 * 7 * 9).reshape(2, 2, 7, 9) / 10.0 + rng.random((2, 2, 7, 9)) * 0.01
    if name != "dropout":
        assert _input_gradcheck(layer, x, rng) < 1e-6
    if layer.parameters() or name == "dropout":
        width = int(np.prod(layer.forward(x).shape[1:]))
        model = fn.Sequential(layer, fn.Flatten(dtype=F64), fn.Linear(width, 3, rng=1, dtype=F64))
        errors = fn.gradcheck(model, fn.SoftmaxCrossEntropy(), x, np.array([0, 2]))
        assert set(errors) == {n for n, _ in model.named_parameters()}
        assert max(errors.values()) < 1e-6, errors


def test_a_whole_conv_net_gradchecks(rng):
    model = fn.Sequential(
        fn.Conv2D(1, 4, 3, padding=1, bias=False, rng=0, dtype=F64),  # batch norm shifts
        fn.BatchNorm(4, dtype=F64),
        fn.ReLU(dtype=F64),
        fn.Conv2D(4, 3, 3, stride=2, activation="sigmoid", rng=1, dtype=F64),
        fn.AvgPool2D(2, stride=1, dtype=F64),
        fn.Flatten(dtype=F64),
        fn.Linear(3 * 2 * 1, 3, rng=2, dtype=F64),
    )
    x = rng.standard_normal((3, 1, 7, 6))
    errors = fn.gradcheck(model, fn.SoftmaxCrossEntropy(), x, np.array([0, 1, 2]))
    assert max(errors.values()) < 1e-6, errors


# -- against PyTorch ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _t(torch, a, grad=False):
    return torch.tensor(np.array(a), requires_grad=grad)


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_conv2d_matches_torch(geometry, activation, dtype, rng, torch):
    n, c, h, w, k, s, p = geometry
    conv = fn.Conv2D(c, 4, k, stride=s, padding=p, activation=activation, rng=0, dtype=dtype)
    conv.bias.data[...] = rng.standard_normal(4)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = conv.forward(x)
    tx, tw, tb = (
        _t(torch, x, True),
        _t(torch, conv.weight.data, True),
        _t(torch, conv.bias.data, True),
    )
    ty = torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p)
    if activation:
        ty = torch.relu(ty)
    t = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(y, ty.detach().numpy(), **t)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = conv.backward(g)
    ty.backward(_t(torch, g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **t)
    np.testing.assert_allclose(conv.weight.grad, tw.grad.numpy(), **t)
    np.testing.assert_allclose(conv.bias.grad, tb.grad.numpy(), **t)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=IDS)
def test_pooling_matches_torch(geometry, kind, dtype, rng, torch):
    n, c, h, w, k, s, p = geometry
    p = min(p, k // 2)
    layer = (fn.MaxPool2D if kind == "max" else fn.AvgPool2D)(k, s, p, dtype=dtype)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = layer.forward(x)
    tx = _t(torch, x, True)
    f = torch.nn.functional.max_pool2d if kind == "max" else torch.nn.functional.avg_pool2d
    ty = f(tx, k, s, p)  # avg_pool2d: count_include_pad=True by default, as AvgPool2D
    t = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y, ty.detach().numpy(), **t)
    g = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(g)
    ty.backward(_t(torch, g))
    np.testing.assert_allclose(dx, tx.grad.numpy(), **t)


def test_maxpool_ties_send_the_gradient_where_torch_does(torch):
    # Every window of 3 with stride 1 overlaps others and holds equal maxima: the first in
    # row-major window order gets the gradient, as in PyTorch.
    x = np.array([[[[1, 3, 3, 0], [3, 3, 1, 3], [0, 3, 3, 2], [3, 1, 3, 3]]]], np.float64)
    layer = fn.MaxPool2D(3, stride=1, padding=1, dtype=F64)
    y = layer.forward(x)
    dx = layer.backward(np.arange(1.0, y.size + 1).reshape(y.shape))
    tx = _t(torch, x, True)
    ty = torch.nn.functional.max_pool2d(tx, 3, 1, 1)
    ty.backward(torch.arange(1.0, y.size + 1, dtype=torch.float64).reshape(y.shape))
    np.testing.assert_array_equal(dx, tx.grad.numpy())
    # (0, 1) is the first 3, in row-major order, of the windows centred on (0, 0), (0, 1),
    # (0, 2), (1, 0), (1, 1) and (1, 2); (1, 0), an equal 3, gets none of theirs.
    assert dx[0, 0, 0, 1] == 1 + 2 + 3 + 5 + 6 + 7
    assert dx[0, 0, 1, 0] == 9 + 10  # first only in the windows centred on (2, 0) and (2, 1)


def test_batchnorm_over_images_matches_torch(dtype, rng, torch):
    bn = fn.BatchNorm(3, momentum=0.1, dtype=dtype)
    bn.weight.data[...] = rng.standard_normal(3)
    bn.bias.data[...] = rng.standard_normal(3)
    rm, rv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    t = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    for step in range(3):
        x = (rng.standard_normal((4, 3, 5, 7)) * 3 + step).astype(dtype)
        tx = _t(torch, x.astype(np.float64), True)
        tw, tb = (
            _t(torch, bn.weight.data.astype(np.float64), True),
            _t(torch, bn.bias.data.astype(np.float64), True),
        )
        ty = torch.nn.functional.batch_norm(tx, rm, rv, tw, tb, training=True, momentum=0.1)
        y = bn.forward(x)
        np.testing.assert_allclose(y, ty.detach().numpy(), **t)
        g = rng.standard_normal(y.shape)
        dx = bn.backward(g.astype(dtype))
        ty.backward(_t(torch, g))
        np.testing.assert_allclose(dx, tx.grad.numpy(), **t)
        np.testing.assert_allclose(bn.weight.grad, tw.grad.numpy(), **t)
        np.testing.assert_allclose(bn.bias.grad, tb.grad.numpy(), **t)
        # Biased variance to normalise, unbiased (n * h * w - 1) for the running one.
        np.testing.assert_allclose(bn.running_mean, rm.numpy(), **t)
        np.testing.assert_allclose(bn.running_var, rv.numpy(), **t)
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4)).astype(dtype)
    ty = torch.nn.functional.batch_norm(
        _t(torch, x.astype(np.float64)),
        rm,
        rv,
        _t(torch, bn.weight.data.astype(np.float64)),
        _t(torch, bn.bias.data.astype(np.float64)),
        training=False,
    )
    np.testing.assert_allclose(bn.forward(x), ty.numpy(), **t)


def test_flatten_and_global_pool_match_torch(rng, torch):
    x = rng.standard_normal((3, 4, 5, 6))
    np.testing.assert_array_equal(
        fn.Flatten(dtype=F64).forward(x), torch.flatten(_t(torch, x), 1).numpy()
    )
    np.testing.assert_allclose(
        fn.GlobalAvgPool2D(dtype=F64).forward(x), _t(torch, x).mean(dim=(2, 3)).numpy(), rtol=1e-12
    )


# -- models ------------------------------------------------------------------------------------
def _cnn(dtype=np.float32, seed=0):
    return fn.Sequential(
        fn.Conv2D(1, 4, 3, padding=1, activation="relu", rng=seed, dtype=dtype),
        fn.BatchNorm(4, dtype=dtype),
        fn.ReLU(dtype=dtype),
        fn.MaxPool2D(2, dtype=dtype),
        fn.Conv2D(4, 6, (3, 3), stride=1, padding=1, bias=False, rng=seed + 1, dtype=dtype),
        fn.AvgPool2D(2, dtype=dtype),
        fn.Dropout(0.2, rng=seed, dtype=dtype),
        fn.Flatten(dtype=dtype),
        fn.Linear(6 * 2 * 2, 5, rng=seed + 2, dtype=dtype),
    )


def test_sequential_cnn_trains_predicts_and_its_widths(rng):
    model = _cnn()
    assert model.io_widths() == (None, 5)
    x = rng.standard_normal((6, 1, 8, 9)).astype(np.float32)
    y = rng.integers(0, 5, 6)
    loss = fn.SoftmaxCrossEntropy()
    opt = fn.optim.Adam(model.parameters(), lr=0.01)
    first = None
    for _ in range(30):
        value = loss.forward(model.forward(x), y)
        first = value if first is None else first
        model.backward(loss.backward(), input_grad=False)
        opt.step()
    assert value < first
    out = model.predict(x, batch_size=4)
    assert out.shape == (6, 5) and out.dtype == np.float32
    np.testing.assert_allclose(out, model.eval().forward(x), rtol=1e-5, atol=1e-6)
    assert model.training is False
    np.testing.assert_allclose(model.predict_proba(x.astype(np.float64)).sum(axis=1), 1, rtol=1e-5)
    assert model.predict_classes(x.tolist()).tolist() == out.argmax(axis=1).tolist()
    # Widths still chain after Flatten: a Linear of the wrong width after a Linear is refused.
    with pytest.raises(InvalidValueError, match="width"):
        fn.Sequential(fn.Conv2D(1, 2, 3), fn.Flatten(), fn.Linear(8, 4), fn.Linear(5, 2))


def test_save_and_load_round_trip(tmp_path, rng, dtype):
    model = _cnn(dtype)
    x = rng.standard_normal((4, 1, 8, 8)).astype(dtype)
    model.forward(x)  # moves the running statistics
    path = tmp_path / "cnn.npz"
    fn.save(model, path)
    loaded = fn.load(path)
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


@pytest.mark.parametrize(
    "layer",
    [
        fn.Conv2D(
            3,
            5,
            (3, 1),
            stride=(2, 1),
            padding=(1, 0),
            bias=False,
            activation="leaky_relu",
            alpha=0.2,
            init="xavier",
            rng=0,
        ),  # fmt: skip
        fn.MaxPool2D(3, 2, 1),
        fn.AvgPool2D((2, 3)),
        fn.GlobalAvgPool2D(),
        fn.Flatten(),
    ],
    ids=lambda m: type(m).__name__,
)
def test_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    again = type(layer)(**config)
    assert again.get_config() == config and repr(again) == repr(layer)
    assert LAYERS[type(layer).__name__] is type(layer)
    assert type(layer).state_shapes(**config) == {k: v.shape for k, v in layer.named_state()}


def test_conv2d_initialises_like_pytorch_fan_in():
    conv = fn.Conv2D(16, 32, 5, rng=0, dtype=F64)
    std = conv.weight.data.std()
    assert abs(std - np.sqrt(2 / (16 * 25))) < 0.05 * np.sqrt(2 / (16 * 25))
    assert np.array_equal(
        fn.Conv2D(16, 32, 5, rng=0).weight.data, fn.Conv2D(16, 32, 5, rng=0).weight.data
    )


def test_conv_models_take_the_per_layer_path():
    # (ONNX export of conv models: tests/test_onnx.py.)
    from fastnn.nn.plan import compilable

    assert not compilable(_cnn())


# -- input checks ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, x, error, match",
    [
        (lambda: fn.Conv2D(3, 4, 3), np.zeros((2, 27)), InvalidValueError,
         r"Conv2D\(3, 4, kernel_size=\(3, 3\)\): expected input of shape "
         r"\(batch, 3, height, width\), got \(2, 27\)"),
        (lambda: fn.Conv2D(3, 4, 3), np.zeros((2, 2, 5, 5)), InvalidValueError,
         r"\(batch, 3, height"),
        (lambda: fn.Conv2D(1, 4, 5), np.zeros((2, 1, 3, 9)), InvalidValueError,
         r"kernel 5x5 is larger than the padded image 3x9"),
        (lambda: fn.Conv2D(1, 4, 5, padding=1), np.zeros((2, 1, 2, 9)), InvalidValueError,
         r"larger than the padded image 4x11"),
        (lambda: fn.Conv2D(1, 4, 3), np.zeros((0, 1, 5, 5)), InvalidValueError,
         r"got \(0, 1, 5, 5\)"),
        (lambda: fn.Conv2D(1, 4, 3), np.full((1, 1, 5, 5), "a"), InvalidTypeError, "real numbers"),
        (lambda: fn.MaxPool2D(3), np.zeros((1, 1, 2, 2)), InvalidValueError,
         "larger than the padded"),
        (lambda: fn.AvgPool2D(2), np.zeros((4, 5)), InvalidValueError,
         r"\(batch, channels, height, width\)"),
        (lambda: fn.GlobalAvgPool2D(), np.zeros((4, 5, 3)), InvalidValueError, "height, width"),
        (lambda: fn.Flatten(), np.zeros(4), InvalidValueError, "two or more axes"),
        (lambda: fn.BatchNorm(3), np.zeros((2, 4, 5, 5)), InvalidValueError,
         r"\(batch, 3, height, width\)"),
        (lambda: fn.BatchNorm(3), np.zeros((1, 3, 1, 1)), InvalidValueError,
         "more than 1 value per channel"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_any_kernel(make, x, error, match):
    with pytest.raises(error, match=match):
        make().forward(x)


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: fn.Conv2D(3, 4, 3, stride=0), InvalidValueError, "invalid stride: 0"),
        (lambda: fn.Conv2D(3, 4, 0), InvalidValueError, "invalid kernel_size: 0"),
        (lambda: fn.Conv2D(3, 4, 3, padding=-1), InvalidValueError, "invalid padding: -1"),
        (lambda: fn.Conv2D(3, 4, (3, 3, 3)), InvalidValueError, "an int or a pair"),
        (lambda: fn.Conv2D(3, 4, "3"), InvalidTypeError, "kernel_size must be"),
        (lambda: fn.Conv2D(0, 4, 3), InvalidValueError, "in_channels"),
        (lambda: fn.Conv2D(3, 4, 3, activation="swish"), InvalidValueError, "activation"),
        (lambda: fn.MaxPool2D(2, stride=0), InvalidValueError, "invalid stride: 0"),
        (lambda: fn.MaxPool2D(3, padding=2), InvalidValueError, "at most half the kernel"),
        (lambda: fn.AvgPool2D(2.5), InvalidTypeError, "kernel_size must be an integer"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_non_contiguous_and_other_dtype_input_is_converted(rng):
    conv = fn.Conv2D(2, 3, 3, padding=1, rng=0)
    x = rng.standard_normal((2, 5, 6, 2)).transpose(0, 3, 1, 2)  # float64, not contiguous
    assert not x.flags.c_contiguous
    y = conv.forward(x).copy()
    np.testing.assert_array_equal(y, conv.forward(np.ascontiguousarray(x, np.float32)))
    assert y.dtype == np.float32
    dout = np.ones((2, 3, 5, 12))[:, :, :, ::2]  # float64, not contiguous
    dx = conv.backward(dout).copy()
    np.testing.assert_array_equal(dx, conv.backward(np.ones((2, 3, 5, 6), np.float32)))
    assert dx.shape == (2, 2, 5, 6) and dx.dtype == np.float32


def test_swapped_and_resized_state_is_refused(rng):
    x = rng.standard_normal((2, 2, 5, 5)).astype(np.float32)
    conv = fn.Conv2D(2, 3, 3, rng=0)
    conv.weight.data = np.zeros((3, 2, 3, 2), np.float32)
    with pytest.raises(
        InvalidValueError, match=r"weight.data has shape \(3, 2, 3, 2\), expected \(3, 2, 3, 3\)"
    ):
        conv.forward(x)
    conv = fn.Conv2D(2, 3, 3, rng=0)
    conv.bias.data = np.zeros(3, np.float64)
    with pytest.raises(InvalidTypeError, match="bias.data has dtype float64"):
        conv.forward(x)
    conv = fn.Conv2D(2, 3, 3, rng=0)
    conv.weight.data = np.zeros((3, 3, 3, 2), np.float32).transpose(0, 3, 1, 2)
    with pytest.raises(InvalidValueError, match="not C-contiguous"):
        conv.forward(x)
    conv = fn.Conv2D(2, 3, 3, rng=0)
    y = conv.forward(x)
    conv.weight.grad = np.zeros((3, 2, 3, 4), np.float32)
    with pytest.raises(InvalidValueError, match="weight.grad has shape"):
        conv.backward(np.ones_like(y))
    conv = fn.Conv2D(2, 3, 3, rng=0)
    y = conv.forward(x)
    conv.stride = (2, 2)
    with pytest.raises(StateError, match="changed since the last forward"):
        conv.backward(np.ones_like(y))
    conv.stride = (0, 1)
    with pytest.raises(InvalidValueError, match="stride"):
        conv.forward(x)
    conv = fn.Conv2D(2, 3, 3, rng=0)
    conv.in_channels = 5
    with pytest.raises(InvalidValueError):
        conv.forward(x)
    pool = fn.MaxPool2D(2)
    y = pool.forward(x)
    pool.kernel_size = (3, 3)
    with pytest.raises(StateError):
        pool.backward(np.ones_like(y))
    with pytest.raises(InvalidValueError, match=r"dout of shape \(2, 2, 2, 2\)"):
        fn.MaxPool2D(2).backward if False else _pool_then(fn.MaxPool2D(2), x, np.ones((2, 2, 3, 2)))
    with pytest.raises(StateError, match="before forward"):
        fn.Conv2D(2, 3, 3).backward(np.ones((2, 3, 3, 3)))


def _pool_then(layer, x, dout):
    layer.forward(x)
    return layer.backward(dout)
