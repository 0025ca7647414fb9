"""Property-based tests (hypothesis) of the public API over layer sizes, batch sizes, dtypes and
values: every call gives either a correct result (checked against NumPy written here) or a
documented error (ValueError or TypeError with a message), never another exception, a crash
or a NaN from finite input.

Example counts are small (the file runs in well under a minute on two cores) and there is no
deadline: the first example of a new shape may compile a kernel.
"""

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import fastnn as fn  # noqa: E402

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DTYPES = st.sampled_from([np.float32, np.float64])
# Tolerances against float64 NumPy: float32 rounding through a few layers of width <= 12.
TOL = {np.dtype(np.float32): dict(rtol=2e-4, atol=2e-4), np.dtype(np.float64): dict(rtol=1e-9)}
sizes = st.lists(st.integers(1, 12), min_size=2, max_size=4)
batches = st.integers(1, 16)


def finite(dtype, bound=1e3):
    return st.floats(-bound, bound, allow_nan=False, allow_infinity=False, width=32)


def _documented(call):
    """``call()``'s result, or None when it raises a documented error (ValueError/TypeError
    with a message). Anything else propagates and fails the test."""
    try:
        return call()
    except (ValueError, TypeError) as e:
        assert str(e), f"{type(e).__name__} without a message"
        return None


def _mlp_forward_reference(model, x):
    """The MLP's output computed in float64 NumPy from its weights (ReLU between layers)."""
    h = np.asarray(x, dtype=np.float64)
    linears = [m for m in model.modules() if isinstance(m, fn.Linear)]
    for i, layer in enumerate(linears):
        h = h @ layer.weight.data.astype(np.float64) + layer.bias.data.astype(np.float64)
        if i < len(linears) - 1:
            h = np.maximum(h, 0)
    return h


@SETTINGS
@given(sizes=sizes, batch=batches, dtype=DTYPES, data=st.data())
def test_mlp_forward_and_predict_match_numpy(sizes, batch, dtype, data):
    model = fn.MLP(sizes, seed=data.draw(st.integers(0, 2**32 - 1)), dtype=dtype)
    in_dtype = data.draw(st.sampled_from([np.float32, np.float64, np.int64, np.bool_]))
    elements = {
        np.int64: st.integers(-100, 100),
        np.bool_: st.booleans(),
    }.get(in_dtype, finite(in_dtype, 100))
    x = data.draw(hnp.arrays(in_dtype, (batch, sizes[0]), elements=elements))
    expected = _mlp_forward_reference(model, x.astype(np.float64))
    for out in (model.forward(x), model.predict(x, batch_size=data.draw(st.integers(1, 20)))):
        assert out.shape == (batch, sizes[-1])
        assert out.dtype == np.dtype(dtype)
        assert np.isfinite(out).all()
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(
            out,
            expected,
            rtol=TOL[np.dtype(dtype)]["rtol"],
            atol=TOL[np.dtype(dtype)].get("atol", 1e-12) * scale,
        )


@SETTINGS
@given(sizes=sizes, batch=batches, dtype=DTYPES, data=st.data())
def test_mlp_rejects_bad_inputs_with_documented_errors(sizes, batch, dtype, data):
    model = fn.MLP(sizes, seed=0, dtype=dtype)
    wrong = data.draw(st.integers(1, 14).filter(lambda n: n != sizes[0]))
    bad = data.draw(
        st.sampled_from(
            [
                ("shape", np.zeros((batch, wrong))),
                ("ndim", np.zeros((batch, sizes[0], 1))),
                ("empty", np.zeros((0, sizes[0]))),
                ("complex", np.zeros((batch, sizes[0]), complex)),
                ("object", np.zeros((batch, sizes[0]), object)),
                ("string", np.full((batch, sizes[0]), "a")),
            ]
        )
    )
    name, x = bad
    with pytest.raises((ValueError, TypeError)) as info:
        model.predict(x)
    assert str(info.value), name
    if name in ("complex", "object", "string"):
        assert issubclass(info.type, TypeError), f"{name}: {info.value}"
        assert not issubclass(info.type, ValueError), f"{name}: {info.value}"


@SETTINGS
@given(
    batch=batches, n_in=st.integers(1, 10), n_out=st.integers(1, 10), dtype=DTYPES, data=st.data()
)
def test_linear_backward_matches_numpy(batch, n_in, n_out, dtype, data):
    layer = fn.Linear(n_in, n_out, rng=data.draw(st.integers(0, 1000)), dtype=dtype)
    x = data.draw(hnp.arrays(dtype, (batch, n_in), elements=finite(dtype, 10)))
    dout = data.draw(hnp.arrays(dtype, (batch, n_out), elements=finite(dtype, 10)))
    W = layer.weight.data.astype(np.float64)
    y = layer.forward(x)
    np.testing.assert_allclose(
        y, x.astype(np.float64) @ W + layer.bias.data, **TOL[np.dtype(dtype)]
    )
    dx = layer.backward(dout)
    d64, x64 = dout.astype(np.float64), x.astype(np.float64)
    tol = dict(TOL[np.dtype(dtype)], atol=1e-3 if dtype == np.float32 else 1e-10)
    np.testing.assert_allclose(dx, d64 @ W.T, **tol)
    np.testing.assert_allclose(layer.weight.grad, x64.T @ d64, **tol)
    np.testing.assert_allclose(layer.bias.grad, d64.sum(axis=0), **tol)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@SETTINGS
