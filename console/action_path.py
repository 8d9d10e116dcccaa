"""The one path of every dangerous action, whether it starts from a key, the command
palette or a held-group review:

1. the caller builds an ``ActionRequest`` whose scope (the operation ids, the people) is
   fixed *now*, when the dialog opens, and whose question says exactly what will happen;
2. the dialog shows that question, the count and the ids (``ConfirmModal``), or asks for
   a reason and an expiry first (``SuppressModal``);
3. on confirmation ``perform`` runs in a thread with the fixed scope: it acts on exactly
   those ids, skips any that changed state meanwhile, and writes the audit entry listing
   the ids in the same transaction (``console.actions``);
4. its ``Outcome`` is told to the operator ("58 approved, 2 no longer held") and may hand
   released operations to the engine, or start an engine run, on the event loop.

Steps 3 and 4 are ``ConsoleActions.off_loop``, the one worker of every action: the database
work in a thread, the rest on the loop, and a failure of either told once, as one
sentence ("approve failed: ..."), instead of stopping the console.

Nothing here imports Textual: a request is plain data, so the CLI can reuse the same
``perform`` functions and tests can read a request without a screen.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from textual.notifications import SeverityLevel

    from rostersync.storage.db import Store


@dataclass(frozen=True)
class ActionContext:
    """What ``perform`` gets: its own thread's store, the time, who, and the form's answers."""

    store: Store
    now: datetime
    actor: str
    reason: str | None = None
    until: datetime | None = None


# (label, the run to start, the audit entry written once it starts: action, target, detail)
EngineRun = tuple[str, Callable[[], Awaitable[Any]], tuple[str, str | None, dict[str, Any]]]


@dataclass(frozen=True)
class Outcome:
    text: str                                   # one sentence for the operator
    apply_ids: tuple[int, ...] = ()             # released ops the engine applies now
    engine: EngineRun | None = None             # an engine run to start, once confirmed
    on_loop: Callable[[], None] | None = None   # e.g. pausing the scheduler
    severity: SeverityLevel = "information"


@dataclass(frozen=True)
class ActionRequest:
    verb: str                                   # the button: Approve, Reject, Retry, ...
    question: str                               # exactly what will happen
    count: int                                  # records the action touches
    perform: Callable[[ActionContext], Outcome]
    op_ids: tuple[int, ...] = ()                # the fixed scope, shown in the dialog
    details: tuple[str, ...] = ()               # breakdown lines (by department, ...)
    context: tuple[str, ...] = ()               # why it is asked (held because ...)
    needs_reason: bool = False                  # ask for a reason and an expiry first
    subject: str = ""                           # what the reason form names
    # What the action reaches, said in the dialog where no id list can say it (a run's
    # reach is known only once it has compared; a pause changes the job's state).
    scope: str = ""


def ids_text(ids: Sequence[int], limit: int = 8) -> str:
    """'#3, #4, #9' or '#3, #4, … #90 (60 ids)': enough to recognise the scope."""
    ids = sorted(ids)
    if not ids:
        return "no operation"
    if len(ids) <= limit:
        return ", ".join(f"#{i}" for i in ids)
    shown = ", ".join(f"#{i}" for i in ids[:limit - 1])
    return f"{shown}, … #{ids[-1]} ({len(ids)} ids)"


def counted(done: int, skipped: int, verb: str, not_state: str) -> str:
    """'58 approved, 2 no longer held' — the count done and what was skipped, and why."""
    text = f"{done} {verb}"
    if skipped:
        text += f", {skipped} no longer {not_state} (left as they are)"
    return text


def when_applied(job_state: str, not_here: str | None = None) -> str:
    """What happens to released operations, said truthfully: at once, when the job that
    applies them is resumed, or (``not_here``, with several nodes) by the leader node."""
    if not_here is not None:
        return f"leave them for the leader node to apply ({not_here})"
    if job_state == "active":
        return "apply them to the LMS now"
    return f"apply them when the job is resumed (it is {job_state} now)"
