"""What the console makes of the engine's event stream, where the events arrive (the
loop, or a worker thread the engine plans in): lines for the live log and the running
apply's done count.

An apply emits one OpFinished per operation, 20,000 in a big run. Each failure, hold or
wait is worth a line of its own; successes are counted and summed into one line every few
seconds, so the log stays readable and cheap. Times are injected seconds (any monotonic
source) so that the summing window is testable.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from rostersync.sync import events

SUCCESS_LINE_SECONDS = 2.0


@dataclass
class _Tally:
    """One run's successes not yet summed into a line."""

    succeeded: int = 0
    since: float | None = None


@dataclass
class _Apply:
    """The op ids finished in the current apply round of one run (an inline retry emits
    the same op twice; a set counts it once)."""

    run_id: int | None
    total: int | None
    finished: set[int] = field(default_factory=set)


LogLine = tuple[str, str]  # (severity, text)


class EngineDigest:
    """Thread-safe."""

    def __init__(self, success_line_seconds: float = SUCCESS_LINE_SECONDS,
                 tick_seconds: float | None = None) -> None:
        """tick_seconds: post a tick again when the outstanding one is this old (the
        console, drawing at most that often, leaves ticks unread meanwhile); None: one
        tick until it is read."""
        self.success_line_seconds = success_line_seconds
        self.tick_seconds = tick_seconds
        self._lock = threading.Lock()
        self._phase: dict[int, str] = {}
        self._tally: dict[int | None, _Tally] = {}
        self._apply: _Apply | None = None
        self._tick_outstanding = False
        self._tick_at: float | None = None

    # -- log lines --------------------------------------------------------------------

    def lines(self, event: events.Event, now: float) -> list[LogLine]:
        with self._lock:
            return self._lines(event, now)

    def _lines(self, event: events.Event, now: float) -> list[LogLine]:
        if isinstance(event, events.OpFinished):
            if event.status == "succeeded":
                tally = self._tally.setdefault(event.run_id, _Tally())
                tally.succeeded += 1
                if tally.since is None:
                    tally.since = now
                if now - tally.since >= self.success_line_seconds:
                    return self._flush(event.run_id)
                return []
            severity = "error" if event.status == "dead" else "warning"
            why = f": {event.error}" if event.error else ""
            return [(severity, f"{_run(event.run_id)}op {event.op_id} {event.kind} "
                               f"{event.employee_id} {event.status}{why}")]
        if isinstance(event, events.Progress):
            if self._phase.get(event.run_id) == event.phase:
                return []
            self._phase[event.run_id] = event.phase
            total = f" ({event.total:,} to do)" if event.total is not None else ""
            return [*self._flush(event.run_id),
                    ("information", f"run {event.run_id} {event.phase}{total}")]
        if isinstance(event, events.RunStarted):
            dry = " (dry run)" if event.dry_run else ""
            return [("information", f"run {event.run_id} {event.kind} started by "
                                    f"{event.trigger}{dry}")]
        if isinstance(event, events.RunFinished):
            self._phase.pop(event.run_id, None)
            severity = ("information" if event.status == "succeeded" else
                        "warning" if event.status in ("partial", "held", "paused")
                        else "error")
            why = f": {event.message}" if event.message else ""
            return [*self._flush(event.run_id),
                    (severity, f"run {event.run_id} finished {event.status}{why}")]
        if isinstance(event, events.OpsHeld):
            return [("warning", f"run {event.run_id}: {event.count} operation(s) held: "
                                f"{event.reason}")]
        if isinstance(event, events.FeedRejected):
            return [("error", f"run {event.run_id}: HRIS feed rejected: "
                              + "; ".join(event.reasons))]
        if isinstance(event, events.Quarantined):
            return [("error", f"{_run(event.run_id)}job quarantined: {event.reason}")]
        return []

    def _flush(self, run_id: int | None) -> list[LogLine]:
        tally = self._tally.pop(run_id, None)
        if tally is None or not tally.succeeded:
            return []
        done = ""
        if self._apply is not None and self._apply.run_id == run_id:
            total = self._apply.total
            done = f" ({len(self._apply.finished):,}" + (
                f"/{total:,} done)" if total is not None else " done)")
        return [("information",
                 f"{_run(run_id)}{tally.succeeded:,} operation(s) succeeded{done}")]

    # -- the running apply's count ----------------------------------------------------

    def count(self, event: events.Event, now: float | None = None) -> bool:
        """Follow an apply; True when the console should be told: no tick is outstanding,
        or the outstanding one is tick_seconds old at ``now``."""
        with self._lock:
            if isinstance(event, events.Progress) and event.phase == "apply":
                self._apply = _Apply(event.run_id, event.total)
                return False  # the Progress message itself carries the reset
            if isinstance(event, events.RunFinished):
                if self._apply is not None and self._apply.run_id == event.run_id:
                    self._apply = None
                return False
            if not isinstance(event, events.OpFinished):
                return False
            if self._apply is None or self._apply.run_id != event.run_id:
                return False
            self._apply.finished.add(event.op_id)
            if self._tick_outstanding and not self._tick_stale(now):
                return False
            self._tick_outstanding, self._tick_at = True, now
            return True

    def _tick_stale(self, now: float | None) -> bool:
        return (self.tick_seconds is not None and now is not None
                and self._tick_at is not None and now - self._tick_at >= self.tick_seconds)

    def applied(self, run_id: int | None) -> int | None:
        """The done count of ``run_id``'s current apply round (None: not applying); lets
        the next op post a tick again."""
        with self._lock:
            self._tick_outstanding = False
            if self._apply is None or self._apply.run_id != run_id:
                return None
            return len(self._apply.finished)


def _run(run_id: int | None) -> str:
    return f"run {run_id}: " if run_id is not None else ""