@given(batch=batches, classes=st.integers(1, 10), dtype=DTYPES, data=st.data())
def test_softmax_cross_entropy_matches_numpy_even_for_huge_logits(batch, classes, dtype, data):
    z = data.draw(hnp.arrays(dtype, (batch, classes), elements=finite(dtype, 1e4)))
    t = data.draw(hnp.arrays(np.int64, batch, elements=st.integers(0, classes - 1)))
    loss = fn.SoftmaxCrossEntropy()
    value = loss.forward(z, t)
    logp = _log_softmax(z.astype(np.float64))
    assert np.isfinite(value)
    expected = -logp[np.arange(batch), t].mean()
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-4 * max(1, abs(expected)))
    dz = loss.backward()
    onehot = np.eye(classes)[t]
    np.testing.assert_allclose(dz, (np.exp(logp) - onehot) / batch, rtol=1e-4, atol=1e-6)


@SETTINGS
@given(batch=batches, classes=st.integers(1, 6), data=st.data())
def test_softmax_cross_entropy_rejects_bad_labels(batch, classes, data):
    z = np.zeros((batch, classes), np.float32)
    bad = data.draw(
        st.sampled_from(
            [
                np.full(batch, -1),
                np.full(batch, classes),
                np.full(batch, 0.5),
                np.zeros(batch + 1, np.int64),
                np.array(["a"] * batch),
            ]
        )
    )
    with pytest.raises((ValueError, TypeError)) as info:
        fn.SoftmaxCrossEntropy().forward(z, bad)
    assert str(info.value)


@SETTINGS
@given(shape=st.tuples(batches, st.integers(1, 8)), dtype=DTYPES, data=st.data())
def test_mse_matches_numpy(shape, dtype, data):
    y = data.draw(hnp.arrays(dtype, shape, elements=finite(dtype, 1e3)))
    t = data.draw(hnp.arrays(dtype, shape, elements=finite(dtype, 1e3)))
    loss = fn.MSELoss()
    value = loss.forward(y, t)
    d = y.astype(np.float64) - t
    np.testing.assert_allclose(value, np.mean(d**2), rtol=1e-5)
    np.testing.assert_allclose(loss.backward(), 2 * d / d.size, rtol=1e-4, atol=1e-6)


@SETTINGS
@given(
    sizes=sizes,
    n=st.integers(1, 40),
    batch_size=st.integers(-1, 50),
    dtype=DTYPES,
    optimizer=st.sampled_from(["sgd", "momentum", "adam", "rmsprop"]),
    data=st.data(),
)
def test_fit_a_step_or_two(sizes, n, batch_size, dtype, optimizer, data):
    classes = max(2, sizes[-1])
    sizes = [*sizes[:-1], classes]
    x = data.draw(hnp.arrays(np.float64, (n, sizes[0]), elements=finite(np.float64, 10)))
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, classes - 1)))
    model = fn.MLP(sizes, seed=0, dtype=dtype)
    before = model.state_dict()
    history = _documented(
        lambda: fn.fit(
            model,
            x,
            y,
            epochs=2,
            batch_size=batch_size,
            optimizer=optimizer,
            seed=0,
            verbose=0,
        )
    )
    if history is None:
        # A documented refusal happens before any step: the weights are untouched.
        for k, v in model.state_dict().items():
            np.testing.assert_array_equal(v, before[k])
        return
    assert 1 <= batch_size, "fit accepted a batch size below 1"
    assert len(history.history["loss"]) == 2
    assert np.isfinite(history.history["loss"]).all()
    for k, v in model.state_dict().items():
        assert v.dtype == np.dtype(dtype) and np.isfinite(v).all(), k
    assert np.isfinite(model.predict(x)).all()


@SETTINGS
@given(
    sizes=sizes,
    dtype=DTYPES,
    activation=st.sampled_from(["relu", "tanh", "sigmoid", "elu", "leaky_relu"]),
    batchnorm=st.booleans(),
    dropout=st.sampled_from([0.0, 0.5]),
    data=st.data(),
)
def test_save_load_round_trip(tmp_path_factory, sizes, dtype, activation, batchnorm, dropout, data):
    model = fn.MLP(
        sizes,
        activation=activation,
        batchnorm=batchnorm,
        dropout=dropout,
        seed=data.draw(st.integers(0, 1000)),
        dtype=dtype,
    )
    x = data.draw(hnp.arrays(dtype, (5, sizes[0]), elements=finite(dtype, 10)))
    path = tmp_path_factory.mktemp("round") / "m.npz"
    fn.save(model, path)
    loaded = fn.load(path)
    assert repr(loaded) == repr(model) and loaded.dtype == np.dtype(dtype)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[k], v)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
