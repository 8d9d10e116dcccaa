"""Operator actions do exactly what the operator confirmed: the scope is fixed when the
dialog opens, holds are reviewed per hold event, a held group opens to its people, the
palette asks first, and every action leaves an audit entry naming its ids and target.

The seeded world (tests/console_harness.py): run 2 held the deactivations of E00121..
E00150 (30 ops, "terminated in HR") under the mass-deactivation guard.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest

from rostersync.console.cli import main
from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.held import HeldScreen
from rostersync.console.screens.held_group import HeldGroupScreen
from rostersync.console.screens.person import PersonScreen
from rostersync.storage import held
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.sync.models import OpKind, OpStatus
from rostersync.sync.plan import NewOp
from tests.console_harness import ACTOR, SIZE, TOKEN, fresh_db, notes, settle
from tests.support import lms_users, write_config

pytestmark = pytest.mark.anyio

MASS_HOLD = "mass deactivation: 30 deactivations in one run exceed the limit of 25"






def held_ids(store: Store, run_id: int | None = None) -> list[int]:
    return op_store.ids_with_status(store, "held", run_id=run_id)


def hold_burst(store: Store, now, people: list[str], hold_reason: str,
               reason: str = "terminated in HR") -> tuple[int, list[int]]:
    """What a later run that trips a guard leaves behind: a run and its held ops, written
    through the same storage calls the engine uses."""
    run_id = run_store.start_run(store, now, "full", "schedule", False)
    with store.tx() as conn:
        op_store.insert_ops(conn, now, run_id, [
            NewOp(employee_id=e, kind=OpKind.deactivate, payload={"active": False},
                  idem_key=f"{e}:burst:{run_id}", reason=reason, lms_id=None,
                  not_before=None, status=OpStatus.held, hold_reason=hold_reason)
            for e in people], 5)
    run_store.finish_run(store, run_id, now, "held", {"held": len(people)})
    ids = [r[0] for r in store.conn.execute("SELECT id FROM ops WHERE run_id = ?", (run_id,))]
    return run_id, ids


def last_audit(store: Store, action: str) -> dict:
    row = store.rows("SELECT target, actor, detail FROM audit WHERE action = ? "
                     "ORDER BY id DESC LIMIT 1", (action,))[0]
    row["detail"] = json.loads(row["detail"])
    return row


def first_run_held(app) -> list[int]:
    return held_ids(app.store, run_id=2)


# -- the over-approval ----------------------------------------------------------------

async def test_approve_acts_on_the_ids_the_dialog_named_not_on_a_later_burst(app):
    """Defect: the dialog said 30; a burst held meanwhile under the same reason and kind
    was approved with them (60), and two re-planned meanwhile were approved too."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        reviewed = first_run_held(app)
        assert len(reviewed) == 30
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmModal) and dialog.count == 30
        assert tuple(reviewed) == dialog.request.op_ids

        # While the dialog is open: the next burst is held, and a run supersedes two.
        later_run, later = hold_burst(app.store, app.clock.now(),
                                      [f"E{i:05d}" for i in range(101, 111)],
                                      MASS_HOLD.replace("30", "10"))
        with app.store.tx() as conn:
            op_store.set_status(conn, app.clock.now(), reviewed[:2], "superseded")
        await pilot.press("y")
        await settle(pilot)

        assert held_ids(app.store, later_run) == later  # nobody reviewed them
        statuses = dict(app.store.conn.execute(
            f"SELECT id, status FROM ops WHERE id IN ({','.join('?' * 30)})", reviewed))
        assert [statuses[i] for i in reviewed[:2]] == ["superseded", "superseded"]
        assert {statuses[i] for i in reviewed[2:]} == {"succeeded"}
        entry = last_audit(app.store, "approve")
        assert entry["detail"]["ops"] == reviewed[2:] and entry["detail"]["skipped"] == \
            reviewed[:2]
        assert entry["actor"] == ACTOR and entry["detail"]["run"] == 2
        assert len(entry["detail"]["people"]) == 28  # whose ops were acted on, no others
        assert any("28 approved, 2 no longer held" in n for n in notes(app))


