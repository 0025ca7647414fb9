"""The command line: train (the main job), evaluate, predict, warmup, info, demo."""

import io
import re
import subprocess
import sys

import numpy as np
import pytest

import fastnn as fn
from fastnn.cli import demo, main


@pytest.fixture
def blob_data(tmp_path):
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 3, (3, 10))
    y = rng.integers(0, 3, 300)
    x = (centers[y] + rng.normal(0, 1, (300, 10))).astype(np.float32)
    path = tmp_path / "blobs.npz"
    np.savez(path, x=x, y=y)
    return path, x, y


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_evaluate_predict_on_an_npz(tmp_path, blob_data, capsys):
    data, x, y = blob_data
    model_path = tmp_path / "m.npz"
    code, out, _ = run(
        [
            "train",
            "--data",
            data,
            "--epochs",
            5,
            "--layers",
            "16,8",
            "--batch-size",
            16,
            "--lr",
            0.01,
            "-o",
            model_path,
        ],
        capsys,
    )
    assert code == 0
    assert "240 training and 60 test rows of 10 features, 3 classes" in out
    assert "epoch 5/5" in out
    accuracy = float(re.search(r"test accuracy (\S+)", out).group(1))
    assert accuracy > 0.9
    assert f"saved the model to {model_path}" in out
    model = fn.load(model_path)
    assert model.sizes == (10, 16, 8, 3)

    code, out, _ = run(["evaluate", model_path, "--data", data], capsys)
    assert code == 0
    assert float(re.search(r"accuracy (\S+)", out).group(1)) == pytest.approx(accuracy, abs=1e-4)

    code, out, _ = run(["predict", model_path, data], capsys)
    assert code == 0
    np.testing.assert_array_equal(np.array(out.split(), dtype=int), model.predict_classes(x))
    code, out, _ = run(["predict", model_path, data, "--proba"], capsys)
    proba = np.array([line.split() for line in out.splitlines()], dtype=float)
    np.testing.assert_allclose(proba, model.predict_proba(x), atol=1e-6)
    for suffix in (".npy", ".csv"):
        target = tmp_path / f"pred{suffix}"
        assert run(["predict", model_path, data, "-o", target], capsys)[0] == 0
        saved = np.load(target) if suffix == ".npy" else np.loadtxt(target, delimiter=",")
        np.testing.assert_array_equal(saved, model.predict_classes(x))


def test_train_resume_matches_an_uninterrupted_run(tmp_path, blob_data, capsys):
    data, _, _ = blob_data
    common = [
        "train",
        "--data",
        data,
        "--layers",
        "16",
        "--batch-size",
        16,
        "--threads",
        1,
        "--dropout",
        0.3,
        "--batchnorm",
        "-q",
    ]
    assert run([*common, "--epochs", 4, "-o", tmp_path / "full.npz"], capsys)[0] == 0
    assert run([*common, "--epochs", 2, "-o", tmp_path / "part.npz"], capsys)[0] == 0
    code, out, _ = run([*common, "--epochs", 4, "-o", tmp_path / "part.npz", "--resume"], capsys)
    assert code == 0, out
    full, part = fn.load(tmp_path / "full.npz"), fn.load(tmp_path / "part.npz")
    for k, v in full.state_dict().items():
        np.testing.assert_array_equal(part.state_dict()[k], v, err_msg=k)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "invalid --epochs: 0; expected a positive integer"),
        (["train", "--lr", "-1"], "invalid --lr: -1.0; expected a finite number > 0"),
        (
            ["train", "--dropout", "1.5"],
            "invalid --dropout: 1.5; expected a finite number >= 0 and < 1",
        ),
        (["train", "--layers", "10,x"], "expected sizes like 256,128"),
        (["train", "--optimizer", "adamm"], "invalid choice: 'adamm'"),
        (["train", "--data", "nowhere"], "expected sample, mnist, fashion-mnist"),
        (["evaluate"], "the following arguments are required: model"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(argv, message, capsys):
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_bad_files_give_one_line_and_exit_2(tmp_path, blob_data, capsys):
    data, _, _ = blob_data
    not_a_model = tmp_path / "x.npz"
    np.savez(not_a_model, w=np.zeros(3))
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["evaluate", not_a_model], "not a fastnn file"),
        (["evaluate", tmp_path / "missing.npz"], "missing.npz"),
        (["predict", not_a_model, data], "not a fastnn file"),
        (["train", "--data", not_a_model], "expected arrays x and y"),
        (["train", "--data", empty, "--epochs", 1], "train-images-idx3-ubyte.gz"),
        (["train", "--data", data, "--resume", tmp_path / "none.npz"], "no checkpoint at"),
    ]
    for argv, message in cases:
        code, _, err = run(argv, capsys)
        assert code == 2, argv
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, err


