"""What operator actions do to the database, shared by the CLI and the console.

Each function changes the outbox and writes the audit entry in the same call, so no
interface can perform an action without leaving a trace. None of them talks to the LMS:
applying what was released is the engine's job (``Engine.apply_due``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from storage import audit
from storage import ops as op_store
from storage import runs as run_store
from storage import suppressions as suppression_store
from storage.db import Store, ts

RETRYABLE = ("failed", "dead")


def retry(store: Store, now: datetime, ids: list[int], extra_attempts: int,
          actor: str | None = None) -> list[int]:
    """Queue failed/dead operations again, with a fresh allowance of attempts."""
    with store.tx() as conn:
        conn.executemany(
            "UPDATE ops SET status='pending', next_attempt_at=NULL, updated_at=?, "
            "max_attempts=max(max_attempts, attempts + ?) WHERE id = ?",
            [(ts(now), extra_attempts, i) for i in ids])
    audit.record(store, now, "retry", None, {"ops": ids}, actor=actor)
    return ids


def suppress_people(store: Store, now: datetime, people: Iterable[str], reason: str,
                    until: datetime | None, actor: str) -> list[str]:
    done = sorted(set(people))
    for employee_id in done:
        suppression_store.add(store, now, employee_id, reason, until, actor)
        with store.tx() as conn:
            conn.execute(
                "UPDATE ops SET status='suppressed', suppressed_reason=?, suppressed_until=?, "
                "suppressed_by=?, updated_at=? WHERE employee_id=? AND status IN "
                "('pending','failed','held')", (reason, ts(until), actor, ts(now), employee_id))
        audit.record(store, now, "suppress", employee_id,
                     {"reason": reason, "until": ts(until)}, actor=actor)
    return done


def unsuppress(store: Store, now: datetime, employee_ids: Iterable[str],
               actor: str) -> dict[str, int]:
    lifted: dict[str, int] = {}
    for employee_id in employee_ids:
        lifted[employee_id] = suppression_store.lift(store, now, employee_id, actor)
        with store.tx() as conn:
            conn.execute("UPDATE ops SET status='pending', suppressed_reason=NULL, "
                         "suppressed_until=NULL, suppressed_by=NULL, updated_at=? "
                         "WHERE employee_id=? AND status='suppressed'", (ts(now), employee_id))
        audit.record(store, now, "unsuppress", employee_id, {}, actor=actor)
    return lifted


def approve(store: Store, now: datetime, ids: list[int], actor: str,
            run: int | None = None, target: str | None = None) -> list[int]:
    with store.tx() as conn:
        op_store.set_status(conn, now, ids, "pending", approved_by=actor, hold_reason=None)
    audit.record(store, now, "approve", target, {"ops": ids, "run": run}, actor=actor)
    return ids


def reject(store: Store, now: datetime, ids: list[int], reason: str, until: datetime | None,
           actor: str, run: int | None = None, target: str | None = None) -> list[str]:
    """Drop held operations and suppress their people (else the next run re-plans them)."""
    people = sorted({r[0] for r in _employees_of(store, ids)})
    with store.tx() as conn:
        op_store.set_status(conn, now, ids, "superseded", finished_at=ts(now))
    audit.record(store, now, "reject", target, {"ops": ids, "run": run, "reason": reason},
                 actor=actor)
    suppress_people(store, now, people, f"rejected: {reason}", until, actor)
    return people


def set_job_state(store: Store, now: datetime, state: str, reason: str | None,
                  actor: str) -> dict[str, Any]:
    before = run_store.job_state(store)
    run_store.set_job_state(store, now, state, reason, actor=actor)
    audit.record(store, now, "pause" if state == "paused" else "resume", None,
                 {"was": before["state"], "reason": reason}, actor=actor)
    return before


def _employees_of(store: Store, ids: list[int]) -> list[tuple[str]]:
    out: list[tuple[str]] = []
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ",".join("?" * len(part))
        out.extend(store.conn.execute(
            f"SELECT DISTINCT employee_id FROM ops WHERE id IN ({marks})", part).fetchall())
    return out
