"""The quick start's main job: ``fastnn demo``."""

import io
import subprocess
import sys

import pytest

from fastnn.cli import demo, main


def test_demo_learns_xor_and_spirals():
    out = io.StringIO()
    result = demo(seed=0, epochs=15, out=out)
    text = out.getvalue()
    assert result["xor_accuracy"] == 1.0
    assert result["spirals_test_accuracy"] > 0.9  # chance is 1/3
    assert "1 XOR 1 = 0" in text and "epoch  15" in text


def test_cli_runs_as_module():
    proc = subprocess.run(
        [sys.executable, "-m", "fastnn", "demo", "--epochs", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 XOR 1 = " in proc.stdout and "epoch   2" in proc.stdout


def test_cli_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--epochs", "0"])
    assert exc.value.code == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
