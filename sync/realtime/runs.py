"""The body of a real-time run (Engine.resync_many): these people, now, read one by one
from the HRIS and the LMS, planned through the same evaluation as every run and applied
only for the kinds the mode gives to real time."""

from __future__ import annotations

import asyncio
from typing import Any

from storage import ops as op_store
from sync.connectors.base import FeedError
from sync.evaluate import Parsed, parse_record
from sync.lms_read import read_one
from sync.run_report import RunReport, summarise
from sync.threads import in_thread


class RealtimeRuns:
    """Mixed into Engine, whose state (store, source, config, clock, target_factory) and
    steps (_evaluate_and_write, _apply) it uses; summarise is sync.run_report's."""

    async def _resync_many(self, run_id: int, employee_ids: list[str],
                           kinds: frozenset[str]) -> RunReport:
        report = RunReport(run_id, "realtime", "succeeded")
        now = self.clock.now()
        fresh: list[Parsed] = []
        gone: list[str] = []
        # A few at a time: the reads are round trips, and a burst's latency is their sum.
        limit = asyncio.Semaphore(8)

        async def fetch(employee_id: str) -> Any:
            async with limit:
                return await in_thread(self.source.fetch_one, employee_id)

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
                fresh.append(parse_record(self.source, record, self.config, now.date()))
        if gone:
            # Absent people wait for the full pull's vanished-person grace, as in resync.
            report.reasons.append(f"not in the HRIS: {', '.join(gone[:10])}")
        async with await self.open_target() as target:

            async def read(parsed: Parsed) -> None:
                email = parsed.person.email if parsed.person else None
                async with limit:
                    await read_one(self.store, target, now, parsed.key, email, email)

            await asyncio.gather(*map(read, fresh))
        by_key = {p.key: p for p in fresh}
        changes = await in_thread(
            self._evaluate_and_write, run_id, sorted(by_key),
            lambda batch: {k: by_key[k] for k in batch if k in by_key}, frozenset(), False,
            None, only_kinds=kinds)
        summarise(report, self.on_event, changes, False)
        report.counts["people"] = len(employee_ids)
        for parsed in fresh:
            report.reasons.extend(parsed.problems)
        due = await in_thread(self._due_for, sorted(by_key), kinds)
        if not due:
            if report.counts.get("held_new"):
                report.status = "held"
            return report
        return await self._apply(run_id, report, op_ids=due)

    def _due_for(self, keys: list[str], kinds: frozenset[str]) -> list[int]:
        now = self.clock.now()
        return [op["id"] for key in keys for op in op_store.due_ops(self.store, now,
                                                                  employee_id=key)
                if op["kind"] in kinds]
