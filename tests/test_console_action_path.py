"""An operator action and its audit entry are one transaction, and the console's one
action path reports each action's outcome once, with every database write off the loop.

Faults are injected at the storage boundary, in the real database file: a trigger that
makes SQLite refuse the action's second write. Nothing of ours is mocked.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from rostersync.console import actions, requests
from rostersync.console.action_path import ActionRequest, Outcome
from rostersync.console.app import JOB_DRAW_SECONDS, ConsoleApp
from rostersync.console.cli import main
from rostersync.console.engine_digest import EngineDigest
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync import events
from rostersync.sync.clock import FrozenClock
from rostersync.sync.engine import Engine
from tests.console_harness import ACTOR, SIZE, VIEWED_AT, fresh_db, notes, settle
from tests.support import write_config

FAULT = "injected fault: the disk refused the write"


def refuse_inserts(path: Path, table: str) -> None:
    """From now on SQLite refuses every row written to ``table`` in this file."""
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TRIGGER injected_fault BEFORE INSERT ON {table} "
                 f"BEGIN SELECT RAISE(ABORT, '{FAULT}'); END")
    conn.close()


def state(path: Path) -> dict[str, list[tuple]]:
    """Everything an action may write, read through a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("ops", "suppressions", "job_state", "audit")}
    finally:
        conn.close()


def _retry(store: Store) -> None:
    failed = op_store.ids_with_status(store, "failed")
    assert failed  # the seeded world has E00005's failed update
    actions.retry(store, VIEWED_AT, failed, 3, actor=ACTOR, target="E00005")


def _approve(store: Store) -> None:
    actions.approve(store, VIEWED_AT, op_store.ids_with_status(store, "held"), ACTOR)


def _reject(store: Store) -> None:
    actions.reject(store, VIEWED_AT, op_store.ids_with_status(store, "held"), "bad export",
                   VIEWED_AT + timedelta(days=7), ACTOR)


def _suppress(store: Store) -> None:
    actions.suppress_people(store, VIEWED_AT, ["E00005"], "on leave", None, ACTOR)


def _pause(store: Store) -> None:
    actions.set_job_state(store, VIEWED_AT, "paused", "from a test", ACTOR)


ACTIONS: dict[str, Callable[[Store], None]] = {
    "retry": _retry, "approve": _approve, "reject": _reject, "suppress": _suppress,
    "pause": _pause}


@pytest.mark.parametrize("name", list(ACTIONS))
def test_a_refused_audit_entry_undoes_the_action(seeded, tmp_path, name):
    path = fresh_db(seeded, tmp_path)
    refuse_inserts(path, "audit")
    before = state(path)
    store = Store(path)
    with pytest.raises(sqlite3.IntegrityError, match=FAULT):
        ACTIONS[name](store)
    store.close()
    assert state(path) == before


def test_a_refused_suppression_undoes_the_rejection_and_its_audit_entry(seeded, tmp_path):
    """Reject writes the ops and its audit entry first, then suppresses the people: a
    fault in the last write leaves no audit entry for a rejection that did not happen."""
    path = fresh_db(seeded, tmp_path)
    refuse_inserts(path, "suppressions")
    before = state(path)
    store = Store(path)
    with pytest.raises(sqlite3.IntegrityError, match=FAULT):
        _reject(store)
    store.close()
    assert state(path) == before


def test_cli_pause_is_undone_with_its_audit_entry(seeded, tmp_path):
    """Defect: `rostersync pause` set the job state in one transaction and wrote the audit
    entry in another, so a refused audit entry left the job paused with no trace."""
    config = write_config(tmp_path, seeded.base_url, seeded.csv_path)
    path = fresh_db(seeded, tmp_path)
    refuse_inserts(path, "audit")
    before = state(path)
    with pytest.raises(sqlite3.IntegrityError, match=FAULT):
        main(["pause", "--config", str(config)])
    assert state(path) == before


