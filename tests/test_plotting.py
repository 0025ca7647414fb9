"""History.plot: the figure shows the history's own numbers."""

import numpy as np
import pytest

import fastnn as fn

pytest.importorskip("matplotlib")


def test_history_plot(tmp_path, rng):
    x = rng.standard_normal((120, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = fn.MLP([4, 8, 2], seed=0)
    history = fn.fit(model, x, y, epochs=4, batch_size=20, validation_split=0.25, verbose=0)
    fig = history.plot()
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_ylabel() == "loss" and acc_ax.get_ylabel() == "accuracy"
    train, val = loss_ax.get_lines()
    np.testing.assert_array_equal(train.get_xdata(), [1, 2, 3, 4])
    np.testing.assert_array_equal(train.get_ydata(), history["loss"])
    np.testing.assert_array_equal(val.get_ydata(), history["val_loss"])
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == ["train", "validation"]
    path = tmp_path / "history.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="has no 'f1'"):
        history.plot(["f1"])
