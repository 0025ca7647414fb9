"""fit, evaluate, History, callbacks and resume, checked against hand-written loops."""

import math
import signal
import sys
import threading

import numpy as np
import pytest

import fastnn as fn
from fastnn import callbacks as cb
from fastnn.kernels.reference import softmax_cross_entropy as ref_sce


def blobs(rng, n=300, d=6, classes=3, dtype=np.float32):
    """Gaussian clusters that an MLP separates easily."""
    centers = rng.normal(0, 3, (classes, d))
    y = rng.integers(0, classes, n)
    x = centers[y] + rng.normal(0, 1, (n, d))
    return x.astype(dtype), y


def manual_fit(model, opt, x, y, epochs, batch_size, seed):
    """The course's loop, drawing the shuffle from the same stream ``fit`` documents."""
    shuffle_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    loss = fn.SoftmaxCrossEntropy()
    losses = []
    for _ in range(epochs):
        order = shuffle_rng.permutation(len(x))
        total = 0.0
        for lo in range(0, len(x), batch_size):
            idx = order[lo : lo + batch_size]
            total += loss.forward(model.forward(x[idx]), y[idx]) * len(idx)
            model.backward(loss.backward())
            opt.step()
        losses.append(total / len(x))
    return losses


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_size", [1, 32, 300, 7])
def test_fit_matches_the_manual_loop(rng, dtype, batch_size):
    x, y = blobs(rng, n=300, dtype=dtype)
    bn = batch_size > 1  # batch norm needs 2 rows or more
    a = fn.MLP([6, 16, 3], batchnorm=bn, dropout=0.1, seed=1, dtype=dtype)
    b = fn.MLP([6, 16, 3], batchnorm=bn, dropout=0.1, seed=1, dtype=dtype)
    opt_a = fn.optim.Adam(a.parameters(), lr=1e-2)
    opt_b = fn.optim.Adam(b.parameters(), lr=1e-2)
    history = fn.fit(a, x, y, optimizer=opt_a, epochs=3, batch_size=batch_size, seed=5, verbose=0)
    losses = manual_fit(b, opt_b, x, y, 3, batch_size, seed=5)
    for (name, wa), (_, wb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        np.testing.assert_array_equal(wa, wb, err_msg=name)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-6 if dtype == np.float32 else 1e-12)


def test_fit_learns_and_reports_history(rng):
    x, y = blobs(rng, n=600)
    model = fn.MLP([6, 32, 3], seed=0)
    history = fn.fit(model, x, y, epochs=8, batch_size=32, validation_split=0.25, seed=0, verbose=0)
    assert len(history) == history.epochs == 8
    assert set(history.keys()) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert history["lr"] == [1e-3] * 8
    assert all(s > 0 for s in history["seconds"])
    assert "epochs=8" in repr(history)


class _Frozen(fn.optim.SGD):
    """An optimizer whose step changes nothing (a learning rate of 0 is refused)."""

    def _update(self):
        pass


def test_training_accuracy_is_the_running_accuracy_of_the_steps(rng):
    """The reported accuracy counts each step's predictions before its update."""
    x, y = blobs(rng, n=64)
    model = fn.MLP([6, 8, 3], seed=0)
    opt = _Frozen(model.parameters(), lr=0.1)  # the model never changes
    history = fn.fit(model, x, y, optimizer=opt, epochs=1, batch_size=10, seed=0, verbose=0)
    expected = np.mean(model.predict_classes(x) == y)
    assert history["accuracy"][0] == pytest.approx(expected)
    z = model.predict(x).astype(np.float64)
    t = np.eye(3)[y]
    assert history["loss"][0] == pytest.approx(
        ref_sce.softmax_cross_entropy_targets(z, t, np.empty_like(z)), rel=1e-5
    )


def test_validation_split_figures_equal_evaluate_on_the_held_out_rows(rng):
    x, y = blobs(rng, n=200)
    model = fn.MLP([6, 8, 3], seed=0)
    history = fn.fit(model, x, y, epochs=2, batch_size=16, validation_split=0.2, seed=9, verbose=0)
    split_rng = np.random.default_rng(np.random.SeedSequence(9).spawn(2)[0])
    val = np.sort(split_rng.permutation(200)[:40])
    result = fn.evaluate(model, x[val], y[val])
    assert history["val_loss"][-1] == pytest.approx(result["loss"], rel=1e-6)
    assert history["val_accuracy"][-1] == result["accuracy"]


