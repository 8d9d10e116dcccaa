"""The console's side of the one action path (console/action_path.py): refuse what this
console may not do (--read-only, or another node leads), ask, act in a thread, and tell
the outcome, then hand what was released to the engine.

A collaborator the app owns (``ConsoleApp.actions``); it takes the app, whose screens,
workers, notices and engine it drives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from textual.worker import Worker, WorkerState

from rostersync.console.action_path import ActionContext, ActionRequest, Outcome
from rostersync.console.leader_status import held_back_note, refusal
from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.suppress_form import SuppressModal
from rostersync.storage.db import Store

if TYPE_CHECKING:
    from rostersync.console.app import ConsoleApp

T = TypeVar("T")
FINISHED = (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED)


class ConsoleActions:
    def __init__(self, app: ConsoleApp) -> None:
        self.app = app
        # The actions under way (off_loop) and what each does on the loop once done.
        self._then: dict[Worker[Any], Callable[[Any], None] | None] = {}

    # -- who may act here ------------------------------------------------------------

    def leader_refusal(self, action: str) -> str | None:
        """Why a dangerous action is refused here because of who leads (another node, or
        none for a run); None on a single node or the leader."""
        return refusal(self.app.leader, action)

    def refused(self, action: str) -> bool:
        """Read-only, or refused because of who leads: said once, as one sentence."""
        if self.app.read_only:
            self.app.notify("read-only console: actions are not available",
                            severity="warning")
            return True
        why = self.leader_refusal(action)
        if why is not None:
            self.app.notify(why, severity="warning")
        return why is not None

    # -- ask, act, tell ----------------------------------------------------------------

    def request(self, req: ActionRequest) -> None:
        """Every dangerous action comes here, from a key, the palette or a review screen:
        ask (naming the scope the request fixed), then act on exactly that scope."""
        if self.refused("request"):
            return
        app = self.app
        if req.needs_reason:
            # The form has room for the question and the breakdowns, not the id list.
            form = SuppressModal(req.subject, req.count, app.clock.now(), req.verb,
                                 question=req.question, details=req.details)
            app.push_screen(form,
                            lambda answer: self._perform(req, *answer) if answer else None)
        else:
            app.push_screen(ConfirmModal(req), lambda ok: self._perform(req) if ok else None)

    def request_from(self, build: Callable[[Store], ActionRequest | str]) -> None:
        """A request whose scope is read from the database when the dialog opens (in a
        thread); ``build`` returns a sentence instead when there is nothing to act on."""
        if not self.refused("request"):
            self.off_loop("reading what the action would touch",
                          lambda: build(self.app.store), self._ask_or_say)

    def _ask_or_say(self, req: ActionRequest | str) -> None:
        if isinstance(req, str):
            self.app.notify(req, severity="warning")
        else:
            self.request(req)

    def _perform(self, req: ActionRequest, reason: str | None = None,
                 until: datetime | None = None) -> None:
        app = self.app
        ctx = ActionContext(app.store, app.clock.now(), app.actor, reason, until)
        self.off_loop(req.verb.lower(), lambda: req.perform(ctx), self._after_action)

    def _after_action(self, outcome: Outcome) -> None:
        app = self.app
        # The loop's part first (e.g. pausing the scheduler): if it fails, the operator
        # reads that failure alone, not "done" followed by it.
        if outcome.on_loop is not None:
            outcome.on_loop()
        # What it released is applied here only on a single node or the leader.
        note = held_back_note(app.leader) if outcome.apply_ids or outcome.engine else None
        # Held on the bar for a while: what the operator just did outranks routine lines.
        app.notify(outcome.text + (f"; {note}" if note else ""), title="done",
                   severity=outcome.severity, timeout=8)
        app.refresh_screen()
        if note is not None:
            return
        if outcome.apply_ids and app.engine is not None:
            engine, ids = app.engine, list(outcome.apply_ids)
            app.run_engine("apply", lambda: engine.apply_due(trigger="console", op_ids=ids))
        if outcome.engine is not None:
            app.run_engine(*outcome.engine)

    # -- the one worker of every action ------------------------------------------------

    def off_loop(self, what: str, body: Callable[[], T],
                 then: Callable[[T], None] | None = None) -> Worker[T]:
        """The one way an action touches the database: ``body`` runs in a thread, then
        ``then`` gets its result on the loop. A failure of either is said once, as one
        sentence on the notice bar ("approve failed: ..."), by ``worker_changed``;
        nothing else catches an action's error, and none stops the console."""
        worker = self.app.run_worker(body, name=what, group="action", thread=True,
                                     exit_on_error=False)
        # Registered before the loop runs again, so before the worker can finish.
        self._then[worker] = then
        return worker

    def worker_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        # The message's state, not the worker's: by the time an earlier message (running)
        # is handled, the worker may have finished already.
        if worker not in self._then or event.state not in FINISHED:
            return
        then = self._then.pop(worker)
        if event.state == WorkerState.ERROR and worker.error is not None:
            self._failed(worker.name, worker.error)
        elif event.state == WorkerState.SUCCESS and then is not None:
            try:
                then(worker.result)
            except Exception as exc:  # the loop's part of an action: a notice, not a crash
                self._failed(worker.name, exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        reason = str(exc) or type(exc).__name__
        self.app.notify(f"{what} failed: {reason}", severity="error", timeout=10)
