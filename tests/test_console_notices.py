"""Notices never cover the data: they coalesce ("run 812 quarantined" twelve times is one
line that counts), the visible line changes at most once a second, a bounded history keeps
everything, and they are drawn in a bar that is part of each screen's layout. The running
apply's progress follows the engine's per-operation events.
"""

from __future__ import annotations

import threading

import pytest
from textual.widgets import DataTable, Footer
from textual.widgets._toast import Toast

from rostersync.console import messages
from rostersync.console.engine_digest import EngineDigest
from rostersync.console.notices import COALESCE_SECONDS, FRESH_SECONDS, NoticeBoard, is_fresh
from rostersync.console.widgets.notice_bar import NoticeBar, bar_text
from rostersync.sync import events
from tests.console_harness import notes, settle

pytestmark = pytest.mark.anyio

QUARANTINE = "the LMS refused our credentials: token revoked"


# -- coalescing ---------------------------------------------------------------------------

def test_repeats_that_differ_only_in_ids_coalesce_with_the_latest_text():
    board = NoticeBoard(min_change_seconds=0)
    for i, run in enumerate(range(812, 824)):
        board.add("error", "", f"run {run} quarantined: {QUARANTINE}", now=float(i))
    [entry] = board.history()
    assert entry.count == 12 and entry.text == f"run 823 quarantined: {QUARANTINE}"
    assert (entry.first_seen, entry.last_seen) == (0.0, 11.0)
    assert board.visible(11.0).line().endswith("\u00d712")


def test_notices_about_different_people_or_counts_are_not_repeats():
    board = NoticeBoard(min_change_seconds=0)
    board.add("information", "in HR", "hired E02020", 0)
    board.add("information", "in HR", "hired E02021", 1)
    board.add("warning", "", "30 operation(s) held", 2)
    board.add("warning", "", "60 operation(s) held", 3)
    board.add("warning", "", "ops 4411 failed", 4)
    board.add("warning", "", "ops 4412 failed", 5)
    assert [n.count for n in board.history()] == [1, 1, 1, 1, 2]


def test_a_different_severity_title_or_wording_is_a_notice_of_its_own():
    board = NoticeBoard(min_change_seconds=0)
    board.add("error", "", "run 1 quarantined", 0)
    board.add("warning", "", "run 2 quarantined", 1)
    board.add("error", "apply", "run 3 quarantined", 2)
    board.add("error", "", "run 4 failed", 3)
    assert [n.count for n in board.history()] == [1, 1, 1, 1]


@pytest.mark.parametrize(("gap", "count"), [
    (COALESCE_SECONDS - 0.001, 2),  # just inside the window
    (COALESCE_SECONDS, 2),          # exactly at its edge
    (COALESCE_SECONDS + 0.001, 1),  # just past it: a new entry
])
def test_the_coalescing_window_at_its_edge(gap, count):
    board = NoticeBoard(min_change_seconds=0)
    board.add("error", "", "run 1 quarantined", 100.0)
    board.add("error", "", "run 2 quarantined", 100.0 + gap)
    assert board.history()[-1].count == count
    assert len(board.history()) == 3 - count


def test_the_window_counts_from_the_last_repeat_not_the_first():
    board = NoticeBoard(min_change_seconds=0)
    for i in range(5):  # every 50 s for 200 s: never a 60 s gap
        board.add("error", "", f"run {i} quarantined", i * 50.0)
    assert [n.count for n in board.history()] == [5]


def test_history_is_bounded_and_keeps_the_newest():
    board = NoticeBoard(min_change_seconds=0, history=3)
    for i in range(5):
        board.add("information", "", f"notice {'x' * i}", float(i))
    assert [n.text for n in board.history()] == ["notice xx", "notice xxx", "notice xxxx"]
    # An evicted notice starts over instead of counting into a forgotten entry.
    board.add("information", "", "notice ", 5.0)
    assert board.history()[-1].count == 1


# -- the rate limit -----------------------------------------------------------------------

@pytest.mark.parametrize(("gap", "changed"), [(0.999, False), (1.0, True), (1.001, True)])
def test_the_visible_line_changes_at_most_once_a_second(gap, changed):
    board = NoticeBoard(min_change_seconds=1.0)
    board.add("information", "", "first", 10.0)
    board.add("information", "", "second", 10.0 + gap)
    assert board.visible(10.0 + gap).text == ("second" if changed else "first")
    assert [n.text for n in board.history()] == ["first", "second"]  # both kept


