"""Side doors into the kernels (issue 14, items 1-4 and 6): a user's module that returns
another width than it says, an optimizer after its own "changed size" error, arrays swapped
into a layer, an optimizer made before ``model.to(float64)``, read-only arrays. The
reproducers that crashed the interpreter run in a subprocess, so a crash fails the test."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnn as fn


def run(code):
    """Run ``code`` in a fresh interpreter; (exit code, stdout, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )
    return proc.returncode, proc.stdout, proc.stderr


FIRST2 = """
import numpy as np
import fastnn as fn

class First2(fn.Module):
    def forward(self, x): self._n = x.shape[1]; return np.ascontiguousarray(x[:, :2])
    def backward(self, d):
        dx = np.zeros((d.shape[0], self._n), d.dtype); dx[:, :2] = d; return dx
"""


# -- 1. the loss checks the output it is given, on every call -------------------------------
def test_a_module_that_narrows_the_output_is_refused_not_a_crash():
    # The reproducer: labels checked against the Linear's 100,000 outputs while the
    # model returns 2 columns; the loss kernel wrote dz[i, 99999] out of bounds (SIGSEGV).
    code = (
        FIRST2
        + """
m = fn.Sequential(fn.Linear(4, 100_000, rng=0), First2())
try:
    fn.fit(m, np.ones((4096, 4), np.float32), np.full(4096, 99_999),
           optimizer=fn.optim.SGD(m.parameters()), epochs=1, batch_size=4096, verbose=0)
except ValueError as e:
    print("refused:", e)
"""
    )
    code_, out, err = run(code)
    assert code_ == 0, err[-2000:]
    assert "refused: fit y: labels must be in [0, 1], got 99999" in out


class Liar(fn.Module):
    """Says it keeps 5 features (in_features/out_features) but returns the first ``keep``
    columns, or ``extra`` more rows than it got."""

    in_features = out_features = 5

    def __init__(self, keep=5, extra=0, dtype=np.float32):
        super().__init__()
        self.keep, self.extra = keep, extra

    def forward(self, x):
        x = np.asarray(x, np.float32)
        self._shape = x.shape
        out = x[:, : self.keep]
        return np.ascontiguousarray(np.concatenate([out, out[: self.extra]]) if self.extra else out)

    def backward(self, dout):
        return np.zeros(self._shape, np.float32)


@pytest.mark.parametrize(
    "liar, loss, y",
    [
        (Liar(keep=2), "cross_entropy", np.full(8, 4)),
        (Liar(extra=3), "cross_entropy", np.zeros(8, np.int64)),
        (Liar(keep=2), "mse", np.zeros((8, 5), np.float32)),
        (Liar(extra=1), "mse", np.zeros((8, 5), np.float32)),
    ],
    ids=["narrower", "more rows", "mse narrower", "mse more rows"],
)
def test_the_loss_checks_every_output_against_the_targets(liar, loss, y):
    model = fn.Sequential(fn.Linear(5, 5, rng=0), liar)  # io_widths say (5, 5)
    x = np.ones((8, 5), np.float32)
    with pytest.raises(ValueError, match=r"the model returned float32 \(\d+, \d+\) for 8 rows"):
        fn.fit(model, x, y, loss=loss, epochs=1, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="the model returned"):
        fn.evaluate(model, x, y, loss=loss)


def test_outputs_of_another_kind_are_refused():
    class Half(fn.Module):
        def forward(self, x):
            return np.asarray(x, np.float16)

        def backward(self, dout):
            return dout

    model = fn.Sequential(fn.Linear(3, 2, rng=0), Half())
    with pytest.raises(ValueError, match="the model returned float16"):
        fn.fit(model, np.ones((4, 3), np.float32), [0, 1, 0, 1], epochs=1, batch_size=4, verbose=0)


# -- 2. the optimizer after its "changed size" error ------------------------------------------
def test_optimizer_after_its_changed_size_error_refuses_again_not_a_crash():
    code = """
import numpy as np
import fastnn as fn
m = fn.MLP([4, 8, 3], seed=0); opt = fn.optim.Adam(m.parameters()); opt.step()
b = m.layers[-1].bias
b.data = np.zeros(3_000_000, np.float32); b.grad = np.ones(3_000_000, np.float32)
for _ in range(3):
    try:
        opt.step()
    except ValueError as e:
        print("refused:", e)
"""
    code_, out, err = run(code)
    assert code_ == 0, err[-2000:]
    assert out.count("refused: Adam: parameters changed size") == 3


