"""Repeated log lines, rate-limited: one line per distinct message per interval, and a
count of the ones held back.

A flood (a sender retrying a forged webhook, a client opening connections faster than
they can be served, a process out of file descriptors) otherwise writes thousands of
identical lines a second and buries the one line that matters. The first occurrence of
a message is written at once; repeats inside the interval are counted, and the count is
written with the next occurrence after the interval, or by ``flush`` (the service's tick
and its stop), as ``{..., "repeated": n, "over_seconds": s}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

LOG_INTERVAL_SECONDS = 60.0
# Distinct messages remembered at once; beyond it the oldest is flushed and forgotten.
MAX_KEYS = 1000

Log = Callable[[dict[str, Any]], None]


@dataclass
class _Seen:
    record: dict[str, Any]
    since: float
    held: int = 0


class RateLimitedLog:
    def __init__(self, log: Log, interval_seconds: float = LOG_INTERVAL_SECONDS, *,
                 now: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self._interval = interval_seconds
        self._now = now
        self._seen: dict[str, _Seen] = {}

    def __call__(self, record: dict[str, Any]) -> None:
        key = json.dumps(record, sort_keys=True, default=str)
        now = self._now()
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self._interval:
            seen.held += 1
            return
        if seen is not None:
            self._summary(seen, now)
        elif len(self._seen) >= MAX_KEYS:
            oldest = next(iter(self._seen))
            self._summary(self._seen.pop(oldest), now)
        self._seen.pop(key, None)
        self._seen[key] = _Seen(record, now)
        self._log(record)

    def flush(self) -> None:
        """Write the counts held back, and forget messages whose interval has passed."""
        now = self._now()
        for key, seen in list(self._seen.items()):
            self._summary(seen, now)
            seen.held = 0
            if now - seen.since >= self._interval:
                del self._seen[key]

    def _summary(self, seen: _Seen, now: float) -> None:
        if seen.held:
            self._log({**seen.record, "repeated": seen.held,
                       "over_seconds": round(now - seen.since, 1)})
