"""The console's and `status`'s questions, each answered by an indexed query."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rostersync.storage.db import Store, parse_ts, ts

# A scheduled termination: a future change whose next state is "terminated" (the rehire
# rule of sync.lifecycle: a hire date after the termination date makes it history), of a
# person rostersync manages (in scope). Clauses over the people table.
SCHEDULED_TERMINATION = (
    "effective_at IS NOT NULL", "in_scope = 1",
    "json_extract(record, '$.termination_date') IS NOT NULL",
    # FALSE, not 0: PostgreSQL will not coalesce a comparison with a number.
    "NOT coalesce(json_extract(record, '$.hire_date') > "
    "json_extract(record, '$.termination_date'), FALSE)")


def termination_figures(store: Store, now: datetime, sla_minutes: float) -> dict[str, Any]:
    """Pending (effective, not yet enforced), overdue (past the SLA) and scheduled ones.

    A termination is pending while its `pending_termination` drift is open; its age counts
    from when rostersync first saw it effective, which is when the SLA clock starts. All
    counted in SQL over the open-drift index: the dashboard asks every few seconds.
    """
    deadline = ts(now - timedelta(minutes=sla_minutes))
    pending, overdue, oldest = store.one(
        "SELECT count(*), coalesce(sum(first_seen_at < ?), 0), min(first_seen_at) FROM drift "
        "WHERE resolved_at IS NULL AND kind = 'pending_termination'", (deadline,))
    oldest_age = None if oldest is None else (now - parse_ts(oldest)).total_seconds()
    # The same people the console's "scheduled" list shows, so the figure and the list
    # it opens agree (a held or suppressed deactivation is still a scheduled termination).
    scheduled, next_at = store.one(
        "SELECT count(*), min(effective_at) FROM people WHERE "
        + " AND ".join(SCHEDULED_TERMINATION) + " AND effective_at > ?", (ts(now),))
    return {"pending": pending, "overdue": overdue, "scheduled": int(scheduled or 0),
            "oldest_pending_age_seconds": None if oldest_age is None else round(oldest_age),
            "next_scheduled_at": next_at, "sla_minutes": sla_minutes}
