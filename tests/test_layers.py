"""Layers and models: float64 gradient checks, the Module API, buffers and input checks."""

import tracemalloc

import numpy as np
import pytest

import fastnn as fn
from fastnn.nn.module import flat_views

F64 = np.float64


def _layers_to_check():
    return {
        "linear": lambda: fn.Linear(5, 4, rng=0, dtype=F64),
        "linear-nobias": lambda: fn.Linear(5, 4, bias=False, rng=0, dtype=F64),
        "linear-relu": lambda: fn.Linear(5, 4, activation="relu", rng=0, dtype=F64),
        "linear-sigmoid": lambda: fn.Linear(5, 4, activation="sigmoid", rng=0, dtype=F64),
        "linear-tanh": lambda: fn.Linear(5, 4, activation="tanh", rng=0, dtype=F64),
        "linear-leaky": lambda: fn.Linear(
            5, 4, activation="leaky_relu", alpha=0.2, rng=0, dtype=F64
        ),
        "linear-elu": lambda: fn.Linear(5, 4, activation="elu", rng=0, dtype=F64),
        "maxout": lambda: fn.Maxout(5, 4, pieces=3, rng=0, dtype=F64),
        "relu": lambda: fn.ReLU(dtype=F64),
        "sigmoid": lambda: fn.Sigmoid(dtype=F64),
        "tanh": lambda: fn.Tanh(dtype=F64),
        "leaky_relu": lambda: fn.LeakyReLU(0.1, dtype=F64),
        "elu": lambda: fn.ELU(0.8, dtype=F64),
        "identity": lambda: fn.Identity(dtype=F64),
        "softmax": lambda: fn.Softmax(dtype=F64),
        "batchnorm": lambda: fn.BatchNorm(5, dtype=F64),
        "dropout": lambda: fn.Dropout(0.4, rng=3, dtype=F64),
    }


def _input_gradcheck(layer, x, rng):
    """Max relative error of backward's dx against float64 central differences of sum(y * g)."""
    g = rng.standard_normal(layer.forward(x).shape)
    state = [m.rng.bit_generator.state for m in layer.modules() if hasattr(m, "rng")]

    def f(xx):
        for m, s in zip([m for m in layer.modules() if hasattr(m, "rng")], state, strict=True):
            m.rng.bit_generator.state = s
        return float(np.sum(layer.forward(xx) * g))

    f(x)
    dx = layer.backward(g).copy()
    num = fn.numerical_gradient(f, x.copy())
    return np.abs(dx - num).max() / max(np.abs(dx).max(), np.abs(num).max(), 1e-7)


@pytest.mark.parametrize("name", list(_layers_to_check()))
def test_layer_gradcheck(name, rng):
    layer = _layers_to_check()[name]()
    x = rng.standard_normal((6, 5)) * 2
    assert _input_gradcheck(layer, x, rng) < 1e-6
    if layer.parameters():
        model = fn.Sequential(layer, fn.Linear(layer.forward(x).shape[1], 3, rng=1, dtype=F64))
        errors = fn.gradcheck(model, fn.SoftmaxCrossEntropy(), x, rng.integers(0, 3, 6))
        assert set(errors) == {n for n, _ in model.named_parameters()}
        assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "leaky_relu", "elu"])
def test_mlp_with_batchnorm_and_dropout_gradcheck(activation, rng):
    model = fn.MLP(
        [6, 8, 7, 4], activation=activation, batchnorm=True, dropout=0.2, seed=0, dtype=F64
    )
    x = rng.standard_normal((10, 6))
    y = rng.integers(0, 4, 10)
    errors = fn.gradcheck(model, fn.SoftmaxCrossEntropy(), x, y)
    assert len(errors) == len(model.parameters())
    assert max(errors.values()) < 1e-6, errors
    errors = fn.gradcheck(model, fn.MSELoss(), x, rng.standard_normal((10, 4)))
    assert max(errors.values()) < 1e-6, errors


def test_gradcheck_catches_a_wrong_gradient(rng):
    # The check must be able to fail: break ReLU's backward and see a large error.
    class BrokenReLU(fn.ReLU):
        def backward(self, dout):
            return super().backward(dout) * 1.01

    model = fn.Sequential(
        fn.Linear(4, 5, rng=0, dtype=F64), BrokenReLU(dtype=F64), fn.Linear(5, 3, rng=1, dtype=F64)
    )
    errors = fn.gradcheck(
        model, fn.SoftmaxCrossEntropy(), rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    )
    assert errors["0.weight"] > 1e-3
    assert errors["2.weight"] < 1e-6


def test_gradcheck_leaves_model_untouched(rng):
    model = fn.MLP([4, 5, 3], batchnorm=True, seed=0)
    before = model.state_dict()
    fn.gradcheck(
        model, fn.SoftmaxCrossEntropy(), rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    )
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert model.dtype == np.float32


