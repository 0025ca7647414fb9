"""Where fastnn writes (issue 14, items 11 and 12): a save never replaces something that is
not a regular file, follows a symbolic link to its file, and the command line checks its
output paths and the model's size before it trains, not after."""

import os

import numpy as np
import pytest

import fastnn as fn
from fastnn.cli import main


@pytest.fixture
def model():
    return fn.MLP([4, 3, 2], seed=0)


def test_save_refuses_a_folder_a_device_and_a_pipe(tmp_path, model):
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match="it is a folder, not a regular file"):
        fn.save(model, tmp_path / "folder")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="it is a device, pipe or socket"):
        fn.save(model, tmp_path / "pipe")
    assert (tmp_path / "pipe").is_fifo()  # left as it was
    with pytest.raises(ValueError, match="cannot write /dev/null: it is a device"):
        fn.save(model, "/dev/null")  # as root this used to replace the device with a file
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".fastnn-")]


def test_save_through_a_symlink_writes_its_file_and_keeps_the_link(tmp_path, model):
    real = tmp_path / "real.npz"
    fn.save(fn.MLP([4, 3, 2], seed=1), real)
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    fn.save(model, link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    np.testing.assert_array_equal(
        fn.load(real).predict(np.ones((1, 4))), model.predict(np.ones((1, 4)))
    )
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "new.npz")
    fn.save(model, dangling)  # as open() would: the file the link names is created
    assert (tmp_path / "new.npz").is_file() and dangling.is_symlink()


@pytest.fixture
def data(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 5)).astype(np.float32)
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=rng.integers(0, 3, 60))
    return str(path)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_checks_its_output_before_training(tmp_path, data, capsys):
    (tmp_path / "dir").mkdir()
    argv = ["train", "--data", data, "-o", tmp_path / "dir", "--epochs", 1, "--batch-size", 16]
    code, out, err = run(argv, capsys)
    assert code == 2 and "it is a folder, not a regular file" in err and err.count("\n") == 1
    assert "epoch" not in out  # refused before any training


def test_predict_writes_the_very_path_it_names(tmp_path, data, model, capsys):
    model = fn.MLP([5, 4, 3], seed=0)
    fn.save(model, tmp_path / "m.npz")
    np.savez(tmp_path / "in.npz", x=np.ones((3, 5), np.float32))
    code, out, _ = run(
        ["predict", tmp_path / "m.npz", tmp_path / "in.npz", "-o", tmp_path / "out.txt"], capsys
    )
    assert code == 0 and f"to {tmp_path / 'out.txt'}" in out
    assert not (tmp_path / "out.txt.npy").exists()
    np.testing.assert_array_equal(
        np.load(tmp_path / "out.txt"), model.predict_classes(np.ones((3, 5)))
    )


def test_train_refuses_oversized_models_and_labels_that_are_not_classes(tmp_path, data, capsys):
    code, out, err = run(
        ["train", "--data", data, "--layers", "1000000000000", "--epochs", 1], capsys
    )
    assert code == 2 and err.count("\n") == 1
    assert "a 5-1000000000000-3 network has 9,000,000,000,003 parameters; fastnn train" in err
    rng = np.random.default_rng(0)
    big = tmp_path / "big.npz"
    np.savez(
        big, x=rng.standard_normal((60, 5)).astype(np.float32), y=np.r_[np.zeros(59, int), 10**9]
    )
    code, out, err = run(["train", "--data", big, "--epochs", 1], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "the labels go up to 1000000000, more classes than the" in err
