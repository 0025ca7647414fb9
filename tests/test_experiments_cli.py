"""The experiments' registry and the ``fastnn experiment`` command."""

import importlib

import pytest

import fastnn.experiments as ex
from fastnn.cli import main
from fastnn.experiments import _common

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_the_registry_lists_the_courses_sixteen_experiments():
    names = [name for name, _ in ex.list_experiments()]
    assert names[:3] == ["gates", "activations", "gradient-descent"]
    assert names[-1] == "conv-filters"
    assert len(names) == 16 == len(set(names))
    for name, (module, description) in ex.EXPERIMENTS.items():
        assert module == name.replace("-", "_")
        assert description


@pytest.mark.parametrize("name", list(ex.EXPERIMENTS))
def test_every_experiment_runs_from_the_cli_and_writes_png_figures(name, tmp_path, capsys):
    assert main(["experiment", name, "--quick", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    pngs = sorted((tmp_path / name).glob("*.png"))
    assert pngs, f"{name} wrote no figure"
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC
        assert f"wrote {png}" in out
    assert f"{name}: " in out.splitlines()[-1]


def test_functions_are_reachable_by_attribute_and_by_name():
    module = importlib.import_module("fastnn.experiments.gates")
    assert ex.gates is module.gates
    assert ex.run.__doc__
    with pytest.raises(ValueError, match="unknown experiment 'nope'; expected one of gates"):
        ex.run("nope")
    with pytest.raises(TypeError, match="experiment must be a string, one of gates"):
        ex.run(3)
    with pytest.raises(AttributeError):
        ex.not_an_experiment  # noqa: B018


def test_list_and_bad_names_on_the_cli(capsys):
    assert main(["experiment", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(ex.EXPERIMENTS)
    assert main(["experiment", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown experiment 'nope'" in err
    assert main(["experiment"]) == 2
    assert "--list" in capsys.readouterr().err
    assert main(["experiment", "gates", "--seed", "-1"]) == 2
    assert "--seed" in capsys.readouterr().err


def test_common_arguments_are_checked():
    with pytest.raises(ValueError, match="invalid seed: -1; expected an integer >= 0"):
        _common.check_common(False, -1, None)
    with pytest.raises(TypeError, match="quick must be True or False"):
        _common.check_common("yes", 0, None)
    assert _common.check_common(True, 3, "x").name == "x"
