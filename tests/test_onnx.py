"""ONNX export: every layer kind, float32 and float64, run by ONNX Runtime at batch 1 and 1000
on random inputs, matches fastnn's own predict; the graphs pass onnx.checker; the
scikit-learn estimators export predict_proba / predict; ``fastnn export`` on the command line;
modules of one's own and bad arguments are refused clearly."""

# ruff: noqa: E402  (the imports after importorskip need onnx and onnxruntime)

import json
import subprocess
import sys
import zlib

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import fastnn as fn
from fastnn.cli import main
from fastnn.errors import InvalidTypeError, InvalidValueError, MissingDependencyError, StateError
from fastnn.nn import LAYERS

# The bound for float32; float64 graphs compute the same operations in float64.
TOL = {
    np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5),
    np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12),
}
DTYPES = [np.float32, np.float64]
WIDTH = 6  # the input width of every model below


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def ops(path):
    return [node.op_type for node in onnx.load(str(path)).graph.node]


def randomise(model, rng):
    """Random weights and biases (biases start at zero), and batch norm's running statistics
    moved well away from (0, 1) by training-mode forwards on shifted, scaled inputs."""
    for p in model.parameters():
        p.data[...] = rng.uniform(-1, 1, p.shape)
    if any(isinstance(m, fn.BatchNorm) for m in model.modules()):
        model.train()
        for _ in range(20):
            model.forward((rng.standard_normal((64, WIDTH)) * 3 + 2).astype(model.dtype))
    model.eval()
    return model


def inputs(rng, rows, dtype):
    return rng.standard_normal((rows, WIDTH)).astype(dtype)


