"""Alert conditions: each one's current state and the state last announced (migration 3).

Keeping "announced" apart from "current" is what makes one notice per change: a notice
that could not be delivered stays owed and is sent on the next check.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from storage.db import Store, ts


def all_states(store: Store) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in store.rows("SELECT * FROM alert_state")}


def set_state(store: Store, now: datetime, key: str, active: bool, detail: str | None) -> None:
    """Record the condition's state; ``since`` moves only when the state changes."""
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO alert_state(key, active, since, detail) VALUES (?,?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET detail = excluded.detail, "
            "since = CASE WHEN active = excluded.active THEN since ELSE excluded.since END, "
            "active = excluded.active", (key, int(active), ts(now), detail))


def mark_notified(store: Store, now: datetime, key: str, state: bool,
                  error: str | None = None) -> None:
    with store.tx() as conn:
        if error is None:
            conn.execute("UPDATE alert_state SET notified = ?, notified_at = ?, "
                         "last_error = NULL WHERE key = ?", (int(state), ts(now), key))
        else:
            conn.execute("UPDATE alert_state SET last_error = ? WHERE key = ?", (error, key))
