"""Operator decisions on disputed and unlinked matches: the work queue's answers.

When HR's person has several candidate LMS accounts (``disputed``) or one that matches by
e-mail or userName but carries no external key (``unlinked``), an operator may decide:
``link`` (to exactly that LMS account), ``create`` (a new account, whatever the
candidates) or ``ignore`` (with a reason: the drift stays visible, nothing is planned for
the match). One decision per person is in force; a newer one supersedes it, and it can
be cleared. Ended decisions are kept, with who ended them and how, as history.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rostersync.storage import accounts as account_store
from rostersync.storage.db import Store, ts
from rostersync.storage.people import chunks

DECISIONS = ("link", "create", "ignore")
MATCH_KINDS = ("disputed", "unlinked")


@dataclass(frozen=True)
class MatchDecision:
    id: int
    employee_id: str
    decision: str  # link | create | ignore
    lms_id: str | None  # link: the chosen account
    reason: str | None
    decided_by: str
    decided_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "decision": self.decision, "lms_id": self.lms_id,
                "reason": self.reason, "by": self.decided_by, "at": self.decided_at}


_COLUMNS = "id, employee_id, decision, lms_id, reason, decided_by, decided_at"


def _decision(row: tuple) -> MatchDecision:
    return MatchDecision(*row)


def active(store: Store, employee_id: str) -> MatchDecision | None:
    return _active_in(store.conn, employee_id)


def active_for(store: Store, keys: list[str]) -> dict[str, MatchDecision]:
    """employee_id -> the decision in force, for those of ``keys`` that have one."""
    out: dict[str, MatchDecision] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for row in store.conn.execute(
                f"SELECT {_COLUMNS} FROM match_decisions WHERE ended_at IS NULL "
                f"AND employee_id IN ({marks})", part):
            out[row[1]] = _decision(row)
    return out


def record(conn: Any, now: datetime, employee_id: str, decision: str, lms_id: str | None,
           reason: str | None, actor: str) -> tuple[int, MatchDecision | None]:
    """Put a decision in force (inside the caller's transaction); returns its id and the
    decision it superseded, if any."""
    if decision not in DECISIONS:
        raise ValueError(f"unknown match decision {decision!r} (one of {', '.join(DECISIONS)})")
    before = _active_in(conn, employee_id)
    if before is not None:
        _end(conn, now, before.id, actor, "superseded", None)
    cur = conn.execute(
        "INSERT INTO match_decisions(employee_id, decision, lms_id, reason, decided_by, "
        "decided_at) VALUES (?,?,?,?,?,?)",
        (employee_id, decision, lms_id, reason, actor, ts(now)))
    return int(cur.lastrowid), before


def clear(conn: Any, now: datetime, employee_id: str, actor: str) -> MatchDecision | None:
    """End the decision in force (inside the caller's transaction); returns it."""
    before = _active_in(conn, employee_id)
    if before is not None:
        _end(conn, now, before.id, actor, "cleared", None)
    return before


def _active_in(conn: Any, employee_id: str) -> MatchDecision | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM match_decisions WHERE employee_id = ? "
                       "AND ended_at IS NULL", (employee_id,)).fetchone()
    return _decision(row) if row else None


def _end(conn: Any, now: datetime, decision_id: int, actor: str, how: str,
         why: str | None) -> None:
    conn.execute("UPDATE match_decisions SET ended_at = ?, ended_by = ?, ended_how = ?, "
                 "ended_why = ? WHERE id = ?", (ts(now), actor, how, why, decision_id))


# -- the work queue ---------------------------------------------------------------------

def open_matches(store: Store, employee_id: str | None = None) -> list[dict[str, Any]]:
    """Open ``disputed`` and ``unlinked`` drift (one person's, or everyone's), oldest
    first, each with its decoded detail."""
    sql = ("SELECT id, subject, kind, lms_id, detail, first_seen_at, last_seen_at FROM drift "
           "WHERE resolved_at IS NULL AND kind IN ('disputed', 'unlinked')")
    params: tuple = ()
    if employee_id is not None:
        sql += " AND subject = ?"
        params = (employee_id,)
    rows = store.rows(sql + " ORDER BY first_seen_at, id", params)
    for row in rows:
        row["detail"] = json.loads(row["detail"] or "{}")
    return rows


def person_desired(store: Store, employee_id: str) -> dict[str, Any] | None:
    """The person's HR record and desired account as last evaluated (None: unknown)."""
    rows = store.rows("SELECT record, desired FROM people WHERE employee_id = ?",
                      (employee_id,))
    if not rows:
        return None
    row = rows[0]
    return {"record": json.loads(row["record"]) if row["record"] else None,
            "desired": json.loads(row["desired"]) if row["desired"] else None}


def candidates(store: Store, employee_id: str, desired: dict[str, Any] | None,
               also: list[str] | None = None) -> list[dict[str, Any]]:
    """The LMS accounts (as last read) that could be this person's: the same e-mail or
    userName as the desired account (case-insensitive), plus the accounts named in
    ``also`` (those the drift lists, or a decision points at). Each is the Account JSON,
    decoded, ordered by LMS id."""
    found: dict[str, str] = {}
    if desired:
        for column, value in (("email", desired.get("email")),
                              ("user_name", desired.get("user_name"))):
            if not value:
                continue
            for lms_id, data in store.conn.execute(
                    f"SELECT lms_id, data FROM accounts WHERE {column} = ? COLLATE NOCASE",
                    (value,)):
                found[lms_id] = data
    found.update(account_store.by_lms_ids(store, list(also or ())))
    return [json.loads(found[k]) for k in sorted(found, key=_id_order)]


def _id_order(lms_id: str) -> tuple[int, int | str]:
    return (0, int(lms_id)) if lms_id.isdigit() else (1, lms_id)