async def test_each_hold_event_is_its_own_row_with_its_own_reason(app):
    """Defect: separate holds (runs 10, 24, 31, ...) were merged into one row showing one
    of their reasons."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        other = "mass deactivation: 12 deactivations in one run exceed the limit of 10"
        later_run, later = hold_burst(app.store, app.clock.now(),
                                      [f"E{i:05d}" for i in range(101, 113)], other)
        await pilot.press("7")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HeldScreen)
        rows = [(e["run_id"], e["n"], e["hold_reason"][:40]) for e in screen.data]
        assert rows == [(later_run, 12, other[:40]), (2, 30, MASS_HOLD[:40])]
        # Rejecting the newest hold leaves the older one held, untouched.
        await pilot.press("x")
        await settle(pilot)
        await pilot.press(*"bad export", "enter", *"7d", "enter")
        await settle(pilot)
        assert held_ids(app.store, later_run) == []
        assert len(first_run_held(app)) == 30
        entry = last_audit(app.store, "reject")
        assert entry["detail"]["ops"] == later and entry["detail"]["run"] == later_run


# -- the held group drill-down ----------------------------------------------------------

async def test_a_held_group_opens_to_its_people_and_approves_only_the_selection(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HeldGroupScreen) and screen.run_id == 2
        assert len(screen.data) == 30
        first = screen.data[0]
        assert first["employee_id"] == "E00121" and first["department"]
        assert first["status"] == "terminated" and first["termination_date"] == "2026-11-20"
        breakdown = text_of(screen.query_one("#breakdown"))
        assert "by department" in breakdown and "by location" in breakdown
        top_department, count = held.breakdown(screen.data, "department")[0]
        assert f"{top_department[:14]}" in breakdown and f" {count}" in breakdown

        await pilot.press("space", "space")  # deselect E00121 and E00122
        await settle(pilot)
        kept = [r["id"] for r in screen.data[:2]]
        assert screen.deselected == set(kept)
        await pilot.press("a")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmModal) and dialog.count == 28
        assert any(line.startswith("by department:") for line in dialog.request.details)
        assert set(dialog.request.op_ids).isdisjoint(kept)
        await pilot.press("y")
        await settle(pilot)
        assert first_run_held(app) == kept
        entry = last_audit(app.store, "approve")
        assert len(entry["detail"]["ops"]) == 28
        assert "E00121" not in entry["detail"]["people"]
        # In the LMS itself: exactly the confirmed people lost access, the two left out
        # of the selection still have it.
        active = {u["externalId"]: u["active"] for u in lms_users(app_lms(app), TOKEN)
                  if u.get("externalId")}
        assert [e for e in entry["detail"]["people"] if active[e]] == []
        assert active["E00121"] and active["E00122"]


async def test_deselecting_everyone_leaves_nothing_to_approve(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        await pilot.press("i", "a")
        await settle(pilot)
        assert isinstance(app.screen, HeldGroupScreen)
        assert any("nothing selected" in n for n in notes(app))
        assert len(first_run_held(app)) == 30


# -- the palette -----------------------------------------------------------------------

async def _palette_hits(pilot, text: str) -> list[str]:
    from textual.command import CommandList

    await pilot.press("ctrl+p")
    await settle(pilot)
    await pilot.press(*text)
    await settle(pilot)
    options = pilot.app.screen.query_one(CommandList)
    return [str(options.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(options.option_count)]


async def test_palette_resync_asks_first_and_is_offered_only_for_known_people(app):
    """Defect: "Resync person" ran at once, and was offered for any word typed."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        runs_before = app.store.scalar("SELECT count(*) FROM runs")
        hits = await _palette_hits(pilot, "resume")
        assert not any("Resync person" in h for h in hits)
        assert any("Resume the scheduler" in h for h in hits)
        await pilot.press("escape")
        await settle(pilot)

        hits = await _palette_hits(pilot, "e00010")
        assert hits == ["Open person E00010", "Resync person E00010"]
        from textual.command import CommandList

        app.screen.query_one(CommandList).highlighted = 1
        await pilot.press("enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmModal) and "Resync E00010" in dialog.question
        await pilot.press("escape")
        await settle(pilot)
        assert app.store.scalar("SELECT count(*) FROM runs") == runs_before
        assert app.store.scalar("SELECT count(*) FROM audit WHERE action = 'resync'") == 0


async def test_palette_takes_a_verb_and_an_id_and_nothing_else(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for typed, expected in (("resync e00010", ["Resync person E00010"]),
                                ("resync E99999", []), ("delete E00010", []),
                                ("E00010 E00011", [])):
            hits = await _palette_hits(pilot, typed)
            assert [h for h in hits if "person" in h] == expected, typed
            await pilot.press("escape")
            await settle(pilot)


async def test_palette_pause_and_sync_ask_first(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.ask_pause()
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert app.store.scalar("SELECT state FROM job_state") in (None, "active")
        await pilot.press("y")
        await settle(pilot)
        assert app.store.scalar("SELECT state FROM job_state") == "paused"
        assert "JOB PAUSED" in str(app.screen.query_one("#banner").render())
        app.ask_resume()
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.store.scalar("SELECT state FROM job_state") == "active"
        runs_before = app.store.scalar("SELECT count(*) FROM runs")
        app.ask_sync("delta")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and "delta sync" in app.screen.question
        await pilot.press("escape")
        await settle(pilot)
        assert app.store.scalar("SELECT count(*) FROM runs") == runs_before


def _dialog_text(app) -> str:
    from textual.widgets import Label

    return " ".join(str(label.render()) for label in app.screen.query(Label))


async def test_each_dialog_says_what_it_reaches_not_a_record_count_it_cannot_know(app):
    """Defect: "Sync now" said "This touches 1 record(s), exactly these" for a run that
    may change anyone; only an action with fixed operation ids can say "exactly these"."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        said = {}
        for name, ask in (("sync", lambda: app.ask_sync("full")),
                          ("resync", lambda: app.ask_resync("E00010")),
                          ("pause", app.ask_pause)):
            ask()
            await settle(pilot)
            assert isinstance(app.screen, ConfirmModal), name
            said[name] = _dialog_text(app)
            await pilot.press("escape")
            await settle(pilot)
        app.open_person("E00121")  # a held deactivation: ids fixed when the dialog opens
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        said["approve"] = _dialog_text(app)
    assert "known only once it has compared them" in said["sync"]
    assert "This touches one person, E00010, and only what differs for them" in \
        said["resync"]
    assert "nothing is sent to the LMS or changed for anyone" in said["pause"]
    for name in ("sync", "resync", "pause"):
        assert "record(s)" not in said[name] and "exactly these" not in said[name], name
    assert "This touches 1 record(s), exactly these" in said["approve"]
    assert all("written to the audit log under your name" in t for t in said.values())


async def _until(pilot, check) -> None:
    """Let the loop run until ``check()`` holds (a worker waiting on a lock never lets
    settle() see a quiet console)."""
    for _ in range(200):
        if check():
            return
        await pilot.pause()
    raise AssertionError("the console never got there")


async def test_a_confirmed_sync_waits_for_the_run_in_progress_then_runs_once(app):
    """Defect: a sync confirmed while a scheduled run held the job said "done", then
    "try again", and never ran. Now the dialog says it waits, it runs when the job is
    free, and asking again while it waits adds nothing."""
    runs = "SELECT count(*) FROM runs WHERE trigger = 'console'"
    syncs = "SELECT count(*) FROM audit WHERE action = 'sync'"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        runs_before, syncs_before = app.store.scalar(runs), app.store.scalar(syncs)
        lock = app.scheduler.lock
        await lock.acquire()  # a scheduled run holds the job
        for _ in range(2):
            app.ask_sync("full")
            await _until(pilot, lambda: isinstance(app.screen, ConfirmModal))
            assert app.screen.question.startswith(
                "Run a full sync once the run in progress finishes:")
            await pilot.press("y")
            await _until(pilot, lambda: not isinstance(app.screen, ConfirmModal))
        await _until(pilot, lambda: any("already waiting" in n for n in notes(app)))
        assert any("full sync waits for the run in progress to finish, then starts" in n
                   for n in notes(app))
        # Nothing ran and nothing was audited while it waited: the entry says it started.
        assert app.store.scalar(runs) == runs_before
        assert app.store.scalar(syncs) == syncs_before
        lock.release()
        await settle(pilot)
        assert app.store.scalar(runs) == runs_before + 1
        assert app.store.scalar(syncs) == syncs_before + 1
        app.ask_sync("full")
        await settle(pilot)
        assert app.screen.question.startswith("Run a full sync now:")


# -- the person screen -----------------------------------------------------------------

async def test_a_retry_from_the_person_screen_is_audited_against_that_person(app):
    """Defect: the audit entry had no target, so the person's trail said "no operator
    action yet"."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        failed = [op["id"] for op in app.screen.data["ops"] if op["status"] == "failed"]
        await pilot.press("r", "y")
        await settle(pilot)
        entry = last_audit(app.store, "retry")
        assert entry["target"] == "E00005" and entry["detail"]["ops"] == failed
        screen = app.screen
        assert isinstance(screen, PersonScreen)
        trail = text_of(screen.query_one("#trail"))
        assert "retry" in trail and "no operator action yet" not in trail


# -- the command line ------------------------------------------------------------------

def test_cli_approve_run_releases_only_that_runs_holds(seeded, tmp_path, capsys):
    db = fresh_db(seeded, tmp_path)
    args = ["--config", str(write_config(tmp_path, seeded.base_url, seeded.csv_path))]
    store = Store(db)
    later_run, later = hold_burst(store, _now(store), [f"E{i:05d}" for i in range(101, 106)],
                                  MASS_HOLD.replace("30", "5"))
    assert main(["ops", "approve", "--run", str(later_run), "--defer", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out) == {"approved": later, "skipped": []}
    assert held_ids(store, later_run) == [] and len(held_ids(store, 2)) == 30


def test_cli_reject_needs_an_expiry_or_an_explicit_no_expiry(seeded, tmp_path, capsys):
    db = fresh_db(seeded, tmp_path)
    args = ["--config", str(write_config(tmp_path, seeded.base_url, seeded.csv_path))]
    store = Store(db)
    assert main(["ops", "reject", "--run", "2", "--reason", "bad export", *args]) == 2
    err = capsys.readouterr().err
    assert "an expiry is required" in err and err.count("\n") == 1
    assert len(held_ids(store, 2)) == 30
    assert main(["ops", "reject", "--run", "2", "--reason", "x", "--until", "7d",
                 "--no-expiry", *args]) == 2
    assert main(["ops", "reject", "--run", "2", "--reason", "bad export", "--no-expiry",
                 *args]) == 0
    captured = capsys.readouterr()
    assert "warning: no expiry" in captured.err and "with no expiry" in captured.out
    assert held_ids(store, 2) == []


def app_lms(app) -> str:
    return app.config.lms.base_url


def text_of(widget) -> str:
    from rich.console import Console

    console = Console(width=100, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def _now(store: Store):
    from rostersync.storage.db import parse_ts

    return parse_ts(store.scalar("SELECT max(started_at) FROM runs")) + timedelta(hours=1)


async def test_an_approval_while_the_job_is_paused_says_when_it_applies(app):
    from rostersync.console import actions

    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        actions.set_job_state(app.store, app.clock.now(), "paused", "maintenance", ACTOR)
        app.open_person("E00130")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmModal)
        assert "apply them when the job is resumed (it is paused now)" in dialog.question
        await pilot.press("y")
        await settle(pilot)
        assert app.store.scalar("SELECT status FROM ops WHERE employee_id = 'E00130' AND "
                                "kind = 'deactivate'") == "pending"


async def test_an_approval_names_the_operations_that_wait_for_their_effective_time(app):
    """Approving a hold that holds a scheduled termination does not make it happen now:
    the dialog says so (an op due exactly now is not 'later')."""
    from datetime import timedelta

    from rostersync.storage.db import ts

    now = app.clock.now()
    ids = [r[0] for r in app.store.conn.execute(
        "SELECT id FROM ops WHERE status = 'held' ORDER BY id LIMIT 3")]
    with app.store.tx() as conn:
        conn.execute("UPDATE ops SET next_attempt_at = ? WHERE id = ?", (ts(now), ids[0]))
        conn.execute("UPDATE ops SET next_attempt_at = ? WHERE id = ?",
                     (ts(now + timedelta(seconds=1)), ids[1]))
        conn.execute("UPDATE ops SET next_attempt_at = ? WHERE id = ?",
                     (ts(now + timedelta(days=1)), ids[2]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, ConfirmModal)
        first = (now + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
        assert (f"now, except 2 scheduled for their effective time (the first {first})?"
                in dialog.question), dialog.question


# -- a source that cannot be reached ------------------------------------------------------

async def test_an_unreachable_hris_has_its_own_banner_not_a_rejected_feed(seeded, tmp_path):
    """Defect: "Connection refused" became "LAST HRIS FEED REJECTED" (exit 4)."""
    import asyncio
    import random

    from rostersync.sync.clock import FrozenClock
    from rostersync.sync.config import load_config
    from rostersync.sync.engine import Engine
    from tests.console_harness import VIEWED_AT

    db = fresh_db(seeded, tmp_path)
    config = load_config(write_config(tmp_path, seeded.base_url, tmp_path / "gone.csv"))
    config.database.path = db
    engine = Engine(config, Store(db), clock=FrozenClock(VIEWED_AT), rng=random.Random(7))
    report = await asyncio.to_thread(asyncio.run, engine.sync("full"))
    assert (report.status, report.exit_code, report.error_class) == \
        ("failed", 1, "source_unreachable")

    from rostersync.console.app import ConsoleApp

    app = ConsoleApp(seeded.config_for(db), Store(db), clock=FrozenClock(VIEWED_AT),
                     engine=None, run_scheduler=False, live=False, actor=ACTOR)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        banner = str(app.screen.query_one("#banner").render())
        assert "HRIS UNREACHABLE since" in banner and "gone.csv" in banner
        assert "REJECTED" not in banner
