"""What every module says of itself (``io_widths``, ``get_config``, ``backward(dout,
input_grad)``), and modules of a user's own: the defaults they get, in Sequential, fit, save."""

import numpy as np
import pytest

import fastnn as fn
from fastnn.nn import LAYERS, SAME, chain_widths


def _all_layers():
    return [
        fn.Linear(4, 3, rng=0),
        fn.Linear(4, 3, activation="elu", alpha=0.5, bias=False, init=0.1, rng=0),
        fn.Maxout(4, 3, pieces=3, rng=0),
        fn.BatchNorm(4, momentum=0.2, eps=1e-3),
        fn.Dropout(0.25, rng=0),
        fn.ReLU(),
        fn.Sigmoid(),
        fn.Tanh(),
        fn.Step(),
        fn.LeakyReLU(0.2),
        fn.ELU(0.7),
        fn.Identity(),
        fn.Softmax(),
    ]


@pytest.mark.parametrize("layer", _all_layers(), ids=lambda m: type(m).__name__)
def test_config_rebuilds_the_layer(layer):
    config = layer.get_config()
    again = type(layer)(**config)
    assert again.get_config() == config
    assert repr(again) == repr(layer)
    assert again.io_widths() == layer.io_widths()
    assert LAYERS[type(layer).__name__] is type(layer)


def test_widths_each_layer_gives():
    assert fn.Linear(4, 3).io_widths() == (4, 3)
    assert fn.Maxout(4, 3, pieces=2).io_widths() == (4, 3)
    assert fn.BatchNorm(5).io_widths() == (5, 5)
    for layer in (fn.ReLU(), fn.Dropout(0.5), fn.Identity(), fn.Softmax(), fn.ELU()):
        assert layer.io_widths() == (None, SAME)
    assert fn.MLP([6, 5, 2]).io_widths() == (6, 2)
    model = fn.Sequential(fn.ReLU(), fn.Linear(4, 8), fn.BatchNorm(8), fn.Dropout(0.1))
    assert model.io_widths() == (4, 8)
    assert fn.Sequential(fn.ReLU(), fn.Tanh()).io_widths() == (None, None)
    with pytest.raises(ValueError, match=r"layer 2 \(BatchNorm\(5.*width 5, but layer 0"):
        chain_widths([fn.Linear(4, 8), fn.ReLU(), fn.BatchNorm(5)])


def test_every_module_takes_input_grad():
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    for layer in _all_layers():
        layer.train()
        y = layer.forward(x)
        out = layer.backward(np.ones_like(y), input_grad=False)
        assert out is None or out.shape == x.shape
    # The first Linear of a network skips dx: nothing is computed nor returned.
    linear = fn.Linear(4, 3, rng=0)
    linear.forward(x)
    assert linear.backward(np.ones((5, 3), np.float32), input_grad=False) is None


class Halve(fn.Module):
    """A user's module as the course writes one: elementwise, backward(self, dout)."""

    def forward(self, x):
        self.shape = np.shape(x)
        return np.asarray(x, dtype=self.dtype) * 0.5

    def backward(self, dout):
        return dout * 0.5


class First2(fn.Module):
    """A user's module that keeps the first 2 columns; it cannot say its widths."""

    def forward(self, x):
        self._n = x.shape[1]
        return np.ascontiguousarray(x[:, :2])

    def backward(self, d):
        dx = np.zeros((d.shape[0], self._n), d.dtype)
        dx[:, :2] = d
        return dx


class Projection(fn.Module):
    """A user's module with PyTorch's in_features/out_features and a parameter."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        w = np.random.default_rng(0).standard_normal((in_features, out_features))
        self.weight = fn.Parameter(w.astype(np.float32), decay=True)

    def forward(self, x):
        self._x = np.asarray(x, np.float32)
        return self._x @ self.weight.data

    def backward(self, dout):
        self.weight.grad[...] = self._x.T @ dout
        return dout @ self.weight.data.T


def test_a_users_backward_without_input_grad_is_accepted():
    h = Halve()
    h.forward(np.ones((2, 3)))
    assert np.array_equal(h.backward(np.ones((2, 3)), input_grad=False), np.full((2, 3), 0.5))
    assert h.backward.__name__ == "backward"


def test_a_users_modules_widths():
    assert Halve().io_widths() == (None, None)
    assert Projection(4, 6).io_widths() == (4, 6)
    # Known widths are checked when the model is built, unknown ones are not.
    with pytest.raises(ValueError, match="expects inputs of width 5"):
        fn.Sequential(fn.Linear(3, 4), Projection(5, 2))
    assert fn.Sequential(fn.Linear(3, 4), Halve(), fn.Linear(4, 2)).io_widths() == (3, 2)


def test_fit_and_evaluate_with_modules_of_ones_own():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = fn.Sequential(Projection(4, 6), fn.ReLU(), fn.Linear(6, 5, rng=0), First2())
    # First2 cannot say its output width: fit runs one row through the model to see it (2),
    # so a label of 4 (in range for the Linear before it) is refused before any step.
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\], got 4"):
        fn.fit(model, x, np.full(64, 4), epochs=1, verbose=0)
    opt = fn.optim.Adam(model.parameters(), lr=0.05)
    before = model.layers[0].weight.data.copy()
    history = fn.fit(model, x, y, optimizer=opt, epochs=5, batch_size=16, verbose=0, seed=0)
    assert not np.array_equal(model.layers[0].weight.data, before)  # its parameter trained
    assert history["loss"][-1] < history["loss"][0]
    assert set(fn.evaluate(model, x, y)) == {"loss", "accuracy"}


def test_save_refuses_a_users_module(tmp_path):
    with pytest.raises(TypeError, match="cannot save a Halve: fastnn files hold the layers"):
        fn.save(fn.Sequential(fn.Linear(2, 2), Halve()), tmp_path / "m.npz")

    # A subclass of a fastnn layer is not that layer: a file could not rebuild it.
    class MyLinear(fn.Linear):
        pass

    with pytest.raises(TypeError, match="cannot save a MyLinear"):
        fn.save(MyLinear(2, 2), tmp_path / "m.npz")
