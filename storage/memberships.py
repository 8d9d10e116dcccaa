"""Audience memberships: what the LMS holds (audience_members) and what the rules want
(audience_people, audience_desired), for the engine, the CLI and the console; and the
members no person is linked to (strays), filed under ``lms:<lms id>``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, execute_values, ts
from rostersync.storage.people import chunks

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


# The hold reason of a compliance removal held until the person's addition lands.
WAITS_FOR_ADDITION = "waits for an addition:"


def applied(conn: Any, now: datetime, audience: str, lms_id: str, employee_id: str,
            added: bool) -> None:
    """A membership operation succeeded: the cache follows what the LMS now holds."""
    if added:
        conn.execute("INSERT OR REPLACE INTO audience_members(audience_id, lms_id, employee_id, "
                     "seen_at) VALUES (?,?,?,?)", (audience, lms_id, employee_id, ts(now)))
        # Removals held for this person's addition are free to go (they check again).
        conn.execute("UPDATE ops SET status = 'pending', hold_reason = NULL, updated_at = ? "
                     "WHERE employee_id = ? AND kind = 'member_remove' AND status = 'held' "
                     "AND hold_reason LIKE ?", (ts(now), employee_id, WAITS_FOR_ADDITION + "%"))
    else:
        conn.execute("DELETE FROM audience_members WHERE audience_id = ? AND "
                     "(lms_id = ? OR employee_id = ?)", (audience, lms_id, employee_id))
        settle_stray(conn, now, employee_id, lms_id)


def write_people(conn: Any, now: datetime, rows: Iterable[tuple[str, dict, dict, datetime | None]]
                 ) -> None:
    """rows: (employee_id, desired {audience: why}, frozen {audience: why}, due_at)."""
    rows = list(rows)
    if not rows:
        return
    at = ts(now)
    # Multi-row statements, not executemany: this runs on the plan's writer thread
    # (storage/writer.py).
    execute_values(
        conn, "INSERT INTO audience_people(employee_id, desired, frozen, due_at, updated_at) "
        "VALUES {values} ON CONFLICT(employee_id) DO UPDATE SET desired = excluded.desired, "
        "frozen = excluded.frozen, due_at = excluded.due_at, updated_at = excluded.updated_at",
        "(?,?,?,?,?)",
        [(key, _json(desired), _json(frozen), ts(due), at) for key, desired, frozen, due in rows])
    execute_values(conn, "DELETE FROM audience_desired WHERE employee_id IN (VALUES {values})",
                   "(?)", [(r[0],) for r in rows])
    execute_values(conn, "INSERT INTO audience_desired(audience_id, employee_id) VALUES {values}",
                   "(?,?)", [(a, key) for key, desired, _f, _d in rows for a in desired])


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


# Stray members' subject in drift and ops: no employee id to file them under.
STRAY_PREFIX = "lms:"


def strays(store: Store) -> dict[str, set[str]]:
    """lms_id -> audience ids of members no person is linked to: an account without an
    external key, or one whose key HR never sent."""
    out: dict[str, set[str]] = {}
    for audience, lms_id in store.conn.execute(
            "SELECT audience_id, lms_id FROM audience_members WHERE employee_id IS NULL "
            "OR employee_id NOT IN (SELECT employee_id FROM people)"):
        out.setdefault(lms_id, set()).add(audience)
    return out


def open_stray_rows(store: Store) -> tuple[dict[str, int], dict[str, list[dict[str, Any]]]]:
    """({subject: open member_extra drift id}, {subject: open ops}) of stray subjects."""
    like = STRAY_PREFIX + "%"
    drift = {subject: drift_id for drift_id, subject in store.conn.execute(
        "SELECT id, subject FROM drift WHERE resolved_at IS NULL AND kind = 'member_extra' "
        "AND subject LIKE ?", (like,))}
    ops: dict[str, list[dict[str, Any]]] = {}
    for row in store.rows(
            "SELECT id, employee_id, kind, idem_key, status FROM ops WHERE employee_id LIKE ? "
            "AND status IN ('pending','running','failed','held','suppressed')", (like,)):
        ops.setdefault(row["employee_id"], []).append(row)
    return drift, ops


def linking_lms_ids(store: Store) -> set[str]:
    """Accounts an open link operation is about to tie to a person: not strays."""
    return {r[0] for r in store.conn.execute(
        "SELECT lms_id FROM ops WHERE kind = 'link' AND lms_id IS NOT NULL "
        "AND status IN ('pending','running','failed','held','suppressed')")}


def settle_stray(conn: Any, now: datetime, subject: str, lms_id: str) -> None:
    """A stray's removal landed: once it is in no audience, its drift is over."""
    if not subject.startswith(STRAY_PREFIX):
        return
    left = conn.execute("SELECT 1 FROM audience_members WHERE lms_id = ? LIMIT 1",
                        (lms_id,)).fetchone()
    if left is None:
        conn.execute("UPDATE drift SET resolved_at = ? WHERE subject = ? AND kind = "
                     "'member_extra' AND resolved_at IS NULL", (ts(now), subject))


def missing_from(store: Store, employee_id: str, audiences: list[str]) -> list[str]:
    """Of ``audiences``, those the rules want the person in but the LMS lacks them in."""
    if not audiences:
        return []
    marks = ",".join("?" * len(audiences))
    return sorted(r[0] for r in store.conn.execute(
        f"SELECT d.audience_id FROM audience_desired d WHERE d.employee_id = ? "
        f"AND d.audience_id IN ({marks}) AND NOT EXISTS (SELECT 1 FROM audience_members m "
        "WHERE m.audience_id = d.audience_id AND m.employee_id = d.employee_id)",
        (employee_id, *audiences)))


def latest_additions(store: Store, employee_id: str) -> dict[str, dict[str, Any]]:
    """audience id -> the person's most recent member_add op (status, next_attempt_at,
    last_error)."""
    out: dict[str, dict[str, Any]] = {}
    for row in store.rows(
            "SELECT json_extract(payload, '$.audience') AS audience, status, next_attempt_at, "
            "last_error FROM ops WHERE employee_id = ? AND kind = 'member_add' ORDER BY id",
            (employee_id,)):
        out[row["audience"]] = row
    return out
