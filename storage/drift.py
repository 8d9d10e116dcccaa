"""Drift rows: one open row per subject and kind, keeping first_seen_at (its age)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, execute_values, ts
from rostersync.storage.people import chunks

# One encoder for every row: json.dumps with options builds a new one per call.
_json = json.JSONEncoder(sort_keys=True, default=str).encode


def open_for(store: Store, subjects: list[str]) -> dict[str, dict[str, int]]:
    """subject -> {kind: drift id} of open rows."""
    out: dict[str, dict[str, int]] = {}
    for part in chunks(subjects):
        marks = ",".join("?" * len(part))
        for drift_id, subject, kind in store.conn.execute(
                # INDEXED BY: the open rows' own index answers alone (it holds subject,
                # kind and the row id), where the subject index would read every row
                # of the person's history to check resolved_at.
                f"SELECT id, subject, kind FROM drift INDEXED BY drift_open "
                f"WHERE resolved_at IS NULL AND subject IN ({marks})", part):
            out.setdefault(subject, {})[kind] = drift_id
    return out


def write(conn: Any, now: datetime, opened: list[tuple[str, str, str | None, dict, str | None]],
          refreshed: list[tuple[int, str | None, dict]], resolved: list[int]) -> None:
    """opened: (subject, kind, lms_id, detail, owner); refreshed: (id, lms_id, detail)."""
    at = ts(now)
    execute_values(
        conn, "INSERT INTO drift(subject, kind, lms_id, detail, owner, first_seen_at, "
        "last_seen_at) VALUES {values}", "(?,?,?,?,?,?,?)",
        [(s, k, lms, _json(d), owner, at, at) for s, k, lms, d, owner in opened])
    execute_values(
        conn, "UPDATE drift SET lms_id = v.column2, detail = v.column3, last_seen_at = "
        "v.column4 FROM (VALUES {values}) AS v WHERE drift.id = v.column1",
        "(?,?,?,?)", [(i, lms, _json(d), at) for i, lms, d in refreshed])
    execute_values(
        conn, "UPDATE drift SET resolved_at = v.column2 FROM (VALUES {values}) AS v "
        "WHERE drift.id = v.column1", "(?,?)", [(i, at) for i in resolved])


# The drift an operation's success ends (a leave suspension is a `mismatch` on active).
# A person with an account of their own has no match left to decide: a create or link
# (an operator's decision on a disputed match, say) ends `disputed` and `unlinked` too.
_RESOLVED_BY = {
    "create": ("missing", "disputed", "unlinked"),
    "link": ("unlinked", "disputed"),
    "update": ("mismatch",),
    "reactivate": ("reactivation", "mismatch"),
    "deactivate": ("pending_termination", "orphan", "mismatch"),
    "delete": ("pending_termination", "orphan", "mismatch"),
}


def resolve_for_op(conn: Any, now: datetime, subject: str, op_kind: str) -> None:
    kinds = _RESOLVED_BY.get(str(op_kind), ())
    if kinds:
        marks = ",".join("?" * len(kinds))
        conn.execute(f"UPDATE drift SET resolved_at = ? WHERE subject = ? AND kind IN ({marks}) "
                     "AND resolved_at IS NULL", (ts(now), subject, *kinds))


def resolve_for_ops(conn: Any, now: datetime, done: Iterable[tuple[str, str]]) -> None:
    """``resolve_for_op`` for many (subject, op kind) pairs, one statement per kind."""
    by_kind: dict[str, list[str]] = {}
    for subject, op_kind in done:
        by_kind.setdefault(str(op_kind), []).append(subject)
    for op_kind, subjects in by_kind.items():
        kinds = _RESOLVED_BY.get(op_kind, ())
        if kinds:
            marks = ",".join("?" * len(kinds))
            conn.executemany(f"UPDATE drift SET resolved_at = ? WHERE subject = ? AND kind IN "
                             f"({marks}) AND resolved_at IS NULL",
                             [(ts(now), subject, *kinds) for subject in subjects])


def open_subjects(store: Store, kinds: tuple[str, ...]) -> set[str]:
    """Everyone with open drift of these kinds (through drift_open_kind)."""
    marks = ",".join("?" * len(kinds))
    return {r[0] for r in store.conn.execute(
        f"SELECT subject FROM drift WHERE resolved_at IS NULL AND kind IN ({marks})", kinds)}


def counts_by_kind(store: Store) -> dict[str, int]:
    return dict(store.conn.execute(
        "SELECT kind, count(*) FROM drift WHERE resolved_at IS NULL GROUP BY kind"))


def ignored_disputes(store: Store) -> int:
    """Open disputed drift an operator chose to ignore (with a reason, `links ignore`):
    it stays listed, but it is no longer news for `status`."""
    return int(store.scalar(
        "SELECT count(*) FROM drift WHERE resolved_at IS NULL AND kind = 'disputed' "
        "AND json_extract(detail, '$.ignored') IS NOT NULL") or 0)
