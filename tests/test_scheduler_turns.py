"""Jobs that fire while another runs: a retry sweep or a delta is skipped (it fires again
soon), the full reconcile waits its turn. Interval jobs and the nightly cron fire at the
same second (always on the [ha] grid); the sweep that takes the lock first must not cost
the night its reconcile."""

from __future__ import annotations

import asyncio

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
