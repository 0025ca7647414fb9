"""The one text-table formatter: experiments, the tuner's results and the benchmarks use it."""

import math

import numpy as np


def format_cell(value, digits=4):
    """``value`` as table text: strings as they are, integers and bools plainly, other numbers
    with ``digits`` decimals (in scientific notation when very small or very large)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    value = float(value)
    if math.isnan(value):
        return "nan"
    if value != 0 and math.isfinite(value) and (abs(value) < 10.0**-digits or abs(value) >= 1e6):
        return f"{value:.{digits}e}"
    return f"{value:.{digits}f}"


def format_table(headers, rows, digits=4, markdown=False):
    """The lines of a table: a header row, a rule, one line per row (cells by ``format_cell``).

    Plain text (the default): columns right-aligned and separated by two spaces, the rule made
    of dashes. ``markdown=True``: a Markdown table, the first column left-aligned and the
    others right-aligned.
    """
    cells = [[str(h) for h in headers]] + [[format_cell(v, digits) for v in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"table row {row} has {len(row)} cells, expected {len(headers)}")
    if markdown:
        rule = "|---|" + "---:|" * (len(headers) - 1)
        lines = ["| " + " | ".join(row) + " |" for row in cells]
        lines.insert(1, rule)
        return lines
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines
