"""The console's list and drill-down questions: one page at a time, totals by COUNT.

The console never loads a population into a widget: every list is filtered, sorted,
counted and paged here, in SQL, with the sort column chosen from a whitelist (it is
interpolated into the statement, so it must never come from free text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rostersync.storage import people_search, source_health, trends
from rostersync.storage.db import Store, ts
from rostersync.storage.queries import SCHEDULED_TERMINATION


@dataclass(frozen=True)
class ListSpec:
    """One list: its rows, the columns the filter searches and the sortable columns."""

    name: str
    select: str  # SELECT ... FROM ... (no WHERE)
    base_where: tuple[str, ...]
    filter_columns: tuple[str, ...]
    sort_columns: tuple[str, ...]
    default_sort: str
    default_desc: bool = False
    status_column: str | None = None  # narrowed by the "status" argument of page()
    # The row's person, qualified by its table: the filter also matches their name and
    # e-mail (storage/people_search.py).
    person_column: str | None = None
    # A condition on the time of the question, bound to page()'s ``now``.
    now_clause: str | None = None


# A termination's deactivation status, shown and searched. Searched as the expression, not
# its alias: PostgreSQL (unlike SQLite) has no SELECT aliases in WHERE.
_OP_STATUS = ("(SELECT o.status FROM ops o WHERE o.employee_id = d.subject "
              "AND o.kind = 'deactivate' ORDER BY o.id DESC LIMIT 1)")

SPECS: dict[str, ListSpec] = {
    "drift": ListSpec(
        "drift",
        "SELECT id, subject, kind, owner, first_seen_at, last_seen_at, detail FROM drift",
        ("resolved_at IS NULL",), ("subject", "kind", "owner", "detail"),
        ("first_seen_at", "subject", "kind", "owner", "id"), "first_seen_at",
        status_column="kind", person_column="drift.subject"),
    "ops": ListSpec(
        "ops",
        "SELECT id, employee_id, kind, status, reason, attempts, max_attempts, error_class, "
        "http_status, last_error, hold_reason, next_attempt_at, run_id, updated_at FROM ops",
        (), ("status", "kind", "employee_id", "reason", "hold_reason", "error_class",
             "last_error"),
        ("id", "employee_id", "kind", "status", "attempts", "error_class", "updated_at"),
        "id", True, status_column="status", person_column="ops.employee_id"),
    "terminations": ListSpec(
        "terminations",
        f"SELECT d.id, d.subject, d.first_seen_at, d.detail, {_OP_STATUS} AS op_status "
        "FROM drift d",
        ("d.resolved_at IS NULL", "d.kind = 'pending_termination'"), ("d.subject", _OP_STATUS),
        ("first_seen_at", "subject", "id"), "first_seen_at", person_column="d.subject"),
    "scheduled": ListSpec(
        "scheduled",
        "SELECT employee_id AS id, employee_id, effective_at, status, "
        "json_extract(record, '$.termination_date') AS termination_date, "
        "json_extract(record, '$.timezone') AS timezone FROM people",
        SCHEDULED_TERMINATION, ("employee_id", "status"), ("effective_at", "employee_id", "id"),
        "effective_at", person_column="people.employee_id", now_clause="effective_at > ?"),
    "runs": ListSpec(
        "runs",
        "SELECT id, kind, trigger, dry_run, status, started_at, finished_at, counts, message "
        "FROM runs", (), ("kind", "trigger", "status", "error_class", "message"),
        ("id", "kind", "status", "started_at"), "id", True, status_column="status"),
    "audit": ListSpec(
        "audit", "SELECT id, at, actor, action, target, detail FROM audit", (),
        ("actor", "action", "target", "detail"), ("id", "actor", "action", "target"), "id",
        True),
}


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int  # rows matching the filter, from COUNT
    offset: int
    limit: int


def page(store: Store, name: str, *, filter_text: str = "", sort: str | None = None,
         desc: bool | None = None, status: str | None = None, offset: int = 0,
         limit: int = 50, now: datetime | None = None) -> Page:
    spec = SPECS[name]
    where, params = _where(spec, filter_text, status, now)
    sort = sort if sort in spec.sort_columns else spec.default_sort
    desc = spec.default_desc if desc is None else desc
    direction = "DESC" if desc else "ASC"
    # id breaks ties so that a page boundary never repeats or skips a row.
    tie = "" if sort == "id" else f", id {direction}"
    total = store.scalar(f"SELECT count(*) FROM ({spec.select}{where})", params)
    rows = store.rows(f"SELECT * FROM ({spec.select}{where}) ORDER BY {sort} {direction}{tie} "
                      "LIMIT ? OFFSET ?", (*params, limit, max(0, offset)))
    return Page(rows, int(total or 0), offset, limit)


def _where(spec: ListSpec, filter_text: str, status: str | None,
           now: datetime | None = None) -> tuple[str, list[Any]]:
    clauses = list(spec.base_where)
    params: list[Any] = []
    if spec.now_clause:
        clauses.append(spec.now_clause)
        params.append(ts(now or datetime.now(UTC)))
    if status and spec.status_column:
        clauses.append(f"{spec.status_column} = ?")
        params.append(status)
    # Each word must match some column: "E0004 failed" narrows like k9s does. Cost: one
    # pass over the list's rows, a few LIKEs per row (LIKE '%x%' can use no index); the
    # name match is correlated (one primary-key lookup per row no column matched), never a
    # join of the list with the people table. Words that cannot name anyone come first, so
    # the name match runs only on rows they have let through.
    words = sorted(filter_text.split(), key=people_search.may_name_a_person)
    for word in words:
        op = people_search.like(word)
        terms = [f"{c} {op}" for c in spec.filter_columns]
        params.extend([people_search.like_pattern(word)] * len(spec.filter_columns))
        if spec.person_column and people_search.may_name_a_person(word):
            condition, extra = people_search.person_match(spec.person_column, word)
            terms.append(condition)
            params.extend(extra)
        clauses.append("(" + " OR ".join(terms) + ")")
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


# -- drill-downs -----------------------------------------------------------------------

def person_detail(store: Store, employee_id: str, limit: int = 30) -> dict[str, Any]:
    """Everything the person screen shows, read in one go (one thread, one connection)."""
    person = store.rows("SELECT employee_id, status, in_scope, record, desired, locator, "
                        "effective_at, missing_since FROM people WHERE employee_id = ?",
                        (employee_id,))
    account = store.rows("SELECT lms_id, active, data FROM accounts WHERE external_key = ? "
                         "ORDER BY active DESC LIMIT 1", (employee_id,))
    drift = store.rows("SELECT id, kind, owner, detail, first_seen_at FROM drift "
                       "WHERE subject = ? AND resolved_at IS NULL ORDER BY id", (employee_id,))
    for row in drift:
        row["detail"] = json.loads(row["detail"] or "{}")
    ops = store.rows("SELECT id, kind, status, reason, attempts, max_attempts, error_class, "
                     "http_status, last_error, hold_reason, suppressed_reason, "
                     "suppressed_until, next_attempt_at, run_id, updated_at FROM ops "
                     "WHERE employee_id = ? ORDER BY id DESC LIMIT ?", (employee_id, limit))
    ids = [op["id"] for op in ops]
    attempts: dict[int, list[dict[str, Any]]] = {}
    if ids:
        marks = ",".join("?" * len(ids))
        for a in store.rows(f"SELECT * FROM op_attempts WHERE op_id IN ({marks}) "
                            "ORDER BY op_id, attempt", ids):
            attempts.setdefault(a["op_id"], []).append(a)
    for op in ops:
        op["attempt_log"] = attempts.get(op["id"], [])
    audit = store.rows("SELECT id, at, actor, action, detail FROM audit WHERE target = ? "
                       "ORDER BY id DESC LIMIT ?", (employee_id, limit))
    suppression = store.rows("SELECT reason, until, created_by, created_at FROM suppressions "
                             "WHERE employee_id = ? AND lifted_at IS NULL ORDER BY id DESC "
                             "LIMIT 1", (employee_id,))
    p = person[0] if person else None
    return {
        "employee_id": employee_id,
        "person": p,
        "record": json.loads(p["record"]) if p and p["record"] else None,
        "desired": json.loads(p["desired"]) if p and p["desired"] else None,
        "account": json.loads(account[0]["data"]) if account else None,
        "drift": drift, "ops": ops, "audit": audit,
        "suppression": suppression[0] if suppression else None,
    }


def recent_activity(store: Store, limit: int = 8) -> dict[str, list[dict[str, Any]]]:
    runs = store.rows("SELECT id, kind, trigger, status, started_at, finished_at, counts, "
                      "message FROM runs ORDER BY id DESC LIMIT ?", (limit,))
    for run in runs:
        run["counts"] = json.loads(run["counts"] or "{}")
        if run["status"] == "running":
            # Its counts are written at the end; its ops say how far it has got (a run
            # started by another process shows on a read-only console too).
            run["ops"] = {r["status"]: r["n"] for r in store.rows(
                "SELECT status, count(*) AS n FROM ops WHERE run_id = ? GROUP BY status",
                (run["id"],))}
    audit = store.rows("SELECT id, at, actor, action, target FROM audit ORDER BY id DESC "
                       "LIMIT ?", (limit,))
    return {"runs": runs, "audit": audit}


def run_series(store: Store, limit: int = 30, now: datetime | None = None) -> dict[str, Any]:
    """The dashboard's trends, oldest first (storage/trends.py): drift found, ops failed
    and HR data age per run, and the apply rate over the same time."""
    return trends.run_trends(store, now or datetime.now(UTC), limit)


def banner_figures(store: Store) -> dict[str, Any]:
    """The few figures every screen's banner needs, each an indexed lookup."""
    job = store.rows("SELECT state, reason, since FROM job_state WHERE name = 'apply'")
    held = store.scalar("SELECT count(*) FROM ops WHERE status = 'held'")
    feed = store.rows("SELECT accepted, reasons FROM snapshots ORDER BY id DESC LIMIT 1")
    return {
        "job": job[0] if job else {"state": "active", "reason": None, "since": None},
        "ops": {"held": int(held or 0)},
        "hris_outage": source_health.hris_outage(store),
        "last_feed": ({"accepted": bool(feed[0]["accepted"]),
                       "reasons": json.loads(feed[0]["reasons"])} if feed else None),
    }