def test_linear_forward_matches_numpy(rng, dtype):
    layer = fn.Linear(7, 3, activation="tanh", rng=0, dtype=dtype)
    x = rng.standard_normal((4, 7))
    y = layer(x)
    assert y.dtype == dtype
    want = np.tanh(x.astype(dtype) @ layer.weight.data + layer.bias.data)
    np.testing.assert_allclose(y, want, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert layer.weight.shape == (7, 3) and layer.bias.shape == (3,)


def test_module_api(rng):
    model = fn.MLP([4, 6, 5, 3], batchnorm=True, dropout=0.1, seed=0)
    names = [n for n, _ in model.named_parameters()]
    assert names == [
        "0.weight",
        "1.weight",
        "1.bias",
        "4.weight",
        "5.weight",
        "5.bias",
        "8.weight",
        "8.bias",
    ]
    assert [p.decay for p in model.parameters()] == [
        True,
        False,
        False,
        True,
        False,
        False,
        True,
        False,
    ]
    assert model.num_parameters() == 4 * 6 + 6 + 6 + 6 * 5 + 5 + 5 + 5 * 3 + 3
    state = model.state_dict()
    assert "1.running_mean" in state and "5.running_var" in state
    assert model.training and all(m.training for m in model.modules())
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert repr(model).startswith("MLP(\n  (0): Linear(in_features=4, out_features=6, bias=False)")
    assert "BatchNorm(6" in repr(model) and "Dropout(p=0.1)" in repr(model)


def test_parameters_share_one_buffer():
    model = fn.MLP([5, 7, 3], seed=0)
    params = model.parameters()
    data = flat_views([p.data for p in params])
    grad = flat_views([p.grad for p in params])
    assert data is not None and grad is not None
    assert data.size == model.num_parameters()
    data[:] = 1.0
    assert all(np.all(p.data == 1.0) for p in params)
    # Packing twice keeps the same buffers.
    d2, g2 = fn.pack_parameters(params)
    assert np.shares_memory(d2, data) and np.shares_memory(g2, grad)


def test_state_dict_round_trip(rng):
    a = fn.MLP([4, 6, 3], batchnorm=True, seed=0)
    b = fn.MLP([4, 6, 3], batchnorm=True, seed=1)
    x = rng.standard_normal((8, 4))
    a.forward(x)  # moves the running statistics
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    np.testing.assert_array_equal(a(x), b(x))
    # Loading keeps b's parameters packed in one buffer.
    assert flat_views([p.data for p in b.parameters()]) is not None


def test_load_state_dict_errors():
    model = fn.MLP([4, 6, 3], seed=0)
    state = model.state_dict()
    with pytest.raises(ValueError, match="missing keys \\['1.bias'\\]"):
        model.load_state_dict({k: v for k, v in state.items() if k != "1.bias"})
    with pytest.raises(ValueError, match="unexpected keys \\['extra'\\]"):
        model.load_state_dict(dict(state, extra=np.zeros(1)))
    bad = dict(state)
    bad["0.weight"] = np.zeros((6, 4))
    with pytest.raises(
        ValueError, match=r"state_dict\['0.weight'\]: expected shape \(4, 6\), got \(6, 4\)"
    ):
        model.load_state_dict(bad)
    bad["0.weight"] = np.array([["a"] * 6] * 4)
    with pytest.raises((TypeError, ValueError)):
        model.load_state_dict(bad)


def test_call_returns_a_copy_and_forward_reuses_buffers(rng):
    model = fn.MLP([4, 6, 3], seed=0)
    x1, x2 = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    y1 = model(x1)
    y2 = model(x2)
    assert not np.array_equal(y1, y2)
    np.testing.assert_array_equal(y1, model(x1))
    f1 = model.forward(x1)
    f2 = model.forward(x2)
    assert f1 is f2  # the same buffer for the same batch size
    assert model.forward(rng.standard_normal((7, 4))).shape == (7, 3)


def test_training_step_allocates_nothing_in_steady_state(rng):
    model = fn.MLP([256, 512, 512, 10], batchnorm=True, dropout=0.2, seed=0)
    loss = fn.SoftmaxCrossEntropy()
    opt = fn.optim.Adam(model.parameters(), lr=1e-3)
    x = rng.standard_normal((128, 256)).astype(np.float32)
    y = rng.integers(0, 10, 128)

    def step():
        loss.forward(model.forward(x), y)
        model.backward(loss.backward(), input_grad=False)
        opt.step()

    step()
    step()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    # The smallest activation buffer is 128 * 10 * 4 = 5 kB, the others 256 kB: any new one shows.
    assert peak < 5000, peak


def test_float64_model_and_input_conversion(rng):
    m64 = fn.MLP([3, 4, 2], seed=0, dtype=np.float64)
    assert all(p.data.dtype == np.float64 for p in m64.parameters())
    m32 = fn.MLP([3, 4, 2], seed=0)
    x = rng.standard_normal((5, 3))  # float64 into a float32 model is converted
    np.testing.assert_allclose(m32(x), m64(x), rtol=1e-5, atol=1e-6)
    assert m32(x).dtype == np.float32
    np.testing.assert_allclose(m32([[1, 2, 3]]), m32(np.array([[1.0, 2.0, 3.0]])))
    xt = np.asfortranarray(rng.standard_normal((5, 3)))
    np.testing.assert_array_equal(m32(xt), m32(np.ascontiguousarray(xt)))
    m32.to(np.float64)
    np.testing.assert_allclose(m32(x), m64(x), rtol=1e-6)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (
            lambda: fn.Linear(784, 100, rng=0).forward(np.zeros((32, 785))),
            ValueError,
            r"Linear\(784, 100\): expected input of shape \(batch, 784\), got \(32, 785\)",
        ),
        (lambda: fn.Linear(3, 2, rng=0).forward(np.zeros(3)), ValueError, r"got \(3,\)"),
        (lambda: fn.Linear(3, 2, rng=0).forward(np.zeros((0, 3))), ValueError, r"got \(0, 3\)"),
        (
            lambda: fn.Linear(3, 2, rng=0).forward(np.array([["a", "b", "c"]])),
            TypeError,
            "real numbers",
        ),
        (lambda: fn.Linear(3, 2, rng=0).forward(np.zeros((1, 3), complex)), TypeError, "complex"),
        (lambda: fn.Linear(0, 2), ValueError, "in_features"),
        (lambda: fn.Linear(3, 2, activation="swish"), ValueError, "relu, sigmoid"),
        (lambda: fn.Linear(3, 2, init="bogus"), ValueError, "bogus"),
        (lambda: fn.LeakyReLU(-0.1), ValueError, "negative_slope"),
        (lambda: fn.ELU(0), ValueError, "alpha"),
        (lambda: fn.MLP([4]), ValueError, "at least 2"),
        (lambda: fn.MLP([4, 3], activation="softplus"), ValueError, "unknown activation"),
        (lambda: fn.MLP([4, 3, 2], dropout=1.0), ValueError, "dropout"),
        (lambda: fn.Sequential(fn.ReLU(), "relu"), TypeError, "layer 1"),
        (lambda: fn.Sequential(fn.ReLU(), fn.ReLU(dtype=np.float64)), ValueError, "mixed dtypes"),
        (lambda: fn.Maxout(3, 2, pieces=0), ValueError, "pieces"),
        (lambda: fn.Softmax().forward(np.zeros(3)), ValueError, r"\(batch, classes\)"),
        (lambda: fn.ReLU(dtype=np.int32), ValueError, "float32 or float64"),
    ],
)
def test_bad_input_gives_clear_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_backward_shape_checked(rng):
    layer = fn.Linear(3, 2, rng=0)
    layer.forward(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match=r"expected dout of shape \(4, 2\), got \(4, 3\)"):
        layer.backward(np.zeros((4, 3)))


