"""Held operations as the operator reviews them: one hold event per run and reason.

A hold event is one guard tripping in one run (the mass-deactivation hold of run 24, the
mass-removal hold of an audience in run 31, ...). Two events are never merged, even
when they hold the same kind of change for the same reason: each was a separate alarm,
and an operator who approved run 24's leavers has not looked at run 31's.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from rostersync.storage.db import Store

# What the review shows of each held person, read from their last accepted HR record.
_PERSON_FIELDS = ("first_name", "last_name", "preferred_name", "department", "location",
                  "manager_id", "status", "termination_date")

UNSPECIFIED = "held"  # the event key of an op held without a recorded reason


def hold_events(store: Store) -> list[dict[str, Any]]:
    """One row per (run, hold reason) that still holds something, newest run first."""
    rows = store.rows(
        "SELECT run_id, coalesce(hold_reason, ?) AS hold_reason, count(*) AS n, "
        "count(DISTINCT employee_id) AS people, min(created_at) AS oldest, "
        "group_concat(DISTINCT kind) AS kinds FROM ops WHERE status = 'held' "
        "GROUP BY 1, 2 ORDER BY run_id DESC, n DESC", (UNSPECIFIED,))
    # Why each change was planned, per event: one grouped read for all the events.
    why: dict[tuple[int | None, str], dict[str, int]] = {}
    for run_id, hold_reason, reason, n in store.conn.execute(
            "SELECT run_id, coalesce(hold_reason, ?), coalesce(reason, 'unspecified'), "
            "count(*) AS n FROM ops WHERE status = 'held' GROUP BY 1, 2, 3 ORDER BY n DESC",
            (UNSPECIFIED,)):
        why.setdefault((run_id, hold_reason), {})[reason] = n
    for row in rows:
        row["why"] = why.get((row["run_id"], row["hold_reason"]), {})
    return rows


def event_key(run_id: int | None, hold_reason: str) -> str:
    return f"{'' if run_id is None else run_id}\x1f{hold_reason}"


def parse_event_key(key: str) -> tuple[int | None, str]:
    run, _, reason = key.partition("\x1f")
    return (int(run) if run else None), reason


def held_in_event(store: Store, run_id: int | None, hold_reason: str) -> list[dict[str, Any]]:
    """Every op still held by this event with the person it is for: id, employee_id,
    kind, why it was planned, when it may apply at the earliest (a scheduled termination:
    its effective time), and the person's name, department, location, manager, HR
    status and termination date (what the operator judges the hold by)."""
    ops = store.rows(
        "SELECT o.id, o.employee_id, o.kind, coalesce(o.reason, 'unspecified') AS reason, "
        "o.next_attempt_at AS not_before, p.record FROM ops o LEFT JOIN people p ON p.employee_id = o.employee_id "
        "WHERE o.status = 'held' AND o.run_id IS ? AND coalesce(o.hold_reason, ?) = ? "
        "ORDER BY o.employee_id, o.id", (run_id, UNSPECIFIED, hold_reason))
    for op in ops:
        record = json.loads(op.pop("record") or "{}")
        for name in _PERSON_FIELDS:
            op[name] = record.get(name)
    return ops


def breakdown(people: list[dict[str, Any]], field: str) -> list[tuple[str, int]]:
    """Counts of people by a field, largest first (a missing value counts as '—')."""
    # One count per person, whatever number of their ops the rows hold.
    per_person = {row["employee_id"]: row.get(field) or "—" for row in people}
    counts = Counter(per_person.values())
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
