"""The line under the header that names the leader node when several nodes share the
database ([ha]); hidden (no row taken) on a single node."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.text import Text
from textual.widget import Widget

from rostersync.console.leader_status import LeaderStatus, leader_line

# This node leads: routine. Another node leads: what matters is that nothing here acts.
# No leader: nothing is applied anywhere, a warning like the alert banner's.
TONE = {"this": "green", "other": "bold", "none": "bold black on yellow", "unread": "dim"}


def leader_text(status: LeaderStatus, now: datetime) -> Text:
    """Pure: the line for a shown status."""
    line, tone = leader_line(status, now)
    return Text(f" {line} ", style=TONE[tone], no_wrap=True, overflow="ellipsis")


class LeaderLine(Widget):
    DEFAULT_CSS = "LeaderLine { height: 1; padding: 0 1; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.text = Text()
        self.display = False

    def show(self, status: LeaderStatus, now: datetime) -> None:
        self.display = status.shown
        if status.shown:
            self.text = leader_text(status, now)
            if self.is_mounted:
                self.refresh()

    def render(self) -> Text:
        return self.text
