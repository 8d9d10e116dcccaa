"""Terminal charts for the reports screen (pure Rich renderables): block sparklines and
labelled horizontal bars, the terminal twins of the HTML report's SVG charts."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

BLOCKS = " ▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int | float]) -> str:
    """One character per value, scaled to the largest (an empty series is blank)."""
    peak = max([*values, 0])
    if peak <= 0:
        return "▁" * len(values)
    return "".join(BLOCKS[max(1, round(v / peak * (len(BLOCKS) - 1)))] if v else "▁"
                   for v in values)


def bar_table(rows: Sequence[tuple[str, float, str, str]], width: int = 24) -> Table:
    """(label, value, note, style) per row: a bar scaled to the largest value."""
    table = Table.grid(padding=(0, 1))
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(justify="right", no_wrap=True)
    table.add_column(style="dim", no_wrap=True)
    peak = max([v for _, v, _, _ in rows] + [1])
    for label, value, note, style in rows:
        cells = round(width * value / peak)
        table.add_row(label, Text("█" * cells + "·" * (width - cells), style=style or "cyan"),
                      f"{value:g}", note)
    return table
