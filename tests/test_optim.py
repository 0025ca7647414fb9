"""Optimizer kernels against their NumPy twins, optimizers against hand-written updates and
torch.optim, state_dict round trips and hyperparameter checks."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from fastnn import optim
from fastnn.kernels import _config
from fastnn.kernels import optim as kernels
from fastnn.kernels.reference import optim as reference
from fastnn.nn.module import Parameter

TOL = {np.float32: dict(rtol=2e-5, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-14)}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


# -- kernels vs reference --------------------------------------------------------------------
def _states(name, rng, n, dtype):
    """State buffers in a valid range for kernel ``name`` (square averages >= mean**2 etc.)."""
    pos = lambda: (np.abs(rng.standard_normal(n)) + 0.1).astype(dtype)  # noqa: E731
    sym = lambda: rng.standard_normal(n).astype(dtype)  # noqa: E731
    if name == "sgd_step":
        return [sym()]
    if name == "adagrad_step":
        return [pos()]
    if name == "rmsprop_step":
        m = (0.5 * rng.standard_normal(n)).astype(dtype)
        return [(m.astype(np.float64) ** 2 + pos()).astype(dtype), m, sym()]
    if name == "adadelta_step":
        return [pos(), pos()]
    m, v = sym(), pos()
    # v_max sometimes below v, so both branches of the max are taken.
    return [m, v, (v * rng.uniform(0.5, 1.5, n)).astype(dtype)]


# (kernel, scalar arguments after decay_mask)
KERNEL_CASES = [
    ("sgd_step", (0.1, 0.0, 0.0, 0.0, False, False)),
    ("sgd_step", (0.1, 0.0, 0.0, 0.3, False, False)),
    ("sgd_step", (0.05, 0.9, 0.2, 0.1, False, False)),
    ("sgd_step", (0.05, 0.9, 0.0, 0.1, True, False)),
    ("sgd_step", (0.05, 0.9, 0.5, 0.1, False, True)),
    ("adagrad_step", (0.1, 0.0, 1e-10)),
    ("adagrad_step", (0.03, 0.2, 1e-3)),
    ("rmsprop_step", (0.01, 0.99, 1e-8, 0.0, 0.0, False)),
    ("rmsprop_step", (0.01, 0.9, 1e-6, 0.1, 0.5, True)),
    ("rmsprop_step", (0.01, 0.95, 1e-8, 0.2, 0.0, True)),
    ("adadelta_step", (1.0, 0.9, 1e-6, 0.0)),
    ("adadelta_step", (0.5, 0.8, 1e-4, 0.1)),
    ("adam_step", (0.01 / (1 - 0.9**3), 0.9, 0.999, 1e-8, 0.0, (1 - 0.999**3) ** 0.5, False)),
    ("adam_step", (0.02, 0.8, 0.99, 1e-6, 0.1, 0.3, True)),
    ("adamw_step", (0.01, 0.1, 0.9, 0.999, 1e-8, 0.01, 0.05, False)),
    ("adamw_step", (0.1, 0.3, 0.5, 0.9, 1e-6, 0.2, 0.5, True)),
]
CASE_IDS = [f"{name}-{i}" for i, (name, _) in enumerate(KERNEL_CASES)]


def _inputs(name, rng, n, dtype):
    params = rng.standard_normal(n).astype(dtype)
    grads = rng.standard_normal(n).astype(dtype)
    mask = (rng.random(n) < 0.5).astype(np.uint8)
    return params, grads, _states(name, rng, n, dtype), mask


def _run(module, name, params, grads, states, mask, scalars):
    """Copies of params and states after one call of ``module.name``; grads must not change."""
    p = params.copy()
    s = [a.copy() for a in states]
    g = grads.copy()
    getattr(module, name)(p, g, *s, mask, *scalars)
    assert_array_equal(g, grads)
    return p, s


def _check_kernel(name, scalars, n, dtype, rng):
    params, grads, states, mask = _inputs(name, rng, n, dtype)
    p_ref, s_ref = _run(reference, name, params, grads, states, mask, scalars)
    p_out, s_out = _run(kernels, name, params, grads, states, mask, scalars)
    assert p_out.dtype == dtype
    assert_allclose(p_out, p_ref, **TOL[dtype])
    for a, b in zip(s_out, s_ref, strict=True):
        assert_allclose(a, b, **TOL[dtype])
    # The update really happened (guards against a kernel that does nothing).
    assert not np.array_equal(p_out, params)


@pytest.mark.nojit
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7])
@pytest.mark.parametrize(("name", "scalars"), KERNEL_CASES, ids=CASE_IDS)
def test_kernel_matches_reference_small(name, scalars, n, dtype, rng):
    _check_kernel(name, scalars, n, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "scalars"), KERNEL_CASES, ids=CASE_IDS)
def test_kernel_matches_reference(name, scalars, dtype, rng):
    _check_kernel(name, scalars, 1001, dtype, rng)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "scalars"), KERNEL_CASES, ids=CASE_IDS)
def test_kernel_parallel_matches_serial_pieces(name, scalars, dtype, rng):
    n = 2 * _config.PARALLEL_MIN + 12345
    assert _config.n_chunks(n) > 1
    params, grads, states, mask = _inputs(name, rng, n, dtype)
    p_par, s_par = _run(kernels, name, params, grads, states, mask, scalars)
    p_ser, s_ser = params.copy(), [a.copy() for a in states]
    cuts = [0, n // 3, 2 * n // 3, n]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        assert _config.n_chunks(hi - lo) == 1
        getattr(kernels, name)(
            p_ser[lo:hi], grads[lo:hi], *[a[lo:hi] for a in s_ser], mask[lo:hi], *scalars
        )
    # Equal up to rounding: LLVM may contract a*b + c*d into an FMA either way round.
    close = dict(rtol=1e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-14)
    assert_allclose(p_par, p_ser, **close)
    for a, b in zip(s_par, s_ser, strict=True):
        assert_allclose(a, b, **close)
    p_ref, _ = _run(reference, name, params, grads, states, mask, scalars)
    assert_allclose(p_par, p_ref, **TOL[dtype])


@pytest.mark.nojit
@pytest.mark.parametrize("name", ["sgd_step", "rmsprop_step", "adam_step", "adamw_step"])
def test_kernel_unused_state_may_be_empty(name, rng):
    # Without momentum / centering / amsgrad the matching buffers are never read.
    n = 9
    params, grads, states, mask = _inputs(name, rng, n, np.float64)
    empty = np.empty(0)
    if name == "sgd_step":
        states, scalars = [empty], (0.1, 0.0, 0.0, 0.1, False, False)
    elif name == "rmsprop_step":
        states, scalars = [states[0], empty, empty], (0.01, 0.9, 1e-8, 0.1, 0.0, False)
    elif name == "adam_step":
        states, scalars = states[:2] + [empty], (0.01, 0.9, 0.99, 1e-8, 0.1, 0.5, False)
    else:
        states, scalars = states[:2] + [empty], (0.01, 0.1, 0.9, 0.99, 1e-8, 0.1, 0.5, False)
    p_ref, s_ref = _run(reference, name, params, grads, states, mask, scalars)
    p_out, s_out = _run(kernels, name, params, grads, states, mask, scalars)
    assert_allclose(p_out, p_ref, **TOL[np.float64])


@pytest.mark.nojit
def test_kernel_weight_decay_only_where_masked():
    # With a zero gradient, SGD's only change is the decay, so masked-off entries stay put.
    p = np.array([1.0, 2.0, -3.0, 4.0])
    mask = np.array([1, 0, 1, 0], dtype=np.uint8)
    kernels.sgd_step(p, np.zeros(4), np.empty(0), mask, 0.5, 0.0, 0.0, 0.1, False, False)
    assert_allclose(p, [1.0 * 0.95, 2.0, -3.0 * 0.95, 4.0], rtol=1e-15)
    p = np.array([1.0, 2.0])
    kernels.adamw_step(
        p,
        np.zeros(2),
        np.zeros(2),
        np.zeros(2),
        np.empty(0),
        np.array([0, 1], dtype=np.uint8),
        0.5,
        0.5,
        0.9,
        0.999,
        1e-8,
        0.1,
        1.0,
        False,
    )
    assert_allclose(p, [1.0, 2.0 * 0.95], rtol=1e-15)


@settings(deadline=None, max_examples=25)
@given(
    case=st.integers(0, len(KERNEL_CASES) - 1),
    n=st.integers(1, 300),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(1e-3, 1e3),
)
def test_kernel_property_random(case, n, dtype, seed, scale):
    rng = np.random.default_rng(seed)
    name, scalars = KERNEL_CASES[case]
    params, grads, states, mask = _inputs(name, rng, n, dtype)
    grads = (grads * scale).astype(dtype)
    p_ref, s_ref = _run(reference, name, params, grads, states, mask, scalars)
    p_out, s_out = _run(kernels, name, params, grads, states, mask, scalars)
    # Relative to each array's magnitude: a few roundings of its largest terms.
    rtol = 5e-5 if dtype == np.float32 else 1e-11
    for a, b in zip([p_out, *s_out], [p_ref, *s_ref], strict=True):
        assert_allclose(a, b, rtol=rtol, atol=rtol * (np.abs(b).max() + 1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_zero_over_zero_and_nan_propagate(dtype):
    # eps = 0 is allowed: 0/0 must give NaN as in torch, not raise, and NaN must flow through.
    mask = np.zeros(3, dtype=np.uint8)
    grads = np.array([0.0, 2.0, np.nan], dtype=dtype)
    results = []
    for module in (kernels, reference):
        p, h = np.ones(3, dtype=dtype), np.zeros(3, dtype=dtype)
        with np.errstate(invalid="ignore"):
            module.adagrad_step(p, grads, h, mask, 0.5, 0.0, 0.0)
        results.append(p)
    assert_array_equal(results[0], results[1])
    assert np.isnan(results[0][0]) and np.isnan(results[0][2])
    assert results[0][1] == dtype(0.5)
    p, m, v = np.ones(3, dtype=dtype), np.zeros(3, dtype=dtype), np.zeros(3, dtype=dtype)
    kernels.adam_step(
        p, grads, m, v, np.zeros(3, dtype=dtype), mask, 0.1, 0.9, 0.999, 1e-8, 0.0, 1.0, True
    )
    assert np.isnan(p[2]) and np.isfinite(p[:2]).all()


# -- closed-form updates on f(w) = 0.5 * sum(a * w**2) ---------------------------------------
A = np.array([0.5, 1.0, 2.0, 3.0])
W0 = np.array([1.0, -2.0, 0.5, 3.0])


def _quadratic(opt_cls, steps, **kw):
    """Run ``steps`` steps on the quadratic; return the list of iterates (w0 first)."""
    p = Parameter(W0.copy(), decay=True)
    opt = opt_cls([p], **kw)
    out = [p.data.copy()]
    for _ in range(steps):
        p.grad[...] = A * p.data
        opt.step()
        out.append(p.data.copy())
    return out


@pytest.mark.nojit
def test_sgd_quadratic_closed_form():
    lr = 0.1
    ws = _quadratic(optim.SGD, 5, lr=lr)
    for k, w in enumerate(ws):
        assert_allclose(w, (1 - lr * A) ** k * W0, rtol=1e-14)


@pytest.mark.nojit
def test_sgd_weight_decay_quadratic_closed_form():
    lr, wd = 0.1, 0.05
    ws = _quadratic(optim.SGD, 4, lr=lr, weight_decay=wd)
    for k, w in enumerate(ws):
        assert_allclose(w, (1 - lr * (A + wd)) ** k * W0, rtol=1e-14)


@pytest.mark.nojit
def test_momentum_quadratic_recurrence():
    lr, mu = 0.1, 0.9
    ws = _quadratic(optim.Momentum, 6, lr=lr, momentum=mu)
    w, b = W0.copy(), None
    for k in range(1, 7):
        g = A * w
        b = g if b is None else mu * b + g
        w = w - lr * b
        assert_allclose(ws[k], w, rtol=1e-14)
    # Second step written out: w2 = w1 - lr * (mu * a*w0 + a*w1).
    w1 = W0 - lr * A * W0
    assert_allclose(ws[2], w1 - lr * (mu * A * W0 + A * w1), rtol=1e-14)


@pytest.mark.nojit
def test_nesterov_quadratic_recurrence():
    lr, mu = 0.1, 0.8
    ws = _quadratic(optim.Nesterov, 5, lr=lr, momentum=mu)
    w, b = W0.copy(), np.zeros(4)
    for k in range(1, 6):
        g = A * w
        b = mu * b + g
        w = w - lr * (g + mu * b)
        assert_allclose(ws[k], w, rtol=1e-14)


@pytest.mark.nojit
def test_adam_first_step_is_lr_times_sign():
    lr = 0.01
    ws = _quadratic(optim.Adam, 1, lr=lr)
    g = A * W0
    assert_allclose(ws[1], W0 - lr * g / (np.abs(g) + 1e-8), rtol=1e-14)
    assert_allclose(ws[1] - W0, -lr * np.sign(g), rtol=1e-7)


@pytest.mark.nojit
def test_adamw_first_step():
    lr, wd = 0.01, 0.1
    ws = _quadratic(optim.AdamW, 1, lr=lr, weight_decay=wd)
    g = A * W0
    assert_allclose(ws[1], W0 * (1 - lr * wd) - lr * g / (np.abs(g) + 1e-8), rtol=1e-14)


@pytest.mark.nojit
def test_adagrad_first_two_steps():
    lr, eps = 0.1, 1e-10
    ws = _quadratic(optim.AdaGrad, 2, lr=lr)
    g1 = A * W0
    assert_allclose(ws[1], W0 - lr * g1 / (np.abs(g1) + eps), rtol=1e-14)
    g2 = A * ws[1]
    h = g1**2 + g2**2
    assert_allclose(ws[2], ws[1] - lr * g2 / (np.sqrt(h) + eps), rtol=1e-14)


@pytest.mark.nojit
def test_rmsprop_first_step():
    lr, alpha = 0.01, 0.99
    ws = _quadratic(optim.RMSprop, 1, lr=lr)
    g = A * W0
    assert_allclose(ws[1], W0 - lr * g / (np.sqrt(1 - alpha) * np.abs(g) + 1e-8), rtol=1e-13)


@pytest.mark.nojit
def test_adadelta_first_step():
    rho, eps = 0.9, 1e-6
    ws = _quadratic(optim.AdaDelta, 1)
    g = A * W0
    d = np.sqrt(eps) / np.sqrt((1 - rho) * g * g + eps) * g
    assert_allclose(ws[1], W0 - d, rtol=1e-14)


# -- the course's forms ----------------------------------------------------------------------
def _grad_sequence(rng, steps, shape):
    return [rng.standard_normal(shape) for _ in range(steps)]


def test_course_momentum_equals_momentum(rng):
    lr, mu = 0.05, 0.9
    w0 = rng.standard_normal((3, 4))
    grads = _grad_sequence(rng, 10, w0.shape)
    p = Parameter(w0.copy(), decay=True)
    opt = optim.Momentum([p], lr=lr, momentum=mu)
    w, v = w0.copy(), np.zeros_like(w0)
    for g in grads:
        v = mu * v - lr * g  # course: v <- a*v - lr*dW; W <- W + v
        w = w + v
        p.grad[...] = g
        opt.step()
        assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


def test_course_nesterov_equals_nesterov(rng):
    lr, mu = 0.05, 0.9
    w0 = rng.standard_normal(5)
    grads = _grad_sequence(rng, 10, w0.shape)
    p = Parameter(w0.copy())
    opt = optim.Nesterov([p], lr=lr, momentum=mu)
    w, v = w0.copy(), np.zeros_like(w0)
    for g in grads:
        v_old = v
        v = mu * v - lr * g
        w = w + mu * mu * v_old - (1 + mu) * lr * g
        p.grad[...] = g
        opt.step()
        assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


def test_course_adagrad_equals_adagrad(rng):
    lr, eps = 0.1, 1e-7
    w0 = rng.standard_normal(6)
    grads = _grad_sequence(rng, 10, w0.shape)
    p = Parameter(w0.copy())
    opt = optim.AdaGrad([p], lr=lr, eps=eps)
    w, h = w0.copy(), np.zeros_like(w0)
    for g in grads:
        h += g * g
        w -= lr * g / (np.sqrt(h) + eps)
        p.grad[...] = g
        opt.step()
        assert_allclose(p.data, w, rtol=1e-12, atol=1e-14)


# -- against torch.optim ---------------------------------------------------------------------
# (fastnn class, fastnn kwargs, torch class, extra torch kwargs)
TORCH_CASES = [
    ("SGD", dict(lr=0.1), "SGD", {}),
    ("SGD", dict(lr=0.1, weight_decay=0.1), "SGD", {}),
    ("SGD", dict(lr=0.05, momentum=0.9), "SGD", {}),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.05), "SGD", {}),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), "SGD", {}),
    ("Momentum", dict(lr=0.05, weight_decay=0.02), "SGD", dict(momentum=0.9)),
    ("Nesterov", dict(lr=0.05), "SGD", dict(momentum=0.9, nesterov=True)),
    ("AdaGrad", dict(lr=0.1), "Adagrad", {}),
    (
        "AdaGrad",
        dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-8),
        "Adagrad",
        {},
    ),
    ("RMSprop", dict(), "RMSprop", {}),
    ("RMSprop", dict(lr=0.01, weight_decay=0.1, momentum=0.5), "RMSprop", {}),
    ("RMSprop", dict(lr=0.01, centered=True), "RMSprop", {}),
    (
        "RMSprop",
        dict(lr=0.01, alpha=0.9, centered=True, momentum=0.9, weight_decay=0.01),
        "RMSprop",
        {},
    ),
    ("AdaDelta", dict(), "Adadelta", {}),
    ("AdaDelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1), "Adadelta", {}),
    ("Adam", dict(), "Adam", {}),
    ("Adam", dict(lr=0.01, weight_decay=0.1), "Adam", {}),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.05), "Adam", {}),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.5), eps=1e-6), "Adam", {}),
    ("AdamW", dict(), "AdamW", {}),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True), "AdamW", {}),
]


def _model_params(rng, dtype=np.float64):
    shapes = [((5, 4), True), ((4,), False), ((4, 3), True), ((3,), False), ((1, 1), True)]
    return [Parameter(rng.standard_normal(s).astype(dtype), decay=d) for s, d in shapes]


def _torch_optimizer(torch, params, torch_name, kw, extra):
    kw = dict(kw, **extra)
    wd = kw.pop("weight_decay", None)
    decayed = [p for p, d in params if d]
    others = [p for p, d in params if not d]
    groups = [{"params": decayed}, {"params": others, "weight_decay": 0.0}]
    if wd is not None:
        groups[0]["weight_decay"] = wd
    return getattr(torch.optim, torch_name)(groups, foreach=False, **kw)


@pytest.mark.parametrize(
    ("name", "kw", "torch_name", "extra"),
    TORCH_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(TORCH_CASES)],
)
def test_matches_torch(name, kw, torch_name, extra, rng):
    torch = pytest.importorskip("torch")
    params = _model_params(rng)
    tparams = [(torch.tensor(p.data.copy(), requires_grad=True), p.decay) for p in params]
    opt = getattr(optim, name)(params, **kw)
    topt = _torch_optimizer(torch, tparams, torch_name, kw, extra)
    for step in range(10):
        if step == 6:  # a schedule changing lr between steps
            opt.lr = opt.lr * 0.5
            for group in topt.param_groups:
                group["lr"] *= 0.5
        for p, (tp, _) in zip(params, tparams, strict=True):
            g = rng.standard_normal(p.shape)
            p.grad[...] = g
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
        for p, (tp, _) in zip(params, tparams, strict=True):
            assert_allclose(p.data, tp.detach().numpy(), rtol=1e-11, atol=1e-13)
    # Same state, buffer by buffer, under torch's names.
    tkeys = {k for k, v in topt.state[tparams[0][0]].items() if k != "step" and v is not None}
    assert set(opt.state) == tkeys
    for key, buf in opt.state.items():
        tbuf = np.concatenate([topt.state[tp][key].numpy().ravel() for tp, _ in tparams])
        assert_allclose(buf, tbuf, rtol=1e-11, atol=1e-13)


def test_adam_float32_matches_torch(rng):
    torch = pytest.importorskip("torch")
    params = _model_params(rng, np.float32)
    tparams = [(torch.tensor(p.data.copy(), requires_grad=True), p.decay) for p in params]
    opt = optim.Adam(params, lr=0.01, weight_decay=0.1)
    topt = _torch_optimizer(torch, tparams, "Adam", dict(lr=0.01, weight_decay=0.1), {})
    for _ in range(10):
        for p, (tp, _) in zip(params, tparams, strict=True):
            g = rng.standard_normal(p.shape).astype(np.float32)
            p.grad[...] = g
            tp.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
    for p, (tp, _) in zip(params, tparams, strict=True):
        assert p.data.dtype == np.float32
        assert_allclose(p.data, tp.detach().numpy(), rtol=1e-5, atol=1e-6)


# -- state_dict ------------------------------------------------------------------------------
ROUND_TRIP = [
    ("SGD", dict(lr=0.05, momentum=0.9, weight_decay=0.1)),
    ("Momentum", dict(lr=0.05)),
    ("Nesterov", dict(lr=0.05)),
    ("AdaGrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.1)),
    ("RMSprop", dict(momentum=0.5, centered=True, weight_decay=0.1)),
    ("AdaDelta", dict(weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("AdamW", dict(lr=0.01, amsgrad=True)),
]


@pytest.mark.parametrize("through_npz", [False, True])
@pytest.mark.parametrize(("name", "kw"), ROUND_TRIP, ids=[c[0] for c in ROUND_TRIP])
def test_state_dict_round_trip(name, kw, through_npz, rng):
    cls = getattr(optim, name)
    params = _model_params(rng)
    grads = [[rng.standard_normal(p.shape) for p in params] for _ in range(6)]
    opt = cls(params, **kw)

    def step(o, ps, gs):
        for p, g in zip(ps, gs, strict=True):
            p.grad[...] = g
        o.step()

    for gs in grads[:3]:
        step(opt, params, gs)
    state = opt.state_dict()
    if through_npz:
        f = io.BytesIO()
        np.savez(f, **state)
        f.seek(0)
        state = np.load(f)  # an NpzFile, read lazily: a Mapping, not a dict
    # A fresh optimizer with default settings picks up everything from the state.
    params2 = [Parameter(p.data.copy(), decay=p.decay) for p in params]
    opt2 = cls(params2)
    opt2.load_state_dict(state)
    assert repr(opt2) == repr(opt)
    assert opt2.step_count == 3
    for gs in grads[3:]:
        step(opt, params, gs)
        step(opt2, params2, gs)
    for p, p2 in zip(params, params2, strict=True):
        assert_array_equal(p.data, p2.data)


def test_state_dict_contents(rng):
    params = _model_params(rng)
    opt = optim.Adam(params, lr=0.02)
    assert opt.state_dict() == {
        "optimizer": "Adam",
        "step": 0,
        "lr": 0.02,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "weight_decay": 0.0,
        "amsgrad": False,
    }
    opt.step()
    sd = opt.state_dict()
    assert sd["step"] == 1
    assert set(sd) >= {"exp_avg", "exp_avg_sq"} and "max_exp_avg_sq" not in sd
    sd["exp_avg"][:] = 123.0
    assert not np.any(opt.state["exp_avg"] == 123.0)


def test_load_state_dict_rejects_bad_input(rng):
    params = _model_params(rng)
    opt = optim.Adam(params)
    opt.step()
    good = opt.state_dict()
    n = opt.num_values
    with pytest.raises(ValueError, match=rf"state_dict\['exp_avg'\]: expected shape \({n},\)"):
        opt.load_state_dict(dict(good, exp_avg=np.zeros(n + 1)))
    with pytest.raises(ValueError, match="is for optimizer 'SGD', not 'Adam'"):
        opt.load_state_dict(dict(good, optimizer="SGD"))
    with pytest.raises(ValueError, match=r"missing keys \['eps'\]"):
        opt.load_state_dict({k: v for k, v in good.items() if k != "eps"})
    with pytest.raises(ValueError, match=r"unexpected keys \['sum'\]"):
        opt.load_state_dict(dict(good, sum=np.zeros(n)))
    with pytest.raises(ValueError, match="invalid learning rate: -1"):
        opt.load_state_dict(dict(good, lr=-1))
    with pytest.raises(TypeError, match=r"state_dict\['step'\] must be an integer"):
        opt.load_state_dict(dict(good, step=1.5))
    # Nothing was changed by the failed loads.
    assert opt.lr == 1e-3 and opt.step_count == 1
    assert_array_equal(opt.state["exp_avg"], good["exp_avg"])
    with pytest.raises(ValueError, match="nesterov momentum requires"):
        optim.SGD(params, momentum=0.9).load_state_dict(
            {
                "optimizer": "SGD",
                "step": 0,
                "lr": 0.1,
                "momentum": 0.0,
                "dampening": 0.0,
                "weight_decay": 0.0,
                "nesterov": True,
            }
        )


PLAIN = [("SGD", {}), ("RMSprop", {}), ("Adam", {})]


@pytest.mark.parametrize(("name", "kw"), ROUND_TRIP + PLAIN, ids=str)
def test_a_state_that_lost_a_buffer_its_steps_read_is_refused(name, kw, rng):
    # A checkpoint missing a moment would otherwise restart it from zero: no error, another
    # run. buffers_in_use() names exactly the buffers the steps created.
    params = _model_params(rng)
    opt = getattr(optim, name)(params, **kw)
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    opt.step()
    state = opt.state_dict()
    assert (
        set(opt.buffers_in_use())
        == set(opt.state)
        == {k for k, v in state.items() if isinstance(v, np.ndarray)}
    )
    fresh = getattr(optim, name)(params, **kw)
    for lost in opt.buffers_in_use():
        with pytest.raises(ValueError, match=rf"after step 1 lacks the state \['{lost}'\]"):
            fresh.load_state_dict({k: v for k, v in state.items() if k != lost})
        assert fresh.step_count == 0 and not fresh.state
    fresh.load_state_dict(state)
    assert fresh.step_count == 1


# -- hyperparameters, helpers ----------------------------------------------------------------
BAD = [
    (lambda ps: optim.SGD(ps, lr=-1), ValueError, "invalid learning rate: -1"),
    (lambda ps: optim.SGD(ps, lr=float("nan")), ValueError, "invalid learning rate: nan"),
    (lambda ps: optim.SGD(ps, momentum=-0.1), ValueError, "invalid momentum value: -0.1"),
    (lambda ps: optim.SGD(ps, weight_decay=-1e-4), ValueError, "invalid weight_decay value"),
    (lambda ps: optim.SGD(ps, nesterov=True), ValueError, "nesterov momentum requires"),
    (
        lambda ps: optim.SGD(ps, momentum=0.9, dampening=0.1, nesterov=True),
        ValueError,
        "nesterov momentum requires",
    ),
    (lambda ps: optim.Nesterov(ps, momentum=0), ValueError, "nesterov momentum requires"),
    (
        lambda ps: optim.Adam(ps, betas=(1.0, 0.999)),
        ValueError,
        "invalid beta parameter at index 0: 1.0",
    ),
    (
        lambda ps: optim.Adam(ps, betas=(0.9, -0.1)),
        ValueError,
        "invalid beta parameter at index 1: -0.1",
    ),
    (lambda ps: optim.Adam(ps, betas=(0.9,)), ValueError, "betas must be a pair"),
    (lambda ps: optim.AdamW(ps, eps=-1e-8), ValueError, "invalid epsilon value"),
    (lambda ps: optim.AdaGrad(ps, lr_decay=-1), ValueError, "invalid lr_decay value"),
    (
        lambda ps: optim.AdaGrad(ps, initial_accumulator_value=-1),
        ValueError,
        "invalid initial_accumulator_value",
    ),
    (lambda ps: optim.RMSprop(ps, alpha=-0.5), ValueError, "invalid alpha value"),
    (lambda ps: optim.AdaDelta(ps, rho=1.5), ValueError, "invalid rho value: 1.5"),
    (lambda ps: optim.SGD(ps, lr="fast"), TypeError, "learning rate must be a real number"),
    (lambda ps: optim.Adam(ps, amsgrad="yes"), TypeError, "amsgrad must be True or False"),
    (lambda ps: optim.SGD([]), ValueError, "empty parameter list"),
    (lambda ps: optim.SGD([np.zeros(3)]), TypeError, "expected a fastnn Parameter"),
]


@pytest.mark.parametrize(("make", "exc", "match"), BAD)
def test_bad_hyperparameters(make, exc, match, rng):
    with pytest.raises(exc, match=match):
        make(_model_params(rng))


def test_lr_assignment_is_checked_and_used(rng):
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="invalid learning rate: -0.5"):
        opt.lr = -0.5
    assert opt.lr == 0.1
    opt.lr = 0.25
    p.grad[...] = 2.0
    opt.step()
    assert_allclose(p.data, 1 - 0.25 * 2.0)


def test_zero_grad(rng):
    params = _model_params(rng)
    opt = optim.Adam(params)
    for p in params:
        p.grad[...] = rng.standard_normal(p.shape)
    opt.zero_grad()
    for p in params:
        assert p.grad.shape == p.data.shape
        assert not np.any(p.grad)


def test_repr_and_get(rng):
    params = _model_params(rng)
    assert repr(optim.SGD(params, lr=0.5)) == (
        "SGD(lr=0.5, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False)"
    )
    for name, cls in [
        ("sgd", optim.SGD),
        ("Momentum", optim.Momentum),
        ("NESTEROV", optim.Nesterov),
        ("adagrad", optim.Adagrad),
        ("RMSprop", optim.RMSprop),
        ("adadelta", optim.Adadelta),
        ("Adam", optim.Adam),
        ("adamw", optim.AdamW),
    ]:
        opt = optim.get(name, params, lr=0.2)
        assert type(opt) is cls and opt.lr == 0.2
    assert optim.AdaGrad is optim.Adagrad and optim.AdaDelta is optim.Adadelta
    with pytest.raises(
        ValueError,
        match="unknown optimizer 'lbfgs'; expected one of sgd, "
        "momentum, nesterov, adagrad, rmsprop, adadelta, adam, "
        "adamw",
    ):
        optim.get("lbfgs", params)
    assert optim.get("adamw", params).weight_decay == 1e-2


def test_parameters_rebound_after_optimizer_made(rng):
    # Module.to replaces each parameter's arrays; the optimizer follows them, state included.
    params = _model_params(rng, np.float32)
    opt = optim.Momentum(params, lr=0.1)
    for p in params:
        p.grad[...] = 1.0
    opt.step()
    before = [p.data.astype(np.float64) for p in params]
    for p in params:
        p.data = p.data.astype(np.float64)
        p.grad = np.full(p.shape, 1.0)
    opt.step()
    assert opt.state["momentum_buffer"].dtype == np.float64
    for p, b in zip(params, before, strict=True):
        assert p.data.dtype == np.float64
        # b = 0.9 * 1 + 1 = 1.9 on the second step.
        assert_allclose(p.data, b - 0.1 * 1.9, rtol=1e-6)


def test_one_kernel_call_updates_all_parameters(rng):
    params = _model_params(rng)
    opt = optim.SGD(params, lr=0.1)
    data = opt._data
    for p in params:
        assert np.shares_memory(p.data, data)
    assert opt.num_values == sum(p.size for p in params)


def test_a_step_does_not_walk_the_parameters(rng, monkeypatch):
    # The optimizer re-takes its flat buffers only after some Parameter's arrays were replaced
    # (one integer comparison per step), not by looking at every parameter on every step.
    from fastnn.optim import base

    params = _model_params(rng)
    opt = optim.Adam(params, lr=0.1)
    packs = []
    real = base.pack_parameters
    monkeypatch.setattr(base, "pack_parameters", lambda ps: packs.append(1) or real(ps))
    for _ in range(20):
        opt.step()
    assert packs == []
    params[0].data = params[0].data.copy()  # a swapped array of the same shape
    params[0].grad = np.ones_like(params[0].data)
    opt.step()
    assert len(packs) == 1  # looked once, packed it back in
    assert np.shares_memory(params[0].data, opt.flat_buffers()[0])
    for _ in range(5):
        opt.step()
    assert len(packs) == 1


def test_parameters_that_change_size_are_refused_at_every_step(rng):
    # The optimizer keeps its state at the old size and refuses each step: it never runs its
    # kernel over buffers of different sizes.
    params = _model_params(rng)
    opt = optim.Adam(params, lr=0.1)
    opt.step()
    size = opt.num_values
    dtype = params[-1].data.dtype
    params[-1].data = np.zeros(1000, dtype)
    params[-1].grad = np.ones(1000, dtype)
    for _ in range(2):
        with pytest.raises(ValueError, match=f"parameters changed size .*{size} values"):
            opt.step()
    assert opt.state["exp_avg"].size == size and opt.num_values == size


def test_module_to_is_followed_by_the_optimizer_before_fit_reads_its_buffers():
    # fit reads the optimizer's flat buffers (for clipping and the divergence snapshot) before
    # the first step: they must be the model's current ones after model.to().
    import fastnn as fn

    model = fn.MLP([4, 8, 3], seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model.to(np.float64)
    data, grad = opt.flat_buffers()
    assert data.dtype == np.float64
    assert all(np.shares_memory(p.data, data) for p in model.parameters())
    assert all(np.shares_memory(p.grad, grad) for p in model.parameters())


# -- the gradient's norm and its scaling (kernels.optim.flat_norm, scale_flat) ---------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 7, 1000, 120_001])
def test_flat_norm_matches_its_twin_and_float64(dtype, n):
    a = np.random.default_rng(n).standard_normal(n).astype(dtype)
    exact = np.sqrt(np.sum(a.astype(np.float64) ** 2))
    # Summed in float64 (in an order of LLVM's choosing): within a few float64 ulps.
    assert_allclose(kernels.flat_norm(a), exact, rtol=1e-13)
    assert_allclose(reference.flat_norm(a), exact, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_flat_norm_special_values(dtype):
    big = np.finfo(dtype).max
    for a, want in [
        (np.array([big, big], dtype), big * np.sqrt(2.0)),  # squares overflow, norm does not
        (np.array([1.0, np.inf, -2.0], dtype), np.inf),
        (np.array([np.inf, np.nan], dtype), np.nan),
        (np.array([np.nan, 1.0], dtype), np.nan),
    ]:
        for f in (kernels.flat_norm, reference.flat_norm):
            got = f(a)
            if np.isnan(want):
                assert np.isnan(got)
            else:
                assert_allclose(got, want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_flat_matches_its_twin(dtype):
    a = np.random.default_rng(1).standard_normal(999).astype(dtype)
    b = a.copy()
    kernels.scale_flat(a, 0.1)
    reference.scale_flat(b, 0.1)
    assert_array_equal(a, b)  # the factor rounded to the dtype first, then one product each
