"""The operator console: a Textual app that runs the engine's scheduler in its own event
loop (unless --read-only) and shows the database the engine writes.

The engine reports through sync.events; ``_engine_event`` wraps each one in a Textual
message (console/messages.py). Database work runs in thread workers (an operator
action's in the one action worker, ``ConsoleActions.off_loop`` in console/app_actions.py);
engine runs run as async workers on this loop, serialised with the scheduler's jobs by
its lock.

Every notice goes to the notice bar (console/notices.py) and the live log
(console/live_log.py), never to a toast: a toast covers the data (console/app_notices.py).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable
from typing import Any

from textual import work
from textual.app import App
from textual.notifications import SeverityLevel
from textual.timer import Timer
from textual.worker import Worker

from rostersync.console import keymap, keys_config, messages, requests
from rostersync.console.action_path import ActionRequest
from rostersync.console.app_actions import ConsoleActions
from rostersync.console.app_notices import NoticeRouter
from rostersync.console.commands import ConsoleCommands
from rostersync.console.engine_digest import EngineDigest
from rostersync.console.leader_status import SINGLE_NODE, UNREAD, LeaderStatus
from rostersync.console.screens.audiences import AudiencesScreen
from rostersync.console.screens.base import DataScreen
from rostersync.console.screens.dashboard import DashboardScreen
from rostersync.console.screens.held import HeldScreen
from rostersync.console.screens.help import HelpScreen
from rostersync.console.screens.lists import (
    AuditList,
    DriftList,
    OpsList,
    RunsList,
    ScheduledList,
    TerminationsList,
)
from rostersync.console.screens.log import LogScreen
from rostersync.console.screens.person import PersonScreen
from rostersync.console.screens.reports import ReportsScreen
from rostersync.console.screens.run import RunScreen
from rostersync.console.widgets.leader_line import LeaderLine
from rostersync.storage import audit
from rostersync.storage.db import Store
from rostersync.sync import events as engine_events
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config
from rostersync.sync.engine import Engine, EngineBusy, RunReport
from rostersync.sync.events import Event
from rostersync.sync.ha_fence import run_fenced
from rostersync.sync.scheduler import SyncScheduler

LISTS = {"drift": DriftList, "ops": OpsList, "terminations": TerminationsList,
         "runs": RunsList, "audit": AuditList, "held": HeldScreen, "reports": ReportsScreen,
         "audiences": AudiencesScreen, "log": LogScreen, "scheduled": ScheduledList}
# The Job panel redraws at most this often while ops finish: each redraw is a layout of
# the whole dashboard, and four a second reads as moving.
JOB_DRAW_SECONDS = 0.25
AUDIT_POLL_SECONDS = 2.0


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
        # The operator's [console.keys] (ConfigError when the section has a mistake; the
        # command line checks it at load, before the terminal is taken over).
        self.key_overrides = keys_config.resolve(config.console.keys)
        self.job: dict[str, Any] | None = None  # the running job, from engine events
        self.scheduler_paused = False
        self.banner_expanded = False  # the alert banner: one line with a count, or all
        # Who leads ([ha]): read with every screen load (console/leader_status.py).
        self.leader = UNREAD if config.ha.enabled else SINGLE_NODE
        self.engine: Engine | None = None
        self.scheduler: SyncScheduler | None = None
        if not read_only:
            self.engine = engine or Engine(config, store, clock=self.clock)
            self.engine.on_event = self._engine_event
            self.scheduler = SyncScheduler(self.engine, config, log=self._scheduler_log)
        self._start_scheduler = run_scheduler and not read_only
        # Every notice goes through this router: the notice bar and the live log.
        self.notice_router = NoticeRouter(clock=self.clock, store=store,
                                          post=self.post_message, live=live)
        # A live console draws the Job panel at most every JOB_DRAW_SECONDS, so the
        # digest posts a tick at most that often while the console leaves one unread.
        self.digest = EngineDigest(tick_seconds=JOB_DRAW_SECONDS if live else None)
        self._engine_label: str | None = None       # set while run_engine runs a run
        self._engine_run_id: int | None = None      # the run it started, once known
        self._run_labels: dict[int, str] = {}       # runs this console started
        self._waiting: set[str] = set()             # confirmed runs waiting for the lock
        self._run_details: dict[int, str] = {}      # why a run held, rejected, quarantined
        self._job_drawn_at = 0.0
        self._job_timer: Timer | None = None
        self.actions = ConsoleActions(self)  # the one action path

    def on_mount(self) -> None:
        # What is loaded by now (modules, schemas, widgets) lives as long as the app: take
        # it out of the collector's full passes, which otherwise stall the screen for
        # ~80 ms at a time while a big run allocates.
        gc.collect()
        gc.freeze()
        self.sub_title = "read-only" if self.read_only else f"as {self.actor}"
        self.set_keymap(self.key_overrides)  # the bindings' ids are the actions' names
        self.push_screen(DashboardScreen())
        if self._start_scheduler and self.scheduler is not None:
            self.scheduler.start()
        self._poll_audit_in_thread()  # the recent actions first, so the log opens in order
        if self.live:
            self.set_interval(AUDIT_POLL_SECONDS, self._poll_audit_in_thread)

    def on_unmount(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown()

    # -- notices: the notice bar and the live log (console/app_notices.py) --------------

    def notify(self, message: str, *, title: str = "",
               severity: SeverityLevel = "information", timeout: float | None = None,
               markup: bool = True) -> None:
        """Textual's signature, so every existing call routes here. Thread-safe. The text is
        shown as plain text: error messages quote brackets that are not markup. Textual's
        own notify is never called, so its toast rack stays empty."""
        self.notice_router.notify(message, title=title, severity=severity, timeout=timeout)

    def notices_seen(self) -> list[str]:
        """Every notice raised so far (repeats too, oldest first), as the log shows it."""
        return self.notice_router.seen()

    def on_notices_changed(self, _message: messages.NoticesChanged) -> None:
        self.notice_router.redraw(self.screen_stack, self.screen)

    @work(thread=True, exclusive=True, group="audit-poll")
    def _poll_audit_in_thread(self) -> None:
        self.notice_router.poll_audit()

    # -- engine events (any thread) -> messages (this loop) ------------------------------

    def _engine_event(self, event: Event) -> None:
        at = self.clock.now()
        for severity, text in self.digest.lines(event, at.timestamp()):
            self.notice_router.log_ring.append("engine", text, at, severity)
        if isinstance(event, engine_events.RunStarted) and self._engine_label is not None:
            self._run_labels[event.run_id] = self._engine_label
            self._engine_run_id = event.run_id
        post = self.digest.count(event, at.timestamp())
        if isinstance(event, engine_events.OpFinished):
            # One message per op would flood the queue (20,000 in a big apply): the digest
            # counts, and one OpsApplied stands for every op finished since the last.
            if post:
                self.post_message(messages.OpsApplied(event.run_id))
            return
        message = messages.from_event(event)
        if message is not None:
            self.post_message(message)

    def _scheduler_log(self, record: dict[str, Any]) -> None:
        # A job skipped because a run is still going is routine (a retry sweep meeting a
        # full run); a skip for another reason (the lease, a missed time) or a job error
        # is news.
        if record.get("event") == "job_error" or (
                record.get("event") == "skipped" and not record.get("routine")):
            self.post_message(messages.SchedulerNotice(record))
        elif record.get("event") == "skipped":
            self.notice_router.log_ring.append(
                "engine", f"{record.get('job')} job skipped: "
                f"{record.get('why') or 'a run is in progress'}", self.clock.now())

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

    def on_ops_applied(self, message: messages.OpsApplied) -> None:
        """Ops finish hundreds a second: a live console draws the count at most every
        JOB_DRAW_SECONDS and once more after the last (tests draw every change)."""
        if self.live and self.notice_router.now() - self._job_drawn_at < JOB_DRAW_SECONDS:
            # Drawn a moment ago: the tick stays unread, so the ops finishing meanwhile
            # post nothing until it is JOB_DRAW_SECONDS old; one late draw reads the count.
            if self._job_timer is None:
                self._job_timer = self.set_timer(JOB_DRAW_SECONDS, self._show_job_late)
            return
        self._read_applied(message.run_id)
        self._show_job()

    def _read_applied(self, run_id: int | None) -> None:
        done = self.digest.applied(run_id)  # lets the next finished op post a tick
        job = self.job
        if done is None or job is None or job["run_id"] != run_id or job["phase"] != "apply":
            return
        job["done"] = min(done, job["total"]) if job["total"] is not None else done

    def on_run_finished(self, message: messages.RunFinished) -> None:
        """The one notice of a run's outcome (a console-started run's too)."""
        e = message.event
        self.job = None
        self._show_job()
        label = self._run_labels.pop(e.run_id, None)
        detail = self._run_details.pop(e.run_id, None)
        if e.status == "succeeded" and label is None:
            pass  # a scheduled run that went well is routine: the log has it
        else:
            severity: SeverityLevel = (
                "information" if e.status == "succeeded" else
                "warning" if e.status in ("partial", "held", "paused") else "error")
            why = e.message or detail
            # A run this console started answers the operator: it holds the bar a while.
            self.notify(f"run {e.run_id} {e.status}" + (f": {why}" if why else ""),
                        title=label or "", severity=severity,
                        timeout=8 if label is not None else None)
        self.refresh_screen()

    # What held, rejected or quarantined a run is said once, in the run's outcome notice.

    def on_ops_held(self, message: messages.OpsHeld) -> None:
        e = message.event
        self._run_details[e.run_id] = f"{e.count} operation(s) held: {e.reason}"

    def on_feed_rejected(self, message: messages.FeedRejected) -> None:
        e = message.event
        self._run_details[e.run_id] = "HRIS feed rejected: " + "; ".join(e.reasons)

    def on_quarantined(self, message: messages.Quarantined) -> None:
        e = message.event
        if e.run_id is None:
            self.notify(f"job quarantined: {e.reason}", severity="error")
        else:
            self._run_details[e.run_id] = f"job quarantined: {e.reason}"

    def on_scheduler_notice(self, message: messages.SchedulerNotice) -> None:
        r = message.record
        self.notify(f"{r.get('job')} job {r['event'].replace('_', ' ')}: "
                    f"{r.get('why') or r.get('error')}",
                    severity="error" if r["event"] == "job_error" else "warning")

    def _show_job(self) -> None:
        self._job_drawn_at = self.notice_router.now()
        stack = self.screen_stack  # empty once the app is closing and a late draw fires
        if stack and isinstance(stack[-1], DashboardScreen) and stack[-1].is_mounted:
            stack[-1].show_job()

    def _show_job_late(self) -> None:
        self._job_timer = None
        self._read_applied(self.job["run_id"] if self.job is not None else None)
        self._show_job()

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

    def open_list(self, name: str, *, status: str | None = None, filter_text: str = ""
                  ) -> None:
        """A drill-down from a figure: the list behind it, already narrowed."""
        self.push_screen(LISTS[name](status=status, filter_text=filter_text))

    def action_toggle_banner(self) -> None:
        self.banner_expanded = not self.banner_expanded
        self.refresh_screen()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def open_person(self, employee_id: str | None) -> None:
        if employee_id:
            self.push_screen(PersonScreen(employee_id))

    def open_run(self, run_id: int) -> None:
        self.push_screen(RunScreen(run_id))

    # -- the one action path (console/app_actions.py) ---------------------------------

    def request(self, req: ActionRequest) -> None:
        """Every dangerous action: ask, then act on exactly the scope the request fixed."""
        self.actions.request(req)

    def request_from(self, build: Callable[[Store], ActionRequest | str]) -> None:
        """A request whose scope is read from the database when the dialog opens."""
        self.actions.request_from(build)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        self.actions.worker_changed(event)

    def leader_refusal(self, action: str) -> str | None:
        return self.actions.leader_refusal(action)

    def show_leader(self, status: LeaderStatus) -> None:
        """A screen read the leader lease: every header line shows it, and the footer
        redraws its keys when what they may do changed."""
        changed, self.leader = status != self.leader, status
        now = self.clock.now()
        for screen in self.screen_stack:
            for line in screen.query(LeaderLine):
                line.show(status, now)
        if changed:
            self.refresh_bindings()

    # -- engine runs and the scheduler, asked for from the palette or a screen ----------

    def ask_sync(self, kind: str) -> None:
        if not self.actions.refused("ask_sync"):
            self.request(requests.sync_request(self, kind))

    def ask_resync(self, employee_id: str) -> None:
        if not self.actions.refused("ask_resync"):
            self.request(requests.resync_request(self, employee_id))

    def ask_pause(self) -> None:
        self.request(requests.pause_request(self, True))

    def ask_resume(self) -> None:
        self.request(requests.pause_request(self, False))

    def start_sync(self, kind: str, source: str = "console") -> None:
        """A run now, without asking: after a confirmation, or the demo's first load."""
        if self.actions.refused("ask_sync") or self.engine is None:
            return
        self.run_engine(*requests.sync_run(self, kind, source))

    def start_resync(self, employee_id: str) -> None:
        if self.actions.refused("resync") or self.engine is None:
            return
        self.run_engine(*requests.resync_run(self, employee_id))

    def set_scheduler_paused(self, paused: bool) -> None:
        """On the loop: APScheduler's asyncio scheduler belongs to it."""
        if self.scheduler is not None and self.scheduler.scheduler.running:
            (self.scheduler.pause if paused else self.scheduler.resume)()
        self.scheduler_paused = paused

    async def _fenced(self, start: Callable[[], Awaitable[RunReport]]) -> RunReport:
        """With [ha] on, an apply from this console checks the leader lease as a serve
        run does (sync.ha_fence): it stops if leadership moves while it runs."""
        async def body() -> RunReport:
            return await start()
        if self.engine is None:
            return await body()
        return await run_fenced(self.engine, body)

    def run_in_progress(self) -> bool:
        """Whether a run of this process holds the job now: a confirmed run waits."""
        return self.scheduler is not None and self.scheduler.lock.locked()

    @work(group="engine")
    async def run_engine(self, label: str, start: Callable[[], Awaitable[RunReport]],
                         audit_entry: tuple[str, str | None, dict[str, Any]] | None = None
                         ) -> None:
        """One engine call on this loop, never beside a scheduled job: the engine's lease
        keeps other processes out, but this process's jobs share one lease holder, so the
        scheduler's own lock is what serialises them here."""
        assert self.scheduler is not None
        lock = self.scheduler.lock
        if lock.locked():
            # Confirmed is confirmed: it waits its turn (as the nightly reconcile does),
            # once; asking for the same thing again while it waits adds nothing.
            if label in self._waiting:
                self.notify(f"{label} is already waiting for the run in progress; it runs "
                            "once", severity="warning")
                return
            self._waiting.add(label)
            self.notify(f"{label} waits for the run in progress to finish, then starts",
                        title="waiting")
        try:
            await lock.acquire()
        finally:
            self._waiting.discard(label)
        try:
            self._engine_label, self._engine_run_id = label, None
            try:
                if audit_entry is not None:  # written once the run is sure to start
                    action, target, detail = audit_entry
                    await asyncio.to_thread(audit.record, self.store, self.clock.now(),
                                            action, target, detail, self.actor)
                report = await self._fenced(start)
            except EngineBusy as exc:
                self.notify(str(exc), title=label, severity="error", timeout=10)
                return
            except Exception as exc:  # an engine failure is a notification, not a crash
                self.notify(f"{type(exc).__name__}: {exc}", title=f"{label} failed",
                            severity="error", timeout=10)
                if self._engine_run_id is not None:  # no RunFinished will come for it
                    self._run_labels.pop(self._engine_run_id, None)
                    self._run_details.pop(self._engine_run_id, None)
                    self.job = None
                    self._show_job()
                return
            finally:
                self._engine_label = None
                self.refresh_screen()
        finally:
            lock.release()
        if self._engine_run_id is None:
            # No RunStarted was seen for it, so no RunFinished will announce it.
            self.notify(report.status + (f": {report.message}" if report.message else ""),
                        title=label, severity="information" if report.status == "succeeded"
                        else "warning")


def run_console(config: Config, store: Store, *, read_only: bool = False) -> int:
    ConsoleApp(config, store, read_only=read_only).run()
    return 0
