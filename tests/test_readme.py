"""The README's Python examples run as written, in order, and do what they say."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 3
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    # The first example trains a classifier on a problem a linear model cannot solve.
    assert namespace["accuracy"] > 0.8
    assert max(namespace["errors"].values()) < 1e-6


def test_quick_start_has_exactly_two_commands():
    text = README.read_text()
    quick = text.split("## Quick start", 1)[1]
    block = re.search(r"```sh\n(.*?)```", quick, flags=re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert commands[0].startswith("pip install ") and commands[0].endswith("fastnn train")
    ci = (README.parent / ".ci" / "run").read_text()
    assert commands[1] in ci, "CI must run the README's test command"
