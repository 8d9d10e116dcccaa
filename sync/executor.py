"""Apply operations to the LMS: bounded concurrency, retries, circuit breaker.

Each attempt is committed as 'running' before the request and its outcome committed
before the next step, so a crash leaves nothing ambiguous: a create is always preceded
by a read of the LMS by external key, and a PATCH that sets fields is safe to repeat.
Managers are applied before their reports (ops run in waves by manager depth) so that
a manager reference can always be resolved to an LMS id.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage import accounts as account_store
from rostersync.storage import drift as drift_store
from rostersync.storage import memberships as membership_store
from rostersync.storage import ops as op_store
from rostersync.storage import people as people_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store, ts
from rostersync.storage.failure import StorageFailure, as_storage_failure
from rostersync.storage.lease import Fence, Fenced
from rostersync.storage.op_row import OpRow
from rostersync.sync.audiences.ordering import Wait, check_removal
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import ConnectorError, LmsTarget
from rostersync.sync.events import EventCallback, OpFinished, Quarantined, ignore
from rostersync.sync.executor_accounts import AccountSteps, account_from_payload, deletes_account
from rostersync.sync.executor_batch import BatchSteps, batch_phases
from rostersync.sync.executor_create import CreateSteps
from rostersync.sync.models import MEMBER_OP_KINDS, Account, ErrorClass, OpKind
from rostersync.sync.plan import manager_depths
from rostersync.sync.read_first import already_applied
from rostersync.sync.retry import RetryPolicy, backoff_seconds, should_retry


@dataclass
class ExecResult:
    counts: Counter = field(default_factory=Counter)
    quarantined: str | None = None
    interrupted: str | None = None  # the process was asked to stop (Executor.interrupt)
    applied_people: set[str] = field(default_factory=set)

    @property
    def failed(self) -> int:
        return self.counts["failed"] + self.counts["dead"]


# Successful outcomes committed together (see Executor.succeeded).
GROUP_COMMIT = 32


def plan_waves(ops: list[OpRow]) -> dict[int, list[OpRow]]:
    """Links first (they make existing accounts referable), then creates in waves by
    manager depth (a manager's account exists before its reports are created), then
    every other operation, which may reference any of them."""
    creates = {op["employee_id"]: op["payload"]["account"].get("manager_key")
               for op in ops if op["kind"] == OpKind.create}
    depths = manager_depths(creates, has_account=set())
    last = max(depths.values(), default=-1) + 2
    waves: dict[int, list[OpRow]] = {}
    for op in ops:
        if op["kind"] == OpKind.link:
            depth = 0
        elif op["kind"] == OpKind.create:
            depth = depths.get(op["employee_id"], 0) + 1
        elif op["kind"] in MEMBER_OP_KINDS:
            # Memberships after every account exists; removals after additions, so a
            # transfer never leaves a gap in compliance training between two audiences.
            depth = last + (1 if op["kind"] == OpKind.member_add else 2)
        else:
            depth = last
        waves.setdefault(depth, []).append(op)
    return waves


class Executor:
    """Applies one run's operations. Its parts: ``accounts`` (what an operation writes to),
    ``creates`` (look before creating, link what is there) and ``batches`` (many writes
    per request), which records through this executor's single-operation steps."""

    def __init__(self, store: Store, target: LmsTarget, config: Config, clock: Clock,
                 run_id: int | None, on_event: EventCallback = ignore,
                 rng: random.Random | None = None) -> None:
        self.store = store
        self.target = target
        self.config = config
        self.clock = clock
        self.run_id = run_id
        self.on_event = on_event
        self.rng = rng or random.Random()
        self.accounts = AccountSteps(store, target, config)
        self.creates = CreateSteps(target, self.accounts)
        self.batches = BatchSteps(store, target, config, clock, self.accounts, self.creates,
                                  self)
        g = config.guards
        self.policy = RetryPolicy(g.retry_max_attempts, g.retry_base_seconds, g.retry_max_seconds)
        self.result = ExecResult()
        self._attempted = 0
        self._failures = 0
        self._stop_reason: str | None = None
        self._interrupted = False  # the stop is a shutdown, not a fault: no quarantine
        self._storage_failure: StorageFailure | None = None
        self._done: list[tuple[OpRow, int, datetime, datetime, Account | None]] = []
        # The leader lease every attempt must still hold (several serve nodes), or None.
        self.fence: Fence | None = None

    @property
    def stop_reason(self) -> str | None:
        """Why no new operation is sent any more (a fault or a shutdown), if so."""
        return self._stop_reason

    # -- orchestration -------------------------------------------------------------------

    async def run(self, ops: list[OpRow]) -> ExecResult:
        """Apply ``ops``; raises StorageFailure when the database failed under them (every
        worker stops at once: an attempt that cannot be recorded must not be sent)."""
        limits = await self.batches.discover() if ops else None
        if limits is None:
            phases = [wave for _depth, wave in sorted(plan_waves(ops).items())]
        else:
            phases = batch_phases(ops, self.batches.batchable, plan_waves)
        try:
            for phase in phases:
                if self._stop_reason:
                    break
                await self._wave(phase)
                self.recorded(self.flush)  # the next wave resolves managers from these
        finally:
            self.recorded(self.flush)
        if self._storage_failure is not None:
            # Ops sent but not recorded stay 'running'; the next run recovers them and
            # reads the LMS before sending any again (storage.ops.outcome_unknown).
            raise self._storage_failure
        if self._interrupted:
            self.result.interrupted = self._stop_reason
        elif self._stop_reason:
            self.result.quarantined = self._stop_reason
            run_store.set_job_state(self.store, self.clock.now(), "quarantined",
                                    self._stop_reason, actor="rostersync")
            self.on_event(Quarantined(self.run_id, self._stop_reason))
        return self.result

    async def _wave(self, ops: list[OpRow]) -> None:
        if self.batches.in_use:
            batched: list[OpRow] = []
            single: list[OpRow] = []
            for op in ops:
                (batched if self.batches.batchable(op) else single).append(op)
            if batched:
                self.batches.fence = self.fence
                await self.batches.send(batched)
            ops = single
        if not ops:
            return
        queue: asyncio.Queue[OpRow] = asyncio.Queue()
        for op in ops:
            queue.put_nowait(op)

        async def worker() -> None:
            while not self._stop_reason:
                try:
                    op = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if not await self.recorded_async(self.apply_one(op)):
                    return

        workers = min(self.config.lms.concurrency, len(ops))
        await asyncio.gather(*(worker() for _ in range(workers)))

    def recorded(self, write: Any) -> bool:
        """Run ``write()``; a storage failure stops every worker instead of raising
        (the first is kept). False when the database has failed."""
        try:
            write()
        except sqlite3.Error as exc:
            self._storage_failed(exc)
        return self._storage_failure is None

    async def recorded_async(self, step: Any) -> bool:
        """Await ``step``, as ``recorded`` runs a write."""
        try:
            await step
        except (sqlite3.Error, StorageFailure) as exc:
            self._storage_failed(exc)
        return self._storage_failure is None

    def _storage_failed(self, exc: BaseException) -> None:
        failure = as_storage_failure(exc, self.store.path)
        if failure is None:
            raise exc  # not the disk: a bug, which must show
        self._storage_failure = self._storage_failure or failure
        self._stop(str(failure))

    # -- one operation -------------------------------------------------------------------

    async def apply_one(self, op: OpRow) -> None:
        """Send one operation, retrying inline within guards.inline_retry_max_seconds."""
        if op["kind"] == OpKind.member_remove:
            wait = check_removal(self.store, self.config, op, self.clock.now())
            if wait is not None:
                self._wait(op, wait)
                return
        attempt = op["attempts"]
        while True:
            attempt += 1
            started = self.clock.now()
            try:
                op_store.begin_attempt(self.store, started, op["id"], attempt, self.fence)
            except Fenced as exc:
                self.interrupt(str(exc))  # another node leads now: it applies the rest
                return
            op["attempt"] = attempt
            try:
                account = await self._perform(op)
            except ConnectorError as exc:
                delay = self.failed(op, attempt, started, exc)
                if delay is None or delay > self.config.guards.inline_retry_max_seconds \
                        or self._stop_reason:
                    return
                await self.clock.sleep(delay)
                continue
            self.succeeded(op, attempt, started, account)
            return

    def succeeded(self, op: OpRow, attempt: int, started: datetime,
                  account: Account | None) -> None:
        # Successes are committed in small groups (and at the end of every wave): a crash
        # before the commit leaves the op 'running', and its retry re-reads the LMS
        # before creating, so a group commit costs nothing in safety and saves a
        # transaction per operation.
        self._done.append((op, attempt, started, self.clock.now(), account))
        if op["kind"] in (OpKind.create, OpKind.link) and account is not None \
                and account.lms_id:
            self.accounts.remember(op["employee_id"], account.lms_id)
        if len(self._done) >= GROUP_COMMIT and not self.batches.open:
            self.flush()  # a batch's outcomes are committed together when it is done
        self._attempted += 1
        self.result.counts["succeeded"] += 1
        self.result.applied_people.add(op["employee_id"])
        self.on_event(OpFinished(self.run_id, op["id"], op["employee_id"], op["kind"],
                                 "succeeded"))

    def flush(self) -> None:
        """Commit the successes recorded since the last flush."""
        done, self._done = self._done, []
        if done:
            self._commit(done)

    async def flush_async(self) -> None:
        """``flush`` with its transaction on a worker thread: a batch's thousand outcomes
        are one long write, which on the event loop would freeze the console's screen
        (its engine runs in the console's loop) for a few hundred milliseconds."""
        done, self._done = self._done, []
        if done:
            await asyncio.to_thread(self._commit, done)

    def _commit(self, done: list[tuple[OpRow, int, datetime, datetime, Account | None]]
                ) -> None:
        # A few statements for the whole group, not a few per operation: a batch of a
        # thousand outcomes arrives at once.
        last = done[-1][3]
        with self.store.tx() as conn:
            account_store.upsert_accounts(
                conn, [(account.to_json(), account.content_hash())
                       for _op, _a, _s, _f, account in done
                       if account is not None and account.lms_id], last)
            op_store.finish_succeeded(conn, [
                (op["id"], attempt, started, finished, account.lms_id if account else None,
                 self.run_id) for op, attempt, started, finished, account in done])
            drift_store.resolve_for_ops(conn, last, [(op["employee_id"], op["kind"])
                                                     for op, *_rest in done])
            made = [op["employee_id"] for op, *_rest in done
                    if op["kind"] in (OpKind.create, OpKind.link)]
            if made:
                people_store.mark_reports_dirty_of(conn, made)
            for op, _attempt, _started, finished, _account in done:
                if op["kind"] in MEMBER_OP_KINDS:  # the cache follows; re-evaluate the person
                    membership_store.applied(conn, finished, op["payload"]["audience"],
                                             op["member_lms_id"], op["employee_id"],
                                             op["kind"] == OpKind.member_add)
                    people_store.mark_dirty(conn, [op["employee_id"]])

    def failed(self, op: OpRow, attempt: int, started: datetime,
               exc: ConnectorError, *, counted: bool = True) -> float | None:
        """Persist a failure; returns the delay before the next attempt, or None.
        ``counted`` False: the failure of a whole batch already counted once for the
        circuit breaker (one lost answer is one failure of the LMS, not hundreds)."""
        now = self.clock.now()
        retry = should_retry(exc.error_class, attempt, self.policy)
        delay = backoff_seconds(attempt, self.policy, exc.retry_after, self.rng) if retry else None
        status = "failed" if retry else "dead"
        with self.store.tx() as conn:
            op_store.finish_attempt(
                conn, now, op["id"], attempt, status, started=started, outcome="error",
                error=exc.message,
                error_class=str(exc.error_class), http_status=exc.status,
                next_attempt_at=now + timedelta(seconds=delay) if delay is not None else None,
                run_id=self.run_id)
            if exc.error_class == ErrorClass.not_found:
                # The account vanished from the LMS: forget it so the next run re-plans.
                lms_id = op.get("lms_id")
                if lms_id:
                    account_store.delete_accounts(conn, [lms_id])
                conn.execute("UPDATE people SET dirty = 1 WHERE employee_id = ?",
                             (op["employee_id"],))
        if counted:
            self._attempted += 1
            self._failures += 1
        self.on_event(OpFinished(self.run_id, op["id"], op["employee_id"], op["kind"], status,
                                 exc.message))
        if exc.error_class == ErrorClass.auth:
            self._stop(f"the LMS refused our credentials: {exc.message}")
            self.result.counts[status] += 1
            return None
        g = self.config.guards
        if self._attempted >= g.breaker_min_ops and \
                self._failures / self._attempted > g.breaker_failure_rate:
            self._stop(f"circuit breaker: {self._failures} of {self._attempted} operations "
                       f"failed (limit {g.breaker_failure_rate:.0%} of at least "
                       f"{g.breaker_min_ops}); last error: {exc.message}")
        if delay is not None and delay <= g.inline_retry_max_seconds and not self._stop_reason:
            return delay
        self.result.counts[status] += 1
        return None

    def _wait(self, op: OpRow, wait: Wait) -> None:
        """Put off (or hold) a compliance removal whose person is not yet in the new
        audience (not an attempt: nothing was sent)."""
        status = "waiting" if wait.until is not None else "held"
        with self.store.tx() as conn:
            if wait.until is not None:
                op_store.set_status(conn, self.clock.now(), [op["id"]], "pending",
                                    next_attempt_at=ts(wait.until), last_error=wait.reason)
            else:
                op_store.set_status(conn, self.clock.now(), [op["id"]], "held",
                                    hold_reason=wait.reason)
        self.result.counts[status] += 1
        self.on_event(OpFinished(self.run_id, op["id"], op["employee_id"], op["kind"],
                                 status, wait.reason))

    def _stop(self, reason: str) -> None:
        if not self._stop_reason:
            self._stop_reason = reason

    def interrupt(self, reason: str) -> None:
        """The process is shutting down: no new operation is sent (every loop checks the
        stop reason), requests in flight finish and their outcomes are recorded, and what
        was never sent stays pending for the next run. Unlike a fault, no quarantine."""
        if not self._stop_reason:
            self._stop_reason = reason
            self._interrupted = True

    # -- what each kind of operation does ----------------------------------------------

    async def _perform(self, op: OpRow) -> Account | None:
        kind = OpKind(op["kind"])
        key = op["employee_id"]
        payload = op["payload"]
        if kind == OpKind.create:
            desired = account_from_payload(payload["account"])
            desired.external_key = key
            return await self.creates.create(key, desired, op["attempt"],
                                             link_unlinked=not payload.get("new_account"))
        if kind in MEMBER_OP_KINDS:
            await self._membership(op, kind, key)
            return None  # a membership changes no account
        lms_id, cached, changes = self.accounts.target_of(op)
        deletes = deletes_account(kind, self.config)
        if op_store.outcome_unknown(op):
            # The last attempt may have reached the LMS before its outcome was recorded
            # (a kill, a full disk): read before sending anything again.
            found = await self.target.get(lms_id)
            if found is None and not deletes:
                raise ConnectorError(f"LMS account {lms_id} of {key} no longer exists",
                                     ErrorClass.not_found)
            if found is not None and not deletes and \
                    already_applied(self.accounts.translate(found), changes,
                                    self.accounts.unmanaged):
                found.lms_id = found.lms_id or lms_id
                return found
            if found is None:  # deleted by the attempt whose answer was lost
                with self.store.tx() as conn:
                    account_store.delete_accounts(conn, [lms_id])
                return None
            cached = found
        if deletes:
            await self.target.delete(lms_id)
            with self.store.tx() as conn:
                account_store.delete_accounts(conn, [lms_id])
            return None
        return await self.accounts.update(lms_id, key, cached, changes)

    async def _membership(self, op: OpRow, kind: OpKind, key: str) -> None:
        audience_id = op["payload"]["audience"]
        audience = next((a for a in self.config.audiences if a.id == audience_id), None)
        if audience is None:
            raise ConnectorError(f"audience {audience_id!r} is no longer configured",
                                 ErrorClass.mapping)
        # The account made earlier in this run (a new hire) is the one to add.
        lms_id = self.accounts.lms_id_of(key) or op.get("lms_id")
        if not lms_id:
            raise ConnectorError(f"{key} has no LMS account yet: the membership of "
                                 f"{audience_id!r} waits for it", ErrorClass.transient)
        op["member_lms_id"] = lms_id
        if kind == OpKind.member_add:
            await self.target.add_to_audience(audience, lms_id)
        else:
            await self.target.remove_from_audience(audience, lms_id)
        return None
