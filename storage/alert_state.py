"""Alert conditions: each one's current state and the state last announced (migration 3),
and per channel (migration 6).

Keeping "announced" apart from "current" is what makes one notice per change: a notice
that could not be delivered stays owed and is sent on the next check, to the channels
that did not take it only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, ts


def all_states(store: Store) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in store.rows("SELECT * FROM alert_state")}


def set_state(store: Store, now: datetime, key: str, active: bool, detail: str | None) -> None:
    """Record the condition's state; ``since`` moves only when the state changes."""
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO alert_state(key, active, since, detail) VALUES (?,?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET detail = excluded.detail, "
            # Qualified: PostgreSQL reads a bare name here as ambiguous with excluded's.
            "since = CASE WHEN alert_state.active = excluded.active THEN alert_state.since "
            "ELSE excluded.since END, "
            "active = excluded.active", (key, int(active), ts(now), detail))


def mark_notified(store: Store, now: datetime, key: str, state: bool,
                  error: str | None = None) -> None:
    with store.tx() as conn:
        if error is None:
            conn.execute("UPDATE alert_state SET notified = ?, notified_at = ?, "
                         "last_error = NULL WHERE key = ?", (int(state), ts(now), key))
        else:
            conn.execute("UPDATE alert_state SET last_error = ? WHERE key = ?", (error, key))


def deliveries(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    """Each (alert, channel)'s last announced state (migration 6)."""
    return {(r["key"], r["channel"]): r for r in store.rows("SELECT * FROM alert_deliveries")}


def mark_channel(store: Store, now: datetime, key: str, channel: str, notified: bool | None,
                 error: str | None) -> None:
    """Record one channel's delivery: ``notified`` is the state it has now announced (the
    previous one when this delivery failed, so that what it is owed stays owed)."""
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO alert_deliveries(key, channel, notified, notified_at, last_error) "
            "VALUES (?,?,?,?,?) ON CONFLICT(key, channel) DO UPDATE SET "
            "notified = excluded.notified, last_error = excluded.last_error, "
            "notified_at = CASE WHEN excluded.last_error IS NULL THEN excluded.notified_at "
            "ELSE alert_deliveries.notified_at END",
            (key, channel, None if notified is None else int(notified),
             ts(now) if error is None else None, error))
