"""The live log (key 0): the engine's events, every notice and the operator's actions
(from this console, the CLI or another console), filterable as you type, pausable, one
kind at a time; 20,000 successful ops read as a few summed lines, not 20,000.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from rich.text import Text
from textual.widgets import Log

from rostersync.console import actions
from rostersync.console.cli import main
from rostersync.console.engine_digest import EngineDigest
from rostersync.console.live_log import LogRing, audit_text, select, stamp
from rostersync.console.screens.log import (
    _TEXT,
    EntryHighlighter,
    LogScreen,
    entry_line,
    entry_lines,
)
from rostersync.storage.db import Store
from rostersync.sync import events
from tests.console_harness import VIEWED_AT, settle
from tests.support import write_config

pytestmark = pytest.mark.anyio

AT = datetime(2026, 11, 26, 12, 20, tzinfo=UTC)


def shown(app) -> str:
    return "\n".join(app.screen.query_one(Log).lines)


def title(app) -> str:
    return str(app.screen.query_one("#log-title").content)


# -- the ring and the selection (pure) -------------------------------------------------------

def test_the_ring_is_bounded_and_numbers_what_it_keeps():
    ring = LogRing(capacity=3)
    for i in range(5):
        ring.append("engine", f"line {i}", AT)
    assert [e.text for e in ring.entries()] == ["line 2", "line 3", "line 4"]
    assert [e.seq for e in ring.entries()] == [3, 4, 5] and ring.last_seq == 5


def test_appends_from_many_threads_lose_nothing():
    ring = LogRing(capacity=10_000)
    threads = [threading.Thread(target=lambda n=n: [ring.append("engine", f"{n}", AT)
                                                    for _ in range(500)]) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ring) == 4_000 and sorted(e.seq for e in ring.entries()) == list(
        range(1, 4_001))


def test_a_line_has_date_time_and_zone():
    assert stamp(datetime(2026, 12, 5, 16, 15, 10, tzinfo=UTC)) == "2026-12-05 16:15:10 UTC"
    ring = LogRing()
    entry = ring.append("notice", "run 4 quarantined", AT)
    assert entry.line() == "2026-11-26 12:20:00 UTC  notice   run 4 quarantined"


def test_the_filter_is_a_case_blind_substring_of_the_whole_line():
    ring = LogRing()
    ring.append("engine", "run 4 finished quarantined: token revoked", AT)
    ring.append("operator", "ana approve · ops 30", AT + timedelta(days=1))
    ring.append("notice", "pending_termination backlog", AT)
    entries = ring.entries()
    assert [e.seq for e in select(entries, None, "QUARANT")] == [1]
    assert [e.seq for e in select(entries, None, "operator")] == [2]  # the kind column
    assert [e.seq for e in select(entries, None, "2026-11-27")] == [2]  # the date
    assert [e.seq for e in select(entries, None, "pending_termination")] == [3]
    assert [e.seq for e in select(entries, "engine", "")] == [1]
    assert [e.seq for e in select(entries, "engine", "approve")] == []


def test_audit_rows_read_as_a_sentence_with_id_lists_counted():
    row = {"actor": "ana", "action": "approve", "target": "E00005",
           "detail": '{"ops": [1, 2, 3], "run": 2, "skipped": [], "reason": null}'}
    assert audit_text(row) == "ana approve E00005 · ops 3 · run=2 · skipped 0"


# -- what the engine's events become -----------------------------------------------------------

def test_failures_are_lines_and_successes_are_summed_every_few_seconds():
    digest = EngineDigest(success_line_seconds=2.0)
    digest.count(events.Progress(7, "apply", 0, 20_000))
    lines = []

    def finish(op: int, now: float, status: str = "succeeded") -> None:
        event = events.OpFinished(7, op, f"E{op:05d}", "update", status,
                                  "503: upstream" if status != "succeeded" else None)
        digest.count(event)
        lines.extend(digest.lines(event, now))

    finish(1, 10.0)  # the window opens with the first success
    for op in range(2, 1000):
        finish(op, 10.0 + op * 0.001)
    finish(1000, 11.999)  # just below the edge
    assert lines == []
    finish(1001, 12.0)  # exactly at it: one line for all of them
    assert lines == [("information", "run 7: 1,001 operation(s) succeeded (1,001/20,000 done)")]
    finish(1002, 12.5, "dead")
    assert lines[-1] == ("error", "run 7: op 1002 update E01002 dead: 503: upstream")
    finish(1003, 13.0)
    lines.extend(digest.lines(events.RunFinished(7, "partial"), 13.1))
    assert lines[-2:] == [
        ("information", "run 7: 1 operation(s) succeeded (1,003/20,000 done)"),
        ("warning", "run 7 finished partial")]


def test_a_phase_is_a_line_when_it_changes_not_for_every_batch():
    digest = EngineDigest()
    lines = [line for done in (0, 500, 1000) for line in
             digest.lines(events.Progress(3, "evaluate", done, 1500), 0.0)]
    assert lines == [("information", "run 3 evaluate (1,500 to do)")]


# -- the log screen -------------------------------------------------------------------------

async def test_key_0_opens_the_log_with_notices_engine_events_and_operator_actions(app):
    async with app.run_test(size=(120, 30)) as pilot:  # one row per entry at this width
        await settle(pilot)
        app._engine_event(events.RunStarted(77, "full", "schedule", False))
        app._engine_event(events.Quarantined(77, "the LMS refused our credentials"))
        app._engine_event(events.RunFinished(77, "quarantined", {},
                                             "the LMS refused our credentials"))
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        assert isinstance(app.screen, LogScreen)
        text = shown(app)
        assert "run 77 full started by schedule" in text
        assert "engine   \u2716 run 77 finished quarantined" in text  # an error's mark
        assert "notice   \u2716 run 77 quarantined: the LMS refused our credentials" in text
        assert "operator sync" in text  # the seeded world's audit row (the CLI's)
        assert "2026-11-26 12:20:00 UTC" in text
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, LogScreen)


async def test_the_filter_narrows_as_you_type_and_escape_clears_it(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.notify("run 812 quarantined: token revoked", severity="error")
        app.notify("E00082 joined Sales", title="in HR")
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        await pilot.press("slash", *"QUARANTINED")
        await settle(pilot)
        assert "run 812 quarantined" in shown(app) and "E00082" not in shown(app)
        assert "filter: 'QUARANTINED'" in title(app)
        await pilot.press("escape")
        await settle(pilot)
        assert "E00082 joined Sales" in shown(app) and "run 812" in shown(app)
        assert isinstance(app.screen, LogScreen)  # the first Esc only cleared the filter


async def test_paused_the_view_stops_and_counts_what_arrives(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        await pilot.press("p")
        await settle(pilot)
        assert "paused · 0 new" in title(app)
        for i in range(3):
            app.notify(f"E0010{i} moved to Finance", title="in HR")
        await settle(pilot)
        assert "paused · 3 new" in title(app)
        assert "moved to Finance" not in shown(app)
        await pilot.press("p")
        await settle(pilot)
        assert shown(app).count("moved to Finance") == 3
        assert "live" in title(app) and "paused" not in title(app)


async def test_f_cycles_the_kind_shown(app):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.notify("a notice")
        app._engine_event(events.RunStarted(78, "delta", "schedule", False))
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        kinds = []
        for _ in range(4):
            await pilot.press("f")
            await settle(pilot)
            text = shown(app)
            kinds.append(("a notice" in text, "run 78 delta" in text, "operator sync" in text))
        assert kinds == [(True, False, False), (False, True, False), (False, False, True),
                         (True, True, True)]


async def test_operator_actions_from_the_console_api_and_the_cli_appear(app, seeded, tmp_path):
    """Rows are polled from the audit table by id, so actions taken elsewhere show too."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        held = [r[0] for r in app.store.conn.execute(
            "SELECT id FROM ops WHERE status = 'held' ORDER BY id LIMIT 2")]
        other = Store(app.config.database.path)  # another process's connection
        actions.approve(other, VIEWED_AT, held, "dana", run=2)
        config = write_config(tmp_path, seeded.base_url, seeded.csv_path)  # the same db
        assert app.config.database.path == tmp_path / "rostersync.db"
        assert main(["ops", "approve", "--run", "2", "--defer", "--json",
                     "--config", str(config)]) == 0
        app.refresh_screen()
        await settle(pilot)
        text = shown(app)
        assert "dana approve · ops 2 · people 2 · run=2 · skipped 0" in text
        assert text.count(" approve ") == 2  # and the CLI's, with the remaining 28
        assert "ops 28" in text


