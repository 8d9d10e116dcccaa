"""Automatic garbage collection paused around a run's bulk work.

A million-row reconcile allocates millions of short-lived containers (chunk lists,
records, rows); the cyclic collector then runs hundreds of young and several full
passes over everything the process holds, about a tenth of the run's time, and finds
nothing: this work makes no reference cycles. So bulk phases pause the automatic
collector and call ``collect_young`` at their own pace, which keeps any cycle made
meanwhile (by another thread, say) from piling up.

The pause is process-wide, so it is counted: overlapping holders (a run and the
console's queries) resume collection only when the last one leaves.
"""

from __future__ import annotations

import gc
import threading
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


def collect_young() -> None:
    """Collect the two young generations: cheap (no pass over long-lived objects) and
    enough to free cycles made since the last call."""
    gc.collect(1)
