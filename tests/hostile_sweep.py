"""The hostile-attribute sweep: every public layer, model, loss and optimizer, run with each
array it holds replaced, one at a time, by a wrong-shaped, wrong-dtype, read-only,
non-contiguous or non-array stand-in (and each size attribute by another size).

Each run must end in a clear ``ValueError``/``TypeError`` or give the same result as the
untouched object. Anything else (another exception, a silently different result) prints a
``FAIL`` line; a kernel writing out of bounds kills the process. ``tests/test_hostile.py``
runs each group in a subprocess, so that a crash fails a test and not the test run.

    python tests/hostile_sweep.py layers|models|losses|optimizers
"""

import copy
import sys

import numpy as np

import fastnn as fn

CLEAN = (ValueError, TypeError)
RNG = np.random.default_rng(0)


def variants(a):
    """(name, stand-in, same values) for the array ``a``."""
    a = np.asarray(a)
    other = np.float64 if a.dtype == np.float32 else np.float32
    out = [
        ("longer", np.zeros(a.shape[:-1] + (a.shape[-1] + 1000,), a.dtype), False),
        (
            "2-d" if a.ndim == 1 else "flat",
            a.reshape(1, -1).copy() if a.ndim == 1 else a.ravel(),
            False,
        ),
        (f"dtype {np.dtype(other)}", a.astype(other), True),
        ("int64", a.astype(np.int64), False),
        ("list", a.tolist(), False),
    ]
    if a.shape[-1] > 1:
        out.append(("shorter", np.zeros(a.shape[:-1] + (a.shape[-1] - 1,), a.dtype), False))
    if a.ndim == 2 and a.shape[0] != a.shape[1]:
        out.append(("transposed", np.ascontiguousarray(a.T), False))
    read_only = a.copy()
    read_only.flags.writeable = False
    out.append(("read-only", read_only, True))
    strided = np.repeat(a, 2, axis=-1)[..., ::2]
    assert not strided.flags.c_contiguous and np.array_equal(strided, a)
    out.append(("non-contiguous", strided, True))
    return out


def size_variants(n):
    return [("+1", n + 1, False), ("0", 0, False), ("-1", -1, False), ("10**6", 10**6, False)]


def attributes(module):
    """(label, get, set, kind) for each array a module holds (parameters' data and grad,
    persistent buffers) and each of its size attributes."""
    found = []
    for name, p in module.named_parameters():
        for part in ("data", "grad"):
            found.append(
                (
                    f"{name}.{part}",
                    lambda p=p, part=part: getattr(p, part),
                    lambda v, p=p, part=part: setattr(p, part, v),
                    "array",
                )
            )
    for m in module.modules():
        for name in m._persistent:
            found.append(
                (
                    f"{type(m).__name__}.{name}",
                    lambda m=m, name=name: getattr(m, name),
                    lambda v, m=m, name=name: setattr(m, name, v),
                    "array",
                )
            )
        for name in (
            "in_features",
            "out_features",
            "num_features",
            "pieces",
            "in_channels",
            "out_channels",
        ):
            if isinstance(getattr(m, name, None), int):
                found.append(
                    (
                        f"{type(m).__name__}.{name}",
                        lambda m=m, name=name: getattr(m, name),
                        lambda v, m=m, name=name: setattr(m, name, v),
                        "size",
                    )
                )
    return found


def same(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if a is None or b is None:
        return a is b
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)


def expect(obj):
    """What a run on ``obj`` with a stand-in of other values must give to count as right, or
    None when no other result is right (only losses take other inputs: their arguments)."""
    return loss_reference(obj) if isinstance(obj, LossCase) else None


def sweep(name, make, run):
    """Run ``run(make())`` once untouched, then once per hostile attribute; print outcomes."""
    reference = run(make())
    failures = 0
    for label, get, _, kind in attributes(make()):
        swaps = variants(get()) if kind == "array" else size_variants(get())
        for variant, value, same_values in swaps:
            obj = make()
            setter = next(s for lab, _, s, _ in attributes(obj) if lab == label)
            case = f"{name}: {label} {variant}"
            print(f"run  {case}", flush=True)  # the last line printed names a crash
            try:
                setter(copy.copy(value))  # a Parameter refuses a non-array at once
                result = run(obj)
            except CLEAN as e:
                outcome = f"refused: {type(e).__name__}: {str(e)[:100]}"
            except Exception as e:  # noqa: BLE001 - any other kind is what we look for
                outcome = f"FAIL unclear error {type(e).__name__}: {str(e)[:200]}"
            else:
                expected = reference if same_values else expect(obj)
                if expected is not None and same(result, expected):
                    outcome = "same result" if same_values else "accepted, computed right"
                else:
                    outcome = "FAIL a different result" + ("" if same_values else " from bad data")
            failures += outcome.startswith("FAIL")
            print(f"     {case}: {outcome}", flush=True)
    return failures


