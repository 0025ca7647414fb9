"""save/load: round trips for every layer, atomic writes, and refusal of anything else."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import fastnn as fn
from fastnn import files


def every_layer(dtype=np.float32):
    return fn.Sequential(
        fn.Linear(5, 8, init=0.1, rng=0, activation="elu", alpha=0.5, dtype=dtype),
        fn.BatchNorm(8, momentum=0.2, eps=1e-4, dtype=dtype),
        fn.LeakyReLU(0.05, dtype=dtype),
        fn.Dropout(0.3, rng=1, dtype=dtype),
        fn.Sequential(fn.Linear(8, 6, bias=False, rng=2, dtype=dtype), fn.Tanh(dtype=dtype)),
        fn.Maxout(6, 4, pieces=3, rng=3, dtype=dtype),
        fn.Sigmoid(dtype=dtype),
        fn.ELU(2.0, dtype=dtype),
        fn.ReLU(dtype=dtype),
        fn.Step(dtype=dtype),
        fn.Identity(dtype=dtype),
        fn.Linear(4, 3, rng=4, dtype=dtype),
        fn.Softmax(dtype=dtype),
    )


MODELS = {
    "mlp": lambda dtype: fn.MLP([5, 7, 3], seed=0, dtype=dtype),
    "mlp-bn-dropout-tanh": lambda dtype: fn.MLP(
        [5, 7, 6, 3],
        activation="tanh",
        batchnorm=True,
        dropout=0.25,
        init="xavier_uniform",
        seed=0,
        dtype=dtype,
    ),
    "every-layer": every_layer,
}


@pytest.mark.parametrize("name", MODELS)
def test_round_trip(tmp_path, rng, dtype, name):
    model = MODELS[name](dtype)
    x = rng.standard_normal((9, 5))
    # Train a little so running statistics and weights move away from their initial values.
    loss = fn.MSELoss() if name == "every-layer" else fn.SoftmaxCrossEntropy()
    target = rng.random((9, 3)) if name == "every-layer" else rng.integers(0, 3, 9)
    opt = fn.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        loss.forward(model.forward(x), target)
        model.backward(loss.backward())
        opt.step()
    path = tmp_path / "model.npz"
    fn.save(model, path)
    loaded = fn.load(path)
    assert type(loaded) is type(model)
    assert repr(loaded) == repr(model)
    assert loaded.dtype == model.dtype
    for (k, a), (k2, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert k == k2
        assert b.dtype == a.dtype
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    if isinstance(model, fn.MLP):
        assert loaded.sizes == model.sizes and loaded.batchnorm == model.batchnorm


def test_a_changed_mlp_is_saved_as_what_it_is(tmp_path):
    model = fn.MLP([4, 5, 2], seed=0)
    model.layers.append(fn.Softmax())
    fn.save(model, tmp_path / "m.npz")
    loaded = fn.load(tmp_path / "m.npz")
    assert type(loaded) is fn.Sequential and isinstance(loaded[-1], fn.Softmax)


def test_the_file_is_a_plain_npz_with_a_json_header(tmp_path):
    model = fn.MLP([4, 5, 2], seed=0)
    fn.save(model, tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:
        header = json.loads(str(f["fastnn.json"]))
        assert header["model"] == {
            "class": "MLP",
            "config": {
                "sizes": [4, 5, 2],
                "activation": "relu",
                "batchnorm": False,
                "dropout": 0.0,
                "init": "he",
            },
        }
        np.testing.assert_array_equal(f["model/0.weight"], model[0].weight.data)


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    old = fn.MLP([4, 5, 2], seed=0)
    fn.save(old, path)
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(files.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        fn.save(fn.MLP([4, 5, 2], seed=1), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["m.npz"]  # no temporary file left behind


class _Payload:
    """Unpickling this writes a file: the proof that a loader ran code."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _bad_files(tmp_path):
    marker = str(tmp_path / "pwned")
    model = fn.MLP([4, 5, 2], seed=0)
    good = tmp_path / "good.npz"
    fn.save(model, good)
    with np.load(good) as f:
        arrays = {k: f[k] for k in f.files}
    header = json.loads(str(arrays["fastnn.json"]))

    def npz(name, **changes):
        p = tmp_path / name
        a = dict(arrays)
        a.update(changes)
        np.savez(p, **{k: v for k, v in a.items() if v is not None})
        return p

    def with_header(name, h):
        return npz(name, **{"fastnn.json": np.array(json.dumps(h))})

    pickle_file = tmp_path / "model.pkl"
    pickle_file.write_bytes(pickle.dumps(_Payload(marker)))
    object_npz = tmp_path / "object.npz"
    np.savez(
        object_npz,
        **{"fastnn.json": arrays["fastnn.json"]},
        **{"model/0.weight": np.array([_Payload(marker)], dtype=object)},
    )
    unknown = dict(header, model={"class": "os.system", "config": {}})
    bad_shape = npz("shape.npz", **{"model/0.weight": np.zeros((5, 4), np.float32)})
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    random = tmp_path / "random.npz"
    random.write_bytes(np.random.default_rng(0).bytes(1000))
    npy = tmp_path / "array.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    return marker, {
        "pickle": (pickle_file, "refused: a pickle file"),
        "object array": (object_npz, "pickled objects"),
        "no header": (npz("nohead.npz", **{"fastnn.json": None}), "no fastnn.json"),
        "malformed json": (npz("json.npz", **{"fastnn.json": np.array("{not json")}), "malformed"),
        "other format": (with_header("fmt.npz", dict(header, format="keras")), "not a fastnn file"),
        "newer version": (with_header("ver.npz", dict(header, version=99)), "version 99"),
        "unknown layer": (with_header("unk.npz", unknown), "unknown layer class 'os.system'"),
        "bad config": (
            with_header("cfg.npz", dict(header, model={"class": "MLP", "config": {"sizes": "x"}})),
            "invalid architecture",
        ),
        "bad dtype": (with_header("dt.npz", dict(header, dtype="int8")), "dtype"),
        "weights shape": (
            bad_shape,
            r"0.weight is stored with shape \(5, 4\), the architecture declares \(4, 5\)",
        ),
        "missing weights": (
            npz("miss.npz", **{"model/0.bias": None}),
            r"missing arrays \['0.bias'\]",
        ),
        "truncated": (truncated, "not a"),
        "random bytes": (random, "not a"),
        "npy": (npy, "not a fastnn file"),
    }


