"""[ha] in the scheduler: every node's interval jobs fire on one grid, and a scheduled
run claimed by another node is skipped (a job never runs twice across nodes)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from rostersync.storage import lease
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.scheduler import GRID_START, SyncScheduler


def _ha(workspace) -> None:
    with workspace.config_path.open("a") as f:
        f.write('\n[ha]\nenabled = true\nnode = "node-a"\n')


def _recorder(records: list[dict]) -> tuple[asyncio.Event, Callable[[dict], None]]:
    """The scheduler's log: each record kept, and an event set at the first (what the
    scenario waits for instead of the clock)."""
    done = asyncio.Event()

    def log(record: dict) -> None:
        records.append(record)
        done.set()

    return done, log


def test_interval_jobs_fire_on_one_grid_with_ha(workspace):
    _ha(workspace)
    config = load_config(workspace.config_path)

    async def scenario() -> dict[str, str | None]:
        sched = SyncScheduler(Engine(config), config)
        sched.start(paused=True)
        try:
            return sched.next_runs()
        finally:
            await sched.stop()

    retry = datetime.fromisoformat(str(asyncio.run(scenario())["retry"]))
    every = timedelta(minutes=config.schedule.retry_every_minutes)
    assert (retry - GRID_START) % every == timedelta(0)


def test_a_scheduled_run_claimed_by_another_node_is_skipped(workspace):
    _ha(workspace)
    config = load_config(workspace.config_path)
    store = make_store(config.database)
    claimed = datetime.now(UTC).replace(microsecond=0)
    free = claimed + timedelta(seconds=1)
    assert lease.claim_job(store, "retry", claimed, "node-x", claimed) is None
    records: list[dict] = []

    async def scenario() -> None:
        done, log = _recorder(records)
        engine = Engine(config, store)
        mine, _ = lease.take(store, "a", datetime.now(UTC), 30, "leader", "node-a")
        engine.lead(lease.Fence("a", mine.token))
        sched = SyncScheduler(engine, config, log=log)
        sched.start()
        try:
            sched.scheduler.modify_job("retry", next_run_time=claimed)
            await asyncio.wait_for(done.wait(), 10)
            assert store.scalar("SELECT count(*) FROM runs") == 0
            sched.scheduler.modify_job("retry", next_run_time=free)
            for _ in range(500):  # the second run: poll its row, with a deadline
                if store.scalar("SELECT count(*) FROM runs WHERE status != 'running'"):
                    break
                await asyncio.sleep(0.02)
        finally:
            await sched.stop()

    asyncio.run(scenario())
    assert records[0] == {"event": "skipped", "job": "retry", "routine": True,
                          "why": "this scheduled run was claimed by node node-x"}
    assert store.scalar("SELECT count(*) FROM runs WHERE kind = 'retry'") == 1
    claims = store.rows("SELECT fire_time, node FROM job_claims WHERE job = 'retry' "
                        "ORDER BY fire_time")
    assert [c["node"] for c in claims] == ["node-x", "node-a"]


def test_a_process_that_does_not_lead_runs_no_scheduled_job(workspace):
    """A console's scheduler (or a serve node standing by) with [ha] on: every job is
    skipped, nothing is claimed or run."""
    _ha(workspace)
    config = load_config(workspace.config_path)
    store = make_store(config.database)
    records: list[dict] = []

    async def scenario() -> None:
        done, log = _recorder(records)
        sched = SyncScheduler(Engine(config, store), config, log=log)
        sched.start()
        try:
            sched.scheduler.modify_job("full", next_run_time=datetime.now(UTC))
            await asyncio.wait_for(done.wait(), 10)
        finally:
            await sched.stop()

    asyncio.run(scenario())
    assert records[0]["event"] == "skipped" and records[0]["job"] == "full"
    assert "does not lead" in records[0]["why"]
    assert store.scalar("SELECT count(*) FROM runs") == 0
    assert store.scalar("SELECT count(*) FROM job_claims") == 0
