"""The live log (key 0): engine events, notices and operator actions as they happen,
filterable as you type, pausable, one kind at a time. It doubles as the notice history.

It draws from the app's ring (console/live_log.py), never per event: on a half-second
timer (live consoles) and whenever the filter, the kind or the pause changes. Only entries
newer than the last drawn one are written, so a quiet log costs nothing. The view is
Textual's Log, which styles only the rows on screen: redrawing a thousand lines on each
keystroke of the filter stays cheap. Long entries wrap under their text (the width is the
view's; a resize redraws), so nothing is cut and nothing needs scrolling sideways.
"""

from __future__ import annotations

import textwrap
from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Input, Label, Log

from rostersync.console import keymap
from rostersync.console.live_log import KINDS, LogEntry, select, stamp
from rostersync.console.screens.base import DataScreen
from rostersync.console.widgets.filter_box import fold_filter, open_filter
from rostersync.console.widgets.text_input import TextInput

SHOWN = 1_000  # lines kept in the view; the ring behind it keeps more
KIND_STYLE = {"notice": "magenta", "engine": "cyan", "operator": "green"}
MARK = {"error": "\u2716 ", "warning": "\u25b2 "}  # heavy cross, triangle
MARK_STYLE = {"\u2716": "bold red", "\u25b2": "yellow"}
CYCLE: tuple[str | None, ...] = (None, *KINDS)
_STAMP = len("2026-11-26 12:20:00 UTC")
_TEXT = _STAMP + 2 + 9  # the stamp, two spaces, the kind padded to eight and a space


def entry_line(entry: LogEntry) -> str:
    """Columns at fixed places, so that the highlighter can style them by position."""
    return (f"{stamp(entry.at)}  {entry.kind:<8} {MARK.get(entry.severity, '')}"
            f"{entry.text}")


MIN_WRAP = 20  # narrower than this, a wrapped entry is harder to read than a long line


def entry_lines(entry: LogEntry, width: int) -> list[str]:
    """The entry in rows of at most ``width`` cells, continuations indented under its
    text (0 or too narrow: one row)."""
    line = entry_line(entry)
    room = width - _TEXT
    if width <= 0 or room < MIN_WRAP or len(line) <= width:
        return [line]
    first, *rest = textwrap.wrap(line[_TEXT:], room, break_on_hyphens=False)
    return [line[:_TEXT] + first, *(" " * _TEXT + more for more in rest)]


class EntryHighlighter(Highlighter):
    """Styles a drawn row: the time dim, the kind in its colour, errors and warnings by
    their mark."""

    def highlight(self, text: Text) -> None:
        text.stylize("dim", 0, _STAMP)
        kind = text.plain[_STAMP + 2:_TEXT].strip()
        text.stylize(KIND_STYLE.get(kind, ""), _STAMP + 2, _TEXT)
        style = MARK_STYLE.get(text.plain[_TEXT:_TEXT + 1])
        if style:
            text.stylize(style, _TEXT)


class LogScreen(DataScreen):
    scope = "log"
    BINDINGS = keymap.bindings("log")
    refresh_seconds = 2.0  # the audit poll; the view itself redraws faster (draw_seconds)
    draw_seconds = 0.5

    def __init__(self, status: str | None = None, filter_text: str = "",
                 **kwargs: Any) -> None:
        """``status``: the kind to show (notice, engine, operator; None: all)."""
        super().__init__(**kwargs)
        self.kind = status if status in KINDS else None
        self.filter_text = filter_text
        self.paused = False
        self._drawn_seq = 0     # the newest ring entry already considered for the view
        self._paused_seq = 0    # the newest entry when the view was paused
        self._shown = 0

    def compose_body(self) -> ComposeResult:
        yield Label(id="log-title")
        yield TextInput(value=self.filter_text, placeholder="filter…", id="filter")
        view = Log(id="log-view", highlight=True, max_lines=SHOWN, auto_scroll=True)
        view.highlighter = EntryHighlighter()
        yield view

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = bool(self.filter_text)
        self.query_one(Log).focus()
        self.redraw()
        if self.app.live:
            self.set_interval(self.draw_seconds, self.draw_new)

    # -- data: the audit poll runs in the refresh loop's thread ---------------------------

    def query_data(self) -> None:
        self.app.notice_router.poll_audit()

    def show_data(self, data: Any) -> None:
        self.draw_new()

    # -- drawing --------------------------------------------------------------------------

    def redraw(self) -> None:
        """Everything again: the filter, the kind or the pause changed."""
        view = self.query_one(Log)
        view.clear()
        ring = self.app.notice_router.log_ring
        entries = ring.entries()
        total = len(entries)
        self._drawn_seq = entries[-1].seq if entries else 0
        if self.paused:
            entries = [e for e in entries if e.seq <= self._paused_seq]
        shown = select(entries, self.kind, self.filter_text)[-SHOWN:]
        view.write_lines(self._rows(shown))
        self._shown = len(shown)
        self._show_title(total)

    def draw_new(self) -> None:
        """Only what arrived since the last draw (nothing, when nothing did)."""
        ring = self.app.notice_router.log_ring
        if ring.last_seq == self._drawn_seq:
            return
        new = [e for e in ring.entries() if e.seq > self._drawn_seq]
        if not new:
            return
        self._drawn_seq = new[-1].seq
        if not self.paused:
            view = self.query_one(Log)
            matching = select(new, self.kind, self.filter_text)[-SHOWN:]
            view.write_lines(self._rows(matching))
            self._shown = min(SHOWN, self._shown + len(matching))
        self._show_title(len(ring))

    def _rows(self, entries: list[LogEntry]) -> list[str]:
        width = self.query_one(Log).scrollable_content_region.width
        return [row for e in entries for row in entry_lines(e, width)]

    def on_resize(self) -> None:
        self.redraw()  # the rows wrap to the width

    def waiting(self) -> int:
        """Entries that arrived since the pause and that the filter and kind would show."""
        ring = self.app.notice_router.log_ring
        entries = [e for e in ring.entries() if e.seq > self._paused_seq]
        return len(select(entries, self.kind, self.filter_text))

    def _show_title(self, total: int) -> None:
        # Text, not markup: the filter is whatever the operator typed, brackets included.
        title = Text("Live log", style="bold")
        bits = [f"{self._shown:,} shown of {total:,}", f"kind: {self.kind or 'all'}"]
        if self.filter_text:
            bits.append(f"filter: {self.filter_text!r}")
        for bit in bits:
            title.append(f"  ·  {bit}")
        title.append("  ·  ")
        if self.paused:
            title.append(f"paused · {self.waiting():,} new", style="bold yellow")
        else:
            title.append("live", style="green")
        self.query_one("#log-title", Label).update(title)

    # -- keys -----------------------------------------------------------------------------

    def action_filter(self) -> None:
        open_filter(self.query_one("#filter", Input))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and event.value != self.filter_text:
            self.filter_text = event.value
            self.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one(Log).focus()

    def action_pause(self) -> None:
        self.paused = not self.paused
        if self.paused:
            ring = self.app.notice_router.log_ring
            self._paused_seq = ring.last_seq
            self._show_title(len(ring))
        else:
            self.redraw()

    def action_kind(self) -> None:
        self.kind = CYCLE[(CYCLE.index(self.kind) + 1) % len(CYCLE)]
        self.redraw()

    def action_back(self) -> None:
        if fold_filter(self.query_one("#filter", Input), bool(self.filter_text),
                       self.query_one(Log)):
            self.filter_text = ""
            self.redraw()
            return
        self.app.pop_screen()