def test_one_action_is_one_transaction_however_it_nests(seeded, tmp_path):
    """A reader on another connection never sees the ops of an action without its audit
    entry: the whole action commits at once (Store.tx joins the outer transaction)."""
    path = fresh_db(seeded, tmp_path)
    store = Store(path)
    held = op_store.ids_with_status(store, "held")
    seen: list[tuple[int, int]] = []
    audit_before = len(state(path)["audit"])

    # A trigger on the ops update reads the file from another thread mid-action: it
    # must see neither the update nor the audit entry yet.
    def on_update() -> int:
        result: list[tuple[int, int]] = []
        reader = threading.Thread(target=lambda: result.append(_counts(path)))
        reader.start()
        reader.join()
        seen.extend(result)
        return 0

    store.conn.create_function("peek", 0, on_update)
    store.conn.execute("CREATE TEMP TRIGGER peek_ops AFTER UPDATE ON main.ops "
                       "BEGIN SELECT peek(); END")
    actions.approve(store, VIEWED_AT, held, ACTOR)
    store.close()
    assert seen and all(s == (30, audit_before) for s in seen)
    assert _counts(path) == (0, audit_before + 1)


def _counts(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        return (conn.execute("SELECT count(*) FROM ops WHERE status='held'").fetchone()[0],
                conn.execute("SELECT count(*) FROM audit").fetchone()[0])
    finally:
        conn.close()


# -- the console's one action path ---------------------------------------------------------

# The tables only an operator action writes (the ops an action releases are applied by
# the engine's executor, which is not the console's code).
ACTION_TABLES = ("audit", "job_state", "suppressions", "match_decisions")


def watch_loop_writes(store: Store) -> list[str]:
    """The statements that write an action's tables on this thread's connection (the
    event loop's): SQLite's own trace hook, on the real connection."""
    seen: list[str] = []

    def trace(sql: str) -> None:
        words = sql.split()
        verb = words[0].upper() if words else ""
        if verb in ("INSERT", "UPDATE", "DELETE", "REPLACE") and any(
                f" {table}" in sql.lower() for table in ACTION_TABLES):
            seen.append(sql)

    store.conn.set_trace_callback(trace)
    return seen


async def confirm(pilot) -> None:
    await settle(pilot)
    await pilot.press("y")
    await settle(pilot)


def held_of_run_2(store: Store) -> list[int]:
    return op_store.ids_with_status(store, "held", run_id=2)


@pytest.mark.anyio
async def test_every_console_action_writes_off_the_loop_and_says_so_once(app):
    failed = op_store.ids_with_status(app.store, "failed")
    held = held_of_run_2(app.store)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        loop_writes = watch_loop_writes(app.store)
        for req in (requests.pause_request(app, True), requests.pause_request(app, False),
                    requests.retry_request(app, "E00005", failed),
                    requests.approve_request("E00121", held[:1])):
            app.request(req)
            await confirm(pilot)
        app.ask_sync("full")
        await confirm(pilot)
        app.ask_resync("E00005")
        await confirm(pilot)
        app.store.conn.set_trace_callback(None)
        seen = notes(app)
        actions_audited = [r[0] for r in app.store.conn.execute(
            "SELECT action FROM audit WHERE actor = ? ORDER BY id", (ACTOR,))]
    assert loop_writes == [], "\n".join(loop_writes)
    for text in ("done: scheduler and job paused", "done: scheduler and job resumed",
                 "done: E00005: 1 queued for retry", "done: E00121: 1 approved",
                 "done: full sync requested", "done: resync of E00005 requested"):
        assert seen.count(text) == 1, (text, seen)
    assert not [n for n in seen if "failed:" in n]
    assert actions_audited[-6:] == ["pause", "resume", "retry", "approve", "sync", "resync"]


@pytest.mark.anyio
async def test_a_failing_action_says_one_sentence_and_changes_nothing(app):
    refuse_inserts(app.store.path, "audit")
    before = state(app.store.path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")  # held review: run 2's 30 deactivations
        await settle(pilot)
        await pilot.press("a")
        await confirm(pilot)
        assert app.is_running
        seen = notes(app)
    assert [n for n in seen if "fail" in n or n.startswith("done")] == [
        f"approve failed: {FAULT}"]
    assert state(app.store.path) == before


@pytest.mark.anyio
async def test_a_failing_read_of_the_scope_says_one_sentence(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.request_from(lambda store: store.rows("SELECT * FROM no_such_table"))
        await settle(pilot)
        assert app.is_running
        seen = notes(app)
    assert seen == ["reading what the action would touch failed: no such table: "
                    "no_such_table"]


@pytest.mark.anyio
async def test_a_failing_step_on_the_loop_is_one_sentence_not_a_crash(app):
    """Defect: the loop's part of an action (here: a scheduler that refuses to pause) ran
    through call_from_thread inside the action's worker; its error failed the worker and
    the console exited. Now it is one sentence and no "done"."""
    def refuse() -> None:
        raise RuntimeError("the scheduler refused to pause")

    req = ActionRequest("Pause", "Pause?", 1,
                        lambda ctx: Outcome("scheduler and job paused", on_loop=refuse))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.request(req)
        await confirm(pilot)
        assert app.is_running
        seen = notes(app)
    assert seen == ["pause failed: the scheduler refused to pause"]


# -- the engine's per-operation events ------------------------------------------------------

def test_an_unread_tick_is_posted_again_once_it_is_the_draw_interval_old():
    digest = EngineDigest(tick_seconds=JOB_DRAW_SECONDS)
    digest.count(events.Progress(5, "apply", 0, 10), 100.0)
    op = iter(range(1, 10))

    def finished(now: float) -> bool:
        return digest.count(events.OpFinished(5, next(op), "E1", "update", "succeeded"), now)

    assert finished(100.0)
    assert not finished(100.0 + JOB_DRAW_SECONDS - 0.001)  # just below
    assert finished(100.0 + JOB_DRAW_SECONDS)              # exactly at
    assert finished(100.0 + 3 * JOB_DRAW_SECONDS)          # above
    assert digest.applied(5) == 4
    assert finished(200.0)  # read: the next op posts at once
    # Without a draw interval (a console without timers) one tick waits to be read.
    still = EngineDigest()
    still.count(events.Progress(6, "apply", 0, 10), 0.0)
    assert still.count(events.OpFinished(6, 1, "E1", "update", "succeeded"), 0.0)
    assert not still.count(events.OpFinished(6, 2, "E1", "update", "succeeded"), 1e9)


@pytest.mark.anyio
async def test_an_apply_on_the_loop_costs_the_live_console_a_message_per_draw(seeded,
                                                                              tmp_path):
    """Defect: the executor reports each finished op on the console's own loop, between
    its requests, and each tick was read at once: the console handled a message for
    every op or two (550 for 1,000 ops in bench.console). Now, while the count was just
    drawn, one unread tick stands for every op until it is JOB_DRAW_SECONDS old."""
    db = fresh_db(seeded, tmp_path)
    clock = FrozenClock(VIEWED_AT)
    config, store = seeded.config_for(db), Store(db)
    app = ConsoleApp(config, store, clock=clock, engine=Engine(config, store, clock=clock),
                     run_scheduler=False, live=True, actor=ACTOR)
    emit = app.engine.on_event
    handled: Counter[str] = Counter()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.message_signal.subscribe(app, lambda m: handled.update([type(m).__name__]),
                                     immediate=True)
        emit(events.RunStarted(41, "retry", "schedule", False))
        emit(events.Progress(41, "apply", 0, 500))
        await pilot.pause()
        started = time.monotonic()
        for op in range(1, 201):
            emit(events.OpFinished(41, op, f"E{op:05d}", "update", "succeeded"))
            await pilot.pause()  # the loop runs between ops, as between the executor's
        # The late draw is a real timer: each that fired meanwhile lets one more through.
        late_draws = (time.monotonic() - started) / JOB_DRAW_SECONDS
        assert handled["OpsApplied"] <= 2 + late_draws < 200
        clock.advance(seconds=JOB_DRAW_SECONDS)
        emit(events.OpFinished(41, 201, "E00201", "update", "succeeded"))
        await pilot.pause()
        assert app.job is not None and app.job["done"] == 201
        emit(events.RunFinished(41, "succeeded"))
        await settle(pilot)
        assert app.job is None
    # Nothing is posted that no handler reads: the ops arrive only as counted ticks.
    assert handled["EngineMessage"] == 0
