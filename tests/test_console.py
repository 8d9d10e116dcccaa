"""The console, driven through Textual's Pilot over a database seeded by the real engine
against a real SCIM sandbox (see tests/console_harness.py). No sleeps: settle() waits for
the workers and the messages they post."""

from __future__ import annotations

import pytest

from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.dashboard import DashboardScreen
from rostersync.console.screens.held import HeldScreen
from rostersync.console.screens.help import HelpScreen
from rostersync.console.screens.lists import DriftList, OpsList
from rostersync.console.screens.person import PersonScreen
from rostersync.console.screens.run import RunScreen
from rostersync.console.screens.suppress_form import SuppressModal
from rostersync.storage import lease
from rostersync.sync.status import build_status
from tests.console_harness import ACTOR, SIZE, make_app, notes, settle

# anyio's pytest plugin (anyio comes with httpx) runs the async tests on asyncio.
pytestmark = pytest.mark.anyio






def op_status(app, employee_id: str, kind: str | None = None) -> list[str]:
    sql = "SELECT status FROM ops WHERE employee_id = ?" + (" AND kind = ?" if kind else "")
    return [r[0] for r in app.store.conn.execute(sql, (employee_id, kind) if kind
                                                 else (employee_id,))]


def audit_actions(app, target: str | None = None) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in app.store.conn.execute(
        "SELECT action, actor FROM audit WHERE ? IS NULL OR target = ? ORDER BY id",
        (target, target))]


async def test_dashboard_shows_the_figures_of_status_json(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        expected = build_status(app.store, app.config, app.clock.now())
        assert screen.data["status"] == expected
        assert expected["ops"]["held"] == 30 and expected["ops"]["failed"] == 1
        assert expected["drift"]["invalid"] == 1 and expected["drift"]["unmapped"] == 1
        banner = str(screen.query_one("#banner").render())
        assert "30 OPERATION(S) HELD" in banner


async def test_drift_filter_survives_refresh_and_escape_clears_it_first(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("2")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DriftList) and screen.total == 33
        await pilot.press("slash", "E", "0", "0", "0", "0", "7")
        await settle(pilot)
        assert screen.total == 1 and screen.data.rows[0]["kind"] == "invalid"
        app.refresh_screen()  # a live refresh keeps the filter
        await settle(pilot)
        assert screen.filter_text == "E00007" and screen.total == 1
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen and screen.total == 33
        await pilot.press("escape")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)


async def test_cursor_survives_a_refresh_and_status_filter_pages_from_sql(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OpsList) and screen.total == 181
        assert len(screen.data.rows) == 50  # one page in the widget, total from COUNT
        await pilot.press("down", "down", "down")
        key = screen.query_one("#table").current_key
        app.refresh_screen()
        await settle(pilot)
        table = screen.query_one("#table")
        assert table.cursor_row == 3 and table.current_key == key
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert screen.page_offset == 50 and screen.data.rows[0]["id"] == 131
        await pilot.press("f", "f", "f", "f")  # all -> pending -> running -> succeeded -> failed
        await settle(pilot)
        assert screen.status == "failed" and screen.total == 1


async def test_person_drill_down_and_retry(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("3", "slash", *"E00005", "enter")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PersonScreen) and screen.employee_id == "E00005"
        assert screen.data["desired"]["title"] == "Lead"
        assert screen.data["account"]["title"] == "Specialist"
        failed = [op for op in screen.data["ops"] if op["status"] == "failed"]
        assert failed and failed[0]["attempt_log"][-1]["http_status"] == 503
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.count == 1
        await pilot.press("y")
        await settle(pilot)
        assert op_status(app, "E00005", "update") == ["succeeded"]
        assert ("retry", ACTOR) in audit_actions(app)
        assert any("queued for retry" in n for n in notes(app))


async def test_suppress_with_reason_and_expiry_then_unsuppress(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00121")
        await settle(pilot)
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, SuppressModal)
        await pilot.press(*"legal hold", "enter", *"7d", "enter")
        await settle(pilot)
        assert op_status(app, "E00121") == ["succeeded", "suppressed"]
        row = app.store.rows("SELECT reason, until, created_by FROM suppressions")[0]
        assert row["reason"] == "legal hold" and row["created_by"] == ACTOR
        assert row["until"].startswith("2026-12-03")
        assert audit_actions(app, "E00121") == [("suppress", ACTOR)]
        assert app.screen.data["suppression"]["reason"] == "legal hold"
        await pilot.press("u", "y")
        await settle(pilot)
        assert audit_actions(app, "E00121")[-1] == ("unsuppress", ACTOR)


async def test_approve_a_held_deactivation_applies_it(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00130")
        await settle(pilot)
        await pilot.press("a", "y")
        await settle(pilot)
        assert op_status(app, "E00130", "deactivate") == ["succeeded"]
        assert ("approve", ACTOR) in audit_actions(app, "E00130")


async def test_a_key_that_does_not_apply_says_why(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00010")
        await settle(pilot)
        assert app.screen.check_action("retry", ()) is None
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        assert any("nothing to retry" in n for n in notes(app))


async def test_held_batch_review_approves_a_group(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HeldScreen)
        assert [(e["run_id"], e["n"], e["why"]) for e in screen.data] == \
            [(2, 30, {"terminated in HR": 30})]
        await pilot.press("a")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.count == 30
        await pilot.press("y")
        await settle(pilot)
        assert app.store.scalar("SELECT count(*) FROM ops WHERE status = 'held'") == 0
        assert ("approve", ACTOR) in audit_actions(app)


async def test_run_drill_down_groups_failures_and_retries_a_group(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_run(2)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert [(f["error_class"], f["n"]) for f in screen.data["failures"]] == \
            [("transient", 1)]
        assert screen.data["held"][0]["n"] == 30
        await pilot.press("r", "y")
        await settle(pilot)
        assert op_status(app, "E00005", "update") == ["succeeded"]


async def test_read_only_has_no_dangerous_bindings(seeded, tmp_path):
    app = make_app(seeded, tmp_path, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.scheduler is None and app.engine is None
        app.open_person("E00005")
        await settle(pilot)
        shown = {b.binding.action for b in app.active_bindings.values()
                 if app.screen.check_action(b.binding.action, ()) is not False}
        assert not shown & {"retry", "suppress", "approve", "reject", "resync", "unsuppress"}
        await pilot.press("r")
        await settle(pilot)
        assert op_status(app, "E00005", "update") == ["failed"]
        assert any("read-only" in n for n in notes(app))
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        assert "Retry" not in str(app.screen.query_one("Static").render())


async def test_engine_busy_surfaces_as_a_notification(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        lease.acquire(app.store, "serve-on-another-host", app.clock.now(), 600)
        app.start_sync("full")
        await settle(pilot)
        assert any("holds the writer lease" in n for n in notes(app))
        assert isinstance(app.screen, DashboardScreen)
