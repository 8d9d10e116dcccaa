"""The dashboard in a small terminal and in an incident: the alert banner folds to one
line with a count and unfolds on `b`; at 80x24 Health, Terminations and Operations are
on screen and uncovered; every figure opens the list behind it; a read-only console
says how to act and shows the runs another process makes; the trends have axes and a
single run is one point, not a bar across the width.

The seeded world (tests/console_harness.py): runs 1 and 2, 30 held deactivations, one
failed op (E00005), drift: 1 invalid, 1 unmapped, 1 mismatch, 30 pending terminations.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.command import CommandPalette

from rostersync.console.screens.dashboard import OP_FIGURES, DashboardScreen
from rostersync.console.screens.held import HeldScreen
from rostersync.console.screens.lists import DriftList, OpsList, ScheduledList, TerminationsList
from rostersync.console.screens.run import RunScreen
from rostersync.console.widgets.banner import Banner, fit, folded
from rostersync.console.widgets.figures import FigureList
from rostersync.console.widgets.trend_chart import POINT, TrendChart, plan
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage import trends
from rostersync.storage.db import Store, ts
from rostersync.sync.models import OpKind, OpStatus
from rostersync.sync.plan import NewOp
from tests.console_harness import START, VIEWED_AT, fresh_db, make_app, settle

pytestmark = pytest.mark.anyio

SMALL = (80, 24)  # the smallest terminal the console promises to work in
QUARANTINE = ("circuit breaker open: the LMS answered 401 to 5 requests in a row; the "
              "token may have been revoked or rotated")
OUTAGE = "[Errno 111] Connection refused while reading https://hris.example/api/v1/people"


def quarantine(app) -> None:
    run_store.set_job_state(app.store, app.clock.now(), "quarantined", QUARANTINE)


def hris_down(app) -> None:
    run_store.source_attempt(app.store, "hris", app.clock.now(), "csv", error=OUTAGE,
                             error_class="source_unreachable")


def banner_text(app) -> str:
    return str(app.screen.query_one(Banner).render())


def screen_text(app) -> str:
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def braille(text: str) -> int:
    return sum(1 for ch in text if 0x2800 < ord(ch) <= 0x28FF)


# -- the banner ----------------------------------------------------------------------

def test_a_folded_line_fits_its_width_exactly_and_keeps_the_culprit():
    line = "HRIS UNREACHABLE since 2026-11-26 09:16:00 UTC: no such file /data/gone.csv"
    assert fit(line, len(line)) == line                      # exactly fits: whole
    cut = fit(line, len(line) - 1)                           # one short: cut in the middle
    assert len(cut) == len(line) - 1 and "…" in cut
    assert cut.startswith("HRIS UNREACHABLE") and cut.endswith("gone.csv")
    assert folded([line], len(line)) == line                 # one alert that fits: no hint
    assert folded([line], len(line) - 1).endswith(" (b)")    # cut: how to read the rest
    assert folded([line, "b"], 200).endswith(" · +1 more alert (b)")
    assert folded([line, "b", "c"], 200).endswith(" · +2 more alerts (b)")
    assert len(folded([line, "b", "c"], 60)) == 60


async def test_several_alerts_fold_to_one_line_most_severe_first_and_b_unfolds(app):
    quarantine(app)
    hris_down(app)  # three alerts: quarantined, HRIS unreachable, 30 held
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        banner = app.screen.query_one(Banner)
        assert banner.region.height == 1
        text = banner_text(app)
        assert text.startswith("JOB QUARANTINED: circuit breaker")
        assert text.endswith(" · +2 more alerts (b)") and len(text) <= SMALL[0]

        await pilot.press("b")
        await settle(pilot)
        banner = app.screen.query_one(Banner)
        lines = banner_text(app).splitlines()
        assert len(lines) == 3
        assert lines[0].startswith("JOB QUARANTINED: ")
        assert lines[1].startswith("HRIS UNREACHABLE since ")
        assert lines[2] == "30 OPERATION(S) HELD FOR APPROVAL (press 7 to review)"
        assert QUARANTINE in lines[0] and OUTAGE in lines[1]  # unfolded: whole, wrapped
        assert banner.region.height > len(lines)  # a line longer than 78 cells wraps

        await pilot.press("b")
        await settle(pilot)
        assert app.screen.query_one(Banner).region.height == 1


async def test_one_alert_that_fits_is_shown_without_a_count(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        assert banner_text(app) == "30 OPERATION(S) HELD FOR APPROVAL (press 7 to review)"


async def test_read_only_banner_says_how_to_resume_instead_of_the_palette(seeded, tmp_path):
    for read_only, expected, absent in ((True, "resume with `rostersync resume`",
                                         "palette: resume"),
                                        (False, "palette: resume", "rostersync resume")):
        app = make_app(seeded, tmp_path / str(read_only), read_only=read_only)
        run_store.set_job_state(app.store, app.clock.now(), "paused", "maintenance")
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            text = banner_text(app)
            assert text.startswith("JOB PAUSED: maintenance")
            assert expected in text and absent not in text


# -- the layout ------------------------------------------------------------------------

async def test_at_80x24_with_the_banner_health_terminations_and_ops_are_uncovered(app):
    quarantine(app)
    hris_down(app)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.query_one(Banner).display
        for panel_id in ("health", "terminations", "ops"):
            panel = screen.query_one(f"#{panel_id}")
            region = panel.region
            assert region.x >= 0 and region.right <= SMALL[0], panel_id
            assert region.y >= 2 and region.bottom <= SMALL[1] - 1, panel_id  # above footer
            inside = panel.content_region
            for x, y in ((inside.x, inside.y), (inside.right - 1, inside.bottom - 1)):
                assert screen.get_widget_at(x, y)[0] is panel, (panel_id, x, y)
        ops = screen_text(app)
        assert "failed" in ops and "succeeded" in ops and "past SLA" in ops


async def test_health_reasons_and_the_last_error_are_wrapped_not_cut(app):
    quarantine(app)
    hris_down(app)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        health = app.screen.query_one("#health")
        assert f"the sync job is quarantined: {QUARANTINE}" in health.render().plain
        app.screen.query_one("#staleness").scroll_visible(animate=False)
        await settle(pilot)
        shown = " ".join(screen_text(app).replace("│", " ").split())
        assert "hris.example/api/v1/people" in shown  # the end of a 90-character error


@pytest.mark.parametrize(("size", "classes"), [
    ((109, 40), {"-narrow", "-tall"}), ((110, 40), {"-wide", "-tall"}),
    ((120, 33), {"-wide", "-short"}), ((120, 34), {"-wide", "-tall"})])
async def test_the_breakpoints_are_where_the_layout_says(app, size, classes):
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        assert {c for c in app.screen.classes if c.startswith("-")} == classes


# -- drilling down -------------------------------------------------------------------

async def highlight(pilot, panel_id: str, key: str) -> FigureList:
    figures = pilot.app.screen.query_one(f"#{panel_id}", FigureList)
    figures.focus()
    await settle(pilot)
    while figures.highlighted_key != key:
        await pilot.press("down")
    return figures


async def test_enter_on_the_failed_figure_opens_the_failed_ops(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await highlight(pilot, "ops", "ops:failed")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OpsList) and screen.status == "failed"
        assert screen.total == 1 and screen.data.rows[0]["employee_id"] == "E00005"


async def test_enter_on_a_drift_kind_opens_that_kind(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("tab", "tab")  # Terminations -> Operations -> Drift
        assert app.screen.focused is app.screen.query_one("#drift")
        await highlight(pilot, "drift", "drift:invalid")
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DriftList) and screen.status == "invalid"
        assert screen.total == 1 and screen.data.rows[0]["subject"] == "E00007"


@pytest.mark.parametrize(("key", "screen_class"), [
    ("terminations:pending", TerminationsList), ("terminations:overdue", TerminationsList),
    ("terminations:scheduled", ScheduledList)])
async def test_enter_on_a_termination_figure_opens_its_list(app, key, screen_class):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await highlight(pilot, "terminations", key)
        await pilot.press("enter")
        await settle(pilot)
        assert type(app.screen) is screen_class


async def test_a_click_on_held_opens_the_held_review(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        row = OP_FIGURES.index("held")
        await pilot.click("#ops", offset=(3, 1 + row))  # below the top border
        await settle(pilot)
        assert isinstance(app.screen, HeldScreen)


async def test_enter_with_no_figure_focused_says_what_to_do(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        app.screen.set_focus(None)
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        assert any("Tab to a figure" in n for n in app.notices_seen())


# -- read-only: the runs another process makes ------------------------------------------

async def test_read_only_job_panel_shows_the_running_run_and_the_last_one(seeded, tmp_path):
    app = make_app(seeded, tmp_path, read_only=True)
    started = app.clock.now() - timedelta(minutes=3)
    run_id = run_store.start_run(app.store, started, "delta", "schedule", False)
    with app.store.tx() as conn:
        op_store.insert_ops(conn, started, run_id, [
            NewOp(employee_id=f"E{i:05d}", kind=OpKind.update, payload={"title": "x"},
                  idem_key=f"E{i:05d}:running:{run_id}", reason="differs from HR",
                  lms_id=None, not_before=None, status=OpStatus.pending)
            for i in range(10, 14)], 5)
        conn.execute("UPDATE ops SET status = 'succeeded' WHERE run_id = ? AND "
                     "employee_id = 'E00010'", (run_id,))
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        job = str(app.screen.query_one("#job-line").render())
        assert f"run {run_id} delta running (schedule)" in job
        assert "3m" in job and "ago" in job
        assert "ops 1/4 done" in job
        assert "last: run 2 full held" in job
        assert "idle" not in job
        assert "read-only" in str(app.screen.query_one("#next-runs").render())


async def test_read_only_job_panel_is_idle_when_nothing_runs(seeded, tmp_path):
    app = make_app(seeded, tmp_path, read_only=True)
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        job = str(app.screen.query_one("#job-line").render())
        assert job.startswith("idle") and "last: run 2 full held" in job


# -- the trends ------------------------------------------------------------------------

def test_a_chart_plan_is_empty_a_point_or_a_line():
    t = 1_800_000_000.0
    assert plan("drift", [], []).mode == "empty"
    one = plan("drift", [t], [33])
    assert one.mode == "point" and one.xs == (t,) and "1 run so far" in one.title
    assert one.xlim[0] < t < one.xlim[1]  # the point sits inside a window, not at its edge
    two = plan("drift", [t, t + 60], [33, 10])
    assert two.mode == "line" and two.xlim == (t, t + 60) and two.title == "drift: 10"
    assert plan("age", [t, t + 60], [None, 4.5]).mode == "point"  # no value: left out


async def test_a_single_run_draws_one_point_not_a_bar_across_the_width(app):
    app.store.conn.execute("DELETE FROM runs WHERE id = 2")
    app.store.conn.commit()
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        chart = app.screen.query_one("#chart-drift", TrendChart)
        assert chart.current.mode == "point" and chart.current.ys == (150.0,)
        drawn = chart.render().plain
        assert drawn.count(POINT) == 1 and braille(drawn) == 0
        assert "1 run so far" in drawn and "09:00" in drawn  # its value and its time


async def test_two_runs_draw_a_line_with_a_time_axis(app):
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        chart = app.screen.query_one("#chart-drift", TrendChart)
        assert chart.current.mode == "line" and chart.current.ys == (150.0, 33.0)
        drawn = chart.render().plain
        assert braille(drawn) > 10 and POINT not in drawn
        assert "09:00" in drawn and "10:00" in drawn and "drift: 33" in drawn


def test_trends_per_run_and_the_apply_rate_count_each_op_once_edges_included(seeded,
                                                                              tmp_path):
    store = Store(fresh_db(seeded, tmp_path))
    start, now = START, VIEWED_AT
    # A run at 11:00 that could not read the HRIS: no feed, so the data it had aged.
    run_id = run_store.start_run(store, start + timedelta(hours=2), "delta", "schedule", False)
    run_store.finish_run(store, run_id, start + timedelta(hours=2), "failed", {})
    series = trends.run_trends(store, now)
    assert series["at"] == [start.timestamp(), (start + timedelta(hours=1)).timestamp(),
                            (start + timedelta(hours=2)).timestamp()]
    assert series["drift"] == [150, 33, 0] and series["failed"] == [0, 1, 0]
    assert series["hris_age_minutes"] == [0.0, 0.0, 60.0]

    def applied(rate) -> float:
        size = rate["at"][1] - rate["at"][0]
        return sum(rate["per_minute"]) * size / 60

    # The first run's 150 creates finished at `start` exactly: inside the window.
    assert applied(series["apply"]) == pytest.approx(150)
    for at, inside in ((start - timedelta(microseconds=1), False), (now, True),
                       (now - timedelta(microseconds=1), True)):
        store.conn.execute("UPDATE ops SET finished_at = ? WHERE id = (SELECT min(id) FROM "
                           "ops WHERE status = 'held')", (ts(at),))
        store.conn.commit()
        rate = trends.apply_rate(store, start, now)
        assert applied(rate) == pytest.approx(151 if inside else 150), at


async def test_slash_opens_the_palette_and_L_the_last_run(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        await settle(pilot)
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("L")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen) and app.screen.run_id == 2


def test_the_next_runs_read_as_time_left_not_timestamps():
    from datetime import UTC, datetime, timedelta

    from rostersync.console.screens.dashboard import _due_in

    now = datetime(2026, 12, 5, 17, 36, tzinfo=UTC)
    assert _due_in((now + timedelta(seconds=4)).isoformat(), now) == "in 4s"
    assert _due_in(now.isoformat(), now) == "in 0s"
    assert _due_in((now - timedelta(seconds=1)).isoformat(), now) == "in 0s"  # overdue
    assert _due_in(None, now) == "paused"
