"""The one table formatter (fastnn._table): experiments, the tuner and the benchmarks print
their tables with it."""

import pytest

from fastnn._table import format_cell, format_table


def test_table_aligns_columns_and_formats_numbers():
    lines = format_table(["name", "value"], [["a", 0.5], ["bb", 1e-9], ["c", 3]], digits=3)
    assert lines == [
        "name      value",
        "----  ---------",
        "   a      0.500",
        "  bb  1.000e-09",
        "   c          3",
    ]


def test_markdown_table_aligns_numbers_right():
    lines = format_table(["config", "s"], [["T1", 0.0591], ["T3", "-"]], markdown=True)
    assert lines == ["| config | s |", "|---|---:|", "| T1 | 0.0591 |", "| T3 | - |"]


def test_cells_and_rows_are_checked():
    assert [format_cell(v) for v in (True, 7, float("nan"), 2e6, 0.0)] == [
        "True",
        "7",
        "nan",
        "2.0000e+06",
        "0.0000",
    ]
    with pytest.raises(ValueError, match="has 1 cells, expected 2"):
        format_table(["a", "b"], [[1]])
