"""The run screen: the operations that failed in a run (whichever run planned them), its
counts as a table, and the run in progress with its phase and progress.

The seeded world (tests/console_harness.py): run 2 planned E00005's title change, which
failed there (the LMS answered 503); run 2 held 30 deactivations.
"""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from textual.geometry import Region

from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.run import RunScreen
from rostersync.storage import run_detail
from rostersync.storage import runs as run_store
from tests.console_harness import SIZE, settle
from tests.support import Refusing

pytestmark = pytest.mark.anyio


def lines_of(widget) -> str:
    """The widget's lines as drawn on screen, border and wrapping included."""
    return "\n".join(strip.text for strip in
                     widget.render_lines(Region(0, 0, *widget.outer_size)))


def text_of(widget, width: int = 100) -> str:
    console = Console(width=width, record=True, file=io.StringIO())
    console.print(widget.content)
    return console.export_text()


def e00005_update(store) -> int:
    return store.scalar("SELECT id FROM ops WHERE employee_id = 'E00005' AND kind = 'update'")


def failing_for(store, lms, employee_id: str):
    """The LMS answers 503 to every change of this person's account, as in the seeding."""
    lms_id = store.scalar("SELECT lms_id FROM accounts WHERE external_key = ?", (employee_id,))
    return Refusing(lambda method, path: ((503, {}, b"upstream maintenance")
                                          if method in ("PATCH", "PUT") and lms_id in path
                                          else None))


async def test_a_retry_run_lists_the_failures_made_in_it_and_retries_them(app, seeded):
    """Defect: run 2 planned the op, a later retry run failed it, and that run's screen
    showed an empty failures table (failures were grouped by the planning run)."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        seeded.lms.fault = failing_for(app.store, seeded.lms, "E00005")
        try:
            await pilot.press("r", "y")  # the operator's retry: a retry run, failing again
            await settle(pilot)
        finally:
            seeded.lms.fault = None
        retry_run = app.store.scalar("SELECT max(id) FROM runs")
        assert retry_run > 2
        assert app.store.scalar("SELECT run_id FROM ops WHERE id = ?",
                                (e00005_update(app.store),)) == 2
        app.open_run(retry_run)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunScreen)
        assert [(f["error_class"], f["n"], f["still_failing"])
                for f in screen.data["failures"]] == [("transient", 1, 1)]
        assert "upstream maintenance" in lines_of(screen.query_one("#failure-example"))
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal) and app.screen.count == 1
        await pilot.press("y")
        await settle(pilot)
        assert app.store.scalar("SELECT status FROM ops WHERE id = ?",
                                (e00005_update(app.store),)) == "succeeded"


async def test_a_failure_fixed_later_stays_listed_but_is_not_retried(app):
    """The run's history does not change when a later run succeeds; the retry of the
    group acts only on what still fails."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        await pilot.press("r", "y")  # the LMS answers now: the retry succeeds
        await settle(pilot)
        assert run_detail.failed_ids(app.store, 2, "transient") == []
        app.open_run(2)
        await settle(pilot)
        assert [(f["n"], f["still_failing"]) for f in app.screen.data["failures"]] == [(1, 0)]
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen)  # nothing left to retry: no dialog


def test_attempts_recorded_before_runs_were_kept_count_for_the_planning_run(app):
    """A database migrated to schema 8 has attempts without a run: they stay the
    planning run's failures, as they were shown before."""
    app.store.conn.execute("UPDATE op_attempts SET run_id = NULL")
    assert [(f["error_class"], f["n"]) for f in
            run_detail.run_detail(app.store, 2)["failures"]] == [("transient", 1)]
    assert run_detail.failed_ids(app.store, 2, "transient") == [e00005_update(app.store)]
    assert run_detail.failed_ids(app.store, 1, "transient") == []


async def test_counts_are_a_table_of_labelled_figures_not_json(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_run(2)
        await settle(pilot)
        counts = lines_of(app.screen.query_one("#run-counts"))
        assert not re.search(r'[{}"]', counts)
        assert re.search(r"held new +30\b", counts)
        assert re.search(r"drift +invalid 1 · mismatch 1 · pending termination 30", counts)


async def test_the_run_in_progress_shows_its_phase_progress_and_start(app):
    """Defect: Enter on the running run showed `{}`."""
    now = app.clock.now()
    run_id = run_store.start_run(app.store, now, "full", "console", False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.job = {"run_id": run_id, "kind": "full", "phase": "apply", "done": 120,
                   "total": 3018}
        app.open_run(run_id)
        await settle(pilot)
        summary = lines_of(app.screen.query_one("#run-summary"))
        assert "RUNNING" in summary and "still running" in summary
        assert "phase apply 120 of 3018 (4%)" in summary
        assert "started 2026-11-26 12:20:00 UTC, 0s ago" in summary
        assert "{}" not in summary
        assert not app.screen.query_one("#run-counts").display


async def test_a_run_another_process_runs_says_so(app):
    run_id = run_store.start_run(app.store, app.clock.now(), "full", "schedule", False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_run(run_id)
        await settle(pilot)
        summary = lines_of(app.screen.query_one("#run-summary"))
        assert "RUNNING" in summary and "another process is running it" in summary


async def test_run_screen_keeps_failures_on_screen_at_80x24(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_run(2)
        await settle(pilot)
        table = app.screen.query_one("#failures")
        # The border, the header and the first failure are above the footer (row 23).
        assert table.region.height >= 3 and table.region.y + 3 <= 23
