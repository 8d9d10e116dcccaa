"""The live log's memory: a bounded ring of entries of three kinds, appended from any
thread, and the pure selection the log view draws from it.

- notice: everything the console told the operator (coalesced repeats too);
- engine: runs started and finished, phase changes, failures, summed successes, holds,
  rejections, quarantines, scheduler notices;
- operator: the audit log's new rows (this console's, the CLI's, another console's).
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rostersync.console import fmt
from rostersync.storage.db import parse_ts

KINDS = ("notice", "engine", "operator")
CAPACITY = 5_000


def stamp(at: datetime) -> str:
    """Date, time and zone: a log line is a record, read later and elsewhere."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass(frozen=True)
class LogEntry:
    seq: int
    at: datetime
    kind: str
    severity: str
    text: str

    def line(self) -> str:
        return f"{stamp(self.at)}  {self.kind:<8} {self.text}"


class LogRing:
    """Bounded; thread-safe (engine events arrive from worker threads)."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._entries: deque[LogEntry] = deque(maxlen=capacity)
        self._seq = 0
        self._lock = threading.Lock()

    def append(self, kind: str, text: str, at: datetime,
               severity: str = "information") -> LogEntry:
        with self._lock:
            self._seq += 1
            entry = LogEntry(self._seq, at, kind, severity, " ".join(text.split()))
            self._entries.append(entry)
            return entry

    @property
    def last_seq(self) -> int:
        return self._seq

    def entries(self) -> list[LogEntry]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


def select(entries: list[LogEntry], kind: str | None, needle: str) -> list[LogEntry]:
    """The entries of ``kind`` (None: all) whose whole line contains ``needle``, case
    ignored (time, kind and text: '/operator', '/2026-11-26' and '/E00005' all work)."""
    needle = needle.casefold()
    return [e for e in entries
            if (kind is None or e.kind == kind)
            and (not needle or needle in e.line().casefold())]


# -- the audit log, polled by id ---------------------------------------------------------

AUDIT_BACKLOG = 20  # on first read: the latest few, so the log opens with context
AUDIT_BATCH = 500


def read_audit_after(store: Any, after_id: int | None) -> list[dict[str, Any]]:
    """Rows newer than ``after_id``, oldest first (on first read: the latest few)."""
    if after_id is None:
        rows = store.rows("SELECT id, at, actor, action, target, detail FROM audit "
                          "ORDER BY id DESC LIMIT ?", (AUDIT_BACKLOG,))
        return rows[::-1]
    return store.rows("SELECT id, at, actor, action, target, detail FROM audit "
                      "WHERE id > ? ORDER BY id LIMIT ?", (after_id, AUDIT_BATCH))


def audit_text(row: dict[str, Any]) -> str:
    """'operator approve E00005 · ops 30 · run=2 · reason=…': id lists as their size."""
    target = f" {row['target']}" if row.get("target") else ""
    return f"{row['actor']} {row['action']}{target}" + "".join(
        f" · {bit}" for bit in _detail_bits(row.get("detail")))


def _detail_bits(detail: Any) -> list[str]:
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return [fmt.one_line(detail, 120)]
    if not isinstance(detail, dict):
        return []
    bits = []
    for key, value in detail.items():
        if isinstance(value, list | tuple):
            bits.append(f"{key} {len(value)}")
        elif value is not None and value != "" and not isinstance(value, dict):
            bits.append(f"{key}={fmt.one_line(str(value), 80)}")
    return bits


def audit_time(row: dict[str, Any], fallback: datetime) -> datetime:
    return parse_ts(row.get("at")) or fallback