def test_load_refuses_anything_else_and_runs_no_code(tmp_path):
    marker, cases = _bad_files(tmp_path)
    for name, (path, message) in cases.items():
        with pytest.raises(ValueError, match=message) as info:
            fn.load(path)
        assert str(path) in str(info.value), name
        assert not os.path.exists(marker), f"{name}: loading ran code"
    # The payload does run when unpickled: the check above is not vacuous.
    with open(cases["pickle"][0], "rb") as f:
        pickle.load(f).close()
    assert os.path.exists(marker)


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        fn.load(tmp_path / "nothing.npz")


def test_save_refuses_what_it_cannot_rebuild(tmp_path):
    class Custom(fn.Module):
        pass

    with pytest.raises(TypeError, match="cannot save a Custom"):
        fn.save(fn.Sequential(fn.Linear(2, 2), Custom()), tmp_path / "c.npz")
    with pytest.raises(TypeError, match="expected a fastnn model"):
        fn.save({"w": np.zeros(2)}, tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()


def test_header_is_readable_json_text(tmp_path):
    fn.save(fn.MLP([3, 2]), tmp_path / "m.npz")
    with zipfile.ZipFile(tmp_path / "m.npz") as z:
        raw = z.read("fastnn.json.npy")
    text = np.load(io.BytesIO(raw), allow_pickle=False)
    assert json.loads(str(text))["format"] == "fastnn"
