"""Queued HR events -> real-time runs.

The queue is the events_received table (written before a webhook is answered). Each
round takes every queued event, makes one run for the distinct people among them (a
burst for one person is one sync, hence one operation), and marks the events with the
run's outcome. An event never goes around the guards: a closed feed gate parks it
("gated") until a full feed is accepted again, and the run itself applies suppressions,
holds (including the windowed mass-deactivation check) and the job's state.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from rostersync.storage import events as event_store
from rostersync.sync.config import Config
from rostersync.sync.engine import Engine, EngineBusy, RunReport, in_thread

MAX_PEOPLE_PER_RUN = 500
BUSY_RETRY_SECONDS = 5.0


class Dispatcher:
    def __init__(self, engine: Engine, config: Config, *, lock: asyncio.Lock | None = None,
                 sleep: Callable[[float], Awaitable[None]] | None = None,
                 log: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.engine = engine
        self.store = engine.store
        self.config = config
        self.lock = lock or asyncio.Lock()
        self.sleep = sleep or engine.clock.sleep
        self.log = log or (lambda _record: None)
        self._wake = asyncio.Event()
        self.last_report: RunReport | None = None
        self.busy = False  # a real-time run holds the lock (scheduled jobs wait for it)
        self.idle = asyncio.Event()  # set while no real-time run is in progress
        self.idle.set()

    def wake(self) -> None:
        self._wake.set()

    async def run_forever(self) -> None:
        """Wait for events; after the buffer window, sync everyone queued meanwhile."""
        buffer = self.config.realtime.buffer_seconds
        while True:
            await self._wake.wait()
            self._wake.clear()
            if buffer:
                await self.sleep(buffer)  # later events for the same people coalesce
            try:
                while await self.drain_once():
                    pass
            except EngineBusy:
                await self.sleep(BUSY_RETRY_SECONDS)
                self._wake.set()
            except Exception as exc:  # a bug must not end the intake; say it and go on
                self.log({"event": "job_error", "job": "realtime",
                          "error": f"{type(exc).__name__}: {exc}"})

    async def drain_once(self) -> RunReport | None:
        """One round: returns the run's report, None when nothing was run."""
        if self.engine.stopping or self.engine.standby:
            return None  # shutting down, or a standby node: the events stay queued
        now = self.engine.clock.now()
        if await in_thread(event_store.feed_gate_open, self.store):
            await in_thread(event_store.requeue_gated, self.store)
        rows = await in_thread(event_store.queued, self.store)
        if not rows:
            return None
        kinds = self.config.realtime.event_kinds()
        ids = [r["id"] for r in rows]
        if not kinds:
            await in_thread(event_store.finish, self.store, now, ids, "batched", None,
                            "batch mode: the scheduled run applies the change")
            return None
        if not await in_thread(event_store.feed_gate_open, self.store):
            await in_thread(event_store.finish, self.store, now, ids, "gated", None,
                            "the last HRIS feed was rejected by the feed gate; waiting "
                            "for an accepted one")
            return None
        first: dict[str, int] = {}
        for row in rows:
            if row["employee_id"] not in first and len(first) < MAX_PEOPLE_PER_RUN:
                first[row["employee_id"]] = row["id"]
        taken = [r for r in rows if r["employee_id"] in first]
        async with self.lock:
            self.busy = True
            self.idle.clear()
            try:
                report = await self.engine.resync_many(list(first), kinds=kinds)
            except EngineBusy:
                raise  # the events stay queued; run_forever retries
            except Exception as exc:
                await in_thread(event_store.finish, self.store, self.engine.clock.now(),
                                [r["id"] for r in taken], "failed", None,
                                f"{type(exc).__name__}: {exc}")
                raise
            finally:
                self.busy = False
                self.idle.set()
        if report.error_class == "interrupted":
            # A shutdown stopped the run: the events stay queued, the next start syncs them.
            self.log({"event": "realtime_run", "run_id": report.run_id,
                      "status": "interrupted", "people": len(first), "events": len(taken)})
            return None
        done = self.engine.clock.now()
        status = "synced" if report.status == "succeeded" else report.status
        primary = [first[k] for k in first]
        coalesced = [r["id"] for r in taken if r["id"] not in set(primary)]
        await in_thread(event_store.finish, self.store, done, primary, status, report.run_id,
                        report.message)
        if coalesced:
            await in_thread(event_store.finish, self.store, done, coalesced, "coalesced",
                            report.run_id, "a later event for the same person, synced together")
        self.log({"event": "realtime_run", "run_id": report.run_id, "status": report.status,
                  "people": len(first), "events": len(taken)})
        self.last_report = report
        return report

    async def drain(self) -> list[RunReport]:
        """Every queued event, now (tests and `bench.latency` drive it directly)."""
        reports = []
        while (report := await self.drain_once()) is not None:
            reports.append(report)
        return reports

    async def close(self, task: asyncio.Task | None) -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
