"""Which `serve` node leads when several share one database ([ha] enabled).

Every node campaigns for the "leader" lease (storage.lease). The leader renews it every
third of its time; a standby looks at it as often and takes it once it has expired. A
leader that cannot renew (its database is unreachable) stands down on its own before its
lease could end, so that its successor never overlaps it: it must stop when
``now >= last renewal + lease - margin`` (``must_stand_down``). Its writes are fenced as
well: every attempt checks the lease's token in the statement that marks it in flight.

This module holds the lease and says when leadership changes; sync.ha_node wires that to
the scheduler and the engine.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage import lease as lease_store
from rostersync.storage.db import Store
from rostersync.storage.lease import Fence, LeaseHolder
from rostersync.sync.clock import Clock
from rostersync.sync.config_ha import HaConfig

LEADER = "leader"
# What an unreachable database raises: SQLite's errors, the OS's; psycopg's connection
# errors are recognised by name in _unreachable (no driver is imported here).
DB_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError, TimeoutError)


def must_stand_down(now: datetime, last_renewed: datetime, lease_seconds: float,
                    margin_seconds: float) -> bool:
    """A leader that has not renewed since ``last_renewed`` stops applying from here on:
    its lease could end ``margin_seconds`` later, and another node may then take it."""
    return now >= last_renewed + timedelta(seconds=lease_seconds - margin_seconds)


def _unreachable(exc: BaseException) -> bool:
    """A database error, whatever the driver (no import of a driver here)."""
    if isinstance(exc, DB_ERRORS):
        return True
    return any(cls.__module__.split(".")[0] in ("psycopg", "psycopg_pool")
               and cls.__name__ in ("OperationalError", "InterfaceError", "PoolTimeout")
               for cls in type(exc).__mro__)


class Leadership:
    """This node's side of the leader lease. ``tick`` is one step (tests drive it with a
    FrozenClock); ``run`` repeats it every ``renew_seconds`` until cancelled."""

    def __init__(self, store: Store, ha: HaConfig, clock: Clock, *,
                 on_lead: Callable[[Fence], None], on_standby: Callable[[str], None],
                 log: Callable[[dict[str, Any]], None]) -> None:
        self.store = store
        self.ha = ha
        self.clock = clock
        self.on_lead = on_lead
        self.on_standby = on_standby
        self.log = log
        self.holder = f"{ha.node}/{lease_store.new_holder_id()}"
        self.fence: Fence | None = None
        self.last_renewed: datetime | None = None
        self._seen: tuple[str, int] | None = None  # the other leader last logged
        self._expiry: datetime | None = None  # of the other node's lease, last seen
        self._db_down = False

    @property
    def leading(self) -> bool:
        return self.fence is not None

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception as exc:  # a bug must not silently end the campaign
                self.stand_down(f"internal error: {type(exc).__name__}: {exc}")
                self.log({"event": "job_error", "job": "leadership",
                          "error": f"{type(exc).__name__}: {exc}"})
            await self.clock.sleep(self.next_tick_in())

    def next_tick_in(self) -> float:
        """Until the next tick: a third of the lease, sooner when the stand-down is due."""
        every = self.ha.renew_seconds
        if self.fence is None:
            # A standby also wakes right when the lease it saw would expire, so that it
            # leads within the lease time of the leader's death, not a third later.
            if self._expiry is None:
                return every
            until = (self._expiry - self.clock.now()).total_seconds()
            return max(0.0, min(every, until))
        if self.last_renewed is None:
            return every
        due = self._deadline() - self.clock.now()
        return max(0.0, min(every, due.total_seconds()))

    def _deadline(self) -> datetime:
        assert self.last_renewed is not None
        return self.last_renewed + timedelta(
            seconds=self.ha.lease_seconds - self.ha.fence_margin_seconds)

    async def tick(self) -> None:
        if self.fence is None:
            await self._campaign()
        else:
            await self._renew(self.fence)

    async def _campaign(self) -> None:
        now = self.clock.now()
        try:
            lease, ours = await asyncio.to_thread(
                lease_store.take, self.store, self.holder, now, self.ha.lease_seconds,
                LEADER, self.ha.node)
        except Exception as exc:
            if not _unreachable(exc):
                raise
            self._database_down(exc)
            return
        self._database_back()
        if not ours:
            self._expiry = lease.expires_at
            self._standing_by(lease)
            return
        self._expiry = None
        self.fence = Fence(self.holder, lease.token, LEADER)
        self.last_renewed = now
        self._seen = None
        self.log({"event": "leadership", "state": "leading", "node": self.ha.node,
                  "token": lease.token, "since": lease.acquired_at})
        self.on_lead(self.fence)

    def _standing_by(self, lease: LeaseHolder) -> None:
        seen = (lease.holder, lease.token)
        if seen != self._seen:
            self._seen = seen
            self.log({"event": "leadership", "state": "standby", "node": self.ha.node,
                      "leader": lease.node, "token": lease.token, "since": lease.acquired_at,
                      "until": lease.expires_at})

    async def _renew(self, fence: Fence) -> None:
        now = self.clock.now()
        if must_stand_down(now, self._renewed(), self.ha.lease_seconds,
                           self.ha.fence_margin_seconds):
            self.stand_down("could not renew the leader lease in time (paused, or the "
                            "database unreachable); stopped before the lease could end")
            return
        budget = (self._deadline() - now).total_seconds()
        try:
            renewed = await asyncio.wait_for(asyncio.to_thread(
                lease_store.renew, self.store, fence, now, self.ha.lease_seconds), budget)
        except TimeoutError:
            self.stand_down("the database did not answer the lease renewal in time; "
                            "stopped before the lease could end")
            return
        except Exception as exc:
            if not _unreachable(exc):
                raise
            self._database_down(exc)
            return  # the next tick tries again, or stands down when it is due
        self._database_back()
        if renewed:
            self.last_renewed = now
        else:
            self.stand_down("the leader lease lapsed or another node took it")

    def _renewed(self) -> datetime:
        assert self.last_renewed is not None
        return self.last_renewed

    def stand_down(self, reason: str) -> None:
        """Stop leading now: the engine stops applying, the scheduler pauses."""
        if self.fence is None:
            return
        token = self.fence.token
        self.fence = None
        self.last_renewed = None
        self.log({"event": "leadership", "state": "standby", "node": self.ha.node,
                  "token": token, "why": reason})
        self.on_standby(reason)

    async def give_back(self) -> None:
        """On shutdown: release the lease so that a standby takes over at once."""
        if self.fence is None:
            return
        holder = self.fence.holder
        self.stand_down("this node is shutting down")
        try:
            await asyncio.to_thread(lease_store.release, self.store, holder, LEADER)
        except Exception as exc:
            if not _unreachable(exc):
                raise  # unreachable: the lease simply expires

    def _database_down(self, exc: BaseException) -> None:
        if not self._db_down:
            self._db_down = True
            self.log({"event": "leadership", "state": "database_unreachable",
                      "node": self.ha.node, "error": f"{type(exc).__name__}: {exc}"})

    def _database_back(self) -> None:
        if self._db_down:
            self._db_down = False
            self.log({"event": "leadership", "state": "database_reachable",
                      "node": self.ha.node})