# -- what is swept ----------------------------------------------------------------------------
X = RNG.standard_normal((6, 4)).astype(np.float32)
LABELS = np.array([0, 1, 2, 0, 1, 2])


def layer_run(layer):
    layer.train()
    y = np.array(layer.forward(X), copy=True)
    dx = layer.backward(np.ones_like(y))
    grads = {n: np.array(p.grad, copy=True) for n, p in layer.named_parameters()}
    layer.eval()
    y_eval = np.array(layer.forward(X), copy=True)
    return {"y": y, "dx": None if dx is None else np.array(dx, copy=True), "eval": y_eval, **grads}


LAYERS = {
    "Linear": lambda: fn.Linear(4, 3, rng=0),
    "Linear relu": lambda: fn.Linear(4, 3, activation="relu", rng=0),
    "Linear nobias tanh": lambda: fn.Linear(4, 3, bias=False, activation="tanh", rng=0),
    "Maxout": lambda: fn.Maxout(4, 3, pieces=2, rng=0),
    "BatchNorm": lambda: fn.BatchNorm(4),
    "Dropout": lambda: fn.Dropout(0.5, rng=0),
    "ReLU": lambda: fn.ReLU(),
    "LeakyReLU": lambda: fn.LeakyReLU(0.1),
    "ELU": lambda: fn.ELU(),
    "Softmax": lambda: fn.Softmax(),
}


X_IMAGES = RNG.standard_normal((3, 2, 6, 5)).astype(np.float32)


def image_run(layer):
    """``layer_run`` on a batch of images (batch, channels, height, width)."""
    global X
    X, rows = X_IMAGES, X
    try:
        return layer_run(layer)
    finally:
        X = rows


IMAGE_LAYERS = {
    "Conv2D": lambda: fn.Conv2D(2, 3, 3, padding=1, rng=0),
    "Conv2D relu nobias stride 2": lambda: fn.Conv2D(
        2, 4, (3, 2), stride=2, bias=False, activation="relu", rng=0
    ),
    "MaxPool2D": lambda: fn.MaxPool2D(3, stride=2, padding=1),
    "AvgPool2D": lambda: fn.AvgPool2D(2, stride=1),
    "GlobalAvgPool2D": lambda: fn.GlobalAvgPool2D(),
    "Flatten": lambda: fn.Flatten(),
    "BatchNorm images": lambda: fn.BatchNorm(2),
}


def model_run(model):
    loss = fn.SoftmaxCrossEntropy()
    model.train()
    value = loss.forward(model.forward(X), LABELS)
    model.backward(loss.backward(), input_grad=False)
    grads = {n: np.array(p.grad, copy=True) for n, p in model.named_parameters()}
    return {"loss": value, "predict": model.predict(X), **grads}


MODELS = {
    "MLP": lambda: fn.MLP([4, 5, 3], seed=0),
    "MLP batchnorm dropout": lambda: fn.MLP([4, 5, 3], batchnorm=True, dropout=0.2, seed=0),
    "Sequential maxout": lambda: fn.Sequential(
        fn.Linear(4, 6, rng=0), fn.BatchNorm(6), fn.Maxout(6, 3, rng=1)
    ),
}


def fit_run(model):
    opt = fn.optim.SGD(model.parameters(), lr=0.1)
    history = fn.fit(model, X, LABELS, optimizer=opt, epochs=2, batch_size=3, verbose=0, seed=0)
    return {"loss": history["loss"], **{n: v for n, v in model.state_dict().items()}}


class LossCase:
    """A loss and the arguments it is called with, as attributes the sweep can replace."""

    def __init__(self, loss, pred, target):
        self.loss, self.pred, self.target = loss, pred, target

    def named_parameters(self):
        return []

    def modules(self):
        return []


