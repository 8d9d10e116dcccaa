"""The operation outbox: planned changes, their lifecycle and every attempt.

Every transition is committed before the engine acts on the next step, so a crash at
any point leaves each operation in a state the next run can resume from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, cast

from rostersync.storage.db import Store, execute_values, ts
from rostersync.storage.lease import Fence, Fenced
from rostersync.storage.op_row import OpRow
from rostersync.storage.people import chunks

OPEN = ("pending", "running", "failed", "held", "suppressed")

# One encoder for every row: json.dumps with options builds a new one per call.
_json = json.JSONEncoder(sort_keys=True, default=str).encode


def open_ops_for(store: Store, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for row in store.rows(
                # INDEXED BY: without statistics SQLite prefers the status index, which
                # scans every open op (a million pending creates on a first sync) per batch.
                f"SELECT id, employee_id, kind, idem_key, status FROM ops INDEXED BY "
                f"ops_person WHERE employee_id IN ({marks}) "
                "AND status IN ('pending','running','failed','held','suppressed')",
                part):
            out.setdefault(row["employee_id"], []).append(row)
    return out


def insert_ops(conn: Any, now: datetime, run_id: int | None, ops: Iterable[Any],
               max_attempts: int) -> None:
    at = ts(now)
    execute_values(
        conn,
        """INSERT INTO ops(employee_id, lms_id, kind, payload, idem_key, status, reason, depth,
               max_attempts, next_attempt_at, run_id, hold_reason, suppressed_reason,
               suppressed_until, suppressed_by, created_at, updated_at) VALUES {values}""",
        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        [(op.employee_id, op.lms_id, str(op.kind),
          op.payload_text or _json(op.payload), op.idem_key,
          str(op.status),
          op.reason, op.depth, max_attempts, ts(op.not_before), run_id, op.hold_reason,
          op.suppressed_reason, ts(op.suppressed_until), op.suppressed_by, at, at)
         for op in ops])


def set_status(conn: Any, now: datetime, op_ids: Iterable[int], status: str,
               **extra: Any) -> int:
    """Set the status (and ``extra`` columns, named by the caller) of some operations;
    returns how many there were."""
    ids = list(op_ids)
    if not ids:
        return 0
    values = [status, ts(now), *extra.values()]
    sets = ", ".join(f"{name} = ?" for name in ("status", "updated_at", *extra))
    changed = 0
    for part in chunks(ids):  # one statement per chunk: see storage.db.execute_values
        marks = ",".join("?" * len(part))
        changed += conn.execute(f"UPDATE ops SET {sets} WHERE id IN ({marks})",
                                [*values, *part]).rowcount
    return changed


def due_ops(store: Store, now: datetime, *, employee_id: str | None = None,
            op_ids: list[int] | None = None) -> list[OpRow]:
    """Operations ready to apply now: pending or failed whose time has come."""
    where = ["status IN ('pending','failed')", "(next_attempt_at IS NULL OR next_attempt_at <= ?)"]
    params: list[Any] = [ts(now)]
    if employee_id is not None:
        where.append("employee_id = ?")
        params.append(employee_id)
    if op_ids is not None:
        where.append(f"id IN ({','.join('?' * len(op_ids))})")
        params.extend(op_ids)
    rows = store.rows(f"SELECT * FROM ops WHERE {' AND '.join(where)} ORDER BY depth, id",
                      params)
    for row in rows:
        row["payload"] = json.loads(row["payload"])
    return cast(list[OpRow], rows)  # every column of ops, the payload decoded


# The last_error of an op whose attempt may or may not have reached the LMS (the process
# ended, or the database failed, before its outcome was recorded).
INTERRUPTED = "interrupted: the process ended while applying"


def outcome_unknown(op: Mapping[str, Any]) -> bool:
    """The op's last attempt was sent but its outcome never recorded: its next attempt
    reads the LMS before sending anything."""
    return op.get("status") != "running" and op.get("last_error") == INTERRUPTED


def recover_running(store: Store, now: datetime) -> int:
    """Ops left 'running' by a dead process go back to pending; their attempt is logged
    as interrupted. Their next attempt reads the LMS first (``outcome_unknown``), so
    none is applied twice."""
    at = ts(now)
    with store.tx() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO op_attempts(op_id, attempt, started_at, finished_at, outcome) "
            "SELECT id, attempts, updated_at, ?, 'interrupted' FROM ops WHERE status = 'running'",
            (at,))
        cur = conn.execute("UPDATE ops SET status = 'pending', updated_at = ?, "
                           "last_error = ? WHERE status = 'running'", (at, INTERRUPTED))
        return cur.rowcount


def begin_attempt(store: Store, now: datetime, op_id: int, attempt: int,
                  fence: Fence | None = None) -> None:
    """Mark the op running with its attempt number, committed before the request. One
    statement (its own transaction): the attempt's log row is written with its outcome,
    or as 'interrupted' by recover_running. With a ``fence``, the same statement checks
    that this node still holds its lease and token, else nothing changes and Fenced."""
    sql, params = ("", ()) if fence is None else fence.clause(now)
    cur = store.conn.execute("UPDATE ops SET status = 'running', attempts = ?, updated_at = ? "
                             "WHERE id = ?" + (f" AND {sql}" if sql else ""),
                             (attempt, ts(now), op_id, *params))
    if fence is not None and not cur.rowcount:
        raise Fenced(fence.reason())


def begin_attempts(conn: Any, now: datetime, attempts: Iterable[tuple[int, int]],
                   fence: Fence | None = None) -> None:
    """``begin_attempt`` for the ops of one batch, as (op id, attempt), in the caller's
    transaction: committed together before the batch is sent (after the fence check)."""
    if fence is not None:
        fence.check(conn, now)
    at = ts(now)
    conn.executemany("UPDATE ops SET status = 'running', attempts = ?, updated_at = ? "
                     "WHERE id = ?", [(attempt, at, op_id) for op_id, attempt in attempts])


def finish_attempt(conn: Any, now: datetime, op_id: int, attempt: int, status: str, *,
                   started: datetime, outcome: str, error: str | None = None,
                   error_class: str | None = None, http_status: int | None = None,
                   next_attempt_at: datetime | None = None, lms_id: str | None = None,
                   run_id: int | None = None) -> None:
    at = ts(now)
    conn.execute("INSERT OR REPLACE INTO op_attempts(op_id, attempt, started_at, finished_at, "
                 "outcome, error_class, http_status, error, run_id) VALUES (?,?,?,?,?,?,?,?,?)",
                 (op_id, attempt, ts(started), at, outcome, error_class, http_status, error,
                  run_id))
    finished = at if status in ("succeeded", "dead") else None
    conn.execute(
        "UPDATE ops SET status = ?, updated_at = ?, last_error = ?, error_class = ?, "
        "http_status = ?, next_attempt_at = ?, finished_at = ?, lms_id = coalesce(?, lms_id) "
        "WHERE id = ?",
        (status, at, error, error_class, http_status, ts(next_attempt_at), finished, lms_id,
         op_id))


def finish_succeeded(conn: Any, rows: Iterable[tuple[int, int, datetime, datetime,
                                                      str | None, int | None]]) -> None:
    """``finish_attempt`` of many succeeded attempts in two statements: rows of (op id,
    attempt, started, finished, lms id, run id)."""
    rows = list(rows)
    conn.executemany(
        "INSERT OR REPLACE INTO op_attempts(op_id, attempt, started_at, finished_at, outcome, "
        "error_class, http_status, error, run_id) VALUES (?,?,?,?,'ok',NULL,NULL,NULL,?)",
        [(op_id, attempt, ts(started), ts(finished), run_id)
         for op_id, attempt, started, finished, _lms_id, run_id in rows])
    conn.executemany(
        "UPDATE ops SET status = 'succeeded', updated_at = ?, last_error = NULL, "
        "error_class = NULL, http_status = NULL, next_attempt_at = NULL, finished_at = ?, "
        "lms_id = coalesce(?, lms_id) WHERE id = ?",
        [(ts(finished), ts(finished), lms_id, op_id)
         for op_id, _attempt, _started, finished, lms_id, _run_id in rows])


def get_op(store: Store, op_id: int) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM ops WHERE id = ?", (op_id,))
    if not rows:
        return None
    row = rows[0]
    row["payload"] = json.loads(row["payload"])
    row["attempt_log"] = store.rows(
        "SELECT * FROM op_attempts WHERE op_id = ? ORDER BY attempt", (op_id,))
    return row


def list_ops(store: Store, *, status: str | None = None, employee_id: str | None = None,
             run_id: int | None = None, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[Any] = []
    if status:
        where.append("status = ?")
        params.append(status)
    if employee_id:
        where.append("employee_id = ?")
        params.append(employee_id)
    if run_id is not None:
        where.append("run_id = ?")
        params.append(run_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = store.rows(f"SELECT * FROM ops {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                      (*params, limit, offset))
    for row in rows:
        row["payload"] = json.loads(row["payload"])
    return rows


def counts_by_status(store: Store) -> dict[str, int]:
    return dict(store.conn.execute("SELECT status, count(*) FROM ops GROUP BY status"))


def ids_with_status(store: Store, status: str, *, run_id: int | None = None) -> list[int]:
    if run_id is None:
        return [r[0] for r in store.conn.execute("SELECT id FROM ops WHERE status = ?",
                                                  (status,))]
    return [r[0] for r in store.conn.execute(
        "SELECT id FROM ops WHERE status = ? AND run_id = ?", (status, run_id))]


def deactivations_since(store: Store, since: datetime, *, other_than_run: int | None = None
                        ) -> int:
    """Deactivations (and deletes) that any run other than ``other_than_run`` planned since
    a moment and that went ahead: the sliding window of the mass-deactivation hold.

    Held, rejected (suppressed) and superseded ones never reached the LMS; ones an operator
    approved were vetted as a hold already. The partial index ops_terminations answers it.
    """
    return int(store.scalar(
        "SELECT count(*) FROM ops INDEXED BY ops_terminations "
        "WHERE kind IN ('deactivate', 'delete') AND created_at >= ? "
        "AND status NOT IN ('held', 'suppressed', 'superseded') AND approved_by IS NULL "
        "AND coalesce(run_id, -1) != ?",
        (ts(since), -1 if other_than_run is None else other_than_run)) or 0)
