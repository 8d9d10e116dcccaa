"""Where the console's notices and the operator's actions go: the notice bar of every
screen and the live log, never a toast (a toast covers the data).

The app owns one NoticeRouter and its ``notify`` hands every notice to it; the router
keeps the notice board (what the bar shows), the live log's ring and the audit poll, and
tells the app's loop to redraw through ``post`` (the app's ``post_message``, which is
thread-safe: notices are raised from worker threads too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen

from rostersync.console import messages
from rostersync.console.live_log import LogRing, audit_text, audit_time, read_audit_after
from rostersync.console.notices import MIN_CHANGE_SECONDS, NoticeBoard
from rostersync.console.screens.log import LogScreen
from rostersync.console.widgets.notice_bar import NoticeBar
from rostersync.storage.db import Store
from rostersync.sync.clock import Clock


class NoticeRouter:
    def __init__(self, *, clock: Clock, store: Store, post: Callable[[Message], object],
                 live: bool) -> None:
        self.clock, self.store = clock, store
        self._post = post
        # Without timers (live=False) nothing would ever show a held-back line: hold none.
        self.board = NoticeBoard(min_change_seconds=MIN_CHANGE_SECONDS if live else 0.0)
        self.log_ring = LogRing()
        self._audit_seen: int | None = None
        self._audit_lock = threading.Lock()
        self._audit_failing = False

    def now(self) -> float:
        """The notices' time: plain seconds of the injected clock."""
        return self.clock.now().timestamp()

    def notify(self, message: str, *, title: str = "",
               severity: SeverityLevel = "information", timeout: float | None = None) -> None:
        """Any thread: onto the board (the bar's line) and into the live log."""
        text, at = str(message), self.clock.now()
        self.board.add(severity, title, text, at.timestamp(), hold=timeout or 0.0)
        self.log_ring.append("notice", f"{title}: {text}" if title else text, at, severity)
        self._post(messages.NoticesChanged())

    def seen(self) -> list[str]:
        """Every notice raised so far (repeats too, oldest first), as the log shows it."""
        return [e.text for e in self.log_ring.entries() if e.kind == "notice"]

    def redraw(self, screens: Iterable[Screen], top: Screen) -> None:
        """On the loop: every screen's bar, and the live log when it is the one shown."""
        for screen in screens:
            for bar in screen.query(NoticeBar):
                bar.update_line()
        if isinstance(top, LogScreen) and top.is_mounted:
            top.draw_new()

    # -- operator actions from anywhere: the audit log, polled by id ----------------------

    def poll_audit(self) -> None:
        """Any thread: the audit log's rows since the last poll go to the live log."""
        with self._audit_lock:
            try:
                rows = read_audit_after(self.store, self._audit_seen)
            except Exception as exc:  # the log goes quiet, the console goes on
                if not self._audit_failing:
                    self._audit_failing = True
                    self.notify(f"could not read the audit log: {exc}", severity="warning")
                return
            self._audit_failing = False
            now = self.clock.now()
            for row in rows:
                self.log_ring.append("operator", audit_text(row), audit_time(row, now))
            if rows:
                self._audit_seen = int(rows[-1]["id"])
            elif self._audit_seen is None:
                self._audit_seen = 0