def loss_attributes(case):
    return [
        ("pred", lambda: case.pred, lambda v: setattr(case, "pred", v), "array"),
        ("target", lambda: case.target, lambda v: setattr(case, "target", v), "array"),
    ]


def loss_reference(case):
    """The loss and gradient in float64 NumPy on the arguments as fastnn converts them (to
    float32 unless they are float64), or None where fastnn must refuse them."""
    z, t = np.asarray(case.pred), np.asarray(case.target)
    if z.dtype.kind not in "biuf" or t.dtype.kind not in "biuf":
        return None
    dtype = z.dtype if z.dtype in (np.float32, np.float64) else np.float32
    z = z.astype(dtype).astype(np.float64)
    if isinstance(case.loss, fn.MSELoss):
        t = t.astype(dtype).astype(np.float64)
        if t.shape != z.shape:
            return None
        return {"loss": np.mean((z - t) ** 2), "grad": 2 * (z - t) / z.size}
    if z.ndim != 2:
        return None
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    if t.ndim == 1:
        if t.shape != (len(z),) or t.min() < 0 or t.max() >= z.shape[1]:
            return None
        t = np.eye(z.shape[1])[t.astype(np.int64)]
    elif t.shape != z.shape:
        return None
    t = t.astype(dtype).astype(np.float64)
    loss = -np.sum(t * np.log(np.maximum(p, 1e-300))) / len(z)
    return {"loss": loss, "grad": (p * t.sum(axis=1, keepdims=True) - t) / len(z)}


def loss_run(case):
    value = case.loss.forward(case.pred, case.target)
    return {"loss": value, "grad": np.array(case.loss.backward(), copy=True)}


Z = RNG.standard_normal((6, 3)).astype(np.float32)
LOSSES = {
    "SoftmaxCrossEntropy labels": lambda: LossCase(fn.SoftmaxCrossEntropy(), Z.copy(), LABELS),
    "SoftmaxCrossEntropy targets": lambda: LossCase(
        fn.SoftmaxCrossEntropy(), Z.copy(), np.eye(3, dtype=np.float32)[LABELS]
    ),
    "MSELoss": lambda: LossCase(fn.MSELoss(), Z.copy(), np.ones((6, 3), np.float32)),
}


class OptimizerCase:
    """An optimizer after one step, its state buffers and its parameters as attributes."""

    def __init__(self, name, kwargs):
        self.model = fn.MLP([4, 5, 3], seed=0)
        self.opt = fn.optim.get(name, self.model.parameters(), **kwargs)
        for p in self.model.parameters():
            p.grad[...] = 0.5
        self.opt.step()

    def named_parameters(self):
        return self.model.named_parameters()

    def modules(self):
        return []


def optimizer_attributes(case):
    found = model_attributes(case)
    for name in sorted(case.opt.state):
        found.append(
            (
                f"state[{name!r}]",
                lambda name=name: case.opt.state[name],
                lambda v, name=name: case.opt.state.__setitem__(name, v),
                "array",
            )
        )
    return found


def optimizer_run(case):
    case.opt.step()
    return {n: np.array(p.data, copy=True) for n, p in case.model.named_parameters()}


OPTIMIZERS = {
    f"{name} {kw}": (lambda name=name, kw=kw: OptimizerCase(name, kw))
    for name, kw in [
        ("sgd", {"momentum": 0.9}),
        ("nesterov", {}),
        ("adagrad", {}),
        ("rmsprop", {"momentum": 0.9, "centered": True}),
        ("adadelta", {}),
        ("adam", {"amsgrad": True}),
        ("adamw", {}),
    ]
}


model_attributes = attributes


def main(group):
    global attributes
    failures = 0
    if group == "layers":
        for name, make in LAYERS.items():
            failures += sweep(name, make, layer_run)
        for name, make in IMAGE_LAYERS.items():
            failures += sweep(name, make, image_run)
    elif group == "models":
        for name, make in MODELS.items():
            failures += sweep(name, make, model_run)
            failures += sweep(f"fit {name}", make, fit_run)
    elif group == "losses":
        attributes = loss_attributes
        for name, make in LOSSES.items():
            failures += sweep(name, make, loss_run)
    elif group == "optimizers":
        attributes = optimizer_attributes
        for name, make in OPTIMIZERS.items():
            failures += sweep(name, make, optimizer_run)
    else:
        raise SystemExit(f"unknown group {group!r}")
    print(f"done: {failures} failures", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
