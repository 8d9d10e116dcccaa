"""The body of a real-time run (Engine.resync_many): these people, now, read one by one
from the HRIS and the LMS, planned through the same evaluation as every run and applied
only for the kinds the mode gives to real time."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from rostersync.storage import ops as op_store
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.evaluate import Parsed, parse_record
from rostersync.sync.lms_read import read_one
from rostersync.sync.run_report import RunReport, summarise
from rostersync.sync.threads import in_thread

if TYPE_CHECKING:
    from rostersync.sync.engine import Engine


class RealtimeRuns:
    """One real-time run of ``engine`` (Engine.resync_many), which holds the state (store,
    source, config, clock) and the public steps (open_target, plan_people, apply_planned)
    it uses; summarise is sync.run_report's."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(self, run_id: int, employee_ids: list[str],
                  kinds: frozenset[str]) -> RunReport:
        engine = self.engine
        report = RunReport(run_id, "realtime", "succeeded")
        now = engine.clock.now()
        fresh: list[Parsed] = []
        gone: list[str] = []
        # A few at a time: the reads are round trips, and a burst's latency is their sum.
        limit = asyncio.Semaphore(8)

        async def fetch(employee_id: str) -> Any:
            async with limit:
                return await in_thread(engine.source.fetch_one, employee_id)

        try:
            records = await asyncio.gather(*map(fetch, employee_ids))
        except FeedError as exc:
            # One unreadable record is not a rejected feed: the gate's verdict on the last
            # full export stands, and the scheduled runs catch up.
            report.status = "failed"
            report.message = f"the HRIS could not be read: {exc}"
            return report
        for employee_id, record in zip(employee_ids, records, strict=True):
            if record is None:
                gone.append(employee_id)
            else:
                fresh.append(parse_record(engine.source, record, engine.config, now.date()))
        if gone:
            # Absent people wait for the full pull's vanished-person grace, as in resync.
            report.reasons.append(f"not in the HRIS: {', '.join(gone[:10])}")
        async with await engine.open_target() as target:

            async def read(parsed: Parsed) -> None:
                email = parsed.person.email if parsed.person else None
                async with limit:
                    await read_one(engine.store, target, now, parsed.key, email, email)

            await asyncio.gather(*map(read, fresh))
        by_key = {p.key: p for p in fresh}
        changes = await in_thread(
            engine.plan_people, run_id, sorted(by_key),
            lambda batch: {k: by_key[k] for k in batch if k in by_key}, only_kinds=kinds)
        summarise(report, engine.on_event, changes, False)
        report.counts["people"] = len(employee_ids)
        for parsed in fresh:
            report.reasons.extend(parsed.problems)
        due = await in_thread(self._due_for, sorted(by_key), kinds)
        if not due:
            if report.counts.get("held_new"):
                report.status = "held"
            return report
        return await engine.apply_planned(run_id, report, op_ids=due)

    def _due_for(self, keys: list[str], kinds: frozenset[str]) -> list[int]:
        now = self.engine.clock.now()
        return [op["id"] for key in keys for op in op_store.due_ops(self.engine.store, now,
                                                                  employee_id=key)
                if op["kind"] in kinds]
