"""Automatic garbage collection paused around a run's bulk work.

A million-row reconcile allocates millions of short-lived containers (chunk lists,
records, rows); the cyclic collector then runs hundreds of young and several full
passes over everything the process holds, about a tenth of the run's time, and finds
nothing: this work makes no reference cycles. So bulk phases pause the automatic
collector, and long ones call a ``YoungCollector`` between batches, which keeps any
cycle made meanwhile (by another thread, say) from piling up.

The pause is process-wide, so it is counted: overlapping holders (a run and the
console's queries) resume collection only when the last one leaves.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_holders = 0
_resume = False  # whether collection was enabled when the first holder paused it


@contextmanager
def gc_paused() -> Iterator[None]:
    global _holders, _resume
    with _lock:
        if _holders == 0:
            _resume = gc.isenabled()
            gc.disable()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0 and _resume:
                gc.enable()


class YoungCollector:
    """Collects the two young generations now and then during a long pause: enough to
    free cycles made meanwhile, with no pass over long-lived objects. Not more often
    than every ``seconds``: each call walks every object made since the last one that
    is still alive, which for a short run is all of its work."""

    def __init__(self, seconds: float = 10.0) -> None:
        self.seconds = seconds
        self.due = time.monotonic() + seconds

    def __call__(self) -> None:
        now = time.monotonic()
        if now >= self.due:
            gc.collect(1)
            self.due = now + self.seconds
