"""The lists as an operator drives them (Pilot, over the database the real engine seeded:
tests/console_harness.py): filters that keep underscores and search every column and
people's names, header clicks that sort with an indicator, k9s/lazygit keys, the
clipboard, the full-row view, the scheduled terminations and the palette's people search.
"""

from __future__ import annotations

from datetime import date

import pytest
from textual.command import CommandList

from rostersync.console.screens.lists import DriftList, OpsList, ScheduledList, TerminationsList
from rostersync.console.screens.row_view import RowView
from rostersync.console.widgets.paged_table import PagedTable
from rostersync.storage.db import ts
from rostersync.sync.lifecycle import termination_instant
from rostersync.sync.models import Person
from tests.console_harness import SIZE, notes, settle

pytestmark = pytest.mark.anyio


def labels(table: PagedTable) -> list[str]:
    return [c.label.plain for c in table.ordered_columns]


async def click_header(pilot, table: PagedTable, key: str) -> None:
    x = 0
    for column in table.ordered_columns:
        if column.key.value == key:
            break
        x += column.get_render_width(table)
    await pilot.click(PagedTable, offset=(x + 1, 0))
    await settle(pilot)


async def open_list(pilot, key: str, filter_text: str = ""):
    await pilot.press(key)
    await settle(pilot)
    if filter_text:
        await pilot.press("slash", *filter_text, "enter")
        await settle(pilot)
    return pilot.app.screen


async def test_drift_filter_finds_the_pending_terminations(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "2", "pending_termination")
        assert isinstance(screen, DriftList)
        assert screen.filter_text == "pending_termination"
        assert screen.total == 30
        assert {r["kind"] for r in screen.data.rows} == {"pending_termination"}