def test_info_and_warmup(capsys):
    code, out, _ = run(["info"], capsys)
    assert code == 0
    for label in (
        "fastnn",
        "numba",
        "numba threads",
        "numba threading layer",
        "blas",
        "numba cache",
    ):
        assert re.search(rf"^{label} +\S", out, flags=re.M), label
    code, out, _ = run(["warmup"], capsys)
    assert code == 0 and "compiled or loaded every kernel" in out


def test_main_job_reaches_95_percent_on_the_mnist_sample(tmp_path):
    """README's first command: ``fastnn train`` with its defaults, in a fresh process."""
    proc = subprocess.run(
        [sys.executable, "-m", "fastnn", "train"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "8000 training and 2000 test rows of 784 features, 10 classes" in out
    assert "epoch 20/20" in out
    assert float(re.search(r"test accuracy (\S+)", out).group(1)) >= 0.95
    assert (tmp_path / "fastnn-model.npz").exists()


def test_demo_learns_xor_and_spirals():
    out = io.StringIO()
    result = demo(seed=0, epochs=15, out=out)
    text = out.getvalue()
    assert result["xor_accuracy"] == 1.0
    assert result["spirals_test_accuracy"] > 0.9  # chance is 1/3
    assert "1 XOR 1 = 0" in text and "epoch  15" in text


def test_cli_runs_as_module():
    proc = subprocess.run(
        [sys.executable, "-m", "fastnn", "demo", "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 XOR 1 = " in proc.stdout and "epoch   2" in proc.stdout


def test_checkpoint_every_n_epochs(tmp_path, blob_data, capsys):
    from fastnn import files

    data, _, _ = blob_data
    ckpt = tmp_path / "c.npz"
    argv = ["train", "--data", data, "--layers", "8", "--epochs", 5, "--checkpoint", ckpt]
    code, _, _ = run([*argv, "--checkpoint-every", 2, "-o", tmp_path / "m.npz"], capsys)
    assert code == 0
    assert files.read(ckpt).header["training"]["epoch"] == 4  # written after epochs 2 and 4
    code, _, err = run([*argv, "--checkpoint-every", 0], capsys)
    assert code == 2 and "--checkpoint-every" in err


def test_clip_norm_flag(tmp_path, blob_data, capsys):
    data, _, _ = blob_data
    argv = ["train", "--data", data, "--layers", "8", "--epochs", 2, "-o", tmp_path / "m.npz"]
    code, out, _ = run([*argv, "--clip-norm", 0.5], capsys)
    assert code == 0 and "test accuracy" in out
    code, _, err = run([*argv, "--clip-norm", 0], capsys)
    assert code == 2 and "--clip-norm" in err and err.count("\n") == 1


COMMANDS = [
    "train",
    "evaluate",
    "predict",
    "export",
    "tune",
    "demo",
    "experiment",
    "warmup",
    "info",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_names_each_default_once(command, capsys):
    # A help text that says its own default got argparse's "(default: ...)" again, and
    # flags without a default got "(default: None)".
    assert main([command, "--help"]) == 0
    out = capsys.readouterr().out
    text = " ".join(out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    for entry in re.split(r"\n  (?=-)", out):  # one flag's lines each
        assert entry.count("default") <= 1, entry
    if command == "train":
        assert "learning rate (default: 0.001)" in text
