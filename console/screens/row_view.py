"""One row of a list in full: every field unabridged and wrapped, JSON as indented lines
a person reads (never a Python repr), times with their year and zone.

The lists abridge to fit a terminal (an error at 40 characters, a drift detail at 50);
this is where the rest of the text is. ``row_fields`` and ``row_tsv`` are pure, so the
copy-row key and this view show the same values.
"""

from __future__ import annotations

import json
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from rostersync.console import fmt

# Columns that hold JSON text in the database.
JSON_FIELDS = frozenset({"detail", "counts", "payload", "record", "desired"})


def _is_time(key: str) -> bool:
    return key == "at" or key.endswith("_at") or key == "until"


def _scalar(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def readable_lines(value: Any, indent: int = 0) -> list[str]:
    """Nested JSON as 'key: value' lines, lists as '- ' items, two spaces a level."""
    pad = "  " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "(none)"]
        out: list[str] = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{pad}{key}:")
                out += readable_lines(item, indent + 1)
            else:
                out.append(f"{pad}{key}: {_scalar(item) if item not in ({}, []) else '(none)'}")
        return out
    if isinstance(value, list):
        if not value:
            return [pad + "(none)"]
        out = []
        for item in value:
            lines = readable_lines(item, indent + 1)
            # The item's first line carries the dash; the rest keep its indentation.
            out.append(f"{pad}- {lines[0].lstrip()}")
            out += lines[1:]
        return out
    return [pad + _scalar(value)]


def _decoded(key: str, value: Any) -> Any:
    if isinstance(value, str) and (key in JSON_FIELDS or value[:1] in "{["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def field_lines(key: str, value: Any) -> list[str]:
    value = _decoded(key, value)
    if isinstance(value, dict | list):
        return readable_lines(value)
    if isinstance(value, str) and _is_time(key):
        return [fmt.short_time(value)]
    return [_scalar(value)]


def row_fields(row: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(field, its lines) for every field of the row, in the order the query gave them."""
    return [(key.replace("_", " "), field_lines(key, value)) for key, value in row.items()]


def row_tsv(row: dict[str, Any]) -> str:
    """The row as one tab-separated line: JSON compact, no tab or line break inside a
    value (a spreadsheet would split it)."""
    cells = []
    for key, value in row.items():
        decoded = _decoded(key, value)
        if isinstance(decoded, dict | list):
            text = json.dumps(decoded, ensure_ascii=False, separators=(",", ":"))
        else:
            text = "" if decoded is None else str(decoded)
        cells.append(" ".join(text.split()))
    return "\t".join(cells)


class RowView(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,v", "close", "Close")]

    def __init__(self, title: str, row: dict[str, Any]) -> None:
        super().__init__()
        self.title_text = title
        self.fields = row_fields(row)

    @property
    def text(self) -> str:
        """Everything shown, as plain lines (what a reader of the screen gets)."""
        return "\n".join([self.title_text] + [f"{label}: {line}" for label, lines
                                              in self.fields for line in lines])

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, expand=True, padding=(0, 1))
        table.add_column("field", style="bold", no_wrap=True)
        table.add_column("value", overflow="fold", ratio=1)
        for label, lines in self.fields:
            table.add_row(label, Text("\n".join(lines)))
        with VerticalScroll(id="row-view"):
            yield Static(Text(self.title_text, style="bold"), id="row-view-title")
            yield Static(table, id="row-view-fields")
            yield Static(Text("Esc closes · c/C on the list copy the id or the row",
                              style="dim"))

    def action_close(self) -> None:
        self.dismiss(None)
