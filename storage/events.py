"""Webhook deliveries and the HR events they carried (migration 3).

An accepted request is written before it is answered, so an event survives a crash
between intake and its sync; the queue of people to sync is these rows, not memory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage.db import Store, inserted_id, ts
from rostersync.storage.people import chunks

OPEN = ("queued", "gated")


class Replayed(Exception):
    """This signature was accepted before: the request is a replay."""


def record_delivery(store: Store, now: datetime, source: str, signature_hash: str,
                    events: Iterable[tuple[str, str | None, str, str | None]]) -> list[int]:
    """Store one accepted request and its events (employee_id, action, status, detail);
    raises Replayed when the same signature was seen before."""
    rows = list(events)
    at = ts(now)
    try:
        with store.tx() as conn:
            cur = conn.execute(
                "INSERT INTO webhook_deliveries(source, signature_hash, received_at, events) "
                "VALUES (?,?,?,?)", (source, signature_hash, at, len(rows)))
            delivery = inserted_id(cur)
            ids = []
            for employee_id, action, status, detail in rows:
                cur = conn.execute(
                    "INSERT INTO events_received(delivery_id, source, employee_id, action, "
                    "received_at, status, detail, done_at) VALUES (?,?,?,?,?,?,?,?)",
                    (delivery, source, employee_id, action, at, status, detail,
                     None if status in OPEN else at))
                ids.append(inserted_id(cur))
            return ids
    except sqlite3.IntegrityError:
        raise Replayed(f"a {source} request with this signature was already accepted") from None


def queued(store: Store) -> list[dict[str, Any]]:
    """Events waiting for their sync, oldest first."""
    return store.rows("SELECT id, employee_id, action, received_at FROM events_received "
                      "WHERE status = 'queued' ORDER BY id")


def finish(store: Store, now: datetime, event_ids: list[int], status: str,
           run_id: int | None = None, detail: str | None = None) -> None:
    with store.tx() as conn:
        for part in chunks(event_ids):
            marks = ",".join("?" * len(part))
            conn.execute(
                f"UPDATE events_received SET status = ?, run_id = ?, detail = ?, done_at = ? "
                f"WHERE id IN ({marks})",
                (status, run_id, detail, None if status in OPEN else ts(now), *part))


def requeue_gated(store: Store) -> int:
    """The feed gate opened again: gated events go back to the queue."""
    with store.tx() as conn:
        return conn.execute("UPDATE events_received SET status = 'queued', detail = NULL "
                            "WHERE status = 'gated'").rowcount


def recent(store: Store, limit: int = 50) -> list[dict[str, Any]]:
    return store.rows("SELECT * FROM events_received ORDER BY id DESC LIMIT ?", (limit,))


def summary(store: Store, now: datetime) -> dict[str, Any]:
    """Counts for the status document, the metrics and the console."""
    since = ts(now - timedelta(hours=24))
    by_status = {r["status"]: r["n"] for r in store.rows(
        "SELECT status, count(*) AS n FROM events_received WHERE received_at >= ? "
        "OR status IN ('queued', 'gated') GROUP BY status", (since,))}
    total = store.scalar("SELECT count(*) FROM events_received")
    last = store.scalar("SELECT max(received_at) FROM events_received")
    return {"last_24h": by_status, "total": int(total or 0), "last_received_at": last,
            "queued": by_status.get("queued", 0), "gated": by_status.get("gated", 0)}


def prune(store: Store, before: datetime) -> int:
    """Forget deliveries (and their finished events) older than the retention."""
    with store.tx() as conn:
        return conn.execute(
            "DELETE FROM webhook_deliveries WHERE received_at < ? AND id NOT IN "
            "(SELECT delivery_id FROM events_received WHERE status IN ('queued', 'gated'))",
            (ts(before),)).rowcount


def feed_gate_open(store: Store) -> bool:
    """False while the newest HRIS feed was rejected: the last good state stays in force
    and events wait, as the scheduled runs do."""
    accepted = store.scalar("SELECT accepted FROM snapshots ORDER BY id DESC LIMIT 1")
    return accepted is None or bool(accepted)