def check_round_trip(model, path, rng, output="predict", batches=(1, 1000)):
    """Export, check the graph, and compare ONNX Runtime with fastnn at each batch size on one
    session (the batch dimension is dynamic)."""
    assert fn.export_onnx(model, path, output=output) == str(path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    s = session(path)
    for rows in batches:
        x = inputs(rng, rows, model.dtype)
        got = s.run(None, {"x": x})[0]
        want = model.predict(x) if output == "predict" else model.predict_proba(x)
        assert got.dtype == model.dtype and got.shape == want.shape
        assert_allclose(got, want, **TOL[model.dtype])
    return proto


# -- every layer kind ------------------------------------------------------------------------
FUSED = ["identity", "relu", "sigmoid", "tanh", "leaky_relu", "elu", "step"]
ALPHA = {"leaky_relu": 0.2, "elu": 0.7}


def layer_models(dtype):
    """{case: model}: each layer kind alone and inside models."""
    d = dict(dtype=dtype)
    cases = {}
    for act in FUSED:
        cases[f"Linear-{act}"] = fn.Linear(WIDTH, 5, activation=act, alpha=ALPHA.get(act), **d)
    cases["Linear-nobias"] = fn.Linear(WIDTH, 5, bias=False, activation="relu", **d)
    cases["ReLU"] = fn.ReLU(**d)
    cases["Sigmoid"] = fn.Sigmoid(**d)
    cases["Tanh"] = fn.Tanh(**d)
    cases["LeakyReLU"] = fn.LeakyReLU(0.15, **d)
    cases["ELU"] = fn.ELU(1.3, **d)
    cases["Step"] = fn.Step(**d)
    cases["Identity"] = fn.Identity(**d)
    cases["Softmax"] = fn.Softmax(**d)
    cases["Dropout"] = fn.Dropout(0.5, rng=0, **d)
    cases["Maxout"] = fn.Maxout(WIDTH, 4, pieces=3, rng=0, **d)
    cases["BatchNorm"] = fn.BatchNorm(WIDTH, **d)
    cases["Sequential-all"] = fn.Sequential(
        fn.Linear(WIDTH, 8, rng=0, **d),
        fn.BatchNorm(8, momentum=0.3, eps=1e-3, **d),
        fn.LeakyReLU(0.05, **d),
        fn.Dropout(0.3, rng=1, **d),
        fn.Maxout(8, 5, pieces=2, rng=2, **d),
        fn.ELU(**d),
        fn.Sequential(fn.Linear(5, 4, activation="tanh", rng=3, **d), fn.Identity(**d)),
        fn.Linear(4, 3, rng=4, **d),
        fn.Softmax(**d),
    )
    cases["Sequential-empty"] = fn.Sequential().to(dtype)
    for act in ["relu", "sigmoid", "tanh", "leaky_relu", "elu", "step"]:
        cases[f"MLP-{act}"] = fn.MLP([WIDTH, 8, 7, 3], activation=act, seed=0, **d)
    cases["MLP-batchnorm-dropout"] = fn.MLP(
        [WIDTH, 8, 7, 3], activation="elu", batchnorm=True, dropout=0.2, seed=0, **d
    )
    return cases


CASES = list(layer_models(np.float32))


def test_the_cases_cover_every_layer_kind():
    covered = {
        type(m).__name__ for model in layer_models(np.float32).values() for m in model.modules()
    }
    covered |= {
        type(m).__name__ for model in image_models(np.float32).values() for m in model.modules()
    }
    assert covered == set(LAYERS)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", CASES)
def test_every_layer_kind_matches_predict(case, dtype, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    model = layer_models(dtype)[case]
    randomise(model, rng)
    proto = check_round_trip(model, tmp_path / "m.onnx", rng)
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", fn.onnx.OPSET)]
    assert fn.onnx.OPSET == 17 and proto.ir_version == 8
    assert [i.name for i in proto.graph.input] == ["x"]
    assert [o.name for o in proto.graph.output] == ["y"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"
    elem = proto.graph.input[0].type.tensor_type.elem_type
    assert onnx.helper.tensor_dtype_to_np_dtype(elem) == np.dtype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_proba_output_is_predict_proba(dtype, tmp_path):
    rng = np.random.default_rng(1)
    model = randomise(fn.MLP([WIDTH, 16, 4], activation="tanh", seed=0, dtype=dtype), rng)
    check_round_trip(model, tmp_path / "p.onnx", rng, output="proba")
    assert ops(tmp_path / "p.onnx")[-1] == "Softmax"
    x = inputs(rng, 50, dtype)
    assert_allclose(session(tmp_path / "p.onnx").run(None, {"x": x})[0].sum(axis=1), 1, rtol=1e-6)


def test_one_graph_runs_at_any_batch_size(tmp_path):
    rng = np.random.default_rng(2)
    model = randomise(fn.MLP([WIDTH, 32, 3], batchnorm=True, seed=0), rng)
    check_round_trip(model, tmp_path / "m.onnx", rng, batches=(1, 2, 7, 64, 1000, 3))
    dims = onnx.load(str(tmp_path / "m.onnx")).graph.output[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 3


def test_operators_of_each_layer(tmp_path):
    def graph_ops(model):
        fn.export_onnx(model, tmp_path / "o.onnx")
        return ops(tmp_path / "o.onnx")

    assert graph_ops(fn.Linear(WIDTH, 3, activation="relu")) == ["Gemm", "Relu"]
    assert graph_ops(fn.Linear(WIDTH, 3, activation="leaky_relu")) == ["Gemm", "LeakyRelu"]
    assert graph_ops(fn.ELU()) == ["Elu"]
    assert "Elu" not in graph_ops(fn.ELU(dtype=np.float64))  # ONNX Runtime has no float64 Elu
    assert graph_ops(fn.Step()) == ["Greater", "Cast"]
    assert graph_ops(fn.Maxout(WIDTH, 2)) == ["Gemm", "Reshape", "ReduceMax"]
    assert graph_ops(fn.BatchNorm(WIDTH)) == ["Sub", "Mul", "Add"]
    assert graph_ops(fn.Softmax()) == ["Softmax"]
    assert graph_ops(fn.Dropout(0.5)) == ["Identity"]
    assert graph_ops(fn.Sequential(fn.Linear(WIDTH, 3), fn.Dropout(0.5))) == ["Gemm"]


def test_batchnorm_after_training_uses_running_statistics(tmp_path):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((256, WIDTH)) * 4 + 3).astype(np.float32)
    y = (x[:, 0] > 3).astype(np.int64)
    model = fn.MLP([WIDTH, 16, 2], batchnorm=True, dropout=0.1, seed=0)
    fn.fit(model, x, y, epochs=3, batch_size=32, verbose=0, seed=0)
    bn = model.layers[1]
    assert np.abs(bn.running_mean).max() > 0.5 and np.abs(bn.running_var - 1).max() > 0.5
    fn.export_onnx(model, tmp_path / "bn.onnx")
    for rows in (1, 1000):
        batch = (rng.standard_normal((rows, WIDTH)) * 4 + 3).astype(np.float32)
        got = session(tmp_path / "bn.onnx").run(None, {"x": batch})[0]
        assert_allclose(got, model.predict(batch), **TOL[np.dtype(np.float32)])
    assert model.training  # the export left the model's mode alone


def test_step_is_zero_at_zero(tmp_path):
    fn.export_onnx(fn.Step(), tmp_path / "s.onnx")
    x = np.array([[-1.0, -0.0, 0.0, 1e-30, 2.0, -1e-30]], np.float32)
    got = session(tmp_path / "s.onnx").run(None, {"x": x})[0]
    assert_array_equal(got, [[0, 0, 0, 1, 1, 0]])
    assert_array_equal(got, fn.Step().predict(x))


def test_saved_and_loaded_model_exports_the_same(tmp_path):
    rng = np.random.default_rng(4)
    model = randomise(fn.MLP([WIDTH, 8, 3], batchnorm=True, seed=0), rng)
    fn.save(model, tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    check_round_trip(loaded, tmp_path / "m.onnx", rng)


# -- refusals ---------------------------------------------------------------------------------
class Scale(fn.Module):
    def __init__(self, features):
        super().__init__()
        self.in_features = self.out_features = features
        self.s = fn.Parameter(np.ones(features, np.float32))

    def forward(self, x):
        return x * self.s.data


class MyLinear(fn.Linear):
    pass


def test_a_module_of_ones_own_is_refused_by_name(tmp_path):
    path = tmp_path / "m.onnx"
    with pytest.raises(InvalidTypeError, match=r"the model is a .*Scale, a module of your own"):
        fn.export_onnx(Scale(3), path)
    nested = fn.Sequential(fn.Linear(3, 3), fn.Sequential(fn.ReLU(), Scale(3)))
    with pytest.raises(InvalidTypeError, match=r"layer 1 of layer 1 of the model is a .*Scale"):
        fn.export_onnx(nested, path)
    with pytest.raises(InvalidTypeError, match="MyLinear"):  # a subclass may compute otherwise
        fn.export_onnx(fn.Sequential(MyLinear(3, 2)), path)
    assert not path.exists()


def test_bad_arguments_are_refused(tmp_path):
    model = fn.MLP([3, 2])
    with pytest.raises(InvalidTypeError, match="expected a fastnn model"):
        fn.export_onnx(np.ones(3), tmp_path / "m.onnx")
    with pytest.raises(InvalidValueError, match="unknown output 'logits'"):
        fn.export_onnx(model, tmp_path / "m.onnx", output="logits")
    with pytest.raises(InvalidTypeError, match="export_onnx: expected a file path"):
        fn.export_onnx(model, 3)
    with pytest.raises(InvalidValueError, match="it is a folder"):
        fn.export_onnx(model, tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        fn.export_onnx(model, tmp_path / "no" / "m.onnx")
    model.layers[0].weight.data = np.ones((4, 2), np.float32)
    with pytest.raises(InvalidValueError, match=r"weight.data has shape \(4, 2\), expected"):
        fn.export_onnx(model, tmp_path / "m.onnx")


def test_without_onnx_the_error_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx raises ImportError
    with pytest.raises(MissingDependencyError, match=r"pip install 'fastnn\[onnx\]'") as e:
        fn.export_onnx(fn.MLP([3, 2]), tmp_path / "m.onnx")
    assert isinstance(e.value, ImportError)
    assert not (tmp_path / "m.onnx").exists()


# -- scikit-learn -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def skl():
    pytest.importorskip("sklearn")
    from fastnn import sklearn as fsk

    return fsk


FIT = dict(hidden_layer_sizes=(16, 8), max_iter=5, batch_size=32, random_state=0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_classifier_exports_predict_proba(skl, classes, dtype, tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((200, WIDTH))
    labels = np.array(["ant", "bee", "cat", "dog"])[:classes]
    y = labels[rng.integers(0, classes, 200)]
    clf = skl.MLPClassifier(batchnorm=True, dtype=dtype, **FIT).fit(x, y)
    fn.export_onnx(clf, tmp_path / "c.onnx")
    proto = onnx.load(str(tmp_path / "c.onnx"))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["classes"]) == labels.tolist()
    s = session(tmp_path / "c.onnx")
    for rows in (1, 1000):
        xt = rng.standard_normal((rows, WIDTH))
        got = s.run(None, {"x": xt.astype(dtype)})[0]
        assert got.shape == (rows, classes)
        assert_allclose(got, clf.predict_proba(xt), **TOL[np.dtype(dtype)])
        assert_array_equal(labels[got.argmax(axis=1)], clf.predict(xt))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_logistic_output_ends_with_sigmoid(skl, tmp_path):
    # A multilabel classifier has out_activation_ "logistic": predict_proba is the sigmoid of
    # the logits (the expected values from scipy, and the estimator's own predict_proba).
    from scipy.special import expit

    rng = np.random.default_rng(6)
    x = rng.standard_normal((100, WIDTH))
    clf = skl.MLPClassifier(**FIT).fit(x, (rng.random((100, 3)) < 0.5).astype(int))
    assert clf.out_activation_ == "logistic"
    fn.export_onnx(clf, tmp_path / "l.onnx")
    assert ops(tmp_path / "l.onnx")[-1] == "Sigmoid"
    xt = rng.standard_normal((1000, WIDTH)).astype(np.float32)
    got = session(tmp_path / "l.onnx").run(None, {"x": xt})[0]
    assert_allclose(got, expit(clf.model_.predict(xt)), **TOL[np.dtype(np.float32)])
    assert_allclose(got, clf.predict_proba(xt), **TOL[np.dtype(np.float32)])
    clf.out_activation_ = "relu"
    with pytest.raises(InvalidValueError, match="out_activation_ is 'relu'"):
        fn.export_onnx(clf, tmp_path / "l.onnx")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("targets", [1, 3])
def test_regressor_exports_predict(skl, targets, tmp_path):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((200, WIDTH))
    y = x[:, :targets] * 2 + 1 if targets > 1 else x[:, 0] * 2 + 1
    reg = skl.MLPRegressor(dropout=0.1, **FIT).fit(x, y)
    fn.export_onnx(reg, tmp_path / "r.onnx", output="predict")
    onnx.checker.check_model(onnx.load(str(tmp_path / "r.onnx")), full_check=True)
    s = session(tmp_path / "r.onnx")
    for rows in (1, 1000):
        xt = rng.standard_normal((rows, WIDTH))
        got = s.run(None, {"x": xt.astype(np.float32)})[0]
        want = reg.predict(xt)
        assert got.shape == want.shape  # (rows,) for one target, as scikit-learn's
        assert_allclose(got, want, **TOL[np.dtype(np.float32)])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimator_refusals(skl, tmp_path):
    with pytest.raises(StateError, match="MLPClassifier is not fitted yet"):
        fn.export_onnx(skl.MLPClassifier(), tmp_path / "e.onnx")
    rng = np.random.default_rng(8)
    reg = skl.MLPRegressor(**FIT).fit(rng.standard_normal((50, 3)), rng.standard_normal(50))
    with pytest.raises(InvalidValueError, match="exports its predict output"):
        fn.export_onnx(reg, tmp_path / "e.onnx", output="proba")


# -- the command line -------------------------------------------------------------------------
def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_export_round_trip(tmp_path, capsys):
    rng = np.random.default_rng(9)
    model = randomise(fn.MLP([WIDTH, 12, 3], batchnorm=True, dropout=0.2, seed=0), rng)
    fn.save(model, tmp_path / "m.npz")
    x = inputs(rng, 1000, np.float32)
    for flags, want in (([], model.predict(x)), (["--proba"], model.predict_proba(x))):
        code, out, err = run(["export", tmp_path / "m.npz", tmp_path / "m.onnx", *flags], capsys)
        assert code == 0, err
        assert f"wrote {tmp_path / 'm.onnx'}: ONNX opset 17" in out
        assert_allclose(
            session(tmp_path / "m.onnx").run(None, {"x": x})[0], want, **TOL[np.dtype(np.float32)]
        )


def test_cli_export_errors_are_one_line(tmp_path, capsys, monkeypatch):
    not_a_model = tmp_path / "x.npz"
    np.savez(not_a_model, w=np.zeros(3))
    fn.save(fn.MLP([3, 2]), tmp_path / "m.npz")
    cases = [
        (["export", tmp_path / "missing.npz", tmp_path / "m.onnx"], "missing.npz"),
        (["export", not_a_model, tmp_path / "m.onnx"], "not a fastnn file"),
        (["export", tmp_path / "m.npz", tmp_path / "no" / "m.onnx"], "does not exist"),
        (["export", tmp_path / "m.npz", tmp_path], "it is a folder"),
    ]
    for argv, message in cases:
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    monkeypatch.setitem(sys.modules, "onnx", None)
    code, _, err = run(["export", tmp_path / "m.npz", tmp_path / "m.onnx"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("fastnn export: error: ") and "pip install 'fastnn[onnx]'" in err
    assert not (tmp_path / "m.onnx").exists()


def test_import_fastnn_does_not_import_onnx():
    code = "import sys, fastnn; assert 'onnx' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_a_model_being_trained_in_another_thread_is_refused(tmp_path):
    import threading

    model = fn.MLP([WIDTH, 4, 2], seed=0)
    started, release = threading.Event(), threading.Event()

    class Hold(fn.callbacks.Callback):
        def on_epoch_end(self, *args, **kwargs):
            started.set()
            release.wait(60)

    x = np.zeros((8, WIDTH), np.float32)
    fit = threading.Thread(
        target=fn.fit,
        args=(model, x, np.zeros(8, np.int64)),
        kwargs=dict(epochs=1, batch_size=8, verbose=0, callbacks=[Hold()]),
    )
    fit.start()
    try:
        assert started.wait(60)
        with pytest.raises(StateError, match="being trained by fit in another thread"):
            fn.export_onnx(model, tmp_path / "m.onnx")
    finally:
        release.set()
        fit.join(60)
    fn.export_onnx(model, tmp_path / "m.onnx")  # after fit returns


# -- a model trained on a CSV table ----------------------------------------------------------
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_a_csv_model_exports_its_scalers(tmp_path, task, capsys):
    # fastnn train --data FILE.csv --standardize, then fastnn export: ONNX Runtime on the raw
    # feature columns gives what fastnn predict writes (the standardizer and a regression's
    # target scale are in the graph).
    import csv

    from fastnn.cli import main

    rng = np.random.default_rng(7)
    x = rng.normal(5, 3, (300, 4))
    if task == "classification":
        y = np.array([3, 5, 7])[(x[:, 0] > 5).astype(int) + (x[:, 1] > 6)]
    else:
        y = 100 + 20 * x[:, 0] - 7 * x[:, 2] + rng.normal(0, 1, 300)
    data = tmp_path / "t.csv"
    with open(data, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "c", "d", "y"])
        w.writerows(
            [[*map(repr, map(float, row)), repr(float(t))] for row, t in zip(x, y, strict=True)]
        )
    model = tmp_path / "m.npz"
    argv = ["train", "--data", data, "--target", "y", "--standardize", "--epochs", "3", "-q"]
    assert main([str(a) for a in [*argv, "-o", model]]) == 0
    proba = ["--proba"] if task == "classification" else []
    assert main([str(a) for a in ["export", model, tmp_path / "m.onnx", *proba]]) == 0
    expected = tmp_path / "p.npy"
    assert main([str(a) for a in ["predict", model, "--data", data, "-o", expected, *proba]]) == 0
    capsys.readouterr()
    got = session(tmp_path / "m.onnx").run(None, {"x": x.astype(np.float32)})[0]
    want = np.load(expected)
    assert got.shape == want.shape == ((300, 3) if proba else (300,))
    assert_allclose(got, want, rtol=1e-5, atol=1e-5 * (1 if proba else np.abs(want).max()))
    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert json.loads(meta["features"]) == ["a", "b", "c", "d"]
    if proba:
        assert json.loads(meta["classes"]) == [3, 5, 7]
    else:
        assert meta["target"] == "y"
        assert main([str(a) for a in ["export", model, tmp_path / "n.onnx", "--proba"]]) == 2
        assert "regression model" in capsys.readouterr().err


# -- convolutional models (images (batch, 3, 9, 11); the networks of fastnn.nn.zoo on 28x28) --
IMAGE = (3, 9, 11)
# Operators ONNX Runtime (1.3x, CPU) implements for float32 only.
ORT_FLOAT32_ONLY = {"Conv", "AveragePool", "GlobalAveragePool"}


def image_models(dtype):
    d = dict(dtype=dtype)
    c = IMAGE[0]
    cases = {}
    for act in FUSED:
        cases[f"Conv2D-{act}"] = fn.Sequential(
            fn.Conv2D(
                c, 4, 3, stride=2, padding=1, activation=act, alpha=ALPHA.get(act), rng=0, **d
            ),
            fn.Flatten(**d),
        )
    cases["Conv2D-nobias-k1"] = fn.Sequential(
        fn.Conv2D(c, 2, 1, bias=False, rng=0, **d), fn.Flatten(**d)
    )
    cases["Conv2D-k5-pad2-stride(1,2)"] = fn.Sequential(
        fn.Conv2D(c, 2, 5, stride=(1, 2), padding=2, rng=0, **d), fn.Flatten(**d)
    )
    cases["MaxPool2D"] = fn.Sequential(fn.MaxPool2D(3, stride=2, padding=1, **d), fn.Flatten(**d))
    cases["AvgPool2D"] = fn.Sequential(fn.AvgPool2D(2, padding=1, **d), fn.Flatten(**d))
    cases["GlobalAvgPool2D"] = fn.GlobalAvgPool2D(**d)
    cases["Flatten"] = fn.Flatten(**d)
    cases["conv-batchnorm"] = fn.Sequential(
        fn.Conv2D(c, 5, 3, padding=1, rng=0, **d),
        fn.BatchNorm(5, momentum=0.3, **d),
        fn.ReLU(**d),
        fn.Dropout(0.3, rng=1, **d),
        fn.MaxPool2D(2, **d),
        fn.Flatten(**d),
        fn.Linear(5 * 4 * 5, 3, rng=2, **d),
    )
    return cases


def image_inputs(rng, rows, dtype, shape=IMAGE):
    return rng.standard_normal((rows, *shape)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("case", list(image_models(np.float32)))
def test_every_image_layer_kind_matches_predict(case, dtype, tmp_path):
    rng = np.random.default_rng(zlib.crc32(case.encode()))
    model = image_models(dtype)[case]
    for p in model.parameters():
        p.data[...] = rng.uniform(-1, 1, p.shape)
    if any(isinstance(m, fn.BatchNorm) for m in model.modules()):
        model.train()
        for _ in range(20):  # running statistics well away from (0, 1)
            model.forward((image_inputs(rng, 16, dtype) * 3 + 2).astype(dtype))
    model.eval()
    path = tmp_path / "m.onnx"
    fn.export_onnx(model, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    if dtype == np.float64 and any(n.op_type in ORT_FLOAT32_ONLY for n in proto.graph.node):
        # ONNX Runtime's CPU provider has these in float32 only: the graph runs in ONNX's
        # own reference implementation instead.
        from onnx.reference import ReferenceEvaluator

        run = ReferenceEvaluator(proto).run
    else:
        run = session(path).run
    for rows in (1, 1000):
        x = image_inputs(rng, rows, dtype)
        got = run(None, {"x": x})[0]
        want = model.predict(x)
        assert got.dtype == model.dtype and got.shape == want.shape
        assert_allclose(got, want, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("name", ["simple-cnn", "lenet5"])
def test_the_convolutional_networks_export(name, tmp_path):
    rng = np.random.default_rng(3)
    model = fn.nn.CONV_NETS[name](seed=0, dropout=0.2)
    x = image_inputs(rng, 64, np.float32, (1, 28, 28))
    fn.fit(model, x, rng.integers(0, 10, 64), epochs=1, batch_size=16, seed=0, verbose=0)
    fn.export_onnx(model, tmp_path / "c.onnx", output="proba")
    s = session(tmp_path / "c.onnx")
    dims = [
        d.dim_param or d.dim_value
        for d in onnx.load(str(tmp_path / "c.onnx")).graph.input[0].type.tensor_type.shape.dim
    ]
    assert dims == ["batch", 1, "height", "width"]
    for rows in (1, 1000):
        x = image_inputs(rng, rows, np.float32, (1, 28, 28))
        assert_allclose(
            s.run(None, {"x": x})[0], model.predict_proba(x), **TOL[np.dtype(np.float32)]
        )
