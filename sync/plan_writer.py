"""A run's planning: evaluate the people in batches and write their operations, each
batch committed on its own, then the run-wide holds (mass deactivations, mass rewrites,
audience removals) over everything the batches held back."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.storage.writer import BatchWriter
from rostersync.sync import pull as pull_mod
from rostersync.sync.audiences.lms import guard_removals
from rostersync.sync.audiences.strays import plan_strays
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import HrisSource
from rostersync.sync.evaluate import Parsed, PlanSummary, evaluate, write_changes
from rostersync.sync.events import EventCallback, Progress
from rostersync.sync.feed_issues import feed_issues
from rostersync.sync.gc_pause import YoungCollector
from rostersync.sync.mapping import absent_account_fields
from rostersync.sync.mapping_logins import LoginBook
from rostersync.sync.mass_guards import hold_mass_changes, hold_mass_rewrites
from rostersync.sync.models import OpKind
from rostersync.sync.plan import NewOp, attribute_changes, identity_changes
from rostersync.sync.realtime.modes import keep_kinds

BATCH = 2000


class PlanningEngine(Protocol):
    """What planning reads of the engine running it."""

    config: Config
    store: Store
    source: HrisSource
    clock: Clock
    on_event: EventCallback


def evaluate_and_write(engine: PlanningEngine, run_id: int, keys: list[str],
                   fresh_for: Callable[[list[str]], dict[str, Parsed]],
                        missing: set[str] | frozenset[str], dry_run: bool,
                        finish: Callable[[Any], None] | None, writer: BatchWriter,
                        *, only_kinds: frozenset[str] | None = None,
                        strays: bool = False) -> PlanSummary:
    """Evaluate in batches, each committed on its own so that no write transaction
    outlasts a batch (the lease renewal and operator actions get their turn). A
    batch is written on the writer's thread while the next one is evaluated.

    A crash between batches loses nothing: planning is idempotent (same intent, same
    key), and the snapshot only moves in the last transaction, so the next run
    evaluates the same records again. Deactivations wait for that last transaction,
    where the run's mass-deactivation check sees all of them (with those of other runs
    in its window); login and email changes wait likewise for the mass identity-change
    check. A dry run writes nothing at all.
    """
    now = engine.clock.now()
    g = engine.config.guards
    total = PlanSummary(plan=[] if dry_run else None)
    held_back: list[NewOp] = []
    rewriting: list[NewOp] = []  # updates written by the batches, for the hold below
    linking: set[str] = set()  # accounts linked this run: no audience's strays
    collect_young = YoungCollector()
    # Conflicts inside the feed need the run's records all at once (a shared login
    # spans batches); the people they involve are evaluated too, so each side gets
    # its drift. Past the parsed-records limit the stored values stand in.
    issues = feed_issues(engine.store, engine.config, now, keys,
                         fresh_for(keys) if len(keys) <= pull_mod.KEEP_PARSED_LIMIT
                         else {}, missing)
    keys = sorted(set(keys) | issues.keys())
    absent = absent_account_fields(getattr(engine.config.hris, "columns", {}),
                                   engine.source.columns_present(),
                                   engine.config.mapping.compiled())
    logins = LoginBook()  # generated logins chosen by earlier batches of the run
    for start in range(0, len(keys), BATCH):
        batch = keys[start:start + BATCH]
        changes = evaluate(engine.store, engine.config, now, batch, fresh_for(batch),
                           missing=missing, issues=issues, absent=absent,
                           logins=logins)
        if only_kinds is not None:  # a real-time run: the mode's kinds only
            open_kinds = {op["id"]: op["kind"] for ops in
                          op_store.open_ops_for(engine.store, batch).values() for op in ops}
            keep_kinds(changes, only_kinds, open_kinds)
        ops = [op for op in changes.new_ops if op.kind != OpKind.deactivate]
        held_back.extend(op for op in changes.new_ops if op.kind == OpKind.deactivate)
        # Audience removals wait too, for the membership mass-change guard below, and
        # login/email changes, for the mass identity-change guard.
        waits = [op.kind == OpKind.member_remove or bool(identity_changes(op))
                 for op in ops]
        held_back += [op for op, wait in zip(ops, waits, strict=True) if wait]
        ops = [op for op, wait in zip(ops, waits, strict=True) if not wait]
        rewriting += [op for op in ops if attribute_changes(op)]
        linking |= {op.lms_id for op in ops if op.kind == OpKind.link and op.lms_id}
        if not dry_run:
            writer.submit(partial(write_changes, changes=changes, now=now, run_id=run_id,
                                  max_attempts=g.retry_max_attempts, ops=ops))
        total.add_batch(changes)
        total.add_ops(ops, now)
        engine.on_event(Progress(run_id, "evaluate", start + len(batch), len(keys)))
        collect_young()
    writer.wait()  # what follows reads and writes after every batch is committed
    hold_mass_changes(engine.store, g, now, run_id, held_back)
    # Updates go out with their batches (most runs rewrite little); the few runs
    # whose updates rewrite one attribute wholesale have them marked held here,
    # before anything is applied (the run holds the writer lease).
    rewrites_held, reason = hold_mass_rewrites(engine.store, g, now, rewriting,
                                               written=not dry_run,
                                               fingerprint=engine.config.fingerprint())
    if rewrites_held:
        total.held += rewrites_held
        total.hold_reason = total.hold_reason or reason
    if strays:  # after a full listing: members no person is linked to
        stray = plan_strays(engine.store, engine.config, now, linking)
        held_back += stray.new_ops
        total.add_batch(stray)
        if not dry_run:
            with engine.store.tx() as conn:
                write_changes(conn, stray, now, run_id, g.retry_max_attempts, [])
    guard_removals(engine.store, engine.config, held_back)
    total.add_ops(held_back, now)
    if not dry_run:
        with engine.store.tx() as conn:
            op_store.insert_ops(conn, now, run_id, held_back, g.retry_max_attempts)
            if finish is not None:
                finish(conn)
    return total