def test_one_hot_targets_train_as_labels_do(rng):
    x, y = blobs(rng, n=200)
    t = np.eye(3, dtype=np.float32)[y]
    runs = []
    for target in (y, t):
        model = fn.MLP([6, 8, 3], seed=0)
        runs.append(
            fn.fit(
                model,
                x,
                target,
                epochs=3,
                batch_size=20,
                seed=1,
                verbose=0,
                validation_data=(x[:50], target[:50]),
            )
        )
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(runs[1][k], runs[0][k], rtol=1e-6)


def test_evaluate_against_numpy(rng, dtype):
    x, y = blobs(rng, n=50, dtype=dtype)
    model = fn.MLP([6, 8, 3], seed=0, dtype=dtype)
    result = fn.evaluate(model, x, y, batch_size=7)
    z = model.predict(x).astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    assert result["loss"] == pytest.approx(-np.mean(np.log(p[np.arange(50), y])), rel=1e-5)
    assert result["accuracy"] == np.mean(z.argmax(axis=1) == y)


def test_mse_regression_without_accuracy(rng):
    x = rng.uniform(-2, 2, (400, 1)).astype(np.float32)
    y = np.sin(x[:, 0])
    model = fn.MLP([1, 32, 1], activation="tanh", seed=0)
    history = fn.fit(
        model,
        x,
        y,
        loss="mse",
        optimizer=fn.optim.Adam(model.parameters(), lr=1e-2),
        epochs=30,
        batch_size=32,
        seed=0,
        verbose=0,
    )
    assert "accuracy" not in history
    assert history["loss"][-1] < 0.02
    result = fn.evaluate(model, x, y, loss="mse")
    assert result["loss"] == pytest.approx(np.mean((model.predict(x)[:, 0] - y) ** 2), rel=1e-4)


def test_predict_in_chunks_restores_the_mode(rng):
    x, _ = blobs(rng, n=37)
    model = fn.MLP([6, 8, 3], batchnorm=True, dropout=0.5, seed=0)
    model.train()
    whole = model.predict(x, batch_size=100)
    assert model.training
    np.testing.assert_array_equal(model.predict(x, batch_size=5), whole)
    p = model.predict_proba(x)
    e = np.exp(whole - whole.max(axis=1, keepdims=True))
    np.testing.assert_allclose(p, e / e.sum(axis=1, keepdims=True), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.predict_classes(x), whole.argmax(axis=1))


def test_fit_converts_input_types(rng):
    x, y = blobs(rng, n=40, dtype=np.float64)
    model = fn.MLP([6, 8, 3], seed=0)  # float32
    fn.fit(model, x.tolist(), y.astype(np.int32), epochs=1, batch_size=8, verbose=0)
    fn.fit(model, np.asfortranarray(x), y.astype(float), epochs=1, batch_size=8, verbose=0)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, y: (x[:, :5], y), r"expected x of shape \(n, 6\)"),
        (lambda x, y: (x, y[:-1]), "expected 40 labels"),
        (lambda x, y: (x, y + 3), r"labels must be in \[0, 2\], got 5"),
        (lambda x, y: (x, y - 1), r"labels must be in \[0, 2\], got -1"),
        (lambda x, y: (x, y + 0.5), "whole numbers"),
        (lambda x, y: (np.where(x > 1, np.nan, x), y), "NaN or infinite"),
        (lambda x, y: (x[:0], y[:0]), "n >= 1"),
    ],
)
def test_fit_rejects_bad_data_before_training(rng, change, message):
    x, y = blobs(rng, n=40)
    model = fn.MLP([6, 8, 3], seed=0)
    before = model.state_dict()
    bx, by = change(x, y)
    with pytest.raises(ValueError, match=message):
        fn.fit(model, bx, by, epochs=1, batch_size=8, verbose=0)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_fit_rejects_bad_settings(rng):
    x, y = blobs(rng, n=40)
    model = fn.MLP([6, 8, 3], seed=0)
    other = fn.MLP([6, 8, 3], seed=0)
    with pytest.raises(ValueError, match="larger than the 40 training rows"):
        fn.fit(model, x, y, batch_size=41, verbose=0)
    with pytest.raises(ValueError, match="invalid batch_size: 0"):
        fn.fit(model, x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="unknown metric 'f1'"):
        fn.fit(model, x, y, metrics=("f1",), verbose=0)
    with pytest.raises(ValueError, match="not made over this model"):
        fn.fit(model, x, y, optimizer=fn.optim.SGD(other.parameters()), verbose=0)
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        fn.fit(model, x, y, optimizer="adamm", verbose=0)
    with pytest.raises(ValueError, match="not both"):
        fn.fit(model, x, y, validation_data=(x, y), validation_split=0.1, verbose=0)
    with pytest.raises(ValueError, match="invalid validation_split"):
        fn.fit(model, x, y, validation_split=1.5, verbose=0)
    with pytest.raises(ValueError, match="needs validation data"):
        fn.fit(model, x, y, callbacks=[cb.EarlyStopping("val_loss")], verbose=0)
    with pytest.raises(ValueError, match="batch norm needs at least 2 rows"):
        fn.fit(fn.MLP([6, 8, 3], batchnorm=True), x, y, batch_size=13, verbose=0)  # 40 = 3 * 13 + 1
    with pytest.raises(TypeError, match="Callback"):
        fn.fit(model, x, y, callbacks=[print], verbose=0)
    # NaN allowed on request (the loss is then NaN, which stops training).
    x[0, 0] = np.nan
    with pytest.raises(fn.TrainingDivergedError):
        fn.fit(model, x, y, batch_size=40, check_finite=False, verbose=0)


