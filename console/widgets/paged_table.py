"""A DataTable that shows one page and keeps the cursor and scroll across refreshes.

Rows are addressed by key (as Dolphie's process list does): when a refresh brings the
same keys in the same order, cells are updated in place, so the cursor and the scroll
position do not move. When the page changed shape (its rows, its columns, or a header's
label, which carries the sort indicator), the table is rebuilt inside one batch update
and the cursor returns to the row it was on (by key), else to its index.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

# How much of a long text a row hands a fill column (one line), which cuts it to the room
# the other columns leave.
FILL_TEXT = 400


class PagedTable(DataTable):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns_shown: tuple[tuple[str, str, int | None], ...] = ()
        self._keys: list[str] = []

    @property
    def current_key(self) -> str | None:
        if not self._keys or self.cursor_row < 0 or self.cursor_row >= len(self._keys):
            return None
        return self._keys[self.cursor_row]

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    def show_page(self, columns: Sequence[str], rows: Sequence[tuple[str, Sequence[Any]]],
                  labels: Sequence[str] | None = None,
                  fill: tuple[str, int] | None = None) -> None:
        """``columns`` are the keys; ``labels`` (default: the keys) what the headers say.
        ``fill``: the column (if shown) that takes the width the others leave, its cells
        cut to it with an ellipsis, and the least width it gets. Long text (an error, a
        message) then reads as far as the screen allows and never runs off its edge into
        a horizontal scrollbar; every other column is as wide as its widest cell."""
        labels = list(labels or columns)
        fixed: dict[str, int] = {}
        if fill is not None and fill[0] in columns:
            column = list(columns).index(fill[0])
            width = self._fill_width(column, labels, rows, fill[1])
            fixed[fill[0]] = width
            rows = [(key, [cut(c, width) if i == column else c for i, c in enumerate(cells)])
                    for key, cells in rows]
        keys = [key for key, _cells in rows]
        shape = tuple((name, label, fixed.get(name))
                      for name, label in zip(columns, labels, strict=True))
        with self.app.batch_update():
            # Where the cursor is, before a change of columns clears it.
            cursor_key, cursor_row = self.current_key, self.cursor_row
            scroll_y = self.scroll_y
            if shape != self._columns_shown:
                self.clear(columns=True)
                for name, label, fixed_width in shape:
                    self.add_column(label, key=name, width=fixed_width)
                self._columns_shown = shape
                self._keys = []
            if keys == self._keys:
                for key, cells in rows:
                    for name, value in zip(columns, cells, strict=True):
                        self.update_cell(key, name, _cell(value))
                return
            self.clear()
            for key, cells in rows:
                self.add_row(*(_cell(v) for v in cells), key=key)
            self._keys = keys
            try:
                target = self.get_row_index(cursor_key) if cursor_key else cursor_row
            except RowDoesNotExist:
                target = cursor_row
            if keys:
                self.move_cursor(row=min(max(target, 0), len(keys) - 1), animate=False,
                                 scroll=False)
            self.scroll_to(y=scroll_y, animate=False, immediate=True)

    def _fill_width(self, column: int, labels: Sequence[str],
                    rows: Sequence[tuple[str, Sequence[Any]]], least: int) -> int:
        """The table's width less the other columns (each its widest cell or header plus
        the padding either side) and the vertical scrollbar; never under ``least``."""
        pad = 2 * self.cell_padding
        others = sum(max([cell_width(labels[i]), *(cell_width(cells[i]) for _k, cells in rows)])
                     + pad for i in range(len(labels)) if i != column)
        room = (self.size.width or self.app.size.width) - others - pad \
            - self.styles.scrollbar_size_vertical
        return max(least, room)


def cell_width(value: Any) -> int:
    """How many columns a cell takes as the table draws it."""
    if value is None:
        return 1  # drawn as "-"
    return value.cell_len if isinstance(value, Text) else cell_len(str(value))


def cut(value: Any, width: int) -> Any:
    """A cell shortened to ``width`` columns, its end an ellipsis when cut."""
    if value is None or cell_width(value) <= width:
        return value
    text = value.copy() if isinstance(value, Text) else Text(str(value))
    text.truncate(width, overflow="ellipsis")
    return text if isinstance(value, Text) else text.plain


def _cell(value: Any) -> Any:
    if value is None:
        return Text("-", style="dim")
    return value
