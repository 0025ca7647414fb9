"""Every kernel has its NumPy twin (same name, same parameters), a test and a benchmark;
the speed script runs."""

import ast
import inspect
import pathlib
import re
import subprocess
import sys

import pytest

from fastnn.kernels import reference

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _public_kernels():
    found = []
    for path in sorted((ROOT / "kernels").glob("*.py")):
        if path.name.startswith("_"):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                decorators = ast.unparse(node.decorator_list) if node.decorator_list else ""
                if "jit" in decorators:
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


def test_every_kernel_has_a_benchmark_case():
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from benchmarks.cases import CASES
    finally:
        sys.path.remove(str(ROOT / "bench"))
    assert sorted(CASES) == sorted(name for _, name in KERNELS)


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
