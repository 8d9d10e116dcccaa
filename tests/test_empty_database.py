"""A brand-new database (nothing pulled, nothing planned, no run): `rostersync status`
says what is missing in plain words, and every console screen opens, at 80x24 and at
120x40, with its keys doing nothing harmful on an empty list."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.console.screens.audiences import AudiencesScreen
from rostersync.console.screens.dashboard import DashboardScreen
from rostersync.console.screens.lists import ListScreen
from rostersync.console.widgets.paged_table import PagedTable
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.console_harness import ACTOR, VIEWED_AT, settle
from tests.support import set_token_env, write_config

SMALL, LARGE = (80, 24), (120, 40)
# Every screen a digit opens, and what it is.
SCREENS = {"2": "Drift", "3": "Operations", "4": "Pending terminations", "5": "Runs",
           "6": "Audit log"}


def empty_config(folder: Path) -> Path:
    csv_path = folder / "employees.csv"
    csv_path.write_text("Employee ID,First Name\n", encoding="utf-8")
    set_token_env("empty-token")
    # Nobody listens on port 9: nothing here may try to reach the LMS.
    return write_config(folder, "http://127.0.0.1:9/v2", csv_path)


def test_status_of_an_empty_database_says_never_read_and_warns(tmp_path, capsys):
    config = empty_config(tmp_path)
    assert main(["status", "--config", str(config)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("rostersync WARNING: HRIS has never been read successfully; "
                      "LMS has never been read successfully")
    assert "hris: never read successfully" in out and "lms: never read successfully" in out
    assert "drift: none" in out and "open ops: none" in out
    assert not any("last run" in line for line in out)
    assert main(["status", "--json", "--config", str(config)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert (doc["status"], doc["exit_code"], doc["last_run"], doc["drift_total"]) == (
        "WARNING", 1, None, 0)
    assert set(doc["ops"].values()) == {0}
    assert doc["staleness"]["hris"]["state"] == "never"


def empty_app(folder: Path):
    from rostersync.console.app import ConsoleApp

    config = load_config(empty_config(folder))
    store = make_store(config.database)
    clock = FrozenClock(VIEWED_AT)
    return ConsoleApp(config, store, clock=clock, read_only=False,
                      engine=Engine(config, store, clock=clock, rng=random.Random(7)),
                      run_scheduler=False, live=False, actor=ACTOR)


@pytest.mark.anyio
@pytest.mark.parametrize("size", [SMALL, LARGE])
async def test_every_screen_opens_on_an_empty_database(tmp_path, size):
    app = empty_app(tmp_path)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, DashboardScreen)
        for key, heading in SCREENS.items():
            await pilot.press(key)
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ListScreen) and screen.heading == heading
            assert screen.total == 0
            title = str(screen.query_one("#list-title").render())
            assert f"{heading}  ·  0-0 of 0" in title
            # Paging, sorting, opening and viewing an empty list change nothing.
            await pilot.press("right_square_bracket", "left_square_bracket", "o", "O",
                              "enter", "v", "G", "g")
            await settle(pilot)
            assert app.screen is screen and screen.page_offset == 0
            assert screen.query_one(PagedTable).row_count == 0
            await pilot.press("1")
            await settle(pilot)
            assert isinstance(app.screen, DashboardScreen)
        await pilot.press("7")
        await settle(pilot)
        assert app.screen.data == []
        await pilot.press("a", "x")  # nothing held: no dialog opens
        await settle(pilot)
        assert app.store.scalar("SELECT count(*) FROM audit") == 0
        await pilot.press("9")
        await settle(pilot)
        assert isinstance(app.screen, AudiencesScreen)
        assert app.screen.query_one(PagedTable).row_count == 0
