"""Every public layer, model (also through fit), loss and optimizer with each array it holds
replaced by a wrong-shaped, wrong-dtype, read-only, non-contiguous or non-array stand-in, and
each size attribute by another size (``tests/hostile_sweep.py``): a clear ValueError or
TypeError, or the same result as untouched, never a crash. Each group runs in a subprocess so
that a crash (a kernel writing out of bounds) fails its test, not the test run; CI runs these
again with NUMBA_BOUNDSCHECK=1, under which an out-of-bounds access fails as an IndexError."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SWEEP = Path(__file__).with_name("hostile_sweep.py")


@pytest.mark.parametrize("group", ["layers", "models", "losses", "optimizers"])
def test_hostile_attributes_are_refused_or_harmless(group):
    proc = subprocess.run(
        [sys.executable, str(SWEEP), group],
        capture_output=True,
        text=True,
        timeout=900,
        env=dict(os.environ, PYTHONFAULTHANDLER="1"),
    )
    lines = proc.stdout.splitlines()
    failures = [line for line in lines if "FAIL" in line]
    assert proc.returncode == 0 and lines[-1] == "done: 0 failures", (
        f"exit {proc.returncode}; last case run: "
        f"{next((x for x in reversed(lines) if x.startswith('run ')), '?')}\n"
        + "\n".join(failures[:20])
        + proc.stderr[-2000:]
    )
    # The sweep did its work: many cases, each refused cleanly or computed as untouched.
    outcomes = [line for line in lines if line.startswith("     ")]
    assert len(outcomes) > 40
    assert any("refused: Invalid" in line for line in outcomes)
    assert any("same result" in line for line in outcomes)
