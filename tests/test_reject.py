"""Rejecting held operations drops them for good: from the command line (`ops reject`)
and from the console (`x` on a hold event, `x` on a person). A rejected operation is
superseded, never pending, so no later run or retry pass applies it; its people are
suppressed, so the next run does not plan it again.

The seeded world (tests/console_harness.py): run 2 held the deactivations of E00121..
E00150 (30 ops) under the mass-deactivation guard; the console's frozen now is
VIEWED_AT.
"""

from __future__ import annotations

import asyncio
import json
import random

import pytest

from rostersync.console.cli import main
from rostersync.console.screens.held import HeldScreen
from rostersync.console.screens.person import PersonScreen
from rostersync.console.screens.suppress_form import SuppressModal
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.engine import Engine
from tests.console_harness import ACTOR, SIZE, TOKEN, VIEWED_AT, fresh_db, settle
from tests.support import lms_users, set_token_env, write_config

SMALL = (80, 24)
GROUP = [f"E{i:05d}" for i in range(121, 151)]


def statuses(store: Store, ids: list[int]) -> dict[int, str]:
    marks = ",".join("?" * len(ids))
    return dict(store.conn.execute(f"SELECT id, status FROM ops WHERE id IN ({marks})", ids))


def run_ops(store: Store, run_id: int) -> list[int]:
    """The ops the run held (it also planned others, applied at once)."""
    return op_store.ids_with_status(store, "held", run_id=run_id)


def lms_active(base_url: str) -> dict[str, bool]:
    return {u["externalId"]: u["active"] for u in lms_users(base_url, TOKEN)
            if u.get("externalId")}


def apply_what_is_due(seeded, db) -> None:
    """What the scheduler's next retry pass does: apply every pending op that is due."""
    set_token_env(TOKEN)
    engine = Engine(seeded.config_for(db), Store(db), clock=FrozenClock(VIEWED_AT),
                    rng=random.Random(7))
    asyncio.run(engine.apply_due())


def cli_args(seeded, tmp_path) -> list[str]:
    return ["--config", str(write_config(tmp_path, seeded.base_url, seeded.csv_path))]


# -- the command line ------------------------------------------------------------------

def test_cli_reject_of_a_run_supersedes_its_holds_and_suppresses_its_people(
        seeded, tmp_path, capsys):
    db = fresh_db(seeded, tmp_path)
    store = Store(db)
    ids = run_ops(store, 2)
    assert set(statuses(store, ids).values()) == {"held"} and len(ids) == 30
    assert main(["ops", "reject", "--run", "2", "--reason", "bad export", "--until", "7d",
                 "--json", *cli_args(seeded, tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["rejected"] == ids and out["skipped"] == [] and sorted(out["suppressed"]) == GROUP
    assert set(statuses(store, ids).values()) == {"superseded"}
    marks = ",".join("?" * len(ids))
    assert store.scalar(f"SELECT count(*) FROM ops WHERE id IN ({marks}) "
                        "AND finished_at IS NULL", ids) == 0
    rows = store.rows("SELECT employee_id, reason, until, created_by FROM suppressions")
    assert sorted(r["employee_id"] for r in rows) == GROUP
    assert {r["reason"] for r in rows} == {"rejected: bad export"}
    assert all(r["until"] for r in rows)

    before = lms_active(seeded.base_url)
    apply_what_is_due(seeded, db)
    assert set(statuses(store, ids).values()) == {"superseded"}
    after = lms_active(seeded.base_url)
    assert [key for key in GROUP if before[key] != after[key]] == []
    assert all(after[key] for key in GROUP)


def test_cli_reject_by_id_acts_on_those_ids_and_refuses_what_is_no_longer_held(
        seeded, tmp_path, capsys):
    db = fresh_db(seeded, tmp_path)
    store = Store(db)
    ids = run_ops(store, 2)
    chosen = [str(i) for i in ids[:2]]
    args = cli_args(seeded, tmp_path)
    assert main(["ops", "reject", *chosen, "--reason", "wrong people", "--until", "1d",
                 "--json", *args]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {"rejected": ids[:2], "skipped": [], "suppressed": GROUP[:2]}
    now = statuses(store, ids)
    assert [now[i] for i in ids[:2]] == ["superseded", "superseded"]
    assert {now[i] for i in ids[2:]} == {"held"}
    # Again: they are no longer held, so the command refuses in one sentence.
    assert main(["ops", "reject", *chosen, "--reason", "again", "--until", "1d", "--json",
                 *args]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"rostersync: operation {ids[0]} is superseded, not held\n"
    assert captured.out == ""
    assert statuses(store, ids) == now
    assert op_store.ids_with_status(store, "pending", run_id=2) == []


# -- the console -----------------------------------------------------------------------

@pytest.mark.anyio
@pytest.mark.parametrize("size", [SMALL, SIZE])
async def test_x_on_a_hold_event_rejects_exactly_its_ops(app, size):
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        ids = run_ops(app.store, 2)
        await pilot.press("7")
        await settle(pilot)
        assert isinstance(app.screen, HeldScreen)
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, SuppressModal)
        await pilot.press(*"bad export", "enter", *"7d", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, SuppressModal)
        assert set(statuses(app.store, ids).values()) == {"superseded"}
        people = sorted(r[0] for r in app.store.conn.execute(
            "SELECT employee_id FROM suppressions WHERE created_by = ?", (ACTOR,)))
        assert people == GROUP
        entry = app.store.rows("SELECT detail FROM audit WHERE action = 'reject'")[-1]
        assert json.loads(entry["detail"])["ops"] == ids


@pytest.mark.anyio
async def test_x_on_a_person_rejects_only_their_held_op(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        ids = run_ops(app.store, 2)
        app.open_person("E00121")
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        theirs = [op["id"] for op in app.screen.data["ops"] if op["status"] == "held"]
        assert len(theirs) == 1
        await pilot.press("x")
        await settle(pilot)
        assert isinstance(app.screen, SuppressModal)
        await pilot.press(*"not leaving", "enter", *"2d", "enter")
        await settle(pilot)
        now = statuses(app.store, ids)
        assert now[theirs[0]] == "superseded"
        assert {now[i] for i in ids if i != theirs[0]} == {"held"}
        assert app.store.scalar(
            "SELECT employee_id FROM suppressions WHERE created_by = ?", (ACTOR,)) == "E00121"
