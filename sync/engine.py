"""One run, end to end: pull -> gate -> validate -> map -> read LMS -> diff -> plan ->
guards -> execute -> record. IO lives here and in the stores; decisions do not."""

from __future__ import annotations

import asyncio
import contextlib
import random
import sqlite3
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from rostersync.storage import lease as lease_store
from rostersync.storage import ops as op_store
from rostersync.storage import people as people_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.storage.failure import StorageFailure, as_storage_failure
from rostersync.storage.store_factory import make_store
from rostersync.storage.writer import BatchWriter
from rostersync.sync import pull as pull_mod
from rostersync.sync import run_failures, writer_lease
from rostersync.sync.audiences.lms import read_memberships
from rostersync.sync.audiences.strays import is_stray
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config, ConfigError
from rostersync.sync.connectors.base import (
    ConnectorError,
    FeedError,
    HrisSource,
    LmsTarget,
    SourceUnavailable,
)
from rostersync.sync.connectors.factory import make_source, make_target
from rostersync.sync.evaluate import (
    Parsed,
    PlanSummary,
    parse_record,
)
from rostersync.sync.events import (
    EventCallback,
    Progress,
    RunFinished,
    RunStarted,
    ignore,
)
from rostersync.sync.executor import Executor
from rostersync.sync.gc_pause import gc_paused
from rostersync.sync.lms_read import read_all, read_one
from rostersync.sync.plan_writer import evaluate_and_write
from rostersync.sync.realtime.runs import RealtimeRuns
from rostersync.sync.run_report import (  # noqa: F401 - the command line imports them from here
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_NOT_APPLIED,
    EXIT_OK,
    EXIT_REJECTED,
    EXIT_USAGE,
    EngineBusy,
    RunReport,
    summarise,
)
from rostersync.sync.threads import in_thread