def test_a_held_back_line_shows_once_its_turn_comes():
    board = NoticeBoard(min_change_seconds=1.0)
    board.add("information", "", "first", 10.0)
    board.add("information", "", "second", 10.2)
    board.add("information", "", "third", 10.4)
    assert board.visible(10.999).text == "first"
    assert board.visible(11.0).text == "third"  # the latest of the held-back ones
    assert not board.has_pending()


def test_a_flapping_source_cannot_hide_an_error():
    board = NoticeBoard(min_change_seconds=1.0)
    board.add("information", "in HR", "E1 joined", 0.0)
    board.add("error", "", "run 9 quarantined", 0.3)
    for i in range(10):  # routine lines flood in after the error
        board.add("information", "in HR", f"E{i} moved", 0.4 + i * 0.05)
    assert board.visible(1.0).severity == "error"


@pytest.mark.parametrize(("later", "routine_shows"), [
    (7.999, False),  # just inside the operator's line's hold
    (8.0, True),     # exactly at its end
    (8.001, True),   # just past it
])
def test_an_operators_outcome_holds_the_bar_against_routine_lines(later, routine_shows):
    board = NoticeBoard(min_change_seconds=1.0)
    board.add("information", "done", "run 2: 59 approved", 0.0, hold=8.0)
    board.add("information", "in HR", "E00947 went on leave", later - 0.5)
    assert (board.visible(later).title == "in HR") is routine_shows


def test_a_more_severe_notice_does_not_wait_for_a_hold():
    board = NoticeBoard(min_change_seconds=1.0)
    board.add("information", "done", "run 2: 59 approved", 0.0, hold=8.0)
    board.add("error", "", "run 3 quarantined", 1.5)
    assert board.visible(1.5).severity == "error"


def test_a_count_that_grows_is_a_change_of_the_line_too():
    board = NoticeBoard(min_change_seconds=1.0)
    for i in range(10):  # ten repeats within 0.9 s
        board.add("error", "", f"run {i} quarantined", i * 0.1)
    assert board.visible(0.9).count == 1
    assert board.visible(1.0).count == 10


# -- fading -------------------------------------------------------------------------------

@pytest.mark.parametrize("severity", ["error", "warning", "information"])
def test_a_notice_fades_once_its_severity_hold_has_passed(severity):
    board = NoticeBoard(min_change_seconds=0)
    notice = board.add(severity, "", "something", 100.0)
    hold = FRESH_SECONDS[severity]
    assert is_fresh(notice, 100.0 + hold - 0.001)
    assert not is_fresh(notice, 100.0 + hold)
    assert not is_fresh(notice, 100.0 + hold + 0.001)
    assert "dim" not in str(bar_text(notice, 100.0 + hold - 0.001).spans[0].style)
    assert str(bar_text(notice, 100.0 + hold).spans[0].style) == "dim"


def test_errors_stay_bright_longest():
    assert FRESH_SECONDS["error"] > FRESH_SECONDS["warning"] > FRESH_SECONDS["information"]


def test_the_bar_says_count_age_and_where_the_rest_are():
    board = NoticeBoard(min_change_seconds=0)
    for i in range(3):
        board.add("error", "apply", f"run {i} failed", 0.0)
    line = bar_text(board.visible(42.0), 42.0).plain
    assert line == "\u2716 apply: run 2 failed \u00d73 \u00b7 42s ago  (0: log)"
    assert bar_text(None, 0.0).plain == "no notices  (0: log)"


# -- the bar in the console -----------------------------------------------------------------

async def test_a_burst_of_notices_never_covers_the_table_and_raises_no_toast(app):
    """Defect: each quarantined run raised a 10 s error toast; they stacked over ~40% of
    the screen. Toasts are on here (run_test turns them off by default)."""
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await settle(pilot)
        await pilot.press("3")  # the ops list: a DataTable filling the screen
        await settle(pilot)
        for run in range(812, 842):
            app.notify(f"run {run} quarantined: {QUARANTINE}", severity="error", timeout=10)
        app.notify("a long one " + "that wraps " * 20, severity="warning")
        await settle(pilot)
        table = app.screen.query_one(DataTable)
        bar = app.screen.query_one(NoticeBar)
        assert bar.region.height in (1, 2) and table.region.height > 0
        assert not table.region.overlaps(bar.region)
        assert bar.region.bottom <= app.screen.query_one(Footer).region.y
        assert not app.query(Toast) and not app.screen.query(Toast)
        assert app.notice_router.board.history()[0].count == 30


