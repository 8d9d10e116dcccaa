"""Sort and paging keys in the console's lists at the smallest terminal it promises
(80x24), over the seeded world (tests/console_harness.py: 181 operations, 50 a page).

Paging is tested at its edges: `[` on the first page and `]` on the last do nothing,
the last page holds the remainder, and a filter that shrinks the list under a later page
brings it back to the list's last page.
"""

from __future__ import annotations

import pytest

from rostersync.console.screens.lists import PAGE_SIZE, OpsList, RunsList
from rostersync.console.widgets.paged_table import PagedTable
from tests.console_harness import settle

pytestmark = pytest.mark.anyio
SMALL = (80, 24)
OPS = 181


def title(screen) -> str:
    return str(screen.query_one("#list-title").render())


def ids(screen) -> list[int]:
    return [r["id"] for r in screen.data.rows]


async def test_next_and_previous_page_stop_at_the_ends(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OpsList) and screen.total == OPS and PAGE_SIZE == 50
        newest = app.store.scalar("SELECT max(id) FROM ops")
        assert ids(screen) == list(range(newest, newest - 50, -1))
        assert "1-50 of 181" in title(screen)
        await pilot.press("left_square_bracket")  # already on the first page
        await settle(pilot)
        assert screen.page_offset == 0 and "1-50 of 181" in title(screen)
        seen = []
        for expected in ("51-100", "101-150", "151-181", "151-181"):
            await pilot.press("right_square_bracket")
            await settle(pilot)
            seen.append(title(screen).split("  ·  ")[1].split(" of ")[0])
            assert f"{expected} of 181" in title(screen)
        assert screen.page_offset == 150 and len(screen.data.rows) == OPS - 150
        assert screen.query_one(PagedTable).row_count == OPS - 150
        assert ids(screen)[-1] == newest - OPS + 1
        await pilot.press("left_square_bracket")
        await settle(pilot)
        assert screen.page_offset == 100 and ids(screen)[0] == newest - 100


async def test_a_filter_that_shrinks_the_list_returns_to_its_last_page(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("3", "G")
        await settle(pilot)
        screen = app.screen
        assert screen.page_offset == 150
        await pilot.press("slash", *"held")
        await settle(pilot)
        assert screen.total == 30 and screen.page_offset == 0
        assert "1-30 of 30" in title(screen)


async def test_o_cycles_the_sort_and_O_reverses_it(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("3")
        await settle(pilot)
        screen = app.screen
        assert screen.sort in (None, "id") and "sort: id ↓" in title(screen)
        await pilot.press("right_square_bracket", "o")  # a new sort starts on page one
        await settle(pilot)
        assert screen.sort == "employee_id" and screen.page_offset == 0
        # o keeps the direction shown (the list's default, newest first: descending).
        assert "sort: employee_id ↓" in title(screen)
        people = [r["employee_id"] for r in screen.data.rows]
        assert people == sorted(people, reverse=True)
        await pilot.press("O")
        await settle(pilot)
        assert "sort: employee_id ↑" in title(screen)
        up = [r["employee_id"] for r in screen.data.rows]
        assert up == sorted(up) and up[0] < people[0]
        for expected in ("kind", "status", "attempts", "error_class", "updated_at", "id"):
            await pilot.press("o")
            await settle(pilot)
            assert screen.sort == expected, expected
        await pilot.press("o")  # round again
        await settle(pilot)
        assert screen.sort == "employee_id"


async def test_f_cycles_the_status_and_the_runs_list_pages_and_sorts(app):
    async with app.run_test(size=SMALL) as pilot:
        await settle(pilot)
        await pilot.press("3", "f")
        await settle(pilot)
        screen = app.screen
        first = screen.statuses[1]
        assert screen.status == first
        assert {r["status"] for r in screen.data.rows} <= {first}
        await pilot.press("5")
        await settle(pilot)
        runs = app.screen
        assert isinstance(runs, RunsList) and runs.total >= 2
        await pilot.press("right_square_bracket")  # fewer runs than a page: no next page
        await settle(pilot)
        assert runs.page_offset == 0
        await pilot.press("o")
        await settle(pilot)
        kinds = [r["kind"] for r in runs.data.rows]
        assert runs.sort == "kind" and kinds == sorted(kinds)
