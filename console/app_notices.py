"""Where the console's notices and the operator's actions go: the notice bar of every
screen and the live log, never a toast (a toast covers the data).

A mixin of ConsoleApp, kept apart so that the app module stays about screens, engine
events and the action path. It needs the app's ``clock`` and ``store``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual import work
from textual.notifications import SeverityLevel

from rostersync.console import messages
from rostersync.console.live_log import LogRing, audit_text, audit_time, read_audit_after
from rostersync.console.notices import MIN_CHANGE_SECONDS, NoticeBoard
from rostersync.console.screens.log import LogScreen
from rostersync.console.widgets.notice_bar import NoticeBar

if TYPE_CHECKING:
    from textual.app import App

    from rostersync.storage.db import Store
    from rostersync.sync.clock import Clock

    # For the type checker the mixin is the app it is mixed into (screens, messages).
    _App = App[object]
else:
    _App = object


class NoticeRouting(_App):
    clock: Clock  # set by ConsoleApp
    store: Store
    def init_notices(self, live: bool) -> None:
        # Without timers (live=False) nothing would ever show a held-back line: hold none.
        self.notices = NoticeBoard(min_change_seconds=MIN_CHANGE_SECONDS if live else 0.0)
        self.log_ring = LogRing()
        self._audit_seen: int | None = None
        self._audit_lock = threading.Lock()
        self._audit_failing = False

    def notices_seen(self) -> list[str]:
        """Every notice raised so far (repeats too, oldest first), as the log shows it."""
        return [e.text for e in self.log_ring.entries() if e.kind == "notice"]

    def notice_now(self) -> float:
        return self.clock.now().timestamp()

    def notify(self, message: str, *, title: str = "",
               severity: SeverityLevel = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Textual's signature, so every existing call routes here. Thread-safe. The text is
        shown as plain text: error messages quote brackets that are not markup. Textual's
        own notify is never called, so its toast rack stays empty."""
        text, at = str(message), self.clock.now()
        self.notices.add(severity, title, text, at.timestamp(), hold=timeout or 0.0)
        self.log_ring.append("notice", f"{title}: {text}" if title else text, at, severity)
        self.post_message(messages.NoticesChanged())

    def on_notices_changed(self, _message: messages.NoticesChanged) -> None:
        for screen in self.screen_stack:
            for bar in screen.query(NoticeBar):
                bar.update_line()
        if isinstance(self.screen, LogScreen) and self.screen.is_mounted:
            self.screen.draw_new()

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

    @work(thread=True, exclusive=True, group="audit-poll")
    def _poll_audit_in_thread(self) -> None:
        self.poll_audit()
