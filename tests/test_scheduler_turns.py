"""Jobs that fire while another runs: a retry sweep or a delta is skipped (it fires again
soon), the full reconcile waits its turn. Interval jobs and the nightly cron fire at the
same second (always on the [ha] grid); the sweep that takes the lock first must not cost
the night its reconcile."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.scheduler import SyncScheduler


def test_a_full_reconcile_waits_for_the_job_running_and_a_sweep_is_skipped(workspace):
    config = load_config(workspace.config_path)
    store = workspace.store()
    records: list[dict] = []

    async def scenario() -> tuple[object, object]:
        sched = SyncScheduler(Engine(config, store), config, log=records.append)
        sched.start(paused=True)
        try:
            async with sched.lock:  # a job is running
                swept = await sched.run_now("retry")
                full = asyncio.ensure_future(sched.run_now("full"))
                for _ in range(1000):  # let the full job reach the lock
                    if full.done() or records[-1]["event"] == "waiting":
                        break
                    await asyncio.sleep(0)
                assert not full.done()
                assert store.scalar("SELECT count(*) FROM runs") == 0
            return swept, await full
        finally:
            await sched.stop()

    swept, full = asyncio.run(scenario())
    assert swept is None
    assert records[0] == {"event": "skipped", "job": "retry", "routine": True,
                          "why": "another job is running"}
    assert records[1] == {"event": "waiting", "job": "full",
                          "why": "another job is running; the full reconcile runs after it"}
    assert full is not None and full.status == "succeeded"
    assert store.scalar("SELECT kind FROM runs") == "full"


def test_a_job_submitted_as_the_scheduler_stops_is_not_reported_as_an_error(workspace, caplog):
    """APScheduler's shutdown cancels the job tasks it has started; one submitted in the
    same turn of the loop is cancelled before its first step, and APScheduler logs that
    as "Error running job" with a traceback (the demo printed two at its end). A stop is
    not an error: nothing is logged, and the run that did not start left no row."""
    config = load_config(workspace.config_path)
    store = workspace.store()
    records: list[dict] = []

    async def scenario() -> None:
        sched = SyncScheduler(Engine(config, store), config, log=records.append)
        sched.start()
        # Asyncio runs callbacks in the order they were queued: APScheduler's wakeup (the
        # job is due), then its shutdown. The wakeup creates the job's task, whose first
        # step is queued behind the shutdown, which cancels it before it starts; this is
        # the order a timer firing in the turn that `stop()` starts in gives.
        sched.scheduler.modify_job("retry", next_run_time=datetime.now(UTC))
        sched.shutdown()
        await sched.stop()
        for _ in range(10):  # the cancelled task's done-callback runs a turn later
            await asyncio.sleep(0)

    caplog.set_level(logging.INFO, logger="apscheduler")
    asyncio.run(scenario())
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
    assert [r for r in records if r["event"] == "job_error"] == []
    assert store.scalar("SELECT count(*) FROM runs") == 0
