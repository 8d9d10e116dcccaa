"""The requests of the person screen's match decisions (link, new account, ignore): each
names exactly what the next run will do, and performs through console/actions_links.py,
the functions `rostersync links` calls too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rostersync.console import actions_links
from rostersync.console.action_path import ActionContext, ActionRequest, Outcome


def _perform(decide: Callable[[ActionContext], str]) -> Callable[[ActionContext], Outcome]:
    def perform(ctx: ActionContext) -> Outcome:
        try:
            return Outcome(decide(ctx))
        except actions_links.LinkRefused as exc:  # the match changed since the screen showed it
            return Outcome(str(exc), severity="warning")

    return perform


def link_request(match: dict[str, Any], candidate: dict[str, Any]) -> ActionRequest:
    employee_id, lms_id = match["employee_id"], candidate["lms_id"]
    others = len(match["candidates"]) - 1
    rest = f"; the other {others} candidate(s) are left as they are" if others else ""
    return ActionRequest(
        "Link", f"Link {employee_id} to LMS account {lms_id} "
        f"({actions_links.describe(candidate)})? The next run links it and updates it from "
        f"HR{rest}.", 1,
        _perform(lambda ctx: actions_links.link(ctx.store, ctx.now, ctx.actor, employee_id,
                                                lms_id)))


def create_request(match: dict[str, Any]) -> ActionRequest:
    employee_id = match["employee_id"]
    clash = actions_links.username_clash(match)
    note = (f" LMS account {clash['lms_id']} already has that userName: the LMS may refuse "
            "the duplicate, and the create then fails with a conflict naming it."
            if clash else "")
    return ActionRequest(
        "Create", f"Create a new LMS account for {employee_id} on the next run, leaving the "
        f"{len(match['candidates'])} candidate account(s) as they are?{note}", 1,
        _perform(lambda ctx: actions_links.create(ctx.store, ctx.now, ctx.actor,
                                                  employee_id)))


def ignore_request(match: dict[str, Any], reason: str) -> ActionRequest:
    employee_id = match["employee_id"]
    return ActionRequest(
        "Ignore", f"Ignore {employee_id}'s {match['kind']} match (reason: {reason})? No run "
        "links or creates an account for them until the decision is cleared; the drift "
        "stays, marked ignored.", 1,
        _perform(lambda ctx: actions_links.ignore(ctx.store, ctx.now, ctx.actor, employee_id,
                                                  reason)))
