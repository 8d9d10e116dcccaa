"""A dashboard panel of figures that can be drilled into (the k9s habit): each row is a
label, a number and what opening it shows. Tab reaches the panel, the arrows move
between rows, Enter (the screen's `drill` key) or a click opens the list behind the
highlighted figure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.widgets import OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True)
class Figure:
    key: str          # what drilling opens, e.g. "ops:failed" (see dashboard.drill_target)
    label: str
    value: str
    style: str = ""


def figure_row(figure: Figure) -> Table:
    row = Table.grid(expand=True)
    row.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    row.add_column(justify="right", no_wrap=True)
    row.add_row(figure.label, Text(figure.value, style=figure.style))
    return row


class FigureList(OptionList, inherit_bindings=False):
    # Enter is left to the screen (its `drill` key, named in the footer); the list keeps
    # only its movement keys.
    BINDINGS = [Binding("down", "cursor_down", "Down", show=False),
                Binding("up", "cursor_up", "Up", show=False),
                Binding("home", "first", "First", show=False),
                Binding("end", "last", "Last", show=False)]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shown: list[Figure] = []

    def show_figures(self, figures: list[Figure]) -> None:
        """Same keys as before: prompts change in place and the highlight stays; other
        keys: the list is rebuilt and the highlight follows its key if it is still
        there."""
        if figures == self.shown:
            return  # nothing changed: no repaint
        self.shown = list(figures)
        keys = [f.key for f in figures]
        current = [self.get_option_at_index(i).id for i in range(self.option_count)]
        if keys == current:
            for i, figure in enumerate(figures):
                self.replace_option_prompt_at_index(i, figure_row(figure))
            return
        kept = self.highlighted_option.id if self.highlighted_option is not None else None
        self.set_options([Option(figure_row(f), id=f.key) for f in figures])
        self.highlighted = keys.index(kept) if kept in keys else (0 if keys else None)

    @property
    def highlighted_key(self) -> str | None:
        option = self.highlighted_option
        return option.id if option is not None else None
