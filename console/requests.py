"""The requests of the console's dangerous actions (other than held review, see
held_requests): each names exactly what will happen and fixes its scope when built.

``app`` is the ConsoleApp (imported for the type checker only: the app imports this
module)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from rostersync.console import actions
from rostersync.console.action_path import (
    ActionContext,
    ActionRequest,
    EngineRun,
    Outcome,
    counted,
    ids_text,
    when_applied,
)
from rostersync.storage.db import ts

if TYPE_CHECKING:
    from rostersync.console.app import ConsoleApp

# -- engine runs and the scheduler ---------------------------------------------------

def sync_run(app: ConsoleApp, kind: str, source: str = "console") -> EngineRun:
    engine = app.engine
    assert engine is not None  # a read-only console refuses the actions that run one
    return (f"{kind} sync", lambda: engine.sync(kind, trigger="console"),
            ("sync", None, {"kind": kind, "from": source}))


def resync_run(app: ConsoleApp, employee_id: str) -> EngineRun:
    engine = app.engine
    assert engine is not None  # a read-only console refuses the actions that run one
    return (f"resync {employee_id}",
            lambda: engine.resync(employee_id, trigger="console"),
            ("resync", employee_id, {"from": "console"}))


def _when(app: ConsoleApp) -> str:
    """When a confirmed run starts: a run in progress is waited for, never interrupted."""
    return "once the run in progress finishes" if app.run_in_progress() else "now"


def sync_request(app: ConsoleApp, kind: str) -> ActionRequest:
    what = ("pull the whole HRIS feed, compare every person with the LMS and apply what "
            "differs" if kind == "full" else "pull the records changed since the last run "
            "and apply what differs")
    return ActionRequest(
        "Sync", f"Run a {kind} sync {_when(app)}: {what}, through every guard (feed gate, "
        "holds, suppressions)?", 1,
        lambda _ctx: Outcome(f"{kind} sync requested", engine=sync_run(app, kind)),
        scope="How many people it changes is known only once it has compared them; mass "
              "changes are held for approval, as in any run.")


def resync_request(app: ConsoleApp, employee_id: str) -> ActionRequest:
    return ActionRequest(
        "Resync", f"Resync {employee_id} {_when(app)}: read their HR record and LMS account "
        "and apply what differs, through the same guards (holds, suppressions)?", 1,
        lambda _ctx: Outcome(f"resync of {employee_id} requested",
                             engine=resync_run(app, employee_id)),
        scope=f"This touches one person, {employee_id}, and only what differs for them.")


def pause_request(app: ConsoleApp, paused: bool) -> ActionRequest:
    def perform(ctx: ActionContext) -> Outcome:
        actions.set_job_state(ctx.store, ctx.now, "paused" if paused else "active",
                              "paused from the console" if paused else None, ctx.actor)
        return Outcome("scheduler and job paused" if paused else "scheduler and job resumed",
                       on_loop=lambda: app.set_scheduler_paused(paused))

    if paused:
        return ActionRequest("Pause", "Pause the scheduler and the job: no scheduled run "
                             "and no operation applied until resumed?", 1, perform,
                             scope="It changes the job's state only: nothing is sent to the "
                                   "LMS or changed for anyone.")
    return ActionRequest("Resume", "Resume the scheduler and the job: scheduled runs and "
                         "applying start again?", 1, perform,
                         scope="It changes the job's state; what is pending is applied by "
                               "the next run, through every guard.")


# -- one person --------------------------------------------------------------------------

def retry_request(app: ConsoleApp, employee_id: str, ids: Sequence[int]) -> ActionRequest:
    ids = tuple(sorted(ids))
    attempts = app.config.guards.retry_max_attempts

    def perform(ctx: ActionContext) -> Outcome:
        acted = actions.retry(ctx.store, ctx.now, ids, attempts, actor=ctx.actor,
                              target=employee_id)
        return Outcome(f"{employee_id}: " + counted(len(acted.done), len(acted.skipped),
                                                    "queued for retry", "failed"),
                       apply_ids=tuple(acted.done))

    return ActionRequest("Retry", f"Retry {len(ids)} failed operation(s) of {employee_id} "
                         "now?", len(ids), perform, op_ids=ids)


def approve_request(employee_id: str, ids: Sequence[int],
                    job_state: str = "active", not_here: str | None = None
                    ) -> ActionRequest:
    ids = tuple(sorted(ids))

    def perform(ctx: ActionContext) -> Outcome:
        acted = actions.approve(ctx.store, ctx.now, ids, ctx.actor, target=employee_id)
        return Outcome(f"{employee_id}: " + counted(len(acted.done), len(acted.skipped),
                                                    "approved", "held"),
                       apply_ids=tuple(acted.done))

    return ActionRequest("Approve", f"Approve {len(ids)} held operation(s) of {employee_id} "
                         f"({ids_text(ids)}) and {when_applied(job_state, not_here)}?", len(ids),
                         perform, op_ids=ids)


def reject_request(employee_id: str, ids: Sequence[int]) -> ActionRequest:
    ids = tuple(sorted(ids))

    def perform(ctx: ActionContext) -> Outcome:
        acted = actions.reject(ctx.store, ctx.now, ids, ctx.reason or "", ctx.until,
                               ctx.actor, target=employee_id)
        return Outcome(f"{employee_id}: " + counted(len(acted.done), len(acted.skipped),
                                                    "rejected", "held")
                       + (f"; suppressed until {ts(ctx.until)}" if ctx.until else
                          "; suppressed with no expiry"))

    return ActionRequest("Reject", f"Reject {len(ids)} held operation(s) of {employee_id} "
                         f"({ids_text(ids)}) and suppress them", len(ids), perform,
                         op_ids=ids, needs_reason=True, subject=employee_id)


def suppress_request(employee_id: str, ids: Sequence[int]) -> ActionRequest:
    ids = tuple(sorted(ids))

    def perform(ctx: ActionContext) -> Outcome:
        acted = actions.suppress_people(ctx.store, ctx.now, [employee_id],
                                        ctx.reason or "", ctx.until, ctx.actor, op_ids=ids)
        extra = sorted(set(acted.done) - set(ids))
        text = f"{employee_id} suppressed: {len(acted.done)} open operation(s) held back"
        if extra:
            text += f" ({len(extra)} planned since the dialog opened: {ids_text(extra)})"
        if acted.skipped:
            text += f"; {len(acted.skipped)} had already finished"
        return Outcome(text)

    return ActionRequest("Suppress", f"Suppress {employee_id}: their {len(ids)} open "
                         f"operation(s) ({ids_text(ids)}) are set aside",
                         len(ids), perform, op_ids=ids, needs_reason=True,
                         subject=employee_id)


def unsuppress_request(employee_id: str, ids: Sequence[int]) -> ActionRequest:
    ids = tuple(sorted(ids))

    def perform(ctx: ActionContext) -> Outcome:
        lifted = actions.unsuppress(ctx.store, ctx.now, [employee_id], ctx.actor)
        return Outcome(f"{employee_id}: {lifted.get(employee_id, 0)} suppression(s) lifted")

    return ActionRequest("Unsuppress", f"Lift the suppression of {employee_id}? Their "
                         f"{len(ids)} suppressed operation(s) become pending and apply on "
                         "the next run.", max(len(ids), 1), perform, op_ids=ids)


# -- one run ----------------------------------------------------------------------------

def retry_group_request(app: ConsoleApp, run_id: int, error_class: str,
                        ids: Sequence[int]) -> ActionRequest:
    ids = tuple(sorted(ids))
    attempts = app.config.guards.retry_max_attempts

    def perform(ctx: ActionContext) -> Outcome:
        acted = actions.retry(ctx.store, ctx.now, ids, attempts, actor=ctx.actor,
                              detail={"run": run_id, "error_class": error_class})
        return Outcome(f"run {run_id}: " + counted(len(acted.done), len(acted.skipped),
                                                   f"{error_class} failure(s) queued for "
                                                   "retry", "failed"),
                       apply_ids=tuple(acted.done))

    return ActionRequest("Retry", f"Retry the {len(ids)} {error_class} failure(s) of run "
                         f"{run_id} now?", len(ids), perform, op_ids=ids)
