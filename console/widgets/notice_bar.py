"""The notice line above the footer: the latest notice, its count, its age and where the
rest are. Part of the layout, so it never covers data the way a toast does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.widget import Widget

from rostersync.console import fmt
from rostersync.console.notices import TIMES, Notice, is_fresh

if TYPE_CHECKING:
    from textual import getters

    from rostersync.console.app import ConsoleApp

STYLE = {"error": "bold red", "warning": "yellow", "information": "default"}
MARK = {"error": "✖ ", "warning": "▲ ", "information": "• "}
HINT = "(0: log)"


def bar_text(notice: Notice | None, now: float) -> Text:
    """Pure: what the bar says about ``notice`` at ``now``."""
    if notice is None:
        return Text(f"no notices  {HINT}", style="dim")
    fresh = is_fresh(notice, now)
    style = STYLE.get(notice.severity, "default") if fresh else "dim"
    text = Text(MARK.get(notice.severity, "• "), style=style)
    if notice.title:
        text.append(f"{notice.title}: ", style=style)
    text.append(" ".join(notice.text.split()), style=style)
    if notice.count > 1:
        text.append(f" {TIMES}{notice.count}", style="bold" if fresh else "dim")
    text.append(f" · {fmt.age(now - notice.last_seen)} ago  ", style="dim")
    text.append(HINT, style="dim")
    return text


class NoticeBar(Widget):
    if TYPE_CHECKING:
        app = getters.app(ConsoleApp)  # part of the console app's screens
    """Draws from the app's notice board whenever it is refreshed: on a new notice (the
    app refreshes every bar) and, in a live console, each second for the age and fade."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows = 1

    def on_mount(self) -> None:
        if self.app.live:
            self.set_interval(1.0, self.update_line)

    def update_line(self) -> None:
        # Only a line that wraps to a second row (or back) changes the screen's layout; a
        # new text or age of the same height is a repaint of this row alone.
        rows = 1 if self._line().cell_len <= max(1, self.content_region.width) else 2
        self.refresh(layout=rows != self._rows)
        self._rows = rows

    def _line(self) -> Text:
        now = self.app.notice_router.now()
        return bar_text(self.app.notice_router.board.visible(now), now)

    def render(self) -> Text:
        return self._line()