# -- 3. arrays swapped into a layer ----------------------------------------------------------
def test_arrays_swapped_into_layers_are_refused():
    x = np.ones((4, 3), np.float32)
    layer = fn.Linear(3, 5, rng=0)
    layer.bias.data = np.zeros(2, np.float32)  # shorter: forward read past it
    with pytest.raises(ValueError, match=r"bias.data has shape \(2,\), expected \(5,\)"):
        layer.forward(x)
    layer = fn.Linear(3, 5, rng=0)
    layer.forward(x)
    layer.bias.grad = np.zeros(2, np.float32)  # shorter: backward wrote past it
    with pytest.raises(ValueError, match=r"bias.grad has shape \(2,\), expected \(5,\)"):
        layer.backward(np.ones((4, 5), np.float32))
    bn = fn.BatchNorm(3).eval()
    bn.running_var = np.ones(2, np.float32)  # garbage predictions before
    with pytest.raises(ValueError, match=r"running_var has shape \(2,\), expected \(3,\)"):
        bn.predict(x)
    bn = fn.BatchNorm(3)
    bn.num_features = 300  # out-of-bounds writes before
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 300\)"):
        bn.forward(x)
    with pytest.raises(ValueError, match=r"weight.data has shape \(3,\), expected \(300,\)"):
        bn.forward(np.ones((4, 300), np.float32))
    opt = fn.optim.Adam(fn.MLP([3, 2]).parameters())
    opt.step()
    opt.state["exp_avg"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"state\['exp_avg'\] must be a writeable float32"):
        opt.step()


@pytest.mark.parametrize(
    "make",
    [
        lambda: fn.Linear(3, 5, rng=0),
        lambda: fn.Linear(3, 5, activation="relu", rng=0),
        lambda: fn.Linear(3, 5, bias=False, rng=0),
        lambda: fn.Maxout(3, 5, rng=0),
        lambda: fn.BatchNorm(3),
    ],
)
def test_a_gradient_made_read_only_in_place_is_refused(make):
    # Rebinding a read-only gradient is refused by Parameter; clearing the flag of the array
    # a layer already holds must be refused by the layer (Numba's TypingError before).
    x = np.ones((4, 3), np.float32)
    for name in dict(make().named_parameters()):
        layer = make()
        y = layer.forward(x)
        dict(layer.named_parameters())[name].grad.flags.writeable = False
        with pytest.raises(ValueError, match=rf"{name}.grad is read-only"):
            layer.backward(np.ones_like(y))
    read_only = np.zeros_like(layer.weight.data)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="Parameter.grad must be writeable"):
        layer.weight.grad = read_only


# -- 4. an optimizer made before model.to(float64) --------------------------------------------
def test_fit_uses_the_buffers_of_a_model_converted_after_its_optimizer():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4))
    y = rng.integers(0, 3, 64)
    # Divergence: the restore must act on the model's live buffers.
    m = fn.MLP([4, 16, 3], seed=0)
    opt = fn.optim.SGD(m.parameters(), lr=1e300)
    m.to(np.float64)
    with pytest.raises(fn.TrainingDivergedError):
        fn.fit(m, x * 1e10, y, optimizer=opt, epochs=3, batch_size=8, verbose=0, seed=0)
    assert all(np.isfinite(p.data).all() for p in m.parameters())
    # Clipping: it must clip the gradient the step uses.
    m = fn.MLP([4, 16, 3], seed=0)
    opt = fn.optim.SGD(m.parameters(), lr=0.5)
    m.to(np.float64)
    before = np.concatenate([p.data.ravel() for p in m.parameters()])
    fn.fit(m, x * 1e3, y, optimizer=opt, epochs=1, batch_size=64, verbose=0, clip_norm=1e-6)
    after = np.concatenate([p.data.ravel() for p in m.parameters()])
    assert np.linalg.norm(after - before) <= 0.5 * 1e-6 * 1.01  # one step of lr * max_norm


# -- 6. read-only arrays -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "make",
    [
        lambda: fn.Linear(4, 3, rng=0),
        lambda: fn.Linear(4, 3, activation="relu", rng=0),
        lambda: fn.Maxout(4, 3, rng=0),
        lambda: fn.BatchNorm(4),
        lambda: fn.Dropout(0.5, rng=0),
        lambda: fn.Tanh(),
        lambda: fn.Softmax(),
        lambda: fn.MLP([4, 5, 3], batchnorm=True, seed=0),
    ],
    ids=["Linear", "Linear relu", "Maxout", "BatchNorm", "Dropout", "Tanh", "Softmax", "MLP"],
)
def test_read_only_inputs_are_accepted(make, tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    reference, layer = make(), make()
    y = np.array(reference.forward(x), copy=True)
    dout = np.ones_like(y)
    dx = reference.backward(dout)
    x_ro = np.load(tmp_path / "x.npy", mmap_mode="r")  # read-only, as the example
    np.save(tmp_path / "dout.npy", dout)
    dout_ro = np.load(tmp_path / "dout.npy", mmap_mode="r")
    assert not x_ro.flags.writeable and not dout_ro.flags.writeable
    np.testing.assert_allclose(layer.forward(x_ro), y, rtol=1e-6)
    out = layer.backward(dout_ro)
    if dx is not None:
        np.testing.assert_allclose(out, dx, rtol=1e-6, atol=1e-7)
    for p, q in zip(layer.parameters(), reference.parameters(), strict=True):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-6, atol=1e-7)
