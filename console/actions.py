"""What operator actions do to the database, shared by the CLI and the console.

Each function acts on exactly the operation ids it is given (the scope the operator
confirmed), skips those that left the expected state since, and writes the audit entry
listing the ids it acted on and the ids it skipped, all in one transaction: no interface
can perform an action without leaving a trace, and a crash cannot leave one without the
other. None of them talks to the LMS: applying what was released is the engine's job
(``Engine.apply_due``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rostersync.storage import audit
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage import suppressions as suppression_store
from rostersync.storage.db import Store, ts
from rostersync.storage.people import chunks

RETRYABLE = ("failed", "dead")
SUPPRESSIBLE = ("pending", "failed", "held")


@dataclass
class Acted:
    """The ids an action changed, the ids it left alone because they were no longer in
    the state the operator saw, and the people it touched."""

    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    people: list[str] = field(default_factory=list)


def _in_state(conn: Any, ids: list[int], states: tuple[str, ...]) -> list[int]:
    found: list[int] = []
    marks_s = ",".join("?" * len(states))
    for part in chunks(ids):
        marks = ",".join("?" * len(part))
        found.extend(r[0] for r in conn.execute(
            f"SELECT id FROM ops WHERE id IN ({marks}) AND status IN ({marks_s})",
            [*part, *states]))
    return sorted(found)


def _split(conn: Any, ids: Iterable[int], states: tuple[str, ...]) -> Acted:
    wanted = sorted(set(ids))
    done = _in_state(conn, wanted, states)
    kept = set(done)
    return Acted(done=done, skipped=[i for i in wanted if i not in kept])


def _people_of(conn: Any, ids: list[int]) -> list[str]:
    out: set[str] = set()
    for part in chunks(ids):
        marks = ",".join("?" * len(part))
        out.update(r[0] for r in conn.execute(
            f"SELECT DISTINCT employee_id FROM ops WHERE id IN ({marks})", part))
    return sorted(out)


def retry(store: Store, now: datetime, ids: Iterable[int], extra_attempts: int,
          actor: str | None = None, target: str | None = None,
          detail: dict[str, Any] | None = None) -> Acted:
    """Queue failed/dead operations again, with a fresh allowance of attempts."""
    with store.tx() as conn:
        acted = _split(conn, ids, RETRYABLE)
        conn.executemany(
            "UPDATE ops SET status='pending', next_attempt_at=NULL, updated_at=?, "
            "max_attempts=max(max_attempts, attempts + ?) WHERE id = ?",
            [(ts(now), extra_attempts, i) for i in acted.done])
        acted.people = _people_of(conn, acted.done)
        audit.record(store, now, "retry", target,
                     {"ops": acted.done, "skipped": acted.skipped, **(detail or {})},
                     actor=actor)
    return acted


def suppress_people(store: Store, now: datetime, people: Iterable[str], reason: str,
                    until: datetime | None, actor: str,
                    op_ids: Iterable[int] | None = None) -> Acted:
    """Suppress people: every change for them waits until ``until`` (or until lifted).

    ``op_ids`` is the scope the operator saw; their open ones are suppressed. Open ops of
    these people planned after the dialog opened are suppressed too (the suppression is
    of the person, so leaving them to apply would contradict it) and are reported apart.
    """
    done_people = sorted(set(people))
    shown = None if op_ids is None else sorted(set(op_ids))
    acted = Acted(people=done_people)
    with store.tx() as conn:
        for employee_id in done_people:
            suppression_store.add(store, now, employee_id, reason, until, actor)
            open_ids = [r[0] for r in conn.execute(
                f"SELECT id FROM ops WHERE employee_id = ? AND status IN "
                f"({','.join('?' * len(SUPPRESSIBLE))}) ORDER BY id",
                (employee_id, *SUPPRESSIBLE))]
            op_store.set_status(conn, now, open_ids, "suppressed", suppressed_reason=reason,
                                suppressed_until=ts(until), suppressed_by=actor)
            acted.done.extend(open_ids)
            audit.record(store, now, "suppress", employee_id,
                         {"reason": reason, "until": ts(until), "ops": open_ids,
                          "no_expiry": until is None}, actor=actor)
    if shown is not None:
        kept = set(acted.done)
        acted.skipped = [i for i in shown if i not in kept]
    return acted


def unsuppress(store: Store, now: datetime, employee_ids: Iterable[str],
               actor: str) -> dict[str, int]:
    lifted: dict[str, int] = {}
    with store.tx() as conn:
        for employee_id in employee_ids:
            lifted[employee_id] = suppression_store.lift(store, now, employee_id, actor)
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM ops WHERE employee_id=? AND status='suppressed'",
                (employee_id,))]
            op_store.set_status(conn, now, ids, "pending", suppressed_reason=None,
                                suppressed_until=None, suppressed_by=None)
            audit.record(store, now, "unsuppress", employee_id, {"ops": ids}, actor=actor)
    return lifted


def approve(store: Store, now: datetime, ids: Iterable[int], actor: str,
            run: int | None = None, target: str | None = None,
            detail: dict[str, Any] | None = None) -> Acted:
    """Release exactly these held operations; any no longer held is skipped."""
    with store.tx() as conn:
        acted = _split(conn, ids, ("held",))
        op_store.set_status(conn, now, acted.done, "pending", approved_by=actor,
                            hold_reason=None)
        acted.people = _people_of(conn, acted.done)
        audit.record(store, now, "approve", target,
                     {"ops": acted.done, "skipped": acted.skipped, "run": run,
                      "people": acted.people, **(detail or {})}, actor=actor)
    return acted


def reject(store: Store, now: datetime, ids: Iterable[int], reason: str,
           until: datetime | None, actor: str, run: int | None = None,
           target: str | None = None, detail: dict[str, Any] | None = None) -> Acted:
    """Drop exactly these held operations and suppress their people (else the next run
    would plan them again); any no longer held is skipped."""
    with store.tx() as conn:
        acted = _split(conn, ids, ("held",))
        op_store.set_status(conn, now, acted.done, "superseded", finished_at=ts(now))
        people = _people_of(conn, acted.done)
        audit.record(store, now, "reject", target,
                     {"ops": acted.done, "skipped": acted.skipped, "run": run,
                      "people": people, "reason": reason, "until": ts(until),
                      **(detail or {})}, actor=actor)
        suppress_people(store, now, people, f"rejected: {reason}", until, actor)
    acted.people = people
    return acted


def set_job_state(store: Store, now: datetime, state: str, reason: str | None,
                  actor: str) -> dict[str, Any]:
    with store.tx():
        before = run_store.job_state(store)
        run_store.set_job_state(store, now, state, reason, actor=actor)
        audit.record(store, now, "pause" if state == "paused" else "resume", None,
                     {"was": before["state"], "reason": reason}, actor=actor)
    return before