def test_divergence_stops_with_epoch_and_step_and_keeps_finite_weights(rng):
    x, y = blobs(rng, n=64)
    x *= 1e3
    model = fn.MLP([6, 32, 3], seed=0)
    opt = fn.optim.SGD(model.parameters(), lr=1e4)
    with pytest.raises(fn.TrainingDivergedError, match=r"in epoch \d+, step \d+") as info:
        fn.fit(model, x, y, optimizer=opt, epochs=50, batch_size=8, seed=0, verbose=0)
    assert info.value.epoch >= 1 and 1 <= info.value.step <= 8
    assert info.value.history.epochs == info.value.epoch - 1
    for name, value in model.state_dict().items():
        assert np.isfinite(value).all(), name


class _Recorder(cb.Callback):
    def __init__(self):
        self.weights, self.logs = [], []

    def on_epoch_end(self, trainer, epoch, logs):
        self.weights.append(trainer.model.state_dict())
        self.logs.append(dict(logs))


def test_early_stopping_stops_and_restores_the_best_epoch(rng):
    x, y = blobs(rng, n=100)
    model = fn.MLP([6, 8, 3], seed=0)
    opt = _Frozen(model.parameters(), lr=0.1)  # nothing improves after the first epoch
    stop = cb.EarlyStopping("loss", patience=2, min_delta=1e-6)  # the sums vary by rounding
    history = fn.fit(
        model, x, y, optimizer=opt, epochs=20, batch_size=10, callbacks=[stop], verbose=0
    )
    assert history.epochs == 4 and history.stopped_early and stop.stopped_epoch == 3


def test_early_stopping_restores_best_weights_whoever_stopped(rng):
    x, y = blobs(rng, n=100)
    x[:50] += rng.normal(0, 5, (50, 6)).astype(np.float32)  # noisy validation curve
    model = fn.MLP([6, 32, 3], seed=0)
    opt = fn.optim.SGD(model.parameters(), lr=0.5)
    rec = _Recorder()
    stop = cb.EarlyStopping("val_loss", patience=100, restore_best_weights=True)
    fn.fit(
        model,
        x,
        y,
        optimizer=opt,
        epochs=8,
        batch_size=10,
        validation_data=(x[:30], y[:30]),
        callbacks=[rec, stop],
        verbose=0,
    )
    best = int(np.argmin([logs["val_loss"] for logs in rec.logs]))
    assert best == stop.best_epoch
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, rec.weights[best][k])


def test_learning_rate_schedules(rng):
    x, y = blobs(rng, n=40)
    for schedule, expected in [
        (cb.StepLR(2, gamma=0.5), [0.1, 0.1, 0.05, 0.05, 0.025]),
        (cb.ExponentialLR(0.9), [0.1 * 0.9**e for e in range(5)]),
        (cb.CosineLR(), [0.05 + 0.05 * math.cos(math.pi * e / 5) for e in range(5)]),
    ]:
        model = fn.MLP([6, 8, 3], seed=0)
        opt = fn.optim.SGD(model.parameters(), lr=0.1)
        history = fn.fit(
            model, x, y, optimizer=opt, epochs=5, batch_size=8, callbacks=[schedule], verbose=0
        )
        np.testing.assert_allclose(history["lr"], expected, rtol=1e-12)
    with pytest.raises(ValueError, match="invalid gamma"):
        cb.StepLR(2, gamma=-1)


