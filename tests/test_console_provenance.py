"""The person screen says where each desired value comes from: the expression (or the
built-in default), the apply mode, the HR values read and whether the LMS differs,
computed by the same explanation `rostersync mapping test` gives. Real engine runs against
a real SCIM sandbox on 127.0.0.1, then the console through Textual's Pilot."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from textual.geometry import Region
from textual.widgets import Static

from rostersync.console.app import ConsoleApp
from rostersync.console.cli import main
from rostersync.console.screens.person import PersonScreen
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.console_harness import settle
from tests.support import ENTERPRISE, Refusing, World, write_config

pytestmark = pytest.mark.anyio

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
COST = f"{ENTERPRISE}:costCenter"
MAPPING = f"""
[mapping.tables.cost_centres]
"Sales" = "CC-100"
"Engineering" = "CC-200"

[mapping.attributes]
title = 'upper(job_title)'
"{COST}" = 'lookup("cost_centres", department)'
nickName = {{ expr = "first_name", apply = "create" }}
profileUrl = {{ expr = "email", apply = "never" }}
"""


@pytest.fixture
def world(tmp_path, scim_server, lms_token):
    """E00002 created by a first run; then HR retitles and renames them, and the LMS
    refuses their update, so the LMS holds the old title and the old nickname."""
    people = World.generate(3)
    row = people.rows["E00002"]
    row["Department"], row["Job Title"], row["First Name"] = "Sales", "Analyst", "Maria"
    csv = people.write(tmp_path / "employees.csv")
    path = write_config(tmp_path, scim_server.base_url, csv)
    path.write_text(path.read_text(encoding="utf-8") + MAPPING, encoding="utf-8")
    config = load_config(path)
    store = Store(config.database.path)
    clock = FrozenClock(START)
    asyncio.run(Engine(config, store, clock=clock).sync("full"))
    row["Job Title"], row["First Name"] = "Lead Analyst", "Mia"
    people.write(csv)
    lms_id = store.scalar("SELECT lms_id FROM accounts WHERE external_key = 'E00002'")
    scim_server.fault = Refusing(lambda method, p: (503, {}, b"maintenance")
                                 if method in ("PATCH", "PUT") and lms_id in p else None)
    clock.advance(hours=1)
    try:
        asyncio.run(Engine(config, store, clock=clock).sync("full"))
    finally:
        scim_server.fault = None
    return config, store, clock


def _app(world) -> ConsoleApp:
    config, store, clock = world
    return ConsoleApp(config, store, clock=clock, engine=None, read_only=True,
                      run_scheduler=False, live=False, actor="operator")


def _shown_lines(panel: Static) -> list[str]:
    """The panel's lines as the terminal shows them, wrapped to its width, borders off."""
    width, height = panel.outer_size
    return [strip.text[1:-1].removeprefix(" ").rstrip() for strip in
            panel.render_lines(Region(0, 0, width, height))[1:-1]]


async def _person(pilot, employee_id: str) -> Static:
    await settle(pilot)
    pilot.app.open_person(employee_id)
    await settle(pilot)
    assert isinstance(pilot.app.screen, PersonScreen)
    return pilot.app.screen.query_one("#provenance", Static)


async def test_each_attribute_says_where_its_value_comes_from(world):
    app = _app(world)
    async with app.run_test(size=(200, 50)) as pilot:
        text = str((await _person(pilot, "E00002")).render())
    lines = text.splitlines()
    at = lines.index("title = 'LEAD ANALYST'  apply always")
    assert lines[at + 1:at + 4] == [
        "  from expression: upper(job_title)",
        "  read job_title='Lead Analyst'",
        "  LMS  holds 'ANALYST': differs, the next run writes the desired value"]
    at = lines.index(f"{COST} = 'CC-100'  apply always")
    assert lines[at + 1:at + 4] == [
        '  from expression: lookup("cost_centres", department)',
        "  read department='Sales'", "  LMS  same"]
    at = lines.index("nickName = 'Mia'  apply create")
    assert lines[at + 3] == ("  LMS  holds 'Maria': differs; set only when the account is "
                             "created, never compared")
    at = lines.index("given_name = 'Mia'  apply always")
    assert lines[at + 1] == "  from default: coalesce(preferred_name, first_name)"
    assert "profileUrl  unmanaged (apply never): neither written nor compared" in lines


async def test_at_80_columns_the_lines_wrap_inside_the_panel(world):
    app = _app(world)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = await _person(pilot, "E00002")
        assert panel.outer_size.width <= 80
        lines, inner = _shown_lines(panel), panel.outer_size.width - 2
    # Every line fits; the long ones go on over the next line instead of being cut.
    assert max(len(line) for line in lines) <= inner
    start = next(i for i, line in enumerate(lines) if line.startswith("urn:ietf"))
    end = lines.index('  from expression: lookup("cost_centres", department)', start)
    assert end - start >= 2, "the cost centre's 94-column line should be wrapped"
    assert " ".join(" ".join(lines[start:end]).split()) == f"{COST} = 'CC-100' apply always"


def test_mapping_test_says_the_same_in_json(world, capsys):
    config, _store, _clock = world
    assert main(["mapping", "test", "E00002", "--json", "--config",
                 str(config.source_path)]) == 0
    rows = {r["attribute"]: r for r in json.loads(capsys.readouterr().out)["attributes"]}
    assert (rows["title"]["differs"], rows[COST]["differs"], rows["nickName"]["differs"],
            rows["profileUrl"]["differs"]) == (True, False, True, None)
