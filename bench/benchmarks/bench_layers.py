"""Layers' forward+backward, one training step, and import + first step in a fresh process."""

import numpy as np

import fastnn as fn


class Layers:
    params = (["100x100", "256x1024"], ["float32", "float64"])
    param_names = ["size", "dtype"]

    def setup(self, size, dtype):
        rows, cols = map(int, size.split("x"))
        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((rows, cols)).astype(dtype)
        self.dout = rng.standard_normal((rows, cols)).astype(dtype)
        self.layers = {
            "linear_relu": fn.Linear(cols, cols, activation="relu", rng=0, dtype=dtype),
            "batchnorm": fn.BatchNorm(cols, dtype=dtype),
            "dropout": fn.Dropout(0.5, rng=0, dtype=dtype),
            "tanh": fn.Tanh(dtype=dtype),
        }
        for name in self.layers:
            self._step(name)

    def _step(self, name):
        layer = self.layers[name]
        layer.forward(self.x)
        layer.backward(self.dout)

    def time_linear_relu_forward_backward(self, size, dtype):
        self._step("linear_relu")

    def time_batchnorm_forward_backward(self, size, dtype):
        self._step("batchnorm")

    def time_dropout_forward_backward(self, size, dtype):
        self._step("dropout")

    def time_tanh_forward_backward(self, size, dtype):
        self._step("tanh")


class TrainingStep:
    """One step (forward, loss, backward, Adam) of the course's MNIST-sized networks."""

    params = (["784-100-10", "784-100-100-100-100-100-10", "784-1024-1024-10"], [1, 100, 512])
    param_names = ["sizes", "batch"]

    def setup(self, sizes, batch):
        rng = np.random.default_rng(0)
        sizes = [int(s) for s in sizes.split("-")]
        self.model = fn.MLP(sizes, seed=0)
        self.loss = fn.SoftmaxCrossEntropy()
        self.opt = fn.optim.Adam(self.model.parameters(), lr=1e-3)
        self.x = rng.random((batch, sizes[0]), dtype=np.float32)
        self.y = rng.integers(0, sizes[-1], batch)
        self.time_step(sizes, batch)

    def time_step(self, sizes, batch):
        self.loss.forward(self.model.forward(self.x), self.y)
        self.model.backward(self.loss.backward(), input_grad=False)
        self.opt.step()

    def time_predict(self, sizes, batch):
        self.model.forward(self.x)

    def peakmem_step(self, sizes, batch):
        self.time_step(sizes, batch)


class Startup:
    """``import fastnn`` and the first training step, in a new interpreter (warm Numba cache)."""

    def timeraw_import(self):
        return "import fastnn"

    def timeraw_import_and_first_step(self):
        return """
import numpy as np
import fastnn as fn
model = fn.MLP([784, 100, 10], seed=0)
loss = fn.SoftmaxCrossEntropy()
opt = fn.optim.Adam(model.parameters(), lr=1e-3)
x = np.zeros((100, 784), np.float32)
y = np.zeros(100, np.int64)
loss.forward(model.forward(x), y)
model.backward(loss.backward(), input_grad=False)
opt.step()
"""