async def test_the_bar_shows_the_latest_notice_with_its_count_on_every_screen(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        for run in range(812, 824):
            app.notify(f"run {run} quarantined: {QUARANTINE}", severity="error")
        await settle(pilot)
        home = app.screen.query_one(NoticeBar)
        assert "run 823 quarantined" in home.render().plain
        assert "\u00d712" in home.render().plain
        await pilot.press("2")
        await settle(pilot)
        assert "\u00d712" in app.screen.query_one(NoticeBar).render().plain


async def test_a_confirmed_action_and_its_run_each_say_so_once(app):
    """Defect: a console-started run notified when it finished and again when run_engine
    returned. Approving the 30 held deactivations is an outcome and one apply run."""
    seen: list[tuple[str, int, int | None]] = []

    def watch(_message) -> None:
        if app.job is not None:
            seen.append((app.job["phase"], app.job["done"], app.job["total"]))

    async with app.run_test(size=(120, 40), message_hook=watch) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        run_id = app.store.scalar("SELECT max(id) FROM runs")
        outcomes = [n for n in notes(app) if f"run {run_id} " in n]
        assert outcomes == [f"apply: run {run_id} succeeded"]  # title: text, as logged
        assert "done: run 2: 30 approved" in notes(app)
        bar = app.screen.query_one(NoticeBar).render().plain
        assert f"run {run_id} succeeded" in bar
        # The Job panel's count followed the ops (it stayed at 0 of 30 before).
        assert ("apply", 30, 30) in seen


async def test_a_failed_console_run_is_announced_once(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.start_resync("E99999")  # not in the HRIS export: the run fails
        await settle(pilot)
        run_id = app.store.scalar("SELECT max(id) FROM runs")
        outcomes = [n for n in notes(app) if f"run {run_id} " in n]
        assert len(outcomes) == 1 and outcomes[0].startswith(f"resync E99999: run {run_id} failed: E99999")


async def test_a_hold_is_said_in_the_runs_one_outcome_notice(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        post = app._engine_event
        post(events.RunStarted(70, "full", "schedule", False))
        post(events.OpsHeld(70, 30, "mass deactivation"))
        post(events.RunFinished(70, "held"))
        await settle(pilot)
        assert [n for n in notes(app) if "held" in n] == [
            "run 70 held: 30 operation(s) held: mass deactivation"]


# -- progress from the engine's per-operation events ----------------------------------------

async def test_finished_operations_move_the_job_count(app):
    """Defect: the bar stayed at "apply 0/3018 0%" while 2,859 ops succeeded."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app._engine_event(events.RunStarted(41, "retry", "schedule", False))
        app._engine_event(events.Progress(41, "apply", 0, 500))

        def apply() -> None:  # the engine's events arrive from another thread
            for op in range(1, 321):
                app._engine_event(events.OpFinished(
                    41, op, f"E{op:05d}", "update", "succeeded" if op % 40 else "failed",
                    None if op % 40 else "503: upstream"))

        worker = threading.Thread(target=apply)
        worker.start()
        worker.join()
        await settle(pilot)
        assert app.job == {"run_id": 41, "kind": "retry", "phase": "apply", "done": 320,
                           "total": 500}
        app._engine_event(events.RunFinished(41, "partial"))
        await settle(pilot)
        assert app.job is None


def test_the_count_posts_one_tick_until_the_console_reads_it():
    digest = EngineDigest()
    digest.count(events.Progress(5, "apply", 0, 10))
    posted = [digest.count(events.OpFinished(5, op, "E1", "update", "succeeded"))
              for op in range(1, 5)]
    assert posted == [True, False, False, False]
    assert digest.applied(5) == 4
    assert digest.count(events.OpFinished(5, 5, "E1", "update", "succeeded"))
    assert digest.applied(6) is None  # another run: not this apply


def test_an_inline_retry_counts_its_op_once_and_a_new_round_starts_at_zero():
    digest = EngineDigest()
    digest.count(events.Progress(5, "apply", 0, 10))
    digest.count(events.OpFinished(5, 1, "E1", "update", "failed", "503"))
    digest.count(events.OpFinished(5, 1, "E1", "update", "succeeded"))
    assert digest.applied(5) == 1
    digest.count(events.Progress(5, "apply", 0, 2))
    assert digest.applied(5) == 0


def test_queued_progress_ticks_collapse():
    tick, same, other = (messages.OpsApplied(5), messages.OpsApplied(5),
                         messages.OpsApplied(6))
    assert tick.can_replace(same) and not tick.can_replace(other)
    first = messages.RunProgress(events.Progress(5, "evaluate", 100, 900))
    assert first.can_replace(messages.RunProgress(events.Progress(5, "evaluate", 200, 900)))
    assert not first.can_replace(messages.RunProgress(events.Progress(6, "pull", 0)))
