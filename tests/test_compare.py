"""bench/compare.py runs and reports consistent figures; bench/reference_mode.py swaps every
kernel for its NumPy twin, runs no Numba code under it, and restores everything after."""

import importlib.util
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys

import numba
import numpy as np
import pytest
from numba.core.dispatcher import Dispatcher

import fastnn as fn
import fastnn.kernels.activations
import fastnn.kernels.dropout
import fastnn.nn.normalization

ROOT = pathlib.Path(__file__).resolve().parent.parent
COMPARE = ROOT / "bench" / "compare.py"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reference_mode = _load("reference_mode")
reference_kernels = reference_mode.reference_kernels


def _fastnn_modules():
    return [
        m
        for name, m in list(sys.modules.items())
        if m is not None
        and (name == "fastnn" or name.startswith("fastnn."))
        and not name.startswith("fastnn.kernels")
    ]


def _dispatchers_outside_kernels():
    return [
        f"{m.__name__}.{k}"
        for m in _fastnn_modules()
        for k, v in vars(m).items()
        if isinstance(v, Dispatcher)
    ]


@pytest.fixture
def numba_calls():
    """Names of the Numba functions called from Python while the fixture is active."""
    calls = []

    def spy(self, *args, **kwargs):
        calls.append(self.py_func.__name__)
        return super(Dispatcher, self).__call__(*args, **kwargs)

    assert "__call__" not in vars(Dispatcher)
    Dispatcher.__call__ = spy
    try:
        yield calls
    finally:
        del Dispatcher.__call__  # back to the C-level call


# -- reference_kernels ----------------------------------------------------------------------
def test_reference_kernels_patches_every_twin_and_restores():
    pairs = reference_mode.kernel_twins()
    assert len(pairs) >= 30
    assert {name for _, name, _, _ in pairs} >= {"relu_forward", "adam_step", "dropout_forward"}
    assert _dispatchers_outside_kernels()  # e.g. fastnn.nn.normalization.batchnorm_forward_train
    with reference_kernels() as patched:
        for module, name, _, twin in pairs:
            assert getattr(module, name) is twin, f"{module.__name__}.{name}"
            assert f"{module.__name__}.{name}" in patched
        assert _dispatchers_outside_kernels() == []
        assert "fastnn.nn.normalization.batchnorm_forward_train" in patched
        assert "fastnn.nn.dropout.dropout_forward" in patched
    for module, name, kernel, _ in pairs:
        assert getattr(module, name) is kernel
    assert isinstance(fastnn.nn.normalization.batchnorm_forward_train, Dispatcher)


def test_reference_kernels_restores_after_an_exception():
    before = {m.__name__: dict(vars(m)) for m in _fastnn_modules()}
    pairs = reference_mode.kernel_twins()
    with pytest.raises(RuntimeError, match="boom"), reference_kernels():
        raise RuntimeError("boom")
    for module, name, kernel, _ in pairs:
        assert getattr(module, name) is kernel
    for m in _fastnn_modules():
        for k, v in before.get(m.__name__, {}).items():
            if isinstance(v, Dispatcher):
                assert vars(m)[k] is v, f"{m.__name__}.{k}"


def test_reference_kernels_nested_is_harmless():
    with reference_kernels(), reference_kernels() as inner:
        assert inner == []
    assert isinstance(fastnn.kernels.activations.relu_forward, Dispatcher)


def test_kernel_without_twin_is_refused(monkeypatch):
    def fake_kernel(x):
        return x

    fake_kernel.__module__ = "fastnn.kernels.dropout"
    monkeypatch.setattr(
        fastnn.kernels.dropout, "fake_kernel", numba.njit(fake_kernel), raising=False
    )
    with pytest.raises(LookupError, match="fastnn.kernels.dropout.fake_kernel"):
        reference_mode.kernel_twins()
    with pytest.raises(LookupError), reference_kernels():
        pass


def _train(optimizer, data):
    x, y = data
    model = fn.MLP([12, 16, 16, 3], batchnorm=True, dropout=0.2, seed=0)
    params = model.parameters()
    opt = fn.optim.SGD(params, lr=0.1) if optimizer == "sgd" else fn.optim.Adam(params, lr=1e-3)
    history = fn.fit(model, x, y, optimizer=opt, epochs=2, batch_size=16, verbose=0, seed=0)
    return model.state_dict(), history["loss"]


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_training_under_reference_matches_kernels(optimizer, numba_calls):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((80, 12), dtype=np.float32), rng.integers(0, 3, 80)
    kernel_state, kernel_loss = _train(optimizer, data)
    # The compiled step (train_steps) by default; its reference here is the NumPy twins'.
    assert {"train_steps", "bias_act_forward", "affine_forward"} & set(numba_calls)
    numba_calls.clear()
    with reference_kernels():
        ref_state, ref_loss = _train(optimizer, data)
    assert numba_calls == []  # no Numba function was entered from Python
    np.testing.assert_allclose(ref_loss, kernel_loss, rtol=1e-5)
    assert ref_state.keys() == kernel_state.keys()
    for k in kernel_state:
        np.testing.assert_allclose(ref_state[k], kernel_state[k], rtol=1e-4, atol=1e-5, err_msg=k)


