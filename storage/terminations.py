"""Terminations a suppression blocks: HR says the person has gone, their LMS account is
still active (an open `pending_termination` drift row) and an operator's suppression in
force keeps rostersync from deactivating it.

The suppression is honoured (that is what it is for), but it must never hide a leaver:
status, the dashboard and the terminations list all read this module, and the SLA clock
keeps running from when rostersync first saw the termination in force (the drift row's
first_seen_at, the same start `rostersync status` counts overdue terminations from).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage.db import Store, parse_ts, ts
from rostersync.storage.people import chunks

# The newest suppression in force per person (several may be stacked; the newest one is
# the one the engine applies, see storage.suppressions.active_for).
_IN_FORCE = ("s.lifted_at IS NULL AND (s.until IS NULL OR s.until > :now) AND s.id = "
             "(SELECT max(x.id) FROM suppressions x WHERE x.employee_id = s.employee_id "
             "AND x.lifted_at IS NULL AND (x.until IS NULL OR x.until > :now))")
_FROM = ("FROM drift d JOIN suppressions s ON s.employee_id = d.subject "
         "WHERE d.resolved_at IS NULL AND d.kind = 'pending_termination' AND " + _IN_FORCE)


def blocked_by_suppression(store: Store, now: datetime, sla_minutes: float,
                           limit: int = 100) -> dict[str, Any]:
    """How many pending terminations a suppression blocks, how many of those are past
    the SLA, and the oldest ``limit`` of them (the count is never truncated)."""
    params = {"now": ts(now), "deadline": ts(now - timedelta(minutes=sla_minutes))}
    count, overdue = store.one(
        f"SELECT count(*), coalesce(sum(d.first_seen_at < :deadline), 0) {_FROM}", params)
    rows = store.rows(f"SELECT d.subject, d.first_seen_at, d.detail, s.reason, s.until, "
                      f"s.created_by, s.created_at {_FROM} "
                      "ORDER BY d.first_seen_at, d.subject LIMIT :limit",
                      {**params, "limit": limit})
    return {"count": int(count), "overdue": int(overdue),
            "people": [_entry(r, now, sla_minutes) for r in rows]}


def blocked_for(store: Store, subjects: Iterable[str], now: datetime,
                sla_minutes: float) -> dict[str, dict[str, Any]]:
    """employee_id -> its blocked termination, for the people given (one page of a list)."""
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(subjects))):
        marks = ",".join(f":k{i}" for i in range(len(part)))
        params = {"now": ts(now), **{f"k{i}": key for i, key in enumerate(part)}}
        for row in store.rows(f"SELECT d.subject, d.first_seen_at, d.detail, s.reason, "
                              f"s.until, s.created_by, s.created_at {_FROM} "
                              f"AND d.subject IN ({marks})", params):
            out[row["subject"]] = _entry(row, now, sla_minutes)
    return out


def _entry(row: dict[str, Any], now: datetime, sla_minutes: float) -> dict[str, Any]:
    started = parse_ts(row["first_seen_at"])
    age = (now - started).total_seconds() if started else 0.0
    try:
        effective = json.loads(row["detail"] or "{}").get("effective_at")
    except (ValueError, AttributeError):
        effective = None
    return {
        "employee_id": row["subject"],
        "suppressed_by": row["created_by"],
        "reason": row["reason"],
        "until": row["until"],  # null: no expiry, held until someone lifts it
        "suppressed_at": row["created_at"],
        # HR gave no date: the termination counts from when rostersync saw it.
        "effective_at": effective or row["first_seen_at"],
        "sla_clock_from": row["first_seen_at"],
        "age_seconds": round(age),
        # Past the SLA means strictly longer than it, as the overdue count in status.
        "overdue": age > sla_minutes * 60,
    }


def until_text(entry: dict[str, Any]) -> str:
    return ("until " + entry["until"][:16].replace("T", " ") + " UTC") if entry["until"] \
        else "no expiry"


def describe(entry: dict[str, Any]) -> str:
    """One line naming who blocks the termination, why and until when."""
    return f"suppressed by {entry['suppressed_by']}: {entry['reason']}; {until_text(entry)}"