async def test_ops_filter_finds_held_ops_and_a_person_by_name(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3", "held")
        assert isinstance(screen, OpsList) and screen.total == 30
        assert {r["status"] for r in screen.data.rows} == {"held"}
        await pilot.press("escape")  # clears the filter
        await settle(pilot)
        assert screen.total == 181
        await pilot.press("slash", *"fatima nov")
        await settle(pilot)
        found = {r["employee_id"] for r in screen.data.rows}
        assert "E00005" in found and screen.total == len(screen.data.rows)
        for employee_id in found:
            record = app.store.scalar("SELECT record FROM people WHERE employee_id = ?",
                                      (employee_id,))
            assert Person.model_validate_json(record).display_name.startswith("Fatima Nov")


async def test_header_click_sorts_and_the_indicator_follows(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3")
        table = screen.query_one(PagedTable)
        assert labels(table)[0] == "id ▼"  # the default: newest first
        await click_header(pilot, table, "kind")
        assert screen.sort == "kind" and "kind ▲" in labels(table) and "id" in labels(table)
        kinds = [r["kind"] for r in screen.data.rows]
        assert kinds == sorted(kinds)
        await click_header(pilot, table, "kind")  # again: reversed
        assert "kind ▼" in labels(table)
        reversed_kinds = [r["kind"] for r in screen.data.rows]
        assert reversed_kinds == sorted(reversed_kinds, reverse=True)
        assert reversed_kinds[0] > kinds[0]
        await click_header(pilot, table, "person")
        assert screen.sort == "employee_id"
        assert "person ▲" in labels(table) and "kind" in labels(table)
        await click_header(pilot, table, "reason")
        assert screen.sort == "employee_id"
        assert any("cannot be sorted by 'reason'" in n for n in notes(app))
        await pilot.press("o")  # o still cycles: employee_id -> kind
        await settle(pilot)
        assert screen.sort == "kind" and "kind ▲" in labels(table)


async def test_the_name_column_shows_where_the_width_allows(app):
    wide = DriftList.wide_only["name"]
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "2")
        table = screen.query_one(PagedTable)
        assert "name" not in labels(table)
        for width, shown in ((wide - 1, False), (wide, True), (wide + 1, True)):
            await pilot.resize_terminal(width, 30)
            await settle(pilot)
            assert ("name" in labels(table)) is shown, width
        subject = screen.data.rows[0]["subject"]
        record = app.store.scalar("SELECT record FROM people WHERE employee_id = ?",
                                  (subject,))
        assert str(table.get_row_at(0)[2]) == Person.model_validate_json(record).display_name


async def test_j_k_g_and_G_move_across_pages(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3")
        table = screen.query_one(PagedTable)
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        await settle(pilot)
        assert screen.page_offset == 150  # 181 ops: the fourth page holds 31
        assert table.cursor_row == 30 and table.current_key == "1"
        await pilot.press("g")
        await settle(pilot)
        assert screen.page_offset == 0 and table.cursor_row == 0
        assert table.current_key == str(app.store.scalar("SELECT max(id) FROM ops"))


async def test_c_copies_the_id_and_C_the_whole_row(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3", "E00005")
        op_id = app.store.scalar("SELECT id FROM ops WHERE employee_id = 'E00005' "
                                 "AND status = 'failed'")
        table = screen.query_one(PagedTable)
        table.move_cursor(row=table.keys.index(str(op_id)))
        await pilot.press("c")
        await settle(pilot)
        assert app.clipboard == str(op_id)
        assert any(f"copied {op_id}" in n for n in notes(app))
        await pilot.press("C")
        await settle(pilot)
        cells = app.clipboard.split("\t")
        error = app.store.scalar("SELECT last_error FROM ops WHERE id = ?", (op_id,))
        assert cells[0] == str(op_id) and "E00005" in cells and error in cells
        assert "Fatima Novak" in cells
        assert any(f"copied row {op_id}" in n for n in notes(app))


async def test_v_shows_the_row_in_full(app):
    long_error = "503: upstream maintenance; " + " ".join(f"retry-after-{i}" for i in
                                                            range(40)) + " END-OF-ERROR"
    app.store.conn.execute("UPDATE ops SET last_error = ? WHERE employee_id = 'E00005' "
                           "AND status = 'failed'", (long_error,))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3", "E00005 failed")
        assert screen.total == 1
        shown = str(screen.query_one(PagedTable).get_row_at(0)[-1])
        assert "END-OF-ERROR" not in shown  # the list abridges it
        await pilot.press("v")
        await settle(pilot)
        view = app.screen
        assert isinstance(view, RowView)
        assert f"last error: {long_error}" in view.text
        assert "Fatima Novak" in view.text.splitlines()[0]
        await pilot.press("escape")
        await settle(pilot)
        assert app.screen is screen


async def test_v_shows_a_drift_detail_as_lines_not_a_repr(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await open_list(pilot, "2", "E00121")
        await pilot.press("v")
        await settle(pilot)
        text = app.screen.text
        assert "detail: effective_at: 2026-11-21T05:00:00+00:00" in text
        assert "detail: hr_status: Terminated" in text
        assert "{" not in text and "'" not in text
        assert "first seen at: 2026-11-26 10:00:00 UTC" in text


async def test_scheduled_list_shows_the_time_in_the_persons_zone(app):
    day, zone = date(2026, 11, 30), "America/New_York"
    app.store.conn.execute(
        "UPDATE people SET effective_at = ?, record = json_set(record, '$.termination_date', "
        "?, '$.timezone', ?) WHERE employee_id = 'E00010'",
        (ts(termination_instant(day, zone, "end_of_day")), day.isoformat(), zone))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("4")
        await settle(pilot)
        assert isinstance(app.screen, TerminationsList)
        assert "scheduled" in str(app.screen.query_one("#list-hint").render())
        app.open_list("scheduled")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ScheduledList) and screen.total == 1
        cells = [str(c) for c in screen.query_one(PagedTable).get_row_at(0)]
        # the console's now is 2026-11-26 12:20 UTC; the last day ends at local midnight
        assert cells == ["E00010", "Kemal Novak", "2026-12-01 05:00 UTC", "America/New_York",
                         "2026-12-01 00:00 EST", cells[5]]
        assert cells[5].startswith("4d")


# -- the palette ---------------------------------------------------------------------------

async def palette_hits(pilot, text: str) -> list[str]:
    await pilot.press("ctrl+p")
    await settle(pilot)
    await pilot.press(*text)
    await settle(pilot)
    options = pilot.app.screen.query_one(CommandList)
    hits = [str(options.get_option_at_index(i).prompt).split("\n")[0]
            for i in range(options.option_count)]
    await pilot.press("escape")
    await settle(pilot)
    return hits


async def test_palette_finds_people_by_part_of_a_name_or_an_email(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        chloe = "Open person E00082 · Chloe Costa · chloe.costa.82@acme.example"
        by_name = await palette_hits(pilot, "chloe cost")
        assert chloe in by_name
        assert all("Chloe" in h or "chloe" in h for h in by_name if "person" in h)
        assert await palette_hits(pilot, "osta.82") == [chloe]
        assert await palette_hits(pilot, "chloe nobody-has-this") == []


async def test_palette_opens_a_person_a_run_and_an_op_by_id(app):
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert await palette_hits(pilot, "run 2") == ["Open run 2 · full · held"]
        op_id = app.store.scalar("SELECT id FROM ops WHERE status = 'failed'")
        assert await palette_hits(pilot, f"op {op_id}") == [
            f"Open op {op_id} · update failed · person E00005"]
        assert await palette_hits(pilot, "run 99999") == []
        await pilot.press("ctrl+p")
        await settle(pilot)
        await pilot.press(*"kemal novak", "enter")
        await settle(pilot)
        assert app.screen.employee_id == "E00010"


@pytest.mark.parametrize(("width", "shown"), [
    (80, ["id", "person", "kind", "status", "tries", "error"]),
    (99, ["id", "person", "kind", "status", "tries", "error"]),
    (100, ["id", "person", "kind", "status", "reason", "tries", "error"]),
    (140, ["id", "person", "name", "kind", "status", "reason", "tries", "error"]),
])
async def test_the_ops_list_fits_the_screen_and_the_error_takes_the_room_left(app, width,
                                                                               shown):
    """Before, at 80 columns the error ran off the right edge behind a horizontal
    scrollbar. Now every column fits, and the error (class, then the LMS's words) gets
    the width the others leave, cut with an ellipsis."""
    long_error = "503: upstream maintenance; " + "x" * 300
    app.store.conn.execute("UPDATE ops SET last_error = ? WHERE employee_id = 'E00005' "
                           "AND status = 'failed'", (long_error,))
    async with app.run_test(size=(width, 24)) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3", "E00005 failed")
        table = screen.query_one(PagedTable)
        assert [label.split(" ")[0] for label in labels(table)] == shown
        assert table.virtual_size.width <= table.size.width  # no horizontal scrollbar
        error = table.ordered_columns[-1]
        cell = str(table.get_row_at(0)[-1])
        assert cell.startswith(f"{screen.data.rows[0]['error_class']}: 503: upstream")
        assert cell.endswith("…") and len(cell) == error.width
        # The room left: nothing more would fit beside the other columns.
        others = sum(c.get_render_width(table) for c in table.ordered_columns[:-1])
        assert others + error.get_render_width(table) \
            + table.styles.scrollbar_size_vertical == table.size.width


async def test_on_a_very_narrow_screen_the_error_keeps_its_least_width(app):
    async with app.run_test(size=(50, 24)) as pilot:  # room for 9: less than the least
        await settle(pilot)
        screen = await open_list(pilot, "3", "E00005 failed")
        table = screen.query_one(PagedTable)
        assert table.ordered_columns[-1].width == OpsList.fill[1] == 16


async def test_a_resize_that_changes_the_columns_keeps_the_cursor_on_its_row(app):
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = await open_list(pilot, "3")
        table = screen.query_one(PagedTable)
        await pilot.press("down", "down", "down")
        await settle(pilot)
        key = table.current_key
        assert key is not None and table.cursor_row == 3
        await pilot.resize_terminal(120, 30)
        await settle(pilot)
        assert "reason" in labels(table)  # the columns changed: the table was rebuilt
        assert table.current_key == key


@pytest.mark.parametrize("key", ["2", "3", "4", "5", "6", "7"])
async def test_every_list_fits_80_columns(app, key):
    """Drift, operations, terminations, runs, audit and held: at 80 columns each list's
    long text column is cut to the room left, so no list runs off the screen's edge."""
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(key)
        await settle(pilot)
        table = app.screen.query_one(PagedTable)
        assert table.row_count > 0
        assert table.virtual_size.width <= table.size.width, labels(table)
