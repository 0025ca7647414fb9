"""The compiled training step (``fastnn.training.compiled``, ``kernels._network``) against the
per-layer path: the same model, data, seeds and settings trained both ways must end with the
same parameters, running statistics, optimizer state and history, bit for bit (both paths run
the same kernels in the same order). Every layer kind, both dtypes, batch sizes 1, 7 and 100,
every optimizer and loss, clipping, weight decay, batch norm and dropout."""

import numpy as np
import pytest

import fastnn as fn
from fastnn.training import compiled as _compiled

CALLS = []


@pytest.fixture
def count_calls(monkeypatch):
    """Count the compiled calls, so a test knows the compiled path ran (and did not fall back
    to the per-layer path, which would make the comparison vacuous)."""
    real = _compiled.k.train_steps
    CALLS.clear()

    def counted(*args):
        CALLS.append(args[16:18])  # (step0, step1)
        return real(*args)

    monkeypatch.setattr(_compiled.k, "train_steps", counted)
    return CALLS


def _data(n, n_in, n_out, dtype, rng, kind="labels"):
    x = rng.standard_normal((n, n_in)).astype(dtype)
    if kind == "labels":
        y = rng.integers(0, n_out, n)
    elif kind == "soft":
        y = rng.random((n, n_out)).astype(dtype)
        y /= y.sum(axis=1, keepdims=True)
    else:
        y = rng.standard_normal((n, n_out)).astype(dtype)
    return x, y


def _train(flag, make, optimizer, x, y, **kw):
    model = make()
    opt = optimizer(model.parameters())
    with fn.compiled(flag):
        history = fn.fit(model, x, y, optimizer=opt, verbose=0, seed=3, **kw)
    return model, opt, history


def _assert_same(a, b):
    (ma, oa, ha), (mb, ob, hb) = a, b
    for (name, pa), (_, pb) in zip(ma.named_state(), mb.named_state(), strict=True):
        assert pa.dtype == pb.dtype
        np.testing.assert_array_equal(pa, pb, err_msg=name)
    sa, sb = oa.state_dict(), ob.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        np.testing.assert_array_equal(np.asarray(sa[key]), np.asarray(sb[key]), err_msg=key)
    keys = [k for k in ha.history if k != "seconds"]
    assert {k: ha.history[k] for k in keys} == {k: hb.history[k] for k in keys}


def _both(make, optimizer, x, y, calls, **kw):
    got = _train(True, make, optimizer, x, y, **kw)
    assert calls, "the compiled path did not run"
    want = _train(False, make, optimizer, x, y, **kw)
    _assert_same(got, want)
    return got