def test_mlp_seed_reproducible_and_default_init(rng):
    a, b = fn.MLP([20, 30, 5], seed=7), fn.MLP([20, 30, 5], seed=7)
    pairs = zip(a.parameters(), b.parameters(), strict=True)
    assert all(np.array_equal(p.data, q.data) for p, q in pairs)
    c = fn.MLP([20, 30, 5], seed=8)
    assert not np.array_equal(a.parameters()[0].data, c.parameters()[0].data)
    # A SeedSequence is a seed too: the same one twice gives the same weights (the MLP spawns
    # its layers' streams from a copy, leaving the caller's sequence as it was).
    seq = np.random.SeedSequence(7)
    d, e = fn.MLP([20, 30, 5], seed=seq), fn.MLP([20, 30, 5], seed=seq)
    assert seq.n_children_spawned == 0
    pairs = zip(d.parameters(), e.parameters(), strict=True)
    assert all(np.array_equal(p.data, q.data) for p, q in pairs)
    big = fn.MLP([2000, 500, 5], seed=0)
    std = big.parameters()[0].data.std()
    assert abs(std - np.sqrt(2 / 2000)) < 0.02 * np.sqrt(2 / 2000)  # He for ReLU


def test_set_num_threads(restore_threads):
    import numba
    from threadpoolctl import threadpool_info

    fn.set_num_threads(1)
    assert numba.get_num_threads() == 1
    assert all(lib["num_threads"] == 1 for lib in threadpool_info() if lib["user_api"] == "blas")
    with pytest.raises(ValueError, match="invalid number of threads"):
        fn.set_num_threads(0)
    with pytest.raises(TypeError):
        fn.set_num_threads(1.5)


def test_openmp_waits_passively_unless_the_user_chose():
    import os
    import subprocess
    import sys

    code = "import os, fastnn; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE", out.stderr
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE", out.stderr
