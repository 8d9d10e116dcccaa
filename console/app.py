"""The operator console: a Textual app that runs the engine's scheduler in its own event
loop (unless --read-only) and shows the database the engine writes.

The engine reports through sync.events; ``_engine_event`` wraps each one in a Textual
message (console/messages.py). Database work runs in thread workers; engine runs run as
async workers on this loop, serialised with the scheduler's jobs by its lock.
"""

from __future__ import annotations

import gc
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from textual import work
from textual.app import App

from console import actions, keymap, messages
from console.commands import ConsoleCommands
from console.screens.audiences import AudiencesScreen
from console.screens.base import DataScreen
from console.screens.dashboard import DashboardScreen
from console.screens.held import HeldScreen
from console.screens.help import HelpScreen
from console.screens.lists import AuditList, DriftList, OpsList, RunsList, TerminationsList
from console.screens.modals import ConfirmModal, SuppressModal
from console.screens.person import PersonScreen
from console.screens.reports import ReportsScreen
from console.screens.run import RunScreen
from storage import audit
from storage import console_queries as q
from storage.db import Store
from sync.clock import Clock
from sync.config import Config
from sync.engine import Engine, EngineBusy, RunReport
from sync.events import Event
from sync.scheduler import SyncScheduler

LISTS = {"drift": DriftList, "ops": OpsList, "terminations": TerminationsList,
         "runs": RunsList, "audit": AuditList, "held": HeldScreen, "reports": ReportsScreen,
         "audiences": AudiencesScreen}


class ConsoleApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "rostersync"
    BINDINGS = keymap.bindings("app")
    COMMANDS = App.COMMANDS | {ConsoleCommands}

    def __init__(self, config: Config, store: Store, *, clock: Clock | None = None,
                 read_only: bool = False, engine: Engine | None = None,
                 run_scheduler: bool = True, live: bool = True,
                 actor: str | None = None) -> None:
        """live=False turns off every timer (refresh loops, ticking ages): tests and
        screenshots drive refreshes themselves so that nothing races the snapshot."""
        super().__init__()
        self.config, self.store = config, store
        self.clock = clock or Clock()
        self.read_only = read_only
        self.live = live
        self.actor = actor or audit.current_actor()
        self.job: dict[str, Any] | None = None  # the running job, from engine events
        self.scheduler_paused = False
        self.engine: Engine | None = None
        self.scheduler: SyncScheduler | None = None
        if not read_only:
            self.engine = engine or Engine(config, store, clock=self.clock)
            self.engine.on_event = self._engine_event
            self.scheduler = SyncScheduler(self.engine, config, log=self._scheduler_log)
        self._start_scheduler = run_scheduler and not read_only

    def on_mount(self) -> None:
        # What is loaded by now (modules, schemas, widgets) lives as long as the app: take
        # it out of the collector's full passes, which otherwise stall the screen for
        # ~80 ms at a time while a big run allocates.
        gc.collect()
        gc.freeze()
        self.sub_title = "read-only" if self.read_only else f"as {self.actor}"
        self.push_screen(DashboardScreen())
        if self._start_scheduler and self.scheduler is not None:
            self.scheduler.start()

    def on_unmount(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()

    # -- engine events (any thread) -> messages (this loop) ------------------------------

    def _engine_event(self, event: Event) -> None:
        self.post_message(messages.from_event(event))

    def _scheduler_log(self, record: dict[str, Any]) -> None:
        # A job skipped because a run is still going is routine (a retry sweep meeting a
        # full run); a skip for another reason (the lease, a missed time) or a job error
        # is news.
        if record.get("event") == "job_error" or (
                record.get("event") == "skipped" and not record.get("routine")):
            self.post_message(messages.SchedulerNotice(record))

    def on_run_started(self, message: messages.RunStarted) -> None:
        e = message.event
        self.job = {"run_id": e.run_id, "kind": e.kind, "phase": "starting", "done": 0,
                    "total": None}
        self._show_job()

    def on_run_progress(self, message: messages.RunProgress) -> None:
        e = message.event
        if self.job is not None and self.job["run_id"] == e.run_id:
            self.job.update(phase=e.phase, done=e.done, total=e.total)
            self._show_job()

    def on_run_finished(self, message: messages.RunFinished) -> None:
        e = message.event
        self.job = None
        self._show_job()
        if e.status in ("failed", "quarantined", "rejected"):
            self.notify(f"run {e.run_id} {e.status}: {e.message or ''}", severity="error",
                        timeout=10)
        elif e.status in ("partial", "held", "paused"):
            self.notify(f"run {e.run_id} {e.status}" + (f": {e.message}" if e.message else ""),
                        severity="warning")
        self.refresh_screen()

    def on_ops_held(self, message: messages.OpsHeld) -> None:
        e = message.event
        self.notify(f"{e.count} operation(s) held: {e.reason}", severity="warning",
                    timeout=10)

    def on_feed_rejected(self, message: messages.FeedRejected) -> None:
        self.notify("HRIS feed rejected: " + "; ".join(message.event.reasons),
                    severity="error", timeout=10)

    def on_quarantined(self, message: messages.Quarantined) -> None:
        self.notify(f"job quarantined: {message.event.reason}", severity="error", timeout=10)

    def on_scheduler_notice(self, message: messages.SchedulerNotice) -> None:
        r = message.record
        self.notify(f"{r.get('job')} job {r['event'].replace('_', ' ')}: "
                    f"{r.get('why') or r.get('error')}",
                    severity="error" if r["event"] == "job_error" else "warning", timeout=8)

    def _show_job(self) -> None:
        if isinstance(self.screen, DashboardScreen) and self.screen.is_mounted:
            self.screen.show_job()

    def refresh_screen(self) -> None:
        if isinstance(self.screen, DataScreen):
            self.screen.post_message(messages.DataChanged())

    def next_runs(self) -> dict[str, str | None]:
        if self.scheduler is None or not self.scheduler.scheduler.running:
            return {}
        return self.scheduler.next_runs()

    # -- navigation -----------------------------------------------------------------------

    def action_go(self, name: str) -> None:
        while len(self.screen_stack) > 2 and not isinstance(self.screen, DashboardScreen):
            self.pop_screen()  # navigation is flat: one level below home, then drill-downs
        if name != "dashboard":
            self.push_screen(LISTS[name]())

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def open_person(self, employee_id: str | None) -> None:
        if employee_id:
            self.push_screen(PersonScreen(employee_id))

    def open_run(self, run_id: int) -> None:
        self.push_screen(RunScreen(run_id))

    # -- dialogs -----------------------------------------------------------------------

    def _refuse_read_only(self) -> bool:
        if self.read_only:
            self.notify("read-only console: actions are not available", severity="warning")
        return self.read_only

    def confirm_then(self, question: str, count: int, then: Callable[[], Any],
                     verb: str = "Confirm") -> None:
        if self._refuse_read_only():
            return
        self.push_screen(ConfirmModal(question, count, verb),
                         lambda ok: then() if ok else None)

    def suppress_form(self, subject: str, count: int,
                      then: Callable[[str, datetime | None], Any],
                      title: str = "Suppress") -> None:
        if self._refuse_read_only():
            return
        self.push_screen(SuppressModal(subject, count, self.clock.now(), title),
                         lambda result: then(*result) if result else None)

    # -- actions: database writes in a thread, then (maybe) the engine on this loop ------

    def _done(self, text: str, apply_ids: list[int] | None = None) -> None:
        """Called from the action's thread: thread-safe hand-over to the loop."""
        self.call_from_thread(self._after_action, text, apply_ids)

    def _after_action(self, text: str, apply_ids: list[int] | None) -> None:
        self.notify(text, title="done")
        self.refresh_screen()
        if apply_ids:
            assert self.engine is not None
            engine = self.engine
            self.run_engine("apply", lambda: engine.apply_due(trigger="console",
                                                              op_ids=apply_ids))

    def _failed(self, what: str, exc: BaseException) -> None:
        self.call_from_thread(self.notify, f"{what} failed: {exc}", severity="error",
                              timeout=10)

    @work(thread=True, group="action")
    def do_retry(self, ids: list[int], target: str | None = None) -> None:
        try:
            actions.retry(self.store, self.clock.now(), ids,
                          self.config.guards.retry_max_attempts, actor=self.actor)
        except Exception as exc:
            return self._failed("retry", exc)
        self._done(f"{len(ids)} operation(s) queued for retry", ids)

    @work(thread=True, group="action")
    def do_retry_group(self, run_id: int, error_class: str) -> None:
        try:
            ids = q.failed_ids(self.store, run_id, error_class)
            actions.retry(self.store, self.clock.now(), ids,
                          self.config.guards.retry_max_attempts, actor=self.actor)
        except Exception as exc:
            return self._failed("retry", exc)
        self._done(f"{len(ids)} {error_class} operation(s) of run {run_id} queued for retry",
                   ids)

    @work(thread=True, group="action")
    def do_approve(self, ids: list[int], target: str | None = None) -> None:
        try:
            actions.approve(self.store, self.clock.now(), ids, self.actor, target=target)
        except Exception as exc:
            return self._failed("approve", exc)
        self._done(f"{len(ids)} operation(s) approved", ids)

    @work(thread=True, group="action")
    def do_approve_group(self, reason: str, kind: str) -> None:
        try:
            ids = q.held_ids(self.store, reason, kind)
            actions.approve(self.store, self.clock.now(), ids, self.actor)
        except Exception as exc:
            return self._failed("approve", exc)
        self._done(f"{len(ids)} held {kind} operation(s) approved ({reason})", ids)

    @work(thread=True, group="action")
    def do_reject(self, ids: list[int], reason: str, until: datetime | None,
                  target: str | None = None) -> None:
        try:
            people = actions.reject(self.store, self.clock.now(), ids, reason, until,
                                    self.actor, target=target)
        except Exception as exc:
            return self._failed("reject", exc)
        self._done(f"{len(ids)} operation(s) rejected; {len(people)} people suppressed")

    @work(thread=True, group="action")
    def do_reject_group(self, group: str, kind: str, reason: str,
                        until: datetime | None) -> None:
        try:
            ids = q.held_ids(self.store, group, kind)
            people = actions.reject(self.store, self.clock.now(), ids, reason, until,
                                    self.actor)
        except Exception as exc:
            return self._failed("reject", exc)
        self._done(f"{len(ids)} operation(s) rejected; {len(people)} people suppressed")

    @work(thread=True, group="action")
    def do_suppress(self, employee_id: str, reason: str, until: datetime | None) -> None:
        try:
            actions.suppress_people(self.store, self.clock.now(), [employee_id], reason,
                                    until, self.actor)
        except Exception as exc:
            return self._failed("suppress", exc)
        self._done(f"{employee_id} suppressed: {reason}")

    @work(thread=True, group="action")
    def do_unsuppress(self, employee_id: str) -> None:
        try:
            actions.unsuppress(self.store, self.clock.now(), [employee_id], self.actor)
        except Exception as exc:
            return self._failed("unsuppress", exc)
        self._done(f"{employee_id}: suppression lifted")

    def do_resync(self, employee_id: str) -> None:
        if self._refuse_read_only() or self.engine is None:
            return
        audit.record(self.store, self.clock.now(), "resync", employee_id, {"from": "console"},
                     actor=self.actor)
        engine = self.engine
        self.run_engine(f"resync {employee_id}",
                        lambda: engine.resync(employee_id, trigger="console"))

    def do_sync(self, kind: str) -> None:
        if self._refuse_read_only() or self.engine is None:
            return
        audit.record(self.store, self.clock.now(), "sync", None,
                     {"kind": kind, "from": "console"}, actor=self.actor)
        engine = self.engine
        self.run_engine(f"{kind} sync", lambda: engine.sync(kind, trigger="console"))

    def do_pause(self) -> None:
        self._set_paused(True)

    def do_resume(self) -> None:
        self._set_paused(False)

    def _set_paused(self, paused: bool) -> None:
        if self._refuse_read_only() or self.scheduler is None:
            return
        if self.scheduler.scheduler.running:
            (self.scheduler.pause if paused else self.scheduler.resume)()
        self.scheduler_paused = paused
        actions.set_job_state(self.store, self.clock.now(), "paused" if paused else "active",
                              "paused from the console" if paused else None, self.actor)
        self.notify("scheduler and job paused" if paused else "scheduler and job resumed",
                    title="done")
        self.refresh_screen()

    @work(group="engine")
    async def run_engine(self, label: str, start: Callable[[], Awaitable[RunReport]]) -> None:
        """One engine call on this loop, never beside a scheduled job: the engine's lease
        keeps other processes out, but this process's jobs share one lease holder, so the
        scheduler's own lock is what serialises them here."""
        assert self.scheduler is not None
        lock = self.scheduler.lock
        if lock.locked():
            self.notify(f"{label}: a run is in progress; try again when it finishes",
                        severity="warning")
            return
        async with lock:
            try:
                report = await start()
            except EngineBusy as exc:
                self.notify(str(exc), title=label, severity="error", timeout=10)
                return
            except Exception as exc:  # an engine failure is a notification, not a crash
                self.notify(f"{type(exc).__name__}: {exc}", title=f"{label} failed",
                            severity="error", timeout=10)
                return
            finally:
                self.refresh_screen()
        severity = ("information" if report.status == "succeeded" else
                    "warning" if report.status in ("partial", "held", "paused") else "error")
        self.notify(f"run {report.run_id} {report.status}"
                    + (f": {report.message}" if report.message else ""),
                    title=label, severity=severity)


def run_console(config: Config, store: Store, *, read_only: bool = False) -> int:
    ConsoleApp(config, store, read_only=read_only).run()
    return 0
