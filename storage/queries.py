"""The console's and `status`'s questions, each answered by an indexed query."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.db import Store, parse_ts, ts


def termination_figures(store: Store, now: datetime, sla_minutes: float) -> dict[str, Any]:
    """Pending (effective, not yet enforced), overdue (past the SLA) and scheduled ones.

    A termination is pending while its `pending_termination` drift is open; its age counts
    from when rostersync first saw it effective, which is when the SLA clock starts.
    """
    rows = store.rows(
        "SELECT subject, first_seen_at, detail FROM drift "
        "WHERE resolved_at IS NULL AND kind = 'pending_termination' ORDER BY first_seen_at")
    pending = len(rows)
    overdue = 0
    oldest_age = None
    for row in rows:
        age = (now - parse_ts(row["first_seen_at"])).total_seconds()
        oldest_age = age if oldest_age is None else max(oldest_age, age)
        if age > sla_minutes * 60:
            overdue += 1
    scheduled = store.scalar(
        "SELECT count(*) FROM ops WHERE kind = 'deactivate' AND status = 'pending' "
        "AND next_attempt_at > ? AND reason = 'termination scheduled'", (ts(now),))
    next_at = store.scalar(
        "SELECT min(next_attempt_at) FROM ops WHERE kind = 'deactivate' AND status = 'pending' "
        "AND next_attempt_at > ?", (ts(now),))
    return {"pending": pending, "overdue": overdue, "scheduled": int(scheduled or 0),
            "oldest_pending_age_seconds": None if oldest_age is None else round(oldest_age),
            "next_scheduled_at": next_at, "sla_minutes": sla_minutes}


def person_history(store: Store, employee_id: str, limit: int = 50) -> dict[str, Any]:
    ops = store.rows("SELECT * FROM ops WHERE employee_id = ? ORDER BY id DESC LIMIT ?",
                     (employee_id, limit))
    for op in ops:
        op["payload"] = json.loads(op["payload"])
    drift = store.rows("SELECT * FROM drift WHERE subject = ? ORDER BY id DESC LIMIT ?",
                       (employee_id, limit))
    for row in drift:
        row["detail"] = json.loads(row["detail"])
    audit = store.rows("SELECT * FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?",
                       (employee_id, limit))
    return {"ops": ops, "drift": drift, "audit": audit}
