"""The Audiences screen (key 9) over a world the real engine synced against a real
scim2-server: each audience's size in the LMS, the size its rules want, and the removals
held by the mass-membership guard, at 80x24 and 120x40."""

from __future__ import annotations

import pytest

from rostersync.console.screens.audiences import AudiencesScreen
from rostersync.console.widgets.paged_table import PagedTable
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from tests.audience_support import NOW, audience_config, group_members, people_in, sync
from tests.console_harness import ACTOR, settle
from tests.support import World

COLUMNS = ["audience", "members", "should be", "to add", "to remove", "held", "rules"]


def cells(table: PagedTable) -> dict[str, list[str]]:
    out = {}
    for index in range(table.row_count):
        row = [str(c) for c in table.get_row_at(index)]
        out[row[0].split(" ")[0]] = row
    return out


@pytest.fixture
def synced(tmp_path, scim_server, lms_token):
    """120 people synced with the four audiences; then Sales renamed, which the mass
    membership guard holds (no strict department mapping to call it unmapped)."""
    world = World.generate(120)
    csv_path = world.write(tmp_path / "employees.csv")
    config_path = audience_config(tmp_path, scim_server.base_url, csv_path)
    text = config_path.read_text().replace('strict = ["department"]', "strict = []")
    config_path.write_text(text)
    clock = FrozenClock(NOW)
    assert sync(config_path, clock).exit_code == 0
    sales = people_in(world, "Sales")
    assert group_members(scim_server.base_url, lms_token)["sales-compliance"] == sales
    for key in sales:
        world.rows[key]["Department"] = "Revenue"
    world.write(csv_path)
    assert sync(config_path, clock).exit_code == 3
    return config_path, clock, sales, people_in(world, "Finance")


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_audiences_screen_shows_sizes_and_held_removals(synced, size):
    from rostersync.console.app import ConsoleApp

    config_path, clock, sales, finance = synced
    config = load_config(config_path)
    app = ConsoleApp(config, Store(config.database.path), clock=clock, read_only=True,
                     engine=None, run_scheduler=False, live=False, actor=ACTOR)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("9")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AudiencesScreen)
        table = screen.query_one(PagedTable)
        assert [c.label.plain for c in table.ordered_columns] == COLUMNS
        rows = cells(table)
        assert list(rows) == ["sales-compliance", "finance-compliance", "onboarding",
                              "team-e00003"]
        assert rows["sales-compliance"][:6] == [
            "sales-compliance (compliance)", str(len(sales)), "0", "0", "0", str(len(sales))]
        assert rows["finance-compliance"][1:6] == [str(len(finance)), str(len(finance)),
                                                    "0", "0", "0"]
        assert rows["finance-compliance"][6] == 'department == "Finance"'
        # Two rules on one line, cut with an ellipsis to the room the other columns leave
        # (at least 30); from 120 columns on the table fits the screen.
        two = 'manager_chain contains "E00003" | employee_number == "10000'
        shown = rows["team-e00003"][6]
        assert shown.endswith("…") and two.startswith(shown[:-1]) and len(shown) >= 30
        if size[0] >= 120:
            assert table.virtual_size.width <= table.size.width
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, AudiencesScreen)