# -- compare.py -----------------------------------------------------------------------------
def _run(args, tmp_path, env=None):
    code = (
        "import sys, runpy; "
        f"sys.path.insert(0, {str(COMPARE.parent)!r}); sys.argv = [{str(COMPARE)!r}, *{args!r}]; "
        f"runpy.run_path({str(COMPARE)!r}, run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _table_rows(stdout):
    """{row name: {column: cell}} over every Markdown table in stdout."""
    rows, columns = {}, None
    for line in stdout.splitlines():
        if not line.startswith("|"):
            columns = None
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if columns is None:
            columns = cells
        elif not set(cells[0]) <= set("-:"):
            rows[cells[0]] = dict(zip(columns, cells, strict=True))
    return rows


@pytest.mark.slow
def test_compare_quick_run(tmp_path):
    out = tmp_path / "tmp" / "out.json"
    stdout = _run(["--quick", "--json", str(out)], tmp_path)
    assert stdout.startswith("# fastnn compare: ")
    assert re.search(r"\| \d+ threads \|.*fastnn \S+, numpy \S+, numba \S+", stdout)
    rows = _table_rows(stdout)
    assert {"T2", "batch=8", "batch=100", "width=64"} <= rows.keys()

    report = json.loads(out.read_text())
    assert report.keys() >= {"machine", "settings", "skipped", "results"}
    assert report["machine"]["threads"] == report["settings"]["threads"] >= 1
    assert report["settings"]["repeats"] == 1
    # One process per implementation, each reporting its own view.
    workers = report["machine"]["implementations"]
    assert list(workers) == report["settings"]["implementations"]
    assert workers["fastnn"]["versions"].keys() >= {"fastnn", "numpy", "numba"}
    assert workers["fastnn"]["omp_wait_policy"] == os.environ.get("OMP_WAIT_POLICY", "PASSIVE")
    assert "fastnn" not in workers["gemm-floor"]["versions"]  # never imported there
    results = {r["name"]: r for r in report["results"]}
    assert results.keys() == {"T2", "batch=8", "batch=100", "width=64"}
    assert results["batch=8"]["extrapolated"] and not results["T2"]["extrapolated"]
    b8 = results["batch=8"]
    assert b8["timed_steps"] * b8["batch_size"] == b8["images"]
    assert b8["scale"] == pytest.approx(b8["steps_per_epoch"] / b8["timed_steps"])
    assert "extrapolated" in stdout
    for name, r in results.items():
        assert r["median"].keys() == r["times"].keys()
        assert {"fastnn", "gemm-floor"} <= r["median"].keys()
        for impl, times in r["times"].items():
            assert len(times) == 1 and times[0] > 0
            assert r["median"][impl] == pytest.approx(statistics.median(times) * r["scale"])
            assert rows[name][impl] == f"{r['median'][impl]:.4f}"
        for key, value in r["ratios"].items():
            a, b = key.split("/")
            assert value == pytest.approx(r["median"][a] / r["median"][b])
            assert rows[name][key] == f"{value:.2f}"
        assert "fastnn/gemm-floor" in r["ratios"]
    if "torch" in report["settings"]["implementations"]:
        assert "fastnn/torch" in results["T2"]["ratios"]
    if "sklearn" in report["settings"]["implementations"]:
        assert "sklearn/fastnn" in results["T2"]["ratios"]
        assert "sklearn" not in results["batch=100"]["median"]  # sweeps leave it out
    assert "fastnn-numpy/fastnn" in results["T2"]["ratios"]


@pytest.mark.slow
def test_compare_without_torch_and_sklearn(tmp_path):
    # Each implementation runs in its own process: hide torch and scikit-learn from all of
    # them with packages that fail to import, first on the path.
    hidden = tmp_path / "hidden"
    for name in ("torch", "sklearn"):
        (hidden / name).mkdir(parents=True)
        (hidden / name / "__init__.py").write_text(f"raise ImportError('{name} hidden')\n")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")])),
    )
    stdout = _run(
        ["--quick", "--sweep", "width", "--impls", "fastnn", "torch", "sklearn", "gemm-floor"],
        tmp_path,
        env=env,
    )
    assert "torch skipped: torch not installed (torch hidden)" in stdout
    assert "sklearn skipped: sklearn not installed (sklearn hidden)" in stdout
    rows = _table_rows(stdout)
    assert rows.keys() == {"T2", "width=64"}
    assert set(rows["T2"]) == {"config", "steps/epoch", "fastnn", "gemm-floor", "fastnn/gemm-floor"}
