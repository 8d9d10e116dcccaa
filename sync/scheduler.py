"""Background jobs on APScheduler 3.x: delta runs, the nightly full reconcile and retry
sweeps. The same scheduler runs inside the console's event loop and headless in
`rostersync serve`; jobs never overlap (one lock here, the writer lease across processes).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobEvent,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from rostersync.storage.db import Store
from rostersync.sync.alerts import Alerter
from rostersync.sync.config import Config, ConfigError
from rostersync.sync.engine import Engine, EngineBusy
from rostersync.sync.events import Event
from rostersync.sync.metrics import MetricsService
from rostersync.sync.realtime.service import RealtimeService


def quiet_apscheduler() -> None:
    """APScheduler warns on stderr at every overlap ("maximum number of running instances
    reached") and every missed run time, which litters `serve`'s JSON lines and the
    console's screen; SyncScheduler reports both (and job errors) as its own records, so
    only APScheduler's errors get through."""
    logging.getLogger("apscheduler").setLevel(logging.ERROR)


class SyncScheduler:
    def __init__(self, engine: Engine, config: Config,
                 log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.engine = engine
        self.config = config
        self.log = log or (lambda _record: None)
        self._lock = asyncio.Lock()
        self._running: set[asyncio.Task] = set()
        quiet_apscheduler()
        self.scheduler = AsyncIOScheduler(timezone=config.schedule.timezone)
        self.scheduler.add_listener(self._on_job_event, EVENT_JOB_ERROR
                                    | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_MISSED)
        s = config.schedule
        common = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 300}
        if engine.source.supports_delta():
            self.scheduler.add_job(self._job, IntervalTrigger(minutes=s.delta_every_minutes),
                                   args=["delta"], id="delta", name="delta sync", **common)
        try:
            full = (IntervalTrigger(minutes=s.full_every_minutes) if s.full_every_minutes
                    else CronTrigger.from_crontab(s.full_cron, timezone=s.timezone))
        except ValueError as exc:
            from rostersync.sync.config import ConfigError

            raise ConfigError(f"key 'schedule.full_cron': {exc} (got {s.full_cron!r})") from None
        self.scheduler.add_job(self._job, full, args=["full"], id="full",
                               name="full reconcile", **common)
        self.scheduler.add_job(self._job, IntervalTrigger(minutes=s.retry_every_minutes),
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
            self.log({"event": "job_error", "job": event.job_id,
                      "error": f"{type(exc).__name__}: {exc}"})

    @property
    def lock(self) -> asyncio.Lock:
        """Held while a job runs; an interactive action (a resync, an approval) takes it
        too, so that it never runs beside a scheduled job of the same process."""
        return self._lock

    def start(self) -> None:
        self.scheduler.start()
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
        if self.alerter is None:
            return
        try:
            await asyncio.to_thread(self.alerter.check)
        except Exception as exc:  # the database is busy: the next check catches up
            self.log({"event": "job_error", "job": "alerts",
                      "error": f"{type(exc).__name__}: {exc}"})

    def shutdown(self) -> None:
        if self.scheduler.running:
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
        self.scheduler.pause()

    def resume(self) -> None:
        self.scheduler.resume()

    def next_runs(self) -> dict[str, str | None]:
        return {job.id: job.next_run_time.isoformat() if job.next_run_time else None
                for job in self.scheduler.get_jobs()}

    async def run_now(self, kind: str) -> Any:
        return await self._run(kind)

    async def _job(self, kind: str) -> Any:
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
            self.log({"event": "skipped", "job": kind, "routine": True,
                      "why": "another job is running"})
            return None
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
    sys.stdout.write(json.dumps(record, default=str, sort_keys=True) + "\n")
    sys.stdout.flush()


def serve_forever(config: Config, store: Store) -> int:
    """`rostersync serve`: the scheduler without a UI, JSON-lines logs on stdout."""

    async def main() -> None:
        def on_event(event: Event) -> None:
            _json_line(event.as_dict())

        engine = Engine(config, store, on_event=on_event)
        sched = SyncScheduler(engine, config, log=_json_line)
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
        sched.start()
        try:
            await sched.ready()
        except ConfigError as exc:
            await sched.stop()
            raise exc
        _json_line({"event": "serving", "jobs": sched.next_runs()})
        await stop.wait()
        await sched.stop()
        _json_line({"event": "stopped"})

    asyncio.run(main())
    return 0
