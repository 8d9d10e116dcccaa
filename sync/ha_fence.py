"""The leader fence of a command run by hand that applies ([ha] enabled).

With several nodes on one database exactly one applies operations at a time: the one
holding the "leader" lease. A `rostersync sync` (or `ops retry`, `ops approve`) typed on
some node must not apply beside the leader, so before anything is sent it decides, by
``decide`` (pure), which fence its writes check:

- this node leads: the writes check the lease its `serve` holds, so the run stops as
  interrupted if leadership moves while it runs (as a serve run does);
- nobody leads (no row, or the lease expired): the command takes the leader lease itself
  for the length of its run, renews it while it runs and releases it after, so a standby
  neither starts applying beside it nor waits longer than needed to take over;
- another node leads: refused before anything is planned or sent (EngineBusy, exit 5).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from rostersync.storage import lease as lease_store
from rostersync.storage.lease import Fence, LeaseHolder
from rostersync.sync.engine import Engine
from rostersync.sync.leadership import LEADER, Leadership
from rostersync.sync.run_report import EngineBusy

T = TypeVar("T")
Work = Callable[[], Coroutine[Any, Any, T]]


@dataclass(frozen=True)
class UseLeaderFence:
    """This node leads: apply checking its lease (holder and token)."""

    fence: Fence


@dataclass(frozen=True)
class TakeLeaseForRun:
    """Nobody leads: take the leader lease for the length of this run."""


@dataclass(frozen=True)
class Refuse:
    """Another node leads: nothing is planned or sent."""

    sentence: str


Decision = UseLeaderFence | TakeLeaseForRun | Refuse


def _at(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment is not None else "an unknown time"


def decide(node: str, leader: LeaseHolder | None, now: datetime) -> Decision:
    """Which fence a hand-run apply on ``node`` uses, given the leader lease row (or None).
    A lease that expires exactly ``now`` is no longer held (as the fence's own check,
    ``expires_at > now``, counts it)."""
    if leader is None or leader.expires_at is None or leader.expires_at <= now:
        return TakeLeaseForRun()
    if leader.node == node:
        return UseLeaderFence(Fence(leader.holder, leader.token, LEADER))
    other = leader.node or "another node"
    return Refuse(
        f"node {other} leads (the leader lease, token {leader.token}, since "
        f"{_at(leader.acquired_at)}) and only the leader applies operations: nothing was "
        f"planned or sent; run it on {other}, or wait until its lease expires at "
        f"{_at(leader.expires_at)} if {other} is down (see `rostersync status`)")


def refuse_if_another_leads(engine: Engine) -> None:
    """Before a command changes anything (its audit entry, an operation's status): raise
    EngineBusy when another node leads. ``run_fenced`` decides again when it applies."""
    ha = engine.config.ha
    if not ha.enabled:
        return
    now = engine.clock.now()
    decision = decide(ha.node, lease_store.current(engine.store, now, LEADER), now)
    if isinstance(decision, Refuse):
        raise EngineBusy(decision.sentence)


def _quiet(_event: dict[str, Any]) -> None:
    """A command's leadership events: its run report says what matters."""


async def _keep(leadership: Leadership) -> None:
    """Renew the lease a third of its time apart while the run goes on; once it is lost
    (stand_down stops the engine's sending) there is nothing more to do."""
    while leadership.leading:
        await leadership.clock.sleep(leadership.next_tick_in())
        await leadership.tick()


async def run_fenced(engine: Engine, work: Work[T]) -> T:
    """Run ``work`` (an engine entry point that applies) under the leader fence that
    ``decide`` picks; with [ha] off, as it is."""
    ha = engine.config.ha
    if not ha.enabled:
        return await work()
    for _ in range(2):  # a second look when another process took the lease in between
        now = engine.clock.now()
        leader = await asyncio.to_thread(lease_store.current, engine.store, now, LEADER)
        decision = decide(ha.node, leader, now)
        if isinstance(decision, Refuse):
            raise EngineBusy(decision.sentence)
        if isinstance(decision, UseLeaderFence):
            engine.lead(decision.fence)
            return await work()
        leadership = Leadership(engine.store, ha, engine.clock, on_lead=engine.lead,
                                on_standby=engine.step_down, log=_quiet)
        await leadership.tick()
        if leadership.leading:
            return await _with_lease(leadership, work)
    raise EngineBusy("the leader lease changed hands while this command looked at it; "
                     "nothing was planned or sent: run it again")


async def _with_lease(leadership: Leadership, work: Work[T]) -> T:
    keeper = asyncio.create_task(_keep(leadership), name="leader lease for this run")
    try:
        return await work()
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        await leadership.give_back()
