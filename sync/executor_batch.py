"""The executor's batched sending: many account writes per request, one record per op.

An LMS that takes batches (SCIM Bulk, Moodle's create_users/update_users) gets the
fresh creates, updates, deactivations and reactivations of a run in batches within its
limits (``sync.bulk``). Every operation still has its own attempt, committed as
'running' before the batch goes out, and its own outcome and event, so the outbox, the
history and the console's progress stay per operation, and a crash mid-batch leaves
each op exactly as a crash mid-request does: its next attempt reads the LMS first.

What is never batched: an operation whose last outcome is unknown and a create that was
tried before (both read the LMS first, on their own), links, deletes and memberships.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

from rostersync.storage import ops as op_store
from rostersync.storage.lease import Fence, Fenced
from rostersync.storage.op_row import OpRow
from rostersync.sync.bulk import (
    Batch,
    BatchingTarget,
    BatchItem,
    BatchLimits,
    BatchRefused,
    managers_first,
    packed,
)
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.executor_accounts import AccountSteps, deletes_account, updated_account
from rostersync.sync.models import Account, ErrorClass, OpKind

if TYPE_CHECKING:
    from rostersync.storage.db import Store
    from rostersync.sync.clock import Clock
    from rostersync.sync.config import Config
    from rostersync.sync.connectors.base import LmsTarget
    from rostersync.sync.executor_create import CreateSteps

log = logging.getLogger(__name__)

BATCHED_KINDS = (OpKind.create, OpKind.update, OpKind.deactivate, OpKind.reactivate)
ACCOUNT_KINDS = (OpKind.create, OpKind.link)


def batch_phases(ops: list[OpRow], batchable: Callable[[OpRow], bool],
                 plan_waves: Callable[[list[OpRow]], dict[int, list[OpRow]]]
                 ) -> list[list[OpRow]]:
    """The order of a batched run: links and the creates sent on their own (by manager
    depth), then every batched create (one phase: a manager and its reports may share a
    request), then the batched updates, then the rest as ``plan_waves`` orders it."""
    rest = [op for op in ops if not batchable(op)]
    waves = plan_waves(rest)
    early = [waves[d] for d in sorted(waves)
             if all(op["kind"] in ACCOUNT_KINDS for op in waves[d])]
    late = [waves[d] for d in sorted(waves)
            if not all(op["kind"] in ACCOUNT_KINDS for op in waves[d])]
    creates = [op for op in ops if batchable(op) and op["kind"] == OpKind.create]
    others = [op for op in ops if batchable(op) and op["kind"] != OpKind.create]
    return [phase for phase in (*early, creates, others, *late) if phase]


class SingleSteps(Protocol):
    """The executor's per-operation steps a batch records its outcomes with and falls back
    on (``sync.executor.Executor`` is one)."""

    @property
    def stop_reason(self) -> str | None: ...
    def recorded(self, write: Callable[[], object]) -> bool: ...
    async def recorded_async(self, step: Awaitable[object]) -> bool: ...
    def flush(self) -> None: ...
    async def flush_async(self) -> None: ...
    def interrupt(self, reason: str) -> None: ...
    async def apply_one(self, op: OpRow) -> None: ...
    def succeeded(self, op: OpRow, attempt: int, started: datetime,
                  account: Account | None) -> None: ...
    def failed(self, op: OpRow, attempt: int, started: datetime,
               exc: ConnectorError, *, counted: bool = True) -> float | None: ...


class BatchSteps:
    """The executor's batched sending (``sync.executor.Executor`` owns one per run)."""

    def __init__(self, store: Store, target: LmsTarget, config: Config, clock: Clock,
                 accounts: AccountSteps, creates: CreateSteps, single: SingleSteps) -> None:
        self.store = store
        self.target = target
        self.config = config
        self.clock = clock
        self.accounts = accounts
        self.creates = creates
        self.single = single
        self.limits: BatchLimits | None = None  # None: one request per operation
        self.refused = False  # the LMS refused a batch: single requests for the rest
        self.open = False  # outcomes of a batch are being recorded: one commit at its end
        self.fence: Fence | None = None  # the leader lease each batch must still hold

    @property
    def in_use(self) -> bool:
        return self.limits is not None and not self.refused

    async def discover(self) -> BatchLimits | None:
        """The target's batch limits (kept in ``limits``), or None to send one request per
        operation."""
        self.limits = await self._discover()
        return self.limits

    async def _discover(self) -> BatchLimits | None:
        limits_of = getattr(self.target, "batch_limits", None)
        if limits_of is None:
            return None
        try:
            limits = await limits_of()
        except ConnectorError as exc:
            log.info("batches not used: %s", exc.message)
            return None
        return limits if limits is not None and limits.max_items > 1 else None

    def batchable(self, op: OpRow) -> bool:
        kind = op["kind"]
        if kind not in BATCHED_KINDS or op_store.outcome_unknown(op):
            return False
        if kind == OpKind.create:
            return op["attempts"] == 0  # a retried create reads first, on its own
        return not deletes_account(OpKind(kind), self.config)

    # -- one phase ---------------------------------------------------------------------

    async def send(self, ops: list[OpRow]) -> None:
        """Pack ``ops`` into batches and send them, ``concurrency`` at a time; a batch
        waits for the earlier batches that create its reports' managers."""
        limits = self.limits
        assert limits is not None
        # Tens of thousands of items at the start of a big wave: built on a worker thread
        # (nothing else of this run moves until they are), off the event loop.
        items, by_ref, manager_ref_of = await asyncio.to_thread(self._items, ops, limits)
        # Sized and packed as the workers take them: the first leaves at once.
        batches = enumerate(packed(items, limits,
                                   getattr(self.target, "batch_cost", lambda _i: 0),
                                   manager_ref_of, getattr(self.target, "batch_envelope", 0)))
        done: dict[int, asyncio.Event] = {}
        packing = asyncio.Lock()  # one thread at a time in the generator

        async def worker() -> None:
            while not self.single.stop_reason:
                # Packing sizes each item (its JSON): on a worker thread, off the loop.
                async with packing:
                    index, batch = await asyncio.to_thread(next, batches, (-1, None))
                if batch is None:
                    return
                done[index] = asyncio.Event()
                try:
                    for earlier in sorted(batch.after):
                        await done[earlier].wait()
                    if not self.single.stop_reason and not await self.single.recorded_async(
                            self._send_batch(batch, by_ref)):
                        return
                finally:
                    # Reports in later batches resolve their managers from these.
                    self.single.recorded(self.single.flush)
                    done[index].set()

        workers = min(self.config.lms.concurrency, -(-len(items) // limits.max_items))
        await asyncio.gather(*(worker() for _ in range(max(1, workers))))
        # Ops of batches never sent (a stop) stay as they were: pending, no attempt.

    def _items(self, ops: list[OpRow], limits: BatchLimits
               ) -> tuple[list[BatchItem], dict[str, OpRow], dict[str, str]]:
        creates: dict[str, list[OpRow]] = {}
        for op in ops:
            if op["kind"] == OpKind.create:
                creates.setdefault(op["employee_id"], []).append(op)
        manager_of = {key: found[0]["payload"]["account"].get("manager_key")
                      for key, found in creates.items()}
        ordered = [op for key in managers_first(creates, manager_of) for op in creates[key]]
        ordered += [op for op in ops if op["kind"] != OpKind.create]
        items, by_ref, manager_ref_of = [], {}, {}
        for op in ordered:
            ref = str(op["id"])
            by_ref[ref] = op
            if op["kind"] == OpKind.create:
                account = self._desired(op)
                items.append(BatchItem(ref, "create", account=account))
                manager = creates.get(account.manager_key or "")
                if manager is not None and limits.references:
                    manager_ref_of[ref] = str(manager[0]["id"])
                continue
            item = BatchItem(ref, "update")
            try:  # every create is recorded by now: updates are whole before packing
                self._fill(item, op)
            except ConnectorError as exc:
                op["unfit"] = exc  # recorded as this op's attempt when its batch goes
            items.append(item)
        return items, by_ref, manager_ref_of

    @staticmethod
    def _desired(op: OpRow) -> Account:
        fields = {k: v for k, v in op["payload"]["account"].items() if k in Account.__slots__}
        fields["external_key"] = op["employee_id"]
        return Account(**fields)

    # -- one batch ---------------------------------------------------------------------

    async def _send_batch(self, batch: Batch, by_ref: dict[str, OpRow]) -> None:
        started = self.clock.now()
        ops = [by_ref[item.ref] for item in batch.items]
        attempts = {op["id"]: op["attempts"] + 1 for op in ops}

        def mark_in_flight() -> None:
            with self.store.tx() as conn:  # every attempt committed before the request
                op_store.begin_attempts(conn, started, attempts.items(), self.fence)

        try:
            # On a worker thread, awaited before the request: a thousand rows' write
            # would otherwise hold the event loop (and the console's screen).
            await asyncio.to_thread(mark_in_flight)
        except Fenced as exc:
            self.single.interrupt(str(exc))  # another node leads now: it sends the rest
            return
        sending: list[BatchItem] = []
        for item, op in zip(batch.items, ops, strict=True):
            op["attempt"] = attempts[op["id"]]
            try:
                if "unfit" in op:
                    raise op.pop("unfit")
                if item.kind == "create":
                    self._fill(item, op)
            except ConnectorError as exc:
                self.single.failed(op, op["attempt"], started, exc)
                continue
            sending.append(item)
        if not sending:
            return
        whole: ConnectorError | None
        try:
            # Batches are on only when the target answered ``batch_limits`` with limits.
            batching = cast(BatchingTarget, self.target)
            outcomes = await batching.apply_batch(sending)
        except BatchRefused as refused:
            # Nothing was applied: send each on its own, now and for the rest of the run.
            log.info("%s; sending one request per operation", refused)
            self.refused = True
            for item in sending:
                op = by_ref[item.ref]
                op["attempts"] = op["attempt"] - 1  # the same attempt, sent differently
                if self.single.stop_reason:  # the breaker or refused credentials stopped it
                    break
                await self.single.apply_one(op)
            return
        except ConnectorError as exc:
            outcomes = {item.ref: exc for item in sending}
            whole = exc  # the batch failed as one request: one failure for the breaker
        else:
            whole = None
        retry: list[tuple[OpRow, float]] = []
        self.open = True
        try:
            await self._record_outcomes(sending, by_ref, outcomes, whole, started, retry)
        finally:
            self.open = False
        await self.single.flush_async()
        if retry and not self.single.stop_reason:
            await self.clock.sleep(max(delay for _op, delay in retry))
            for op, _delay in retry:  # the next attempt reads first, on its own
                op["attempts"] = op["attempt"]
                if self.single.stop_reason or not await self.single.recorded_async(
                        self.single.apply_one(op)):
                    return

    async def _record_outcomes(self, sending: list[BatchItem],
                               by_ref: dict[str, OpRow], outcomes: dict[str, Any],
                               whole: ConnectorError | None, started: datetime,
                               retry: list[tuple[OpRow, float]]) -> None:
        """Each item's outcome recorded as its op's own (a failure of the whole batch
        counts once for the circuit breaker); inline retries are collected in ``retry``."""
        for position, item in enumerate(sending):
            op = by_ref[item.ref]
            outcome = outcomes.get(item.ref, _MISSING)
            if outcome is _MISSING:
                outcome = ConnectorError("the LMS's answer to the batch says nothing of this "
                                         "operation; it is read before it is sent again",
                                         ErrorClass.transient)
            if isinstance(outcome, ConnectorError):
                outcome = await self._second_chance(item, op, outcome)
            if isinstance(outcome, ConnectorError):
                delay = self.single.failed(op, op["attempt"], started, outcome,
                                           counted=whole is None or position == 0)
                if delay is not None:
                    retry.append((op, delay))
                continue
            self.single.succeeded(op, op["attempt"], started, self._applied(item, op, outcome))

    def _fill(self, item: BatchItem, op: OpRow) -> None:
        """The request-time parts of an item: manager ids (managers created by earlier
        batches are recorded by now), the update's target, changes and version."""
        if item.kind == "create":
            account = item.account
            assert account is not None
            if account.manager_key and item.manager_ref is None:
                item.manager_lms_id = self.accounts.lms_id_of(account.manager_key)
            return
        lms_id, cached, changes = self.accounts.target_of(op)
        manager_lms_id, version = self.accounts.update_request(cached, changes)
        item.lms_id, item.changes = lms_id, changes
        item.manager_lms_id, item.version = manager_lms_id, version
        op["cached"] = cached

    async def _second_chance(self, item: BatchItem, op: OpRow,
                             error: ConnectorError) -> Account | ConnectorError:
        """What the single path does with the same answer: a create refused as taken may
        be ours already (or an unlinked account to link); an update refused for a stale
        version is re-read and sent once more."""
        try:
            if item.kind == "create" and error.error_class == ErrorClass.conflict:
                account = item.account
                assert account is not None
                found = await self.creates.existing(op["employee_id"], account,
                                             not op["payload"].get("new_account"))
                if found is None:
                    return error
                op["found"] = True
                return found
            if item.kind == "update" and error.status == 412:
                return await self.accounts.update(item.lms_id or "", op["employee_id"],
                                          op.get("cached"), dict(item.changes))
        except ConnectorError as exc:
            return exc
        return error

    def _applied(self, item: BatchItem, op: OpRow, outcome: Account | None) -> Account:
        """The account to record for a successful item, as the single path records it."""
        key = op["employee_id"]
        if item.kind == "update":
            return updated_account(item.lms_id or "", key, op.get("cached"), item.changes,
                                 outcome)
        assert outcome is not None and item.account is not None
        if op.pop("found", False):
            return outcome  # found by the second chance, already translated
        outcome.external_key = key
        outcome.extra.pop("manager_lms_id", None)
        # An LMS that holds the manager's HRIS key itself (a Moodle profile field) says so
        # in the account it read back; one holding LMS ids had it set when it was known.
        outcome.manager_key = outcome.manager_key or (item.account.manager_key if (
            item.manager_lms_id or item.manager_ref) else None)
        return outcome


_MISSING: Any = object()