class Engine:
    def __init__(self, config: Config, store: Store | None = None, *,
                 source: HrisSource | None = None,
                 target_factory: Callable[[], LmsTarget] | None = None,
                 clock: Clock | None = None, on_event: EventCallback = ignore,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.store = store or make_store(config.database)
        self.source = source or make_source(config.hris)
        self.target_factory = target_factory or (lambda: make_target(config.lms))
        self.clock = clock or Clock()
        self.on_event = on_event
        self.rng = rng
        self.holder = lease_store.new_holder_id()
        # Why the process is shutting down (request_stop), and the executor applying now.
        self.stopping: str | None = None
        self._executor: Executor | None = None
        # Several serve nodes on one database (sync/leadership.py): the leader lease every
        # apply must still hold, and why this node does not apply now (a standby).
        self.fence: lease_store.Fence | None = None
        self.standby: str | None = None

    def request_stop(self, reason: str) -> None:
        """A shutdown (serve's SIGTERM): the run applying sends no new operation, lets the
        requests in flight finish and records the run as interrupted; later runs do not
        apply anything. Safe to call from the event loop at any time."""
        self.stopping = self.stopping or reason
        if self._executor is not None:
            self._executor.interrupt(self.stopping)

    def lead(self, fence: lease_store.Fence) -> None:
        """This node leads with ``fence``: runs apply again, each op checking the fence."""
        self.fence = fence
        self.standby = None

    def step_down(self, reason: str) -> None:
        """This node no longer leads: the run applying sends no new operation (requests in
        flight finish) and is recorded as interrupted; later runs are refused as busy."""
        self.standby = reason
        if self._executor is not None:
            self._executor.interrupt(reason)

    # -- public entry points -----------------------------------------------------------

    async def sync(self, kind: str = "full", *, dry_run: bool = False, trigger: str = "cli",
                   lms_read: str | None = None, apply: bool = True) -> RunReport:
        """A full or delta run. lms_read: "full" listing, "cached" (no LMS reads before
        planning; creates still re-read), default full for full runs, cached for deltas."""
        if kind == "delta" and not self.source.supports_delta():
            raise ConfigError(f"{self.source.describe()} offers no delta feed (for a CSV "
                              "source, set hris.delta_path to the changed-rows file)")
        lms_read = lms_read or ("full" if kind == "full" else "cached")
        return await self._guarded(kind, trigger, dry_run,
                                   lambda run_id: self._sync(run_id, kind, dry_run, lms_read,
                                                             apply))

    async def resync(self, employee_id: str, *, dry_run: bool = False,
                     trigger: str = "cli") -> RunReport:
        return await self._guarded("resync", trigger, dry_run,
                                   lambda run_id: self._resync(run_id, employee_id, dry_run))

    async def resync_many(self, employee_ids: list[str], *, kinds: frozenset[str],
                          trigger: str = "event") -> RunReport:
        """Real-time events: these people, now, through the same guards as a resync
        (suppressions, holds, the job state), planning and applying only ``kinds``. Their
        deactivations count in the mass-deactivation window with every other run's."""
        return await self._guarded(
            "realtime", trigger, False,
            lambda run_id: RealtimeRuns(self).run(run_id, employee_ids, kinds))

    async def apply_due(self, *, trigger: str = "schedule",
                        op_ids: list[int] | None = None) -> RunReport:
        """The retry sweep (and what `ops approve`/`ops retry` trigger): apply due ops."""
        return await self._guarded("retry", trigger, False,
                                   lambda run_id: self._apply_only(run_id, op_ids))

    # -- steps of a run, for run bodies kept outside this module (sync.realtime.runs) --

    def plan_people(self, run_id: int, keys: list[str],
                    fresh_for: Callable[[list[str]], dict[str, Parsed]], *,
                    only_kinds: frozenset[str] | None = None) -> PlanSummary:
        """Evaluate ``keys`` (``fresh_for`` gives the records just read; the others are
        re-evaluated from the database) and write their plan, as every run does; with
        ``only_kinds``, only operations of those kinds are planned. Blocking: call it in a
        thread."""
        return self._evaluate_and_write(run_id, keys, fresh_for, frozenset(), False, None,
                                        only_kinds=only_kinds)

    async def apply_planned(self, run_id: int, report: RunReport,
                            op_ids: list[int] | None = None) -> RunReport:
        """Apply the due operations (only ``op_ids`` when given) as part of run ``run_id``,
        in rounds until the revisits plan nothing more; ``report`` gets the outcome."""
        return await self._apply(run_id, report, op_ids=op_ids)

    # -- lease, recovery and run bookkeeping -----------------------------------------

    async def _guarded(self, kind: str, trigger: str, dry_run: bool,
                       body: Callable[[int], Awaitable[RunReport]]) -> RunReport:
        ttl = self.config.guards.lease_seconds
        if self.config.ha.enabled:  # a dead leader's run must not outlast its leader lease
            ttl = min(ttl, self.config.ha.lease_seconds)
        # Off the loop: recovering a crashed run's ops scans the ops table, tens of
        # milliseconds at 100,000 ops, which the console would feel as a frozen screen.
        run_id = await in_thread(self._begin, kind, trigger, dry_run, ttl)
        self.on_event(RunStarted(run_id, kind, trigger, dry_run))
        renewer = None if dry_run else asyncio.create_task(
            writer_lease.keep(self.store, self.holder, self.clock, ttl))
        try:
            report = await self._run_body(run_id, kind, dry_run, body)
        finally:
            if renewer is not None:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
            if not dry_run:
                # Bookkeeping writes too stay off the loop: a commit may run a checkpoint.
                await in_thread(writer_lease.give_back, self.store, self.holder)
                self.store.checkpoint_in_background()
        self.on_event(RunFinished(run_id, report.status, report.counts, report.message))
        return report

    async def open_target(self) -> LmsTarget:
        """The LMS connector, built off the loop: its HTTP client loads the system's CA
        bundle (20-35 ms), which the console would feel as a frozen screen."""
        return await in_thread(self.target_factory)

    def _begin(self, kind: str, trigger: str, dry_run: bool, ttl: float) -> int:
        """Take the lease, recover what a crashed run left, and record the new run."""
        now = self.clock.now()
        if not dry_run:
            if self.standby:
                raise EngineBusy(self.standby)
            writer_lease.take(self.store, self.holder, now, ttl)
            run_store.abandon_running(self.store, now)
            op_store.recover_running(self.store, now)
        return run_store.start_run(self.store, now, kind, trigger, dry_run)

    async def _run_body(self, run_id: int, kind: str, dry_run: bool,
                        body: Callable[[int], Awaitable[RunReport]]) -> RunReport:
        try:
            report = await body(run_id)
        except SourceUnavailable as exc:
            report = run_failures.source_failed(self, run_id, kind, dry_run, exc)
        except FeedError as exc:
            report = run_failures.feed_unusable(self, run_id, kind, dry_run, exc)
        except ConnectorError as exc:
            report = run_failures.lms_unreadable(self, run_id, kind, dry_run, exc)
        except ConfigError as exc:
            run_store.finish_run(self.store, run_id, self.clock.now(), "failed", {}, str(exc))
            raise
        except (StorageFailure, sqlite3.Error) as exc:
            failure = as_storage_failure(exc, self.store.path)
            if failure is None:
                raise  # not the disk: a bug, which must show
            return await in_thread(run_failures.storage_failed, self, run_id, kind, dry_run,
                                   failure)
        except asyncio.CancelledError:
            run_store.finish_run(self.store, run_id, self.clock.now(), "failed", {},
                                 "interrupted: the process shut down before the run finished")
            raise
        except BaseException as exc:
            run_store.finish_run(self.store, run_id, self.clock.now(), "failed", {},
                                 f"internal error: {type(exc).__name__}: {exc}")
            raise
        await in_thread(self._finish_run, run_id, report)
        return report

    def _finish_run(self, run_id: int, report: RunReport) -> None:
        # The checkpoint the run's writes are due goes to checkpoint_in_background, after
        # the lease is released, not into this commit.
        with self.store.bulk_writes():
            run_store.finish_run(self.store, run_id, self.clock.now(), report.status,
                                 report.counts,
                                 report.message or ("; ".join(report.reasons) or None),
                                 report.error_class)

    # -- the run bodies -----------------------------------------------------------------

    async def _sync(self, run_id: int, kind: str, dry_run: bool, lms_read: str,
                    apply: bool) -> RunReport:
        now = self.clock.now()
        report = RunReport(run_id, kind, "succeeded", dry_run)
        self.on_event(Progress(run_id, "pull", 0))
        if kind == "full":
            pull = await in_thread(pull_mod.scan, self.store, self.source,
                                           self.config.fingerprint())
            await in_thread(pull_mod.assess, self.store, self.source, self.config,
                                    pull, now.date())
            report.counts.update(rows=pull.rows, changed=len(pull.changed),
                                 vanished=len(pull.vanished), **pull.column_changes)
            self.on_event(Progress(run_id, "gate", pull.rows, pull.rows))
            if pull.reasons:
                return run_failures.feed_rejected(self, report, pull.stats, pull.reasons)
        else:
            pull = None
            records = await in_thread(pull_mod.read_delta, self.store, self.source,
                                      self.config, self.clock.now().date())
            report.counts.update(rows=len(records), changed=len(records))
        run_store.source_attempt(self.store, "hris", now, self.source.describe(), success=True,
                                 watermark=self.source.watermark())

        if lms_read == "full":
            self.on_event(Progress(run_id, "read_lms", 0))
            async with await self.open_target() as target:
                listed, touched = await read_all(self.store, target, now)
                await read_memberships(self.store, target, self.config, now)
            run_store.source_attempt(self.store, "lms", now, self.config.lms.type, success=True)
            report.counts.update(lms_accounts=listed, lms_changed=len(touched))

        self.on_event(Progress(run_id, "evaluate", 0))
        if pull is not None:
            changes = await in_thread(self._plan_full, run_id, pull, dry_run,
                                              lms_read == "full")
        else:
            changes = await in_thread(self._plan_records, run_id, records, dry_run)
        summarise(report, self.on_event, changes, dry_run)
        if dry_run or not apply:
            return report
        return await self._apply(run_id, report)

    @gc_paused()  # see sync/gc_pause.py
    def _plan_full(self, run_id: int, pull: pull_mod.FullPull, dry_run: bool,
                   lms_listed: bool) -> PlanSummary:
        now = self.clock.now()
        store = self.store
        changed_keys = [r.key for r in pull.changed]
        still_missing = {r[0] for r in store.conn.execute(
            "SELECT employee_id FROM people WHERE missing_since IS NOT NULL")}
        fresh_keys = set(changed_keys)
        missing = (set(pull.vanished) | still_missing) - fresh_keys
        keys = set(changed_keys) | missing | people_store.keys_needing_evaluation(store, now)
        keys = {k for k in keys if not is_stray(k)}  # members no person is linked to: below
        if lms_listed:
            keys |= {r[0] for r in store.conn.execute(
                "SELECT external_key FROM accounts WHERE active = 1 AND external_key IS NOT "
                "NULL AND external_key NOT IN (SELECT employee_id FROM people)")}
        raw_by_key = {r.key: r for r in pull.changed} if pull.parsed is None else {}

        def fresh_for(batch: list[str]) -> dict[str, Parsed]:
            if pull.parsed is not None:
                return {k: pull.parsed[k] for k in batch if k in pull.parsed}
            today = now.date()
            return {k: parse_record(self.source, raw_by_key[k], self.config, today)
                    for k in batch if k in raw_by_key}

        finish = partial(pull_mod.accept, store=store, pull=pull, run_id=run_id, now=now,
                         fingerprint=self.config.fingerprint())
        return self._evaluate_and_write(run_id, sorted(keys), fresh_for, missing, dry_run, finish,
                                        strays=lms_listed)

    def _plan_records(self, run_id: int, records: list[Parsed], dry_run: bool) -> PlanSummary:
        fresh = {p.key: p for p in records}
        keys = sorted(fresh)
        return self._evaluate_and_write(
            run_id, keys, lambda batch: {k: fresh[k] for k in batch if k in fresh},
            frozenset(), dry_run, None)

    def _evaluate_and_write(self, run_id: int, keys: list[str],
                            fresh_for: Callable[[list[str]], dict[str, Parsed]],
                            missing: set[str] | frozenset[str], dry_run: bool,
                            finish: Callable[[Any], None] | None, *,
                            only_kinds: frozenset[str] | None = None,
                            strays: bool = False) -> PlanSummary:
        with self.store.bulk_writes(), gc_paused(), BatchWriter(self.store) as writer:
            return evaluate_and_write(
                self, run_id, keys, fresh_for, missing, dry_run, finish, writer,
                only_kinds=only_kinds, strays=strays)

    async def _apply(self, run_id: int, report: RunReport,
                     op_ids: list[int] | None = None, employee_id: str | None = None
                     ) -> RunReport:
        state = run_store.job_state(self.store)
        if state["state"] != "active":
            report.status = state["state"]
            report.message = (f"planned but not applied: the job is {state['state']} "
                              f"({state['reason']}); resume it with `rostersync resume`")
            return report
        applied: Counter = Counter()
        quarantined = None
        interrupted = self.stopping
        unsent: int | None = None  # unknown when the stop came before this run applied
        # Round 1 applies what was planned. Creating a manager's account can make an
        # update of their reports possible (their manager reference); the re-evaluation
        # plans it and a further round applies it, so one run converges.
        for round_no in range(1, 4):
            if self.stopping:
                interrupted = self.stopping
                break
            # In a thread: decoding tens of thousands of payloads would stall the loop
            # (the console's) for hundreds of milliseconds.
            due = await in_thread(op_store.due_ops, self.store, self.clock.now(),
                                          op_ids=op_ids, employee_id=employee_id)
            if round_no == 1:
                report.counts["due"] = len(due)
            if not due:
                break
            self.on_event(Progress(run_id, "apply", 0, len(due)))
            async with await self.open_target() as target:
                executor = Executor(self.store, target, self.config, self.clock, run_id,
                                    self.on_event, self.rng)
                self._executor = executor
                executor.fence = self.fence
                if self.stopping or self.standby:  # asked while the connector opened
                    executor.interrupt(self.stopping or self.standby or "")
                try:
                    result = await executor.run(due)
                finally:
                    self._executor = None
            applied.update(result.counts)
            if result.interrupted:
                interrupted = result.interrupted
                unsent = max(0, len(due) - sum(result.counts.values()))
                break
            # Each success resolved the drift it addressed; people marked dirty (reports of
            # a manager whose account just appeared, accounts that vanished) are revisited.
            keys = await in_thread(people_store.dirty_keys, self.store)
            planned_more = False
            if keys:
                summary = await in_thread(self._evaluate_and_write, run_id, keys,
                                                  lambda batch: {}, frozenset(), False, None)
                report.counts["held_new"] = report.counts.get("held_new", 0) + summary.held
                planned_more = bool(summary.planned)
            if result.quarantined:
                quarantined = result.quarantined
                break
            if not planned_more:
                break
            op_ids, employee_id = None, None  # later rounds: what the revisit planned
        if applied:
            report.counts["applied"] = dict(applied)
        if interrupted:
            # Not 'succeeded' (work is left) and not 'running' forever: what was never sent
            # is pending, what was in flight has its outcome recorded; the next run goes on.
            report.status, report.error_class = "failed", "interrupted"
            what = "planned operations" if unsent is None else f"{unsent} planned operations"
            report.message = (f"interrupted: {interrupted}; {what} were not sent and stay "
                              "pending for the next run")
            return report
        if quarantined:
            report.status = "quarantined"
            report.message = quarantined
            return report
        if applied["failed"] or applied["dead"]:
            report.status = "partial"
        if report.counts.get("held_new"):
            report.status = "held"
        return report

    async def _apply_only(self, run_id: int, op_ids: list[int] | None) -> RunReport:
        report = RunReport(run_id, "retry", "succeeded")
        return await self._apply(run_id, report, op_ids=op_ids)

    async def _resync(self, run_id: int, employee_id: str, dry_run: bool) -> RunReport:
        report = RunReport(run_id, "resync", "succeeded", dry_run)
        now = self.clock.now()
        record = await in_thread(self.source.fetch_one, employee_id)
        if record is None:
            report.message = (f"{employee_id} is not in the HRIS export ({self.source.describe()}); "
                              "nothing changed (a person missing from the feed is only "
                              "deactivated after the vanished-person grace period)")
            report.status = "failed"
            return report
        parsed = parse_record(self.source, record, self.config, now.date())
        email = parsed.person.email if parsed.person else None
        async with await self.open_target() as target:
            await read_one(self.store, target, now, employee_id, email, email)
        changes = await in_thread(self._plan_records, run_id, [parsed], dry_run)
        summarise(report, self.on_event, changes, dry_run)
        if parsed.problems:
            report.reasons.extend(parsed.problems)
        if dry_run:
            return report
        return await self._apply(run_id, report, employee_id=employee_id)
