"""Figures about real-time intake (migration 6): refused webhook requests, events by
outcome over a period, and the events list.

Refusals are stored (not only counted in the listener's memory) so that `rostersync
status`, run from cron or a monitoring agent in another process, can say that the
listener has been turning senders away.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, ts


def record_refusal(store: Store, now: datetime, source: str, status: int, why: str) -> None:
    """Count one refused request in its minute's row (bounded growth under a flood)."""
    minute = ts(now.replace(second=0, microsecond=0))
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO webhook_refusals(minute, source, status, refused, last_at, last_why) "
            "VALUES (?,?,?,1,?,?) ON CONFLICT(minute, source, status) DO UPDATE SET "
            # Qualified: on PostgreSQL a bare `refused` could be the excluded row's too.
            "refused = webhook_refusals.refused + 1, last_at = excluded.last_at, "
            "last_why = excluded.last_why",
            (minute, source, status, ts(now), why[:300]))


def refusals_since(store: Store, since: datetime) -> dict[str, Any]:
    """``{"count", "last_at", "last_why", "last_source", "last_status"}`` since a moment
    (the minute that holds ``since`` counts whole: a refusal is never under-reported)."""
    start = ts(since.replace(second=0, microsecond=0))
    count = store.scalar("SELECT sum(refused) FROM webhook_refusals WHERE minute >= ?",
                         (start,))
    last = store.rows("SELECT last_at, last_why, source, status FROM webhook_refusals "
                      "WHERE minute >= ? ORDER BY last_at DESC LIMIT 1", (start,))
    row = last[0] if last else {}
    return {"count": int(count or 0), "last_at": row.get("last_at"),
            "last_why": row.get("last_why"), "last_source": row.get("source"),
            "last_status": row.get("status")}


def prune_refusals(store: Store, before: datetime) -> int:
    with store.tx() as conn:
        return conn.execute("DELETE FROM webhook_refusals WHERE minute < ?",
                            (ts(before),)).rowcount


def outcomes_since(store: Store, since: datetime) -> dict[str, int]:
    """Events received since a moment, by outcome (events_received.status)."""
    return {r["status"]: int(r["n"]) for r in store.rows(
        "SELECT status, count(*) AS n FROM events_received WHERE received_at >= ? "
        "GROUP BY status", (ts(since),))}


def waiting(store: Store) -> dict[str, int]:
    """Events waiting for their sync, whatever their age: queued and gated."""
    counts = {r["status"]: int(r["n"]) for r in store.rows(
        "SELECT status, count(*) AS n FROM events_received WHERE status IN "
        "('queued', 'gated') GROUP BY status")}
    return {"queued": counts.get("queued", 0), "gated": counts.get("gated", 0)}


def last_received_at(store: Store) -> str | None:
    return store.scalar("SELECT max(received_at) FROM events_received")


def list_events(store: Store, since: datetime, outcomes: Sequence[str] = (),
                limit: int = 200) -> list[dict[str, Any]]:
    """Events received since a moment, newest first, optionally of some outcomes."""
    where, params = ["received_at >= ?"], [ts(since)]
    if outcomes:
        where.append(f"status IN ({','.join('?' * len(outcomes))})")
        params += list(outcomes)
    return store.rows(
        "SELECT id, received_at, source, employee_id, action, status AS outcome, run_id, "
        "detail, done_at, delivery_id FROM events_received WHERE " + " AND ".join(where)
        + " ORDER BY id DESC LIMIT ?", (*params, limit))
