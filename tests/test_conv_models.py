"""Convolutional models end to end: the zoo's networks, fit / evaluate / predict on images,
checkpoints and exact resume, fastnn.distributed, the command line and the conv-filters
experiment."""

import numpy as np
import pytest

import fastnn as fn
import fastnn.experiments as ex
from fastnn.cli import main
from fastnn.cli.args import model_input
from fastnn.data.sources import as_images

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def images(n, seed=0, shape=(1, 12, 12), classes=3):
    """Images whose class is where a bright square sits: learnable by a small conv net."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    x = rng.normal(0, 0.3, (n, *shape)).astype(np.float32)
    h = shape[1] // classes
    for i, c in enumerate(y):
        x[i, :, c * h : c * h + h, 2:6] += 1.5
    return x, y


def small_net(seed=0, dtype=np.float32):
    return fn.Sequential(
        fn.Conv2D(1, 4, 3, padding=1, activation="relu", rng=seed, dtype=dtype),
        fn.MaxPool2D(2, dtype=dtype),
        fn.BatchNorm(4, dtype=dtype),
        fn.Flatten(dtype=dtype),
        fn.Dropout(0.2, rng=seed + 1, dtype=dtype),
        fn.Linear(4 * 6 * 6, 3, rng=seed + 2, dtype=dtype),
    )


# -- the networks by name ---------------------------------------------------------------------
def test_simple_conv_net_is_the_courses():
    net = fn.nn.simple_conv_net(seed=0)
    kinds = [type(m).__name__ for m in net]
    assert kinds == ["Conv2D", "MaxPool2D", "Flatten", "Linear", "Linear"]
    conv = net[0]
    assert (conv.in_channels, conv.out_channels, conv.kernel_size) == (1, 30, (5, 5))
    assert conv.activation == "relu" and net[3].activation == "relu"
    assert (net[3].in_features, net[3].out_features, net[4].out_features) == (4320, 100, 10)
    # The course's parameter count: 30*25 + 30 + 4320*100 + 100 + 100*10 + 10.
    assert net.num_parameters() == 750 + 30 + 432000 + 100 + 1000 + 10
    dropped = fn.nn.simple_conv_net(seed=0, dropout=0.2)
    assert type(dropped[4]).__name__ == "Dropout" and dropped[4].p == 0.2
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(net.predict(x), fn.nn.simple_conv_net(seed=0).predict(x))


def test_lenet5_shapes_and_parameters():
    net = fn.nn.lenet5(seed=0)
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    assert net.predict(x).shape == (3, 10)
    # 6*25+6 + 16*150+16 + 400*120+120 + 120*84+84 + 84*10+10 = 61,706 (LeNet-5's count).
    assert net.num_parameters() == 61706
    assert fn.nn.lenet5(in_shape=(3, 32, 32), classes=5, seed=0).predict(
        np.zeros((1, 3, 32, 32), np.float32)
    ).shape == (1, 5)
    with pytest.raises(ValueError, match="too small"):
        fn.nn.lenet5(in_shape=(1, 8, 8))
    with pytest.raises(ValueError, match=r"in_shape must be \(channels, height, width\)"):
        fn.nn.simple_conv_net(in_shape=(28, 28))


# -- training on images --------------------------------------------------------------------
def test_fit_evaluate_predict_on_images():
    x, y = images(240)
    model = small_net()
    h = fn.fit(model, x, y, epochs=8, batch_size=16, validation_split=0.25, seed=0, verbose=0)
    assert h["val_accuracy"][-1] > 0.9
    res = fn.evaluate(model, x, y)
    assert res["accuracy"] > 0.9
    # evaluate's loss is the cross-entropy of predict's logits.
    z = model.predict(x).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert res["loss"] == pytest.approx(-logp[np.arange(len(y)), y].mean(), rel=1e-5)
    assert model.predict_proba(x).shape == (240, 3)


def test_a_conv_model_resumes_exactly(tmp_path):
    x, y = images(96, seed=1)
    ckpt = tmp_path / "c.npz"

    def run(epochs, resume=None, stop_after=None):
        model = small_net(seed=4)
        opt = fn.optim.Adam(model.parameters(), lr=0.01)
        hooks = [fn.callbacks.ModelCheckpoint(ckpt)]
        fn.fit(
            model,
            x,
            y,
            optimizer=opt,
            epochs=epochs,
            batch_size=16,
            seed=2,
            verbose=0,
            callbacks=hooks,
            resume=resume,
        )
        return model

    whole = run(4)
    run(2)
    resumed = run(4, resume=ckpt)
    for p, q in zip(whole.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(p.data, q.data)
    loaded = fn.load(ckpt)
    np.testing.assert_array_equal(loaded.predict(x), resumed.predict(x))


def test_model_input_shapes_images_for_conv_models():
    conv, mlp = fn.nn.simple_conv_net(seed=0), fn.MLP([784, 10], seed=0)
    rows = np.zeros((5, 784), np.float32)
    assert model_input(conv, rows).shape == (5, 1, 28, 28)
    assert model_input(mlp, rows).shape == (5, 784)
    assert model_input(mlp, rows.reshape(5, 28, 28)).shape == (5, 784)
    assert as_images(np.zeros((2, 3, 4, 5))).shape == (2, 3, 4, 5)
    assert as_images(np.zeros((2, 4, 5))).shape == (2, 1, 4, 5)
    with pytest.raises(ValueError, match="rows of 10 features are not a square image"):
        as_images(np.zeros((2, 10)))


# -- the command line ------------------------------------------------------------------------
@pytest.mark.slow
def test_cli_trains_evaluates_and_predicts_a_conv_net(tmp_path, capsys):
    x, y = images(200, seed=3, shape=(1, 12, 12))
    np.savez(tmp_path / "imgs.npz", x=x.reshape(200, 12, 12), y=y)
    model = tmp_path / "m.npz"
    argv = [
        "train",
        "--model",
        "lenet5",
        "--data",
        str(tmp_path / "imgs.npz"),
        "--epochs",
        "6",
        "--batch-size",
        "16",
        "-q",
        "-o",
        str(model),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "160 training and 40 test images of 1x12x12, 3 classes" in out
    assert "model: lenet5 for 1x12x12 images, " in out
    accuracy = float(out.split("test accuracy ")[1].split()[0])
    loaded = fn.load(model)
    assert [type(m).__name__ for m in loaded][:2] == ["Conv2D", "MaxPool2D"]
    # A conv net's defaults: dropout 0.5 before the last affine layer (and a cosine schedule).
    assert [m.p for m in loaded if isinstance(m, fn.Dropout)] == [0.5]
    assert main(["evaluate", str(model), "--data", str(tmp_path / "imgs.npz")]) == 0
    assert f"accuracy {accuracy:.4f}" in capsys.readouterr().out
    np.savez(tmp_path / "new.npz", x=x[:7].reshape(7, 144))  # rows: made square images
    assert main(["predict", str(model), str(tmp_path / "new.npz")]) == 0
    lines = capsys.readouterr().out.split()
    assert list(map(int, lines)) == loaded.predict_classes(x[:7]).tolist()


def test_cli_refuses_what_a_conv_net_cannot_take(tmp_path, capsys):
    np.savez(tmp_path / "rows.npz", x=np.zeros((50, 10), np.float32), y=np.arange(50) % 2)
    code = main(["train", "--model", "simple-cnn", "--data", str(tmp_path / "rows.npz")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "rows of 10 features are not a square image" in err
    y = np.arange(20) % 2
    np.savez(tmp_path / "two.npz", x_train=np.zeros((20, 12, 12)), y_train=y,
             x_test=np.zeros((20, 10, 10)), y_test=y)  # fmt: skip
    code = main(["train", "--model", "simple-cnn", "--data", str(tmp_path / "two.npz")])
    err = capsys.readouterr().err
    assert code == 2 and "the training images are 1x12x12, the test images 1x10x10" in err
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3,4\n")
    code = main(["train", "--model", "lenet5", "--data", str(tmp_path / "t.csv"), "--target", "b"])
    assert code == 2 and "takes images, not a table" in capsys.readouterr().err


# -- the experiment --------------------------------------------------------------------------
def test_conv_filters_experiment(tmp_path):
    r = ex.conv_filters(quick=True, out=tmp_path, file=False)
    assert r["before"].shape == r["after"].shape == (30, 5, 5)
    # Noise matches its best edge pattern at about 0.3 and has no neighbour correlation;
    # trained filters are smoother and more edge-like.
    assert r["mean_match"]["before"] < 0.35 < r["mean_match"]["after"]
    assert abs(r["smoothness"]["before"]) < 0.1 < r["smoothness"]["after"]
    assert r["test_accuracy"] > 0.7
    assert len(r["preferences"]["after"]) == 30
    for path in r["figures"]:
        assert open(path, "rb").read(8) == PNG_MAGIC
    again = ex.conv_filters(quick=True, file=False)
    np.testing.assert_array_equal(again["after"], r["after"])
    with pytest.raises(ValueError, match="batch_size"):
        ex.conv_filters(batch_size=0, file=False)


def test_edge_match_of_an_edge_is_one():
    from fastnn.course.experiments.conv_filters import PATTERNS, preferences, smoothness

    filters = np.stack([PATTERNS["vertical edge, bright right"] * 0.3 + 1.0])
    assert preferences(filters) == [("vertical edge, bright right", pytest.approx(1.0))]
    assert smoothness(filters) > 0.5
    noise = np.random.default_rng(0).standard_normal((200, 5, 5))
    assert abs(smoothness(noise)) < 0.05
