"""Operator suppressions: hold all changes for a person, with a reason and an expiry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, inserted_id, parse_ts, ts
from rostersync.storage.people import chunks


def add(store: Store, now: datetime, employee_id: str, reason: str, until: datetime | None,
        actor: str) -> int:
    with store.tx() as conn:
        cur = conn.execute(
            "INSERT INTO suppressions(employee_id, reason, until, created_by, created_at) "
            "VALUES (?,?,?,?,?)", (employee_id, reason, ts(until), actor, ts(now)))
        return inserted_id(cur)


def lift(store: Store, now: datetime, employee_id: str, actor: str) -> int:
    with store.tx() as conn:
        cur = conn.execute("UPDATE suppressions SET lifted_at = ?, lifted_by = ? "
                           "WHERE employee_id = ? AND lifted_at IS NULL",
                           (ts(now), actor, employee_id))
        return cur.rowcount


def active_for(store: Store, keys: list[str], now: datetime) -> dict[str, dict[str, Any]]:
    """employee_id -> the newest suppression in force (not lifted, not expired)."""
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for row in store.rows(
                f"SELECT * FROM suppressions WHERE lifted_at IS NULL AND employee_id IN "
                f"({marks}) AND (until IS NULL OR until > ?) ORDER BY id", (*part, ts(now))):
            row["until_dt"] = parse_ts(row["until"])
            out[row["employee_id"]] = row
    return out


def listing(store: Store, employee_id: str | None = None) -> list[dict[str, Any]]:
    if employee_id:
        return store.rows("SELECT * FROM suppressions WHERE employee_id = ? ORDER BY id DESC",
                          (employee_id,))
    return store.rows("SELECT * FROM suppressions ORDER BY id DESC LIMIT 200")
