"""What the console tells the operator, as a pure model: notices coalesce, the visible line
is rate-limited, and a bounded history keeps everything.

A quarantined run every few seconds must read as one line that counts (times 12), not as a
stack of boxes over the data; a flapping source must not make the line flicker faster than
a person can read it. Times are plain seconds from an injected ``now`` so that the window
and the limit are exact and testable.
"""

from __future__ import annotations

import re
import threading
from collections import deque
from dataclasses import dataclass, replace

COALESCE_SECONDS = 60.0    # the same notice again within this counts, not repeats
MIN_CHANGE_SECONDS = 1.0   # the visible line changes at most this often
HISTORY = 1_000
# How long a notice stays bright on the bar before it fades to dim: an error is the one
# thing the operator must not miss, so it stays longest.
FRESH_SECONDS = {"error": 10.0, "warning": 6.0, "information": 4.0}

SEVERITY_RANK = {"information": 0, "warning": 1, "error": 2}
# Only the ids of runs and operations are what differs between repeats of one notice
# ("run 812 quarantined", "run 815 quarantined"); an employee id, a date or a count is
# the news itself ("hired E02020" and "hired E02021" are two events, not one twice).
_REPEAT_IDS = re.compile(r"\b(runs?|ops?|operations?)( #?)\d+\b", re.IGNORECASE)
TIMES = "\u00d7"  # the multiplication sign: "quarantined ... (times) 12"


def notice_key(severity: str, title: str, text: str) -> tuple[str, str, str]:
    """Run and op ids differ between repeats of the same notice; nothing else does."""
    return severity, _REPEAT_IDS.sub(r"\1\2#", title), _REPEAT_IDS.sub(r"\1\2#", text)


@dataclass
class Notice:
    """One coalesced notice: its latest wording, how often and when it was seen."""

    severity: str
    title: str
    text: str
    count: int
    first_seen: float
    last_seen: float
    # Seconds the line keeps the bar against notices no more severe than it (Textual's
    # ``timeout``): an operator's "done: 59 approved" is not replaced a second later by
    # a routine line. 0: only the bar's rate limit applies.
    hold: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return notice_key(self.severity, self.title, self.text)

    def line(self) -> str:
        head = f"{self.title}: " if self.title else ""
        return head + self.text + (f" {TIMES}{self.count}" if self.count > 1 else "")


def is_fresh(notice: Notice, now: float) -> bool:
    """Bright on the bar (else dim): until its severity's hold has passed since last seen."""
    return now - notice.last_seen < FRESH_SECONDS.get(notice.severity, 4.0)


class NoticeBoard:
    """Thread-safe: notices may be raised from worker threads."""

    def __init__(self, *, coalesce_seconds: float = COALESCE_SECONDS,
                 min_change_seconds: float = MIN_CHANGE_SECONDS,
                 history: int = HISTORY) -> None:
        self.coalesce_seconds = coalesce_seconds
        self.min_change_seconds = min_change_seconds
        self._history: deque[Notice] = deque()
        self._capacity = history
        self._latest: dict[tuple[str, str, str], Notice] = {}
        self._shown: Notice | None = None  # a copy: the line as it was last drawn
        self._shown_at: float | None = None
        self._pending: Notice | None = None
        self._lock = threading.Lock()

    def add(self, severity: str, title: str, text: str, now: float,
            hold: float = 0.0) -> Notice:
        """Record a notice; returns its (possibly coalesced) history entry."""
        key = notice_key(severity, title, text)
        with self._lock:
            entry = self._latest.get(key)
            if entry is not None and now - entry.last_seen <= self.coalesce_seconds:
                entry.count += 1
                entry.text, entry.title, entry.last_seen = text, title, now
                entry.hold = hold
            else:
                entry = Notice(severity, title, text, 1, now, now, hold)
                self._remember(entry)
            # Between two changes of the line, the most severe notice waits its turn (the
            # latest of equal severity): an error in a flood of routine lines still shows.
            if self._pending is None or (SEVERITY_RANK.get(severity, 0)
                                         >= SEVERITY_RANK.get(self._pending.severity, 0)):
                self._pending = entry
            self._promote(now)
            return replace(entry)

    def _remember(self, entry: Notice) -> None:
        if len(self._history) >= self._capacity:
            old = self._history.popleft()
            if self._latest.get(old.key) is old:
                del self._latest[old.key]
        self._history.append(entry)
        self._latest[entry.key] = entry

    def _promote(self, now: float) -> None:
        pending, shown = self._pending, self._shown
        if pending is None:
            return
        if shown is not None and self._shown_at is not None and pending.key != shown.key \
                and now - self._shown_at < shown.hold and not pending.hold \
                and SEVERITY_RANK.get(pending.severity, 0) <= SEVERITY_RANK.get(shown.severity, 0):
            # The shown line's hold has not passed and this is a routine line, no more
            # severe: it waits (a held line may follow a held line: an approval, its run).
            return
        if self._shown_at is None or now - self._shown_at >= self.min_change_seconds:
            self._shown, self._shown_at = replace(pending), now
            self._pending = None

    def visible(self, now: float) -> Notice | None:
        """The line to draw now: changes at most once per ``min_change_seconds``."""
        with self._lock:
            self._promote(now)
            return self._shown

    def has_pending(self) -> bool:
        with self._lock:
            return self._pending is not None

    def history(self) -> list[Notice]:
        """Oldest first; each entry with its count and first/last seen times."""
        with self._lock:
            return [replace(n) for n in self._history]
