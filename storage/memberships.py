"""Audience memberships: what the LMS holds (audience_members) and what the rules want
(audience_people, audience_desired), for the engine, the CLI and the console."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage.db import Store, ts
from storage.people import chunks

_json = json.JSONEncoder(sort_keys=True, default=str).encode


def actual_for(store: Store, keys: list[str]) -> dict[str, set[str]]:
    """employee_id -> audience ids the LMS has them in (as last read or written)."""
    out: dict[str, set[str]] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for audience, key in store.conn.execute(
                f"SELECT audience_id, employee_id FROM audience_members "
                f"WHERE employee_id IN ({marks})", part):
            out.setdefault(key, set()).add(audience)
    return out


def members(store: Store, audience: str) -> dict[str, str | None]:
    """lms_id -> employee_id (None: an LMS account no person is linked to)."""
    return dict(store.conn.execute(
        "SELECT lms_id, employee_id FROM audience_members WHERE audience_id = ?", (audience,)))


def replace_members(conn: Any, now: datetime, audience: str,
                    rows: dict[str, str | None]) -> None:
    """The LMS's listing of one audience: lms_id -> employee_id."""
    conn.execute("DELETE FROM audience_members WHERE audience_id = ?", (audience,))
    at = ts(now)
    conn.executemany("INSERT INTO audience_members(audience_id, lms_id, employee_id, seen_at) "
                     "VALUES (?,?,?,?)", [(audience, lms, key, at) for lms, key in rows.items()])


def applied(conn: Any, now: datetime, audience: str, lms_id: str, employee_id: str,
            added: bool) -> None:
    """A membership operation succeeded: the cache follows what the LMS now holds."""
    if added:
        conn.execute("INSERT OR REPLACE INTO audience_members(audience_id, lms_id, employee_id, "
                     "seen_at) VALUES (?,?,?,?)", (audience, lms_id, employee_id, ts(now)))
    else:
        conn.execute("DELETE FROM audience_members WHERE audience_id = ? AND "
                     "(lms_id = ? OR employee_id = ?)", (audience, lms_id, employee_id))


def write_people(conn: Any, now: datetime, rows: Iterable[tuple[str, dict, dict, datetime | None]]
                 ) -> None:
    """rows: (employee_id, desired {audience: why}, frozen {audience: why}, due_at)."""
    rows = list(rows)
    if not rows:
        return
    at = ts(now)
    conn.executemany(
        "INSERT INTO audience_people(employee_id, desired, frozen, due_at, updated_at) "
        "VALUES (?,?,?,?,?) ON CONFLICT(employee_id) DO UPDATE SET desired = excluded.desired, "
        "frozen = excluded.frozen, due_at = excluded.due_at, updated_at = excluded.updated_at",
        [(key, _json(desired), _json(frozen), ts(due), at) for key, desired, frozen, due in rows])
    keys = [(r[0],) for r in rows]
    conn.executemany("DELETE FROM audience_desired WHERE employee_id = ?", keys)
    conn.executemany("INSERT INTO audience_desired(audience_id, employee_id) VALUES (?,?)",
                     [(a, key) for key, desired, _f, _d in rows for a in desired])


def placement_of(store: Store, employee_id: str) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM audience_people WHERE employee_id = ?", (employee_id,))
    if not rows:
        return None
    row = rows[0]
    row["desired"] = json.loads(row["desired"])
    row["frozen"] = json.loads(row["frozen"])
    return row


def sizes(store: Store) -> dict[str, dict[str, int]]:
    """audience id -> {"actual": n, "desired": n, "pending_add": n, "pending_remove": n,
    "held": n}."""
    out: dict[str, dict[str, int]] = {}

    def bump(audience: str, name: str, n: int) -> None:
        out.setdefault(audience, {"actual": 0, "desired": 0, "pending_add": 0,
                                  "pending_remove": 0, "held": 0})[name] += n

    for audience, n in store.conn.execute(
            "SELECT audience_id, count(*) FROM audience_members GROUP BY audience_id"):
        bump(audience, "actual", n)
    for audience, n in store.conn.execute(
            "SELECT audience_id, count(*) FROM audience_desired GROUP BY audience_id"):
        bump(audience, "desired", n)
    for kind, status, audience, n in store.conn.execute(
            "SELECT kind, status, json_extract(payload, '$.audience'), count(*) FROM ops "
            "WHERE kind IN ('member_add', 'member_remove') "
            "AND status IN ('pending','running','failed','held','suppressed') "
            "GROUP BY kind, status, 3"):
        if status == "held":
            bump(audience, "held", n)
        else:
            bump(audience, "pending_add" if kind == "member_add" else "pending_remove", n)
    return out


def actual_sizes(store: Store) -> dict[str, int]:
    return dict(store.conn.execute(
        "SELECT audience_id, count(*) FROM audience_members GROUP BY audience_id"))


def due_keys(store: Store, now: datetime) -> set[str]:
    return {r[0] for r in store.conn.execute(
        "SELECT employee_id FROM audience_people WHERE due_at IS NOT NULL AND due_at <= ?",
        (ts(now),))}
