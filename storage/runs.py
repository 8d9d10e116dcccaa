"""Runs, source freshness, feed snapshots and the job's state (active/paused/quarantined)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, inserted_id, ts


def start_run(store: Store, now: datetime, kind: str, trigger: str, dry_run: bool) -> int:
    with store.tx() as conn:
        cur = conn.execute(
            "INSERT INTO runs(kind, trigger, dry_run, status, started_at) VALUES (?,?,?,?,?)",
            (kind, trigger, int(dry_run), "running", ts(now)))
        return inserted_id(cur)


def finish_run(store: Store, run_id: int, now: datetime, status: str,
               counts: dict[str, Any], message: str | None = None,
               error_class: str | None = None) -> None:
    with store.tx() as conn:
        conn.execute("UPDATE runs SET status=?, finished_at=?, counts=?, message=?, "
                     "error_class=? WHERE id=?",
                     (status, ts(now), json.dumps(counts, sort_keys=True), message,
                      error_class, run_id))


def abandon_running(store: Store, now: datetime) -> int:
    """Runs left 'running' by a crashed process are closed as 'failed' (crash)."""
    with store.tx() as conn:
        cur = conn.execute(
            "UPDATE runs SET status='failed', finished_at=?, "
            "message=coalesce(message, 'the process ended during the run') "
            "WHERE status='running'", (ts(now),))
        return cur.rowcount


def get_run(store: Store, run_id: int) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM runs WHERE id = ?", (run_id,))
    return _decode(rows[0]) if rows else None


def last_run(store: Store, *, include_dry: bool = False) -> dict[str, Any] | None:
    where = "" if include_dry else "WHERE dry_run = 0"
    rows = store.rows(f"SELECT * FROM runs {where} ORDER BY id DESC LIMIT 1")
    return _decode(rows[0]) if rows else None


def recent_runs(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    return [_decode(r) for r in store.rows("SELECT * FROM runs ORDER BY id DESC LIMIT ?",
                                           (limit,))]


def last_column_change(store: Store, since: datetime) -> dict[str, Any] | None:
    """The newest run since ``since`` that found the HRIS export's columns changed
    (``counts.columns``, see sync.schema_check.column_changes), or None. Dry runs read
    the same export, so they are left out rather than announcing a change twice."""
    rows = store.rows("SELECT id, started_at, counts FROM runs WHERE started_at >= ? "
                      "AND dry_run = 0 AND counts LIKE '%\"columns\"%' "
                      "ORDER BY id DESC LIMIT 1", (ts(since),))
    if not rows:
        return None
    changes = json.loads(rows[0]["counts"]).get("columns")
    if not isinstance(changes, dict):
        return None  # "columns" met only inside some other count's text
    return {"run_id": rows[0]["id"], "at": rows[0]["started_at"],
            "appeared": list(changes.get("appeared", [])),
            "disappeared": list(changes.get("disappeared", []))}


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["counts"] = json.loads(row["counts"] or "{}")
    row["dry_run"] = bool(row["dry_run"])
    return row


# -- sources ------------------------------------------------------------------------

def source_attempt(store: Store, name: str, now: datetime, description: str,
                   error: str | None = None, success: bool = False,
                   watermark: str | None = None, error_class: str | None = None) -> None:
    """Record a read of a source. A failure keeps its class (``source_unreachable``,
    ``source_auth``, ``feed_rejected``...) and ``failing_since``: the first attempt of
    the unbroken run of failures of that class, which a success or another class ends."""
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO sources(name, description, last_attempt_at) VALUES (?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET description=excluded.description, "
            "last_attempt_at=excluded.last_attempt_at", (name, description, ts(now)))
        if success:
            conn.execute("UPDATE sources SET last_success_at=?, last_error=NULL, "
                         "error_class=NULL, failing_since=NULL, "
                         "watermark=coalesce(?, watermark) WHERE name=?",
                         (ts(now), watermark, name))
        elif error is not None:
            # SET reads the row as it was: error_class here is the previous failure's.
            conn.execute("UPDATE sources SET last_error=?, failing_since=CASE WHEN "
                         "failing_since IS NOT NULL AND error_class IS ? THEN failing_since "
                         "ELSE ? END, error_class=? WHERE name=?",
                         (error, error_class, ts(now), error_class, name))


def sources(store: Store) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in store.rows("SELECT * FROM sources")}


# -- snapshots ------------------------------------------------------------------------

def last_accepted_snapshot(store: Store) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM snapshots WHERE accepted = 1 AND mode = 'full' "
                      "ORDER BY id DESC LIMIT 1")
    if not rows:
        return None
    row = rows[0]
    row["null_counts"] = json.loads(row["null_counts"])
    row["reasons"] = json.loads(row["reasons"])
    row["columns"] = None if row.get("columns") is None else json.loads(row["columns"])
    return row


def record_snapshot(store: Store, now: datetime, run_id: int, mode: str, accepted: bool,
                    rows: int, active: int, null_counts: dict[str, int], reasons: list[str],
                    fingerprint: str, columns: list[str] | None = None) -> int:
    with store.tx() as conn:
        cur = conn.execute(
            "INSERT INTO snapshots(run_id, created_at, mode, accepted, rows, active, "
            "null_counts, reasons, fingerprint, columns) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (run_id, ts(now), mode, int(accepted), rows, active,
             json.dumps(null_counts, sort_keys=True), json.dumps(reasons), fingerprint,
             None if columns is None else json.dumps(columns)))
        return inserted_id(cur)


# -- job state -------------------------------------------------------------------------

def job_state(store: Store, name: str = "apply") -> dict[str, Any]:
    rows = store.rows("SELECT * FROM job_state WHERE name = ?", (name,))
    return rows[0] if rows else {"name": name, "state": "active", "reason": None,
                                 "since": None, "actor": None}


def set_job_state(store: Store, now: datetime, state: str, reason: str | None,
                  actor: str | None = None, name: str = "apply") -> None:
    with store.tx() as conn:
        conn.execute(
            "INSERT INTO job_state(name, state, reason, since, actor) VALUES (?,?,?,?,?) "
            "ON CONFLICT(name) DO UPDATE SET state=excluded.state, reason=excluded.reason, "
            "since=excluded.since, actor=excluded.actor", (name, state, reason, ts(now), actor))