MODELS = {
    "mlp relu": lambda dt: fn.MLP([12, 16, 16, 5], seed=1, dtype=dt),
    "mlp tanh bn dropout": lambda dt: fn.MLP(
        [12, 16, 16, 5], activation="tanh", batchnorm=True, dropout=0.3, seed=1, dtype=dt
    ),
    "mlp sigmoid dropout": lambda dt: fn.MLP(
        [12, 16, 5], activation="sigmoid", dropout=0.5, seed=1, dtype=dt
    ),
    "layers": lambda dt: fn.Sequential(
        fn.Linear(12, 16, rng=1, dtype=dt),
        fn.ELU(0.7, dtype=dt),
        fn.Maxout(16, 8, pieces=3, rng=2, dtype=dt),
        fn.LeakyReLU(0.2, dtype=dt),
        fn.Dropout(0.25, rng=3, dtype=dt),
        fn.Linear(8, 8, bias=False, activation="leaky_relu", alpha=0.1, rng=4, dtype=dt),
        fn.Identity(dtype=dt),
        fn.Sequential(fn.Linear(8, 6, activation="elu", rng=5, dtype=dt), fn.Step(dtype=dt)),
        fn.Sigmoid(dtype=dt),
        fn.Linear(6, 5, rng=6, dtype=dt),
        fn.Tanh(dtype=dt),
        fn.ReLU(dtype=dt),
        fn.Softmax(dtype=dt),
    ),
    "maxout first": lambda dt: fn.Sequential(
        fn.Dropout(0.1, rng=7, dtype=dt),
        fn.Maxout(12, 6, pieces=2, rng=1, dtype=dt),
        fn.BatchNorm(6, momentum=0.3, eps=1e-3, dtype=dt),
        fn.Linear(6, 5, rng=2, dtype=dt),
    ),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("batch_size", [1, 7, 100])
def test_compiled_fit_equals_the_per_layer_fit(model, dtype, batch_size, count_calls):
    if batch_size == 1 and "bn" in model or batch_size == 1 and model == "maxout first":
        pytest.skip("batch norm needs 2 rows a batch")
    rng = np.random.default_rng(0)
    x, y = _data(203, 12, 5, dtype, rng)
    _both(
        lambda: MODELS[model](dtype),
        lambda p: fn.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
        x,
        y,
        count_calls,
        epochs=2,
        batch_size=batch_size,
    )


OPTIMIZERS = {
    "sgd": lambda p: fn.optim.SGD(p, lr=0.05),
    "sgd momentum wd": lambda p: fn.optim.SGD(
        p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2
    ),
    "nesterov": lambda p: fn.optim.Nesterov(p, lr=0.05),
    "adagrad": lambda p: fn.optim.AdaGrad(p, lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1),
    "rmsprop centered momentum": lambda p: fn.optim.RMSprop(
        p, lr=0.01, momentum=0.5, centered=True, weight_decay=1e-3
    ),
    "rmsprop": lambda p: fn.optim.RMSprop(p, lr=0.01),
    "adadelta": lambda p: fn.optim.AdaDelta(p, weight_decay=1e-3),
    "adam amsgrad clip": lambda p: fn.optim.Adam(p, lr=1e-2, amsgrad=True, clip_norm=0.5),
    "adamw": lambda p: fn.optim.AdamW(p, lr=1e-2),
}


@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_every_optimizer(optimizer, count_calls):
    rng = np.random.default_rng(1)
    x, y = _data(150, 12, 5, np.float32, rng)
    make = lambda: fn.MLP([12, 16, 5], batchnorm=True, dropout=0.2, seed=2)  # noqa: E731
    _both(make, OPTIMIZERS[optimizer], x, y, count_calls, epochs=3, batch_size=16)


@pytest.mark.parametrize(
    "loss, kind, metrics",
    [
        ("cross_entropy", "soft", None),
        ("cross_entropy", "soft", []),
        ("cross_entropy", "labels", []),
        ("mse", "targets", None),
        ("mse", "targets", ["accuracy"]),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_loss(loss, kind, metrics, dtype, count_calls):
    rng = np.random.default_rng(2)
    x, y = _data(120, 12, 4, dtype, rng, kind)
    make = lambda: fn.MLP([12, 10, 4], activation="tanh", seed=3, dtype=dtype)  # noqa: E731
    opt = lambda p: fn.optim.SGD(p, lr=0.1, momentum=0.5)  # noqa: E731
    _both(make, opt, x, y, count_calls, epochs=2, batch_size=13, loss=loss, metrics=metrics)


def _wide(dt):
    # Every pass at least PARALLEL_MIN elements at batch 256: the per-layer path splits them
    # into chunks run in parallel, the compiled step runs the same chunks serially.
    return fn.Sequential(
        fn.Linear(6, 600, activation="elu", rng=1, dtype=dt),
        fn.Tanh(dtype=dt),
        fn.Dropout(0.2, rng=2, dtype=dt),
        fn.Maxout(600, 300, pieces=2, rng=3, dtype=dt),
        fn.BatchNorm(300, dtype=dt),
        fn.Linear(300, 520, rng=4, dtype=dt),
    )


@pytest.mark.parametrize(
    "loss, kind, softmax",
    [("cross_entropy", "labels", False), ("cross_entropy", "soft", False), ("mse", "soft", True)],
)
def test_work_the_per_layer_path_splits_into_chunks(loss, kind, softmax, count_calls):
    from fastnn.kernels._config import PARALLEL_MIN

    assert 256 * 520 >= PARALLEL_MIN and 256 * 300 * 2 >= PARALLEL_MIN
    rng = np.random.default_rng(5)
    x, y = _data(300, 6, 520, np.float32, rng, kind)

    def make():
        model = _wide(np.float32)
        return fn.Sequential(model, fn.Softmax()) if softmax else model

    opt = lambda p: fn.optim.Adam(p, lr=1e-3)  # noqa: E731
    _both(make, opt, x, y, count_calls, epochs=1, batch_size=256, loss=loss)


@pytest.mark.parametrize("clip_norm", [None, 1e-3, 0.3])
def test_clipping_and_validation(clip_norm, count_calls):
    rng = np.random.default_rng(3)
    x, y = _data(200, 12, 5, np.float32, rng)
    make = lambda: fn.MLP([12, 32, 5], batchnorm=True, seed=4)  # noqa: E731
    opt = lambda p: fn.optim.Adam(p, lr=1e-2)  # noqa: E731
    _both(
        make, opt, x, y, count_calls, epochs=3, batch_size=32, clip_norm=clip_norm,
        validation_split=0.2,
    )  # fmt: skip


def test_a_whole_epoch_is_one_call_and_step_hooks_get_every_step(count_calls):
    rng = np.random.default_rng(4)
    x, y = _data(100, 12, 5, np.float32, rng)
    make = lambda: fn.MLP([12, 8, 5], seed=5)  # noqa: E731
    opt = lambda p: fn.optim.SGD(p, lr=0.1)  # noqa: E731
    _both(make, opt, x, y, count_calls, epochs=2, batch_size=10)
    assert count_calls[:2] == [(0, 10), (0, 10)]  # one call an epoch

    class Steps(fn.callbacks.Callback):
        def __init__(self):
            self.seen = []

        def on_step_end(self, trainer, step, loss, accuracy):
            self.seen.append((step, loss, accuracy))

    runs = []
    for flag in (True, False):
        hook = Steps()
        model = make()
        with fn.compiled(flag):
            fn.fit(model, x, y, optimizer=opt(model.parameters()), epochs=1, batch_size=10,
                   callbacks=[hook], verbose=0, seed=3)  # fmt: skip
        runs.append(hook.seen)
    assert runs[0] == runs[1] and [s for s, _, _ in runs[0]] == list(range(10))


def test_dropout_layers_sharing_a_generator_draw_in_turn(count_calls):
    # Two dropout layers drawing from one generator interleave their draws step by step; the
    # compiled path then runs one step a call, and still matches.
    def make():
        rng = np.random.default_rng(9)
        return fn.Sequential(
            fn.Linear(12, 16, rng=1), fn.Dropout(0.3, rng=rng), fn.Linear(16, 16, rng=2),
            fn.Dropout(0.3, rng=rng), fn.Linear(16, 5, rng=3),
        )  # fmt: skip

    x, y = _data(60, 12, 5, np.float32, np.random.default_rng(5))
    _both(make, lambda p: fn.optim.SGD(p, lr=0.1), x, y, count_calls, epochs=1, batch_size=20)
    assert count_calls == [(0, 1), (1, 2), (2, 3)]


def test_changes_between_epochs_make_a_new_plan_or_fall_back(count_calls):
    # A callback that changes the learning rate, swaps a bias array and changes a dropout
    # probability between epochs: each path sees the same model, so they still agree.
    class Meddle(fn.callbacks.Callback):
        def on_epoch_begin(self, trainer, epoch):
            model = trainer.model
            trainer.optimizer.lr *= 0.5
            if epoch == 1:
                model.layers[0].bias.data = model.layers[0].bias.data.copy()
                model.layers[0].bias.grad = np.zeros_like(model.layers[0].bias.data)
                model.layers[1].p = 0.1

    x, y = _data(64, 12, 5, np.float32, np.random.default_rng(6))
    runs = []
    for flag in (True, False):
        model = fn.Sequential(fn.Linear(12, 16, activation="relu", rng=1), fn.Dropout(0.4, rng=2),
                              fn.Linear(16, 5, rng=3))  # fmt: skip
        opt = fn.optim.Momentum(model.parameters(), lr=0.1)
        with fn.compiled(flag):
            h = fn.fit(model, x, y, optimizer=opt, epochs=3, batch_size=16, callbacks=[Meddle()],
                       verbose=0, seed=3)  # fmt: skip
        runs.append((model, opt, h))
    assert len(count_calls) == 3
    _assert_same(*runs)


def test_a_model_with_a_module_of_its_own_stays_per_layer(count_calls):
    class Twice(fn.Module):
        def forward(self, x):
            return x * 2

        def backward(self, dout):
            return dout * 2

    model = fn.Sequential(fn.Linear(12, 8, rng=1), Twice(), fn.Linear(8, 5, rng=2))
    x, y = _data(40, 12, 5, np.float32, np.random.default_rng(7))
    fn.fit(model, x, y, epochs=1, batch_size=8, verbose=0)
    assert not count_calls


def test_divergence_is_caught_as_in_the_per_layer_path(count_calls):
    x, y = _data(64, 12, 5, np.float32, np.random.default_rng(8))
    errors = []
    for flag in (True, False):
        model = fn.MLP([12, 16, 5], seed=1)
        opt = fn.optim.SGD(model.parameters(), lr=1e30)
        with fn.compiled(flag), pytest.raises(fn.TrainingDivergedError) as info:
            fn.fit(model, x * 1e20, y, optimizer=opt, epochs=3, batch_size=8, verbose=0, seed=0)
        errors.append((str(info.value), [p.data.copy() for p in model.parameters()]))
    assert count_calls
    assert errors[0][0] == errors[1][0]
    for a, b in zip(errors[0][1], errors[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("model", list(MODELS))
def test_compiled_predict_and_evaluate_equal_the_per_layer_ones(model, dtype):
    rng = np.random.default_rng(10)
    x, y = _data(37, 12, 5, dtype, rng)
    net = MODELS[model](dtype)
    # Running statistics that are not the initial ones.
    fn.fit(net, x, y, epochs=1, batch_size=10, verbose=0, seed=0)
    net.train()
    got = [net.predict(x), net.predict(x[:1]), net.predict(x, batch_size=4)]
    got.append(fn.evaluate(net, x, y, batch_size=10))
    assert "_eval_plan" in vars(net)  # the compiled path ran
    with fn.compiled(False):
        want = [net.predict(x), net.predict(x[:1]), net.predict(x, batch_size=4)]
        want.append(fn.evaluate(net, x, y, batch_size=10))
    for a, b in zip(got[:3], want[:3], strict=True):
        np.testing.assert_array_equal(a, b)
    assert got[3] == want[3]
    assert net.training  # predict put the model back in the mode it was in


def test_predict_after_the_model_changed_uses_a_new_plan():
    net = fn.MLP([12, 8, 5], seed=0)
    x = np.random.default_rng(11).standard_normal((6, 12)).astype(np.float32)
    first = net.predict(x)
    plan = vars(net)["_eval_plan"]
    net.layers[0].weight.data = net.layers[0].weight.data * 2  # rebinds the array
    second = net.predict(x)
    assert vars(net)["_eval_plan"] is not plan
    with fn.compiled(False):
        np.testing.assert_array_equal(second, net.predict(x))
    assert not np.array_equal(first, second)
    net.layers[0].out_features = 9  # now inconsistent with its weights: the layer says so
    with pytest.raises(ValueError, match=r"weight.data has shape \(12, 8\), expected \(12, 9\)"):
        net.predict(x)