def test_model_checkpoint_files(rng, tmp_path):
    x, y = blobs(rng, n=40)
    model = fn.MLP([6, 8, 3], seed=0)
    every = cb.ModelCheckpoint(tmp_path / "e{epoch}.npz", every=2)
    fn.fit(model, x, y, epochs=5, batch_size=8, callbacks=[every], verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e2.npz", "e4.npz"]
    f = fn.files.read(tmp_path / "e4.npz")
    assert f.header["kind"] == "checkpoint" and f.header["training"]["epoch"] == 4
    assert f.header["optimizer"]["step"] == 4 * 5
    restored = fn.load(tmp_path / "e4.npz")
    assert isinstance(restored, fn.MLP)


def _resumable_run(x, y, epochs, path, resume=None):
    model = fn.MLP([6, 16, 16, 3], batchnorm=True, dropout=0.2, seed=0)
    opt = fn.optim.Adam(model.parameters(), lr=1e-2)
    callbacks = [
        cb.ModelCheckpoint(path),
        cb.EarlyStopping("val_loss", patience=50),
        cb.StepLR(2, 0.5),
    ]
    history = fn.fit(
        model,
        x,
        y,
        optimizer=opt,
        epochs=epochs,
        batch_size=32,
        validation_split=0.2,
        callbacks=callbacks,
        verbose=0,
        seed=3,
        resume=resume,
    )
    return model, opt, history


def test_resume_continues_exactly(rng, tmp_path, restore_threads):
    fn.set_num_threads(1)
    x, y = blobs(rng, n=200)
    full, full_opt, full_history = _resumable_run(x, y, 6, tmp_path / "a.npz")
    _resumable_run(x, y, 3, tmp_path / "b.npz")
    part, part_opt, part_history = _resumable_run(
        x, y, 6, tmp_path / "b.npz", resume=tmp_path / "b.npz"
    )
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(part.state_dict()[k], v, err_msg=k)
    for k, v in full_opt.state.items():
        np.testing.assert_array_equal(part_opt.state[k], v, err_msg=k)
    assert part_opt.step_count == full_opt.step_count
    for k in ("loss", "val_loss", "lr"):
        assert part_history[k] == full_history[k]
    for a, b in zip(full.modules(), part.modules(), strict=True):
        if isinstance(a, fn.Dropout):
            assert a.rng.bit_generator.state == b.rng.bit_generator.state


def test_resume_refuses_a_different_model(rng, tmp_path):
    x, y = blobs(rng, n=40)
    model = fn.MLP([6, 8, 3], seed=0)
    fn.fit(
        model,
        x,
        y,
        epochs=1,
        batch_size=8,
        callbacks=[cb.ModelCheckpoint(tmp_path / "c.npz")],
        verbose=0,
    )
    fn.save(model, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="architecture differs"):
        fn.fit(
            fn.MLP([6, 9, 3]), x, y, epochs=2, batch_size=8, resume=tmp_path / "c.npz", verbose=0
        )
    with pytest.raises(ValueError, match="not a checkpoint"):
        fn.fit(model, x, y, epochs=2, batch_size=8, resume=tmp_path / "m.npz", verbose=0)


class _CtrlC(cb.Callback):
    def on_epoch_begin(self, trainer, epoch):
        if epoch == 1:
            signal.raise_signal(signal.SIGINT)


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_ctrl_c_stops_after_the_current_step(rng, capsys):
    x, y = blobs(rng, n=40)
    model = fn.MLP([6, 8, 3], seed=0)
    opt = fn.optim.SGD(model.parameters(), lr=0.1)
    handler = signal.getsignal(signal.SIGINT)
    history = fn.fit(
        model, x, y, optimizer=opt, epochs=5, batch_size=8, callbacks=[_CtrlC()], verbose=1
    )
    assert history.interrupted and history.epochs == 1
    assert opt.step_count == 5 + 1  # one epoch of 5 steps, then the step in progress
    assert "interrupted in epoch 2, after step 1 of 5" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is handler


def test_progress_output(rng, capsys, monkeypatch):
    x, y = blobs(rng, n=40)
    model = fn.MLP([6, 8, 3], seed=0)
    fn.fit(model, x, y, epochs=5, batch_size=8, verbose=0)
    assert capsys.readouterr().out == ""
    fn.fit(model, x, y, epochs=5, batch_size=8, verbose=1, log_every=2)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines] == ["2/5", "4/5", "5/5"]
    assert "loss" in lines[0] and "accuracy" in lines[0] and " s" in lines[0]
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    fn.fit(model, x, y, epochs=2, batch_size=8, verbose=1)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "5/5" in out and ", loss 1." in out and "  acc 0." in out


