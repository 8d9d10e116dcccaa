"""The filter box of lists and the log: Esc folds it before it leaves the screen."""

from __future__ import annotations

from textual.widget import Widget
from textual.widgets import Input


def open_filter(box: Input) -> None:
    """``/``: the filter box shows and takes the keys."""
    box.display = True
    box.focus()


def fold_filter(box: Input, filtering: bool, back_to: Widget) -> bool:
    """k9s's Esc: while a filter is typed or applied, the first press clears and hides it
    and puts the focus back on the data (True); else there is nothing to fold (False)."""
    if not (filtering or box.has_focus):
        return False
    box.value = ""
    box.display = False
    back_to.focus()
    return True
