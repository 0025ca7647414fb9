"""Every kernel has its NumPy twin (same name, same parameters), a test and a benchmark;
every asv benchmark module imports and each benchmark runs once; the speed script runs."""

import ast
import contextlib
import importlib
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

from fastnn.kernels import reference

ROOT = pathlib.Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "benchmarks"


def _public_kernels():
    """(module, name) of every public function of the public modules of kernels/: the
    compiled kernels and the Python functions that call them (affine's, around BLAS)."""
    found = []
    for path in sorted((ROOT / "kernels").glob("*.py")):
        if path.name.startswith("_"):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                found.append((path.stem, node.name))
    return found


KERNELS = _public_kernels()


def test_kernels_found():
    assert len(KERNELS) >= 30
    assert ("affine", "affine_forward") in KERNELS


@pytest.mark.parametrize("module, name", KERNELS, ids=[n for _, n in KERNELS])
def test_kernel_has_twin_test_and_benchmark(module, name):
    import importlib

    kernel = getattr(importlib.import_module(f"fastnn.kernels.{module}"), name)
    twin = getattr(importlib.import_module(f"fastnn.kernels.reference.{module}"), name, None)
    assert twin is not None, f"{module}.{name} has no NumPy twin in kernels/reference/{module}.py"
    assert getattr(reference, name) is twin
    py_func = getattr(kernel, "py_func", kernel)
    assert list(inspect.signature(twin).parameters) == list(inspect.signature(py_func).parameters)
    word = re.compile(r"\b" + re.escape(name) + r"\b")
    tests = "".join(
        p.read_text() for p in (ROOT / "tests").glob("test_*.py") if p.name != "test_bench.py"
    )
    assert word.search(tests), f"no test names {name}"
    benches = "".join(p.read_text() for p in (ROOT / "bench" / "benchmarks").glob("*.py"))
    assert word.search(benches), f"no benchmark names {name}"


@contextlib.contextmanager
def _bench_path():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        yield
    finally:
        sys.path.remove(str(ROOT / "bench"))


def _bench_module(stem):
    """bench/benchmarks/<stem>.py imported as asv imports it: ``benchmarks.<stem>``."""
    with _bench_path():
        return importlib.import_module(f"benchmarks.{stem}")


def test_every_kernel_has_a_benchmark_case():
    cases = _bench_module("cases")
    assert sorted(cases.CASES) == sorted(name for _, name in KERNELS)


def test_sklearn_compare_script_prints_its_table():
    pytest.importorskip("sklearn")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "sklearn_compare.py"), "--seeds", "1",
         "--datasets", "iris", "diabetes"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| iris")]
    rows += [line for line in proc.stdout.splitlines() if line.startswith("| diabetes")]
    assert len(rows) == 2, proc.stdout
    assert "| accuracy |" in rows[0] and "| R^2 |" in rows[1]


def test_direct_conv_script_computes_the_same_convolutions():
    # The script asserts that the direct loop and im2col + BLAS agree on every case.
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "direct_conv.py"), "--repeat", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert sum(line.startswith("| LeNet-5 conv") for line in proc.stdout.splitlines()) == 2


def test_kernel_speed_script_runs():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "kernel_speed.py"),
            "--rows",
            "4",
            "--cols",
            "8",
            "--repeat",
            "1",
            "--min-time",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for _, name in KERNELS:
        row = next((line for line in lines if line.split()[:1] == [name]), None)
        assert row is not None, f"no row for {name}"
        assert float(row.split()[1]) > 0 and row.endswith("x")


def test_every_kernel_is_timed_and_measured():
    bench = _bench_module("bench_kernels")
    timed = [name for family in bench.FAMILIES for name in family.params[0]]
    assert sorted(timed) == sorted(name for _, name in KERNELS), "a kernel in no family"
    for family in bench.FAMILIES:
        for method in ("time_kernel", "time_reference", "peakmem_kernel", "peakmem_reference"):
            assert callable(getattr(family, method))


BENCH_MODULES = sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__")
BENCHMARK = re.compile(r"^(time|timeraw|peakmem|mem|track)_")


def _benchmark_classes():
    """(module, class) of every public class defined in a benchmark module (read from the
    source, so that a module that fails to import still shows up as failing tests)."""
    found = []
    for stem in BENCH_MODULES:
        for node in ast.parse((BENCH / f"{stem}.py").read_text()).body:
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                found.append((stem, node.name))
    return found


@pytest.mark.parametrize("stem", BENCH_MODULES)
def test_benchmark_module_imports(stem):
    _bench_module(stem)


def _first_params(cls):
    """The first value of each of the class's asv parameters."""
    params = getattr(cls, "params", [])
    if not params:
        return ()
    if len(getattr(cls, "param_names", [])) <= 1 and not isinstance(params[0], (list, tuple)):
        params = [params]
    return tuple(p[0] for p in params)


# Benchmarks too slow for this check: compiling every kernel of a training step anew.
TOO_SLOW = ("timeraw_import_and_first_step_empty_cache",)


def test_training_benchmarks_use_the_mnist_sample():
    x, y = _bench_module("bench_training").mnist()
    assert x.shape == (10_000, 784) and x.dtype == "float32"
    assert 0 <= x.min() and x.max() <= 1
    assert y.shape == (10_000,) and sorted(set(y.tolist())) == list(range(10))


@pytest.mark.parametrize(
    "stem, name", _benchmark_classes(), ids=[f"{m}.{c}" for m, c in _benchmark_classes()]
)
def test_benchmarks_run_once(stem, name, monkeypatch):
    """setup, then each benchmark method once, for the first parameter combination (the
    smallest problem), as asv would call them. Training runs on 1,000 of the images."""
    module = _bench_module(stem)
    if hasattr(module, "mnist"):
        x, y = module.mnist()
        monkeypatch.setattr(module, "mnist", lambda: (x[:1000], y[:1000]))
    cls = getattr(module, name)
    methods = sorted(m for m in dir(cls) if BENCHMARK.match(m) and m not in TOO_SLOW)
    assert methods, f"{name} has no benchmark methods"
    bench = cls()
    first = _first_params(cls)
    # Every kernel of a kernel family (cheap at the first, smallest size); else one set.
    combos = [(k, *first[1:]) for k in cls.params[0]] if stem == "bench_kernels" else [first]
    cache = bench.setup_cache() if hasattr(bench, "setup_cache") else None
    for params in combos:
        if cache is not None:
            params = (cache, *params)
        for method in methods:
            _run_once(bench, method, params)


def _run_once(bench, method, params):
    if hasattr(bench, "setup"):
        bench.setup(*params)
    result = getattr(bench, method)(*params)
    if method.startswith("timeraw_"):
        stmt, setup = result if isinstance(result, tuple) else (result, "")
        code = inspect.cleandoc(setup) + "\n" + inspect.cleandoc(stmt)
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, proc.stderr
    elif method.startswith("track_"):
        assert result > 0
    if hasattr(bench, "teardown"):
        bench.teardown(*params)
