"""The approve and reject requests of held review: for a whole hold event, or for the
people the operator selected in it. Built in a thread when the dialog opens, so the
operation ids they name are the ones held at that moment, and nothing added later."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import datetime
from typing import Any

from rostersync.console import actions, fmt
from rostersync.console.action_path import (
    ActionContext,
    ActionRequest,
    Outcome,
    counted,
    when_applied,
)
from rostersync.storage import held
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store, parse_ts, ts


def _breakdown_line(title: str, pairs: list[tuple[str, int]], limit: int = 4) -> str:
    shown = ", ".join(f"{name} {n}" for name, n in pairs[:limit])
    more = sum(n for _, n in pairs[limit:])
    return f"{title}: {shown}" + (f", others {more}" if more else "")


def _scheduled_part(rows: list[dict[str, Any]], now: datetime | None) -> str:
    """Ops that may not apply before a later time (a termination scheduled for its
    effective time) are said apart: approving them does not make them happen now."""
    if now is None:
        return ""
    later = sorted(t for t in (parse_ts(r.get("not_before")) for r in rows)
                   if t is not None and t > now)
    if not later:
        return ""
    return (f", except {len(later)} scheduled for their effective time (the first "
            f"{fmt.short_time(ts(later[0]))})")


def event_request(store: Store, verb: str, run_id: int | None, hold_reason: str,
                  exclude: Collection[int] = (), only: Collection[int] | None = None,
                  now: datetime | None = None, not_here: str | None = None
                  ) -> ActionRequest | str:
    """Approve or reject what hold event (run, reason) holds now, less ``exclude`` (the
    people the operator deselected), or just ``only`` when given."""
    rows = [r for r in held.held_in_event(store, run_id, hold_reason)
            if r["id"] not in exclude and (only is None or r["id"] in only)]
    if not rows:
        return f"run {run_id}: nothing of this hold is still held"
    return selection_request(verb, run_id, hold_reason, rows,
                             run_store.job_state(store)["state"], now, not_here)


def selection_request(verb: str, run_id: int | None, hold_reason: str,
                      rows: list[dict[str, Any]], job_state: str = "active",
                      now: datetime | None = None, not_here: str | None = None
                      ) -> ActionRequest:
    ids = tuple(sorted(r["id"] for r in rows))
    people = sorted({r["employee_id"] for r in rows})
    kinds = Counter(r["kind"] for r in rows)
    what = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    context = (f"held because: {hold_reason}",)
    details = (_breakdown_line("by department", held.breakdown(rows, "department")),
               _breakdown_line("by location", held.breakdown(rows, "location")))
    audit_detail = {"hold_reason": hold_reason}
    if verb == "approve":
        def approve(ctx: ActionContext) -> Outcome:
            acted = actions.approve(ctx.store, ctx.now, ids, ctx.actor, run=run_id,
                                    detail=audit_detail)
            return Outcome(f"run {run_id}: " + counted(len(acted.done), len(acted.skipped),
                                                       "approved", "held"),
                           apply_ids=tuple(acted.done),
                           severity="warning" if acted.skipped else "information")

        return ActionRequest(
            "Approve", f"Approve {len(ids)} held operation(s) of run {run_id} ({what}) for "
            f"{len(people)} people, and {when_applied(job_state, not_here)}"
            f"{_scheduled_part(rows, now)}?", len(ids), approve,
            op_ids=ids, details=details, context=context)

    def reject(ctx: ActionContext) -> Outcome:
        acted = actions.reject(ctx.store, ctx.now, ids, ctx.reason or "", ctx.until,
                               ctx.actor, run=run_id, detail=audit_detail)
        return Outcome(f"run {run_id}: " + counted(len(acted.done), len(acted.skipped),
                                                   "rejected", "held")
                       + f"; {len(acted.people)} people suppressed",
                       severity="warning" if acted.skipped else "information")

    return ActionRequest(
        "Reject", f"Reject {len(ids)} held operation(s) of run {run_id} ({what}); their "
        f"{len(people)} people are suppressed", len(ids), reject, op_ids=ids, details=details,
        context=context,
        needs_reason=True, subject=f"{len(people)} people held by run {run_id}")
