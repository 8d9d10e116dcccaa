"""Figures the reliability suites measure, printed at the end of the session.

Tests add to named counters; ``conftest.py`` prints them in the closing summary, which is
where docs/reliability.md takes its numbers from (``make reliability`` reproduces them).
"""

from __future__ import annotations

import os
import threading
from collections import Counter

FULL = os.environ.get("ROSTERSYNC_RELIABILITY", "").lower() == "full"

_lock = threading.Lock()
_counts: Counter[str] = Counter()


def scale(fast: int, full: int) -> int:
    """How many trials or examples: a few in CI (`make test`), many in `make reliability`."""
    return full if FULL else fast


def add(name: str, amount: int = 1) -> None:
    with _lock:
        _counts[name] += amount


def snapshot() -> dict[str, int]:
    with _lock:
        return dict(sorted(_counts.items()))
