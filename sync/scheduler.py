"""Background jobs on APScheduler 3.x: delta runs, the nightly full reconcile and retry
sweeps. The same scheduler runs inside the console's event loop and headless in
`rostersync serve`; jobs never overlap (one lock here, the writer lease across processes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rostersync.storage import lease as lease_store
from rostersync.storage.db import Store
from rostersync.sync.alerts import Alerter
from rostersync.sync.config import Config, ConfigError
from rostersync.sync.engine import Engine, EngineBusy
from rostersync.sync.events import Event
from rostersync.sync.ha_node import HaNode
from rostersync.sync.metrics import MetricsService
from rostersync.sync.realtime.service import RealtimeService

# Where interval jobs' fire times start counting with [ha] enabled: one grid for all nodes.
GRID_START = datetime(2000, 1, 1, tzinfo=UTC)


def quiet_apscheduler() -> None:
    """APScheduler warns on stderr at every overlap ("maximum number of running instances
    reached") and every missed run time, which litters `serve`'s JSON lines and the
    console's screen; SyncScheduler reports both (and job errors) as its own records, so
    only APScheduler's errors get through."""
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    executor_log = logging.getLogger("apscheduler.executors.default")
    if not any(isinstance(f, _StopIsNotAnError) for f in executor_log.filters):
        executor_log.addFilter(_StopIsNotAnError())


class _StopIsNotAnError(logging.Filter):
    """APScheduler's shutdown cancels the job tasks it started, and a task it submitted
    in the same turn of the loop is cancelled before its first step: APScheduler logs
    that as "Error running job" with a traceback. Stopping is not an error (a run that
    had started goes on in a task of ours and stop() awaits it): drop those records."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, asyncio.CancelledError)


class SyncScheduler:
    def __init__(self, engine: Engine, config: Config,
                 log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.engine = engine
        self.config = config
        self.log = log or (lambda _record: None)
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Task] = set()
        self._shutting_down = False
        quiet_apscheduler()
        self.scheduler = AsyncIOScheduler(timezone=config.schedule.timezone)
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR
                                    | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        # With several nodes, each scheduled run is claimed by (job, fire time) before it
        # runs; interval jobs start from one fixed moment so that every node's fire times
        # fall on the same grid (a cron's already do).
        self._fire_times: dict[str, datetime] = {}
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        aligned = {"start_date": GRID_START} if config.ha.enabled else {}
        s = config.schedule
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
        if engine.source.supports_delta():
            self.scheduler.add_job(self._job, IntervalTrigger(minutes=s.delta_every_minutes,
                                                              **aligned),
                                   args=["delta"], id="delta", name="delta sync", **common)
        try:
            full = (IntervalTrigger(minutes=s.full_every_minutes, **aligned)
                    if s.full_every_minutes
                    else CronTrigger.from_crontab(s.full_cron, timezone=s.timezone))
        except ValueError as exc:
            from rostersync.sync.config import ConfigError

            raise ConfigError(f"key 'schedule.full_cron': {exc} (got {s.full_cron!r})") from None
        self.scheduler.add_job(self._job, full, args=["full"], id="full",
                               name="full reconcile", **common)
        self.scheduler.add_job(self._job, IntervalTrigger(minutes=s.retry_every_minutes,
                                                          **aligned),
                               args=["retry"], id="retry", name="retry sweep", **common)
        self._services_ready: asyncio.Future | None = None
        self._alert_task: asyncio.Task | None = None
        # The webhook listener, /metrics and alerts: each off unless configured. A
        # missing secret is a config error here, before anything starts.
        self.realtime = (RealtimeService(engine, config, lock=self._lock, log=self.log)
                         if config.realtime.enabled else None)
        self.metrics = None
        if config.metrics.enabled:
            realtime = self.realtime
            shared = (realtime is not None
                      and config.metrics.listen == config.realtime.listen)
            self.metrics = MetricsService(
                engine.store, config, engine.clock, log=self.log, own_listener=not shared,
                refused=(lambda: realtime.refused) if realtime else None)
            if shared and realtime is not None:
                realtime.routes["/metrics"] = self.metrics.handle
        self.alerter = (Alerter(engine.store, config, engine.clock, log=self.log)
                        if config.alerts.channels else None)

    def _on_job_event(self, event: JobEvent) -> None:
        """APScheduler's skips and job failures, as our own log records."""
        if event.code == EVENT_JOB_MAX_INSTANCES:
            self.log({"event": "skipped", "job": event.job_id, "routine": True,
                      "why": "its previous run is still going"})
        elif event.code == EVENT_JOB_MISSED:
            self.log({"event": "skipped", "job": event.job_id,
                      "why": f"missed its time ({event.scheduled_run_time})"})
        else:
            exc = getattr(event, "exception", None)
            if isinstance(exc, asyncio.CancelledError):
                return  # the scheduler stopped as the job began: it did not run, no error
            self.log({"event": "job_error", "job": event.job_id,
                      "error": f"{type(exc).__name__}: {exc}"})

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        """The fire time of the run being submitted. APScheduler's asyncio executor starts
        the job's task after this listener returns, so ``_job`` finds it here."""
        if event.scheduled_run_times:
            self._fire_times[event.job_id] = event.scheduled_run_times[-1]

    async def _claimed_elsewhere(self, kind: str) -> str | None:
        """With [ha] enabled: claim this scheduled run; the node that had, if another."""
        fire_time = self._fire_times.pop(kind, None)
        if not self.config.ha.enabled or fire_time is None:
            return None
        try:
            return await asyncio.to_thread(lease_store.claim_job, self.engine.store, kind,
                                           fire_time, self.config.ha.node,
                                           self.engine.clock.now())
        except Exception as exc:  # cannot claim (database unreachable): do not run
            return f"unknown (the claim failed: {type(exc).__name__}: {exc})"

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a job runs; an interactive action (a resync, an approval) takes it
        too, so that it never runs beside a scheduled job of the same process."""
        return self._lock

    def start(self, *, paused: bool = False) -> None:
        """Start the jobs' clock; ``paused``: no job runs until ``resume`` (a standby)."""
        self.scheduler.start(paused=paused)
        if self.realtime or self.metrics or self.alerter:
            self._services_ready = asyncio.ensure_future(self._start_services())

    async def ready(self) -> None:
        """Wait until the listeners listen; raises ConfigError when one cannot."""
        if self._services_ready is not None:
            await self._services_ready

    async def _start_services(self) -> None:
        try:
            if self.realtime is not None:
                self.log({"event": "listening", "what": "webhooks",
                          "url": await self.realtime.start(),
                          "mode": self.config.realtime.describe_mode()})
            if self.metrics is not None:
                url = await self.metrics.start()
                if url is None and self.realtime is not None \
                        and "/metrics" in self.realtime.routes:
                    url = self.realtime.listener.url + "/metrics"
                self.log({"event": "listening", "what": "metrics", "url": url})
        except OSError as exc:
            self.log({"event": "job_error", "job": "listen", "error": str(exc)})
            raise ConfigError(f"cannot listen ({exc.strerror or exc}); check "
                              "realtime.listen and metrics.listen") from None
        if self.alerter is not None:
            self._alert_task = asyncio.create_task(self._alert_loop(), name="alerts")

    async def _alert_loop(self) -> None:
        while True:
            await self.check_alerts()
            await asyncio.sleep(self.config.alerts.check_every_seconds)

    async def check_alerts(self) -> None:
        if self.alerter is None or self.engine.standby:
            return  # with several nodes, the leader alone notifies
        try:
            await asyncio.to_thread(self.alerter.check)
        except Exception as exc:  # the database is busy: the next check catches up
            self.log({"event": "job_error", "job": "alerts",
                      "error": f"{type(exc).__name__}: {exc}"})

    def shutdown(self) -> None:
        # APScheduler's asyncio shutdown is itself a callback on the loop, and `running`
        # stays true until it has run: a second call would queue a second shutdown, which
        # raises in the loop's exception handler.
        if self.scheduler.running and not self._shutting_down:
            self._shutting_down = True
            self.scheduler.shutdown(wait=False)
        for service in (self.realtime, self.metrics):
            if service is not None:
                service.close()
        if self._alert_task is not None:
            self._alert_task.cancel()

    async def stop(self) -> None:
        """Shut down and let the job that is running finish (its outcome is recorded).
        APScheduler's shutdown cancels the coroutine jobs it started; ours run in tasks of
        their own (see _job), so that cancel never reaches the engine mid-run; likewise a
        real-time run in progress finishes before its dispatcher is cancelled."""
        if self.realtime is not None:
            await self.realtime.settle()
        self.shutdown()
        while self.scheduler.running:  # its shutdown callback: after it nothing is submitted
            await asyncio.sleep(0)
        running = [t for t in self._running if not t.done()]
        if running:
            await asyncio.gather(*running, return_exceptions=True)
        for service in (self.realtime, self.metrics):
            if service is not None:
                await service.stop()

    def cancel_running(self) -> None:
        """Cancel the jobs running now (a second stop signal): each records its run as
        interrupted and releases the lease; its requests in flight are of unknown outcome."""
        for task in self._running:
            task.cancel()
        if self.realtime is not None:
            self.realtime.close()  # its dispatcher's run too

    def pause(self) -> None:
        if self.scheduler.running:  # a node standing down while it shuts down
            self.scheduler.pause()

    def resume(self) -> None:
        if self.scheduler.running:
            self.scheduler.resume()

    def next_runs(self) -> dict[str, str | None]:
        return {job.id: job.next_run_time.isoformat() if job.next_run_time else None
                for job in self.scheduler.get_jobs()}

    async def run_now(self, kind: str) -> Any:
        return await self._run(kind)

    async def _job(self, kind: str) -> Any:
        if self.config.ha.enabled and (self.engine.fence is None or self.engine.standby):
            # With several nodes only the leading `serve` runs jobs (sync.ha_node); a
            # console's scheduler on any node never does.
            self._fire_times.pop(kind, None)
            self.log({"event": "skipped", "job": kind, "routine": True,
                      "why": "this process does not lead ([ha]): the leading serve node "
                             "runs the scheduled jobs"})
            return None
        other = await self._claimed_elsewhere(kind)
        if other is not None:
            self.log({"event": "skipped", "job": kind, "routine": True,
                      "why": f"this scheduled run was claimed by node {other}"})
            return None
        # The work runs in a task this scheduler owns and stop() awaits; APScheduler's own
        # task only waits on it through a shield, so its shutdown-time cancel ends the wait,
        # not the run (a run cut off mid-plan would leave its outcome unrecorded).
        task = asyncio.ensure_future(self._run(kind))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            return None  # APScheduler's shutdown: the run goes on; stop() awaits it

    async def _run(self, kind: str) -> Any:
        # A real-time run is short: a scheduled job waits for it rather than being skipped
        # (a steady trickle of events must never starve the nightly reconcile).
        realtime_busy = self.realtime is not None and self.realtime.dispatcher.busy
        if self._lock.locked() and not realtime_busy:
            # A retry sweep or a delta fires again soon: skip it. The full reconcile waits
            # its turn instead: interval jobs and the nightly cron often fire at the same
            # second (always on the [ha] grid), and a sweep that took the lock first must
            # not cost the night its reconcile.
            if kind != "full":
                self.log({"event": "skipped", "job": kind, "routine": True,
                          "why": "another job is running"})
                return None
            self.log({"event": "waiting", "job": kind,
                      "why": "another job is running; the full reconcile runs after it"})
        try:
            return await self._run_locked(kind)
        finally:
            if self.realtime is not None:
                self.realtime.dispatcher.wake()  # an accepted feed reopens the gate
            if self.alerter is not None:
                await self.check_alerts()

    async def _run_locked(self, kind: str) -> Any:
        async with self._lock:
            try:
                if kind == "retry":
                    report = await self.engine.apply_due(trigger="schedule")
                else:
                    report = await self.engine.sync(kind, trigger="schedule")
            except EngineBusy as exc:
                self.log({"event": "skipped", "job": kind, "why": str(exc)})
                return None
            except Exception as exc:
                self.log({"event": "job_error", "job": kind,
                          "error": f"{type(exc).__name__}: {exc}"})
                return None
            return report


def _json_line(record: dict[str, Any]) -> None:
    """One log line on stdout. A log reader that went away (a closed pipe) must not take
    the service with it: a signal handler or a run that logs would fail mid-way, and
    SIGTERM could no longer stop it. Its lines are dropped from then on."""
    try:
        sys.stdout.write(json.dumps(record, default=str, sort_keys=True) + "\n")
        sys.stdout.flush()
    except OSError:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - replaces stdout until exit


def serve_forever(config: Config, store: Store) -> int:
    """`rostersync serve`: the scheduler without a UI, JSON-lines logs on stdout."""

    async def main() -> None:
        def on_event(event: Event) -> None:
            _json_line(event.as_dict())

        engine = Engine(config, store, on_event=on_event)
        sched = SyncScheduler(engine, config, log=_json_line)
        node = HaNode(engine, sched, _json_line) if config.ha.enabled else None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(sig: signal.Signals) -> None:
            # The first signal stops gracefully: no new operation, requests in flight
            # finish, the run is recorded as interrupted. A second one does not wait for
            # the LMS: the run is cancelled, the requests in flight stay of unknown
            # outcome, and the next run reads the LMS before sending any of them again.
            if not stop.is_set():
                _json_line({"event": "stopping", "signal": sig.name})
                engine.request_stop(f"serve was asked to stop ({sig.name})")
                stop.set()
            else:
                _json_line({"event": "stopping", "signal": sig.name, "force": True})
                sched.cancel_running()

        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
        sched.start(paused=node is not None)  # a node leads before its jobs run
        try:
            await sched.ready()
        except ConfigError as exc:
            await sched.stop()
            raise exc
        serving: dict[str, Any] = {"event": "serving", "jobs": sched.next_runs()}
        if node is not None:
            serving["node"] = config.ha.node
            node.start()
        _json_line(serving)
        await stop.wait()
        await sched.stop()
        if node is not None:
            await node.stop()
        _json_line({"event": "stopped"})

    asyncio.run(main())
    return 0
