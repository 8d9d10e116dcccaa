"""Text an operator reads in full: times with their year and zone, a termination in the
person's own zone, drift details as lines (never a Python repr), long reasons and errors
wrapped instead of cut, a separator between styled pieces, and help that starts with the
keys of the screen it was asked from.

The seeded world (tests/console_harness.py): E00005's title change failed (503), E00007's
e-mail is invalid, E00009's department is unmapped, run 2 held 30 deactivations.
"""

from __future__ import annotations

import json

import pytest

from rostersync.console import fmt
from rostersync.console.screens.help import HelpScreen, ordered_sections
from tests.console_harness import SIZE, settle
from tests.test_console_run import lines_of, text_of

pytestmark = pytest.mark.anyio

MASS_HOLD = ("mass deactivation: 30 deactivations in one run exceed the limit of 25 "
             "(max(25, 2% of 150 active accounts))")


# -- times -------------------------------------------------------------------------------

def test_short_time_names_the_year_and_the_zone():
    assert fmt.short_time("2026-12-05T16:15:10.000000Z") == "2026-12-05 16:15:10 UTC"
    assert fmt.compact_time("2026-12-05T16:15:10.000000Z") == "2026-12-05 16:15 UTC"
    assert fmt.short_time("2026-12-05T17:15:10+01:00") == "2026-12-05 16:15:10 UTC"
    assert fmt.short_time(None) == "-"


def test_a_moment_in_the_persons_zone_keeps_utc_beside_it():
    stored = "2026-12-05T23:00:00.000000Z"
    assert fmt.zoned_time(stored, "Europe/Berlin") == \
        "2026-12-06 00:00 Europe/Berlin (2026-12-05 23:00 UTC)"
    # Summer time: the offset is the one in force on that day, not the zone's standard one.
    assert fmt.zoned_time("2026-06-30T22:00:00.000000Z", "Europe/Berlin") == \
        "2026-07-01 00:00 Europe/Berlin (2026-06-30 22:00 UTC)"
    assert fmt.zoned_time(stored, "UTC") == "2026-12-05 23:00 UTC"
    assert fmt.zoned_time(stored, "Mars/Olympus") == "2026-12-05 23:00 UTC"


# -- drift details -----------------------------------------------------------------------

def test_drift_detail_is_lines_never_a_python_repr():
    detail = {"user_name": "chloe.costa", "candidates": [
        {"lms_id": "u8", "user_name": "legacy-8", "external_key": None},
        {"lms_id": "u9", "user_name": "old.account.8", "external_key": "E00008"}]}
    assert fmt.detail_lines(detail) == [
        "user name: chloe.costa",
        "candidates: legacy-8 (no key), old.account.8 (key E00008)"]
    assert fmt.detail_lines(json.dumps({"fields": {"department": "Quantum Lab"}})) == \
        ["fields: department Quantum Lab"]
    assert fmt.detail_lines({"effective_at": "2026-11-21T05:00:00+00:00", "hr_status": "x"}) \
        == ["effective at: 2026-11-21 05:00:00 UTC", "hr status: x"]
    summary = fmt.detail_summary(detail, 200)
    assert "{" not in summary and "'" not in summary and "None" not in summary


# -- the person screen -------------------------------------------------------------------

async def test_person_heading_separates_the_id_from_the_name(app):
    """Defect: "E00082Chloe Costa"."""
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        who = lines_of(app.screen.query_one("#who"))
        assert "E00005 Fatima Novak · status active" in who


async def test_person_panels_put_a_space_between_styled_pieces(app):
    """Defects: "invalid(owner HR", "succeeded1/6 tries"."""
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00007")
        await settle(pilot)
        assert "invalid (owner HR, since 2026-11-26 10:00:00 UTC)" in \
            lines_of(app.screen.query_one("#problems"))
        app.pop_screen()
        app.open_person("E00005")
        await settle(pilot)
        history = text_of(app.screen.query_one("#history"), width=200)
        assert " update failed 1/6 tries · differs from HR" in history


async def test_a_long_error_wraps_in_the_history_instead_of_being_cut(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        history = lines_of(app.screen.query_one("#history"))
        assert "upstream" in history and "maintenance" in history and "…" not in history


async def test_unmapped_fields_read_as_words(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00009")
        await settle(pilot)
        problems = lines_of(app.screen.query_one("#problems"))
        assert "fields: department Quantum Lab" in problems
        assert "'" not in problems and "{" not in problems


async def test_a_scheduled_termination_is_shown_in_the_persons_zone(app):
    """people.effective_at is UTC; the person lives in Berlin and HR gave a date there."""
    with app.store.tx() as conn:
        conn.execute("UPDATE people SET effective_at = '2026-12-05T23:00:00.000000Z', "
                     "record = json_set(record, '$.timezone', 'Europe/Berlin', "
                     "'$.termination_date', '2026-12-05') WHERE employee_id = 'E00010'")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00010")
        await settle(pilot)
        assert "termination scheduled: 2026-12-06 00:00 Europe/Berlin (2026-12-05 23:00 UTC)" \
            in lines_of(app.screen.query_one("#who"))


async def test_a_past_termination_is_shown_with_its_effective_time(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00121")
        await settle(pilot)
        rec = app.screen.data["record"]
        assert rec["termination_date"] == "2026-11-20"
        who = lines_of(app.screen.query_one("#who"))
        assert "terminated, effective 2026-11-2" in who and "UTC" in who


# -- held reasons ------------------------------------------------------------------------

async def test_the_whole_held_because_is_readable_in_the_review(app):
    """Defect: the reason was cut at 50 characters with no way to read the rest."""
    assert len(MASS_HOLD) > 70
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("7")
        await settle(pilot)
        panel = " ".join(lines_of(app.screen.query_one("#held-reason")).replace("│", " ")
                         .split())
        assert MASS_HOLD in panel and "planned because: terminated in HR 30" in panel
        await pilot.press("enter")
        await settle(pilot)
        panel = " ".join(lines_of(app.screen.query_one("#held-reason")).replace("│", " ")
                         .split())
        assert MASS_HOLD in panel


# -- help --------------------------------------------------------------------------------

def test_help_sections_put_the_current_screen_first_then_anywhere():
    rows = [("app", "q", "quit"), ("list", "/", "filter"), ("person", "r", "retry"),
            ("person", "s", "suppress")]
    sections = ordered_sections(rows, "person")
    assert [(scope, title) for scope, title, _ in sections] == [
        ("person", "This screen: Person"), ("app", "Anywhere"), ("list", "Lists")]
    assert sections[0][2] == [("r", "retry"), ("s", "suppress")]
    assert [t for _, t, _ in ordered_sections(rows, None)] == ["Anywhere", "Lists", "Person"]
    assert [t for _, t, _ in ordered_sections([("log", "p", "pause")], "log")] == \
        ["This screen: Log"]


async def test_help_starts_with_the_keys_of_the_screen_it_was_asked_from(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00005")
        await settle(pilot)
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        text = text_of(app.screen.query_one("Static"), width=160)
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        header = next(i for i, line in enumerate(lines) if line.startswith("where"))
        assert lines[header + 1].startswith("This screen: Person")
        assert text.index("This screen: Person") < text.index("Anywhere") < \
            text.index("Lists")