def test_a_drawn_row_is_styled_by_its_columns():
    ring = LogRing()
    failed = ring.append("engine", "run 7 finished failed", AT, "error")
    done = ring.append("operator", "ana approve · ops 3", AT)
    assert entry_line(failed) == "2026-11-26 12:20:00 UTC  engine   \u2716 run 7 finished failed"
    assert entry_line(done) == "2026-11-26 12:20:00 UTC  operator ana approve · ops 3"
    text = Text(entry_line(failed))
    EntryHighlighter().highlight(text)
    styles = {(span.start, span.end, str(span.style)) for span in text.spans}
    assert styles == {(0, 23, "dim"), (25, 34, "cyan"), (34, len(text), "bold red")}


@pytest.mark.parametrize(("spare", "rows"), [(0, 1), (-1, 2)])
def test_an_entry_wraps_only_past_the_width(spare, rows):
    from rostersync.console.live_log import LogEntry

    entry = LogEntry(1, VIEWED_AT, "engine", "error", ("the LMS refused our credentials " * 3).strip())
    width = len(entry_line(entry)) + spare  # exactly as wide as the line; one cell less
    lines = entry_lines(entry, width)
    assert len(lines) == rows and all(len(line) <= width for line in lines)
    assert " ".join(" ".join(line[_TEXT:].split()) for line in lines) \
        == "\u2716 " + " ".join(entry.text.split())
    assert entry_lines(entry, 0) == [entry_line(entry)]  # no width known yet: one row


async def test_at_80x24_a_long_entry_is_read_whole_without_scrolling(app):
    reason = ("SCIM search by externalId E01776 failed: 401: the bearer token was revoked "
              "(check the token in $ROSTERSYNC_LMS_TOKEN)")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app._engine_event(events.Quarantined(None, reason))
        await settle(pilot)
        await pilot.press("0")
        await settle(pilot)
        rows = app.screen.query_one(Log).lines
        width = app.screen.query_one(Log).scrollable_content_region.width
        assert all(len(row) <= width for row in rows)
        assert reason in " ".join(" ".join(row.split()) for row in rows)
