"""One `serve` node among several on one database ([ha] enabled): leadership wired to
the scheduler and the engine.

The leader runs the scheduled jobs and the real-time dispatch; a standby keeps its
scheduler paused and its engine refusing to apply (EngineBusy), and watches the lease.
On taking over, the new leader first runs a retry sweep: the operations its predecessor
left planned or in flight (those in flight are read from the LMS before being sent
again, so a create whose outcome is unknown is not made twice).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rostersync.storage.lease import Fence
from rostersync.sync.engine import Engine, EngineBusy
from rostersync.sync.leadership import Leadership

if TYPE_CHECKING:
    from rostersync.sync.scheduler import SyncScheduler

STANDBY = "this node is a standby: the leader node applies (see `rostersync status`)"


class HaNode:
    def __init__(self, engine: Engine, sched: SyncScheduler,
                 log: Callable[[dict[str, Any]], None]) -> None:
        self.engine = engine
        self.sched = sched
        self.log = log
        self.leadership = Leadership(engine.store, engine.config.ha, engine.clock,
                                     on_lead=self._lead, on_standby=self._standby, log=log)
        self._task: asyncio.Task | None = None
        self._catch_up: asyncio.Task | None = None
        engine.step_down(STANDBY)  # nothing is applied before the lease is ours

    def start(self) -> None:
        """Campaign now and keep at it; the scheduler must have started paused."""
        self._task = asyncio.create_task(self.leadership.run(), name="leadership")

    async def stop(self) -> None:
        """After the scheduler stopped (its run recorded): release the lease."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._settle_catch_up()
        await self.leadership.give_back()

    def _lead(self, fence: Fence) -> None:
        self.engine.lead(fence)
        self.sched.resume()
        if self.sched.realtime is not None:
            self.sched.realtime.dispatcher.wake()  # events queued while another node led
        self._catch_up = asyncio.create_task(self._finish_predecessor(fence),
                                             name="takeover sweep")

    def _standby(self, reason: str) -> None:
        self.engine.step_down(reason)
        self.sched.pause()

    async def _finish_predecessor(self, fence: Fence) -> None:
        """A retry sweep at once, as soon as no other run holds the writer lease."""
        every = self.engine.config.ha.renew_seconds
        while self.leadership.fence == fence:
            async with self.sched.lock:
                if self.leadership.fence != fence:
                    return
                try:
                    report = await self.engine.apply_due(trigger="schedule")
                except EngineBusy as exc:
                    self.log({"event": "skipped", "job": "takeover", "routine": True,
                              "why": str(exc)})
                else:
                    self.log({"event": "takeover_sweep", "run_id": report.run_id,
                              "status": report.status, "counts": dict(report.counts)})
                    return
            await self.engine.clock.sleep(every)

    async def _settle_catch_up(self) -> None:
        if self._catch_up is not None and not self._catch_up.done():
            await asyncio.gather(self._catch_up, return_exceptions=True)