def test_schedules_keep_the_contract_lr_is_lr_at_epoch():
    # LearningRateSchedule sets lr = lr_at(epoch): base_lr * factor for StepLR and
    # ExponentialLR; CosineLR anneals min_lr + (base_lr - min_lr) * factor, factor 1 -> 0.
    step, expo = cb.StepLR(2, 0.5), cb.ExponentialLR(0.9)
    cos = cb.CosineLR(period=4, min_lr=0.01)
    for schedule in (step, expo, cos):
        schedule.base_lr = 0.1
    assert [step.lr_at(e, 10) for e in range(5)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert expo.lr_at(3, 10) == pytest.approx(0.1 * 0.9**3)
    assert [cos.factor(e, 10) for e in (0, 2, 4, 6)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    for e in range(6):
        assert cos.lr_at(e, 10) == pytest.approx(0.01 + 0.09 * cos.factor(e, 10))


def test_fit_options_are_fits_own_parameters():
    # fit passes its arguments on as FitOptions, and distributed.fit takes FitOptions' fields:
    # the three must name the same options, in the same order, with the same defaults.
    import dataclasses
    import inspect

    from fastnn.training import FitOptions

    params = list(inspect.signature(fn.fit).parameters.values())[3:]
    fields = dataclasses.fields(FitOptions)
    assert [p.name for p in params] == [f.name for f in fields]
    assert [p.default for p in params] == [f.default for f in fields]
    shown = list(inspect.signature(fn.distributed.fit).parameters)
    assert shown == ["model", "x", "y", *[p.name for p in params], "comm", "threads"]


# -- sample weights and binary cross-entropy --------------------------------------------------
def _weighted_case(rng, loss):
    x = rng.normal(size=(40, 5))
    if loss == "cross_entropy":
        y = rng.integers(0, 3, 40)
    elif loss == "mse":
        y = rng.normal(size=(40, 3))
    else:
        y = (rng.random((40, 3)) < 0.5).astype(float)
    return x, y, rng.integers(0, 4, 40)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse", "binary_cross_entropy"])
def test_integer_weights_equal_repeated_rows(rng, loss):
    # Full batches, no shuffling: a weight of k trains as k copies of the row (0: as if it
    # were not there), up to the order of the sums.
    x, y, w = _weighted_case(rng, loss)

    def train(x, y, w):
        model = fn.MLP([5, 8, 3], seed=1, dtype=np.float64)
        opt = fn.optim.SGD(model.parameters(), lr=0.5)
        h = fn.fit(
            model,
            x,
            y,
            loss=loss,
            optimizer=opt,
            epochs=5,
            batch_size=len(x),
            shuffle=False,
            verbose=0,
            sample_weight=w,
        )
        return model, h

    weighted, hw = train(x, y, w)
    repeated, hr = train(np.repeat(x, w, axis=0), np.repeat(y, w, axis=0), None)
    np.testing.assert_allclose(hw["loss"], hr["loss"], rtol=1e-12)
    for a, b in zip(weighted.parameters(), repeated.parameters(), strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-10, atol=1e-12)
    # And the weights changed something: unweighted training ends elsewhere.
    plain, _ = train(x, y, None)
    assert not np.allclose(plain.parameters()[0].data, weighted.parameters()[0].data)


def test_sample_weight_steps_and_checks(rng):
    x, y = blobs(rng, n=60)
    model = fn.MLP([6, 8, 3], seed=0)
    # A step whose rows all weigh 0 changes nothing and counts as loss 0.
    w = np.zeros(60)
    w[30:] = 1
    before = [p.data.copy() for p in model.parameters()]
    h = fn.fit(
        model,
        x,
        y,
        epochs=1,
        batch_size=30,
        shuffle=False,
        verbose=0,
        sample_weight=w,
        optimizer=fn.optim.SGD(model.parameters(), lr=0.1),
    )
    assert h["loss"][0] > 0
    only_second = fn.MLP([6, 8, 3], seed=0)
    fn.fit(
        only_second,
        x[30:],
        y[30:],
        epochs=1,
        batch_size=30,
        shuffle=False,
        verbose=0,
        optimizer=fn.optim.SGD(only_second.parameters(), lr=0.1),
    )
    for a, b, c in zip(model.parameters(), only_second.parameters(), before, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-5, atol=1e-7)
        assert not np.array_equal(a.data, c)
    for bad, message in [
        (np.ones(59), r"expected sample_weight of shape \(60,\)"),
        (-np.ones(60), "finite and >= 0, got -1.0"),
        (np.full(60, np.nan), "finite and >= 0, got nan"),
        (np.zeros(60), "must not all be zero"),
        (np.array(["a"] * 60), "expected an array of real numbers"),
    ]:
        with pytest.raises((ValueError, TypeError), match=message):
            fn.fit(fn.MLP([6, 3], seed=0), x, y, epochs=1, verbose=0, sample_weight=bad)


def test_sample_weight_follows_its_rows_into_the_validation_split(rng):
    x, y = blobs(rng, n=100)
    w = rng.random(100) + 0.5
    a, b = fn.MLP([6, 4, 3], seed=0), fn.MLP([6, 4, 3], seed=0)
    ha = fn.fit(a, x, y, epochs=2, validation_split=0.2, seed=3, verbose=0, sample_weight=w)
    # The same split, by hand: the same permutation of the same seed.
    split = np.random.default_rng(np.random.SeedSequence(3).spawn(2)[0]).permutation(100)
    val, train = np.sort(split[:20]), np.sort(split[20:])
    hb = fn.fit(
        b,
        x[train],
        y[train],
        epochs=2,
        validation_data=(x[val], y[val]),
        seed=3,
        verbose=0,
        sample_weight=w[train],
    )
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-6)
    np.testing.assert_allclose(ha["val_loss"], hb["val_loss"], rtol=1e-6)


def test_binary_cross_entropy_learns_multilabel_targets(rng):
    x = rng.normal(size=(400, 6)).astype(np.float32)
    y = np.stack([x[:, 0] > 0, x[:, 1] + x[:, 2] > 0, x[:, 3] * x[:, 4] > 0], axis=1)
    model = fn.MLP([6, 32, 3], seed=0)
    h = fn.fit(
        model,
        x,
        y.astype(np.float32),
        loss="binary_cross_entropy",
        epochs=40,
        batch_size=32,
        seed=0,
        verbose=0,
    )
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert "accuracy" not in h.history
    hits = (model.predict(x) > 0) == y
    assert hits.mean() > 0.9
    res = fn.evaluate(model, x, y.astype(np.float32), loss="binary_cross_entropy")
    np.testing.assert_allclose(
        res["loss"], fn.BinaryCrossEntropy().row_losses(model.predict(x), y).mean(), rtol=1e-5
    )
    with pytest.raises(ValueError, match=r"targets must be in \[0, 1\]"):
        fn.fit(model, x, 2.0 * y, loss="binary_cross_entropy", epochs=1, verbose=0)


class _Flat(fn.Module):
    """A user's module that takes images (n, c, h, w) and gives rows (n, c * h * w)."""

    def forward(self, x):
        self._shape = x.shape
        return np.ascontiguousarray(x, dtype=self.dtype).reshape(len(x), -1)

    def backward(self, dout):
        return dout.reshape(self._shape)


def test_fit_takes_images_for_a_model_that_takes_them(rng):
    # Rows of any shape reach the model whole: (n, 2, 3, 3) images, gathered and shuffled as
    # flat rows, give what training on the flattened rows gives.
    x, y = blobs(rng, n=120, d=18)
    images = x.reshape(120, 2, 3, 3)
    a = fn.Sequential(_Flat(), fn.Linear(18, 8, rng=0, activation="relu"), fn.Linear(8, 3, rng=1))
    b = fn.Sequential(fn.Linear(18, 8, rng=0, activation="relu"), fn.Linear(8, 3, rng=1))
    with fn.compiled(False):  # the same path for both: the per-layer one
        ha = fn.fit(a, images, y, epochs=3, batch_size=16, validation_split=0.2, seed=0, verbose=0)
        hb = fn.fit(b, x, y, epochs=3, batch_size=16, validation_split=0.2, seed=0, verbose=0)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert ha[key] == hb[key]
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    assert fn.evaluate(a, images, y) == fn.evaluate(b, x, y)
    np.testing.assert_array_equal(a.predict_classes(images), b.predict_classes(x))
    # A model that takes rows of 18 refuses images.
    with pytest.raises(ValueError, match=r"expected x of shape \(n, 18\).*\(120, 2, 3, 3\)"):
        fn.fit(b, images, y, epochs=1, verbose=0)
