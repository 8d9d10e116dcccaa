"""The person screen's match panel, driven through Textual's Pilot over a database that
the real engine filled from a real SCIM sandbox: a disputed person, a candidate chosen in
the panel, the one action path's confirmation, then the decision and its audit entry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from rostersync.console.screens.confirm import ConfirmModal
from rostersync.console.screens.person import PersonScreen
from rostersync.console.screens.reason_form import ReasonModal
from rostersync.console.widgets.match_panel import MatchPanel
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import match_decisions as match_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.console_harness import SIZE, settle
from tests.support import World, set_token_env, write_config

pytestmark = pytest.mark.anyio
TOKEN = "links-token"
ACTOR = "operator"
START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def world(tmp_path) -> Iterator[tuple]:
    """20 people; E00008's e-mail is on two LMS accounts without an externalId."""
    set_token_env(TOKEN)
    with ScimSandbox(token=TOKEN) as lms:
        people = World.generate(20)
        csv_path = people.write(tmp_path / "employees.csv")
        config = load_config(write_config(tmp_path, lms.base_url, csv_path))
        email = World.person(8)["Work Email"]
        ids = []
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for name in ("legacy-a", "legacy-b"):
                answer = client.post(f"{lms.base_url}/Users", json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": name, "emails": [{"value": email}]})
                ids.append(answer.json()["id"])
        store = Store(config.database.path)
        clock = FrozenClock(START)
        engine = Engine(config, store, clock=clock)
        assert asyncio.run(engine.sync("full")).counts["drift"]["disputed"] == 1
        yield config, store, clock, engine, ids


def make_app(world):
    from rostersync.console.app import ConsoleApp

    config, store, clock, engine, _ids = world
    return ConsoleApp(config, store, clock=clock, engine=engine, run_scheduler=False,
                      live=False, actor=ACTOR)


async def test_link_the_highlighted_candidate_through_the_confirmation(world):
    app = make_app(world)
    legacy_a, legacy_b = world[4]
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00008")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, PersonScreen)
        panel = screen.query_one(MatchPanel)
        assert panel.display and sorted(c["lms_id"] for c in panel.match["candidates"]) == \
            sorted([legacy_a, legacy_b])
        # The operator moves to legacy-b in the panel's list, then presses l: the list
        # has the focus from the start, so the arrows choose, not scroll.
        wanted = next(i for i, c in enumerate(panel.match["candidates"])
                      if c["lms_id"] == legacy_b)
        assert app.focused is panel.query_one("#candidates")
        for _ in range(wanted):
            await pilot.press("down")
        assert panel.highlighted()["lms_id"] == legacy_b
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert f"Link E00008 to LMS account {legacy_b} (legacy-b" in app.screen.request.question
        await pilot.press("y")
        await settle(pilot)
        decision = match_store.active(app.store, "E00008")
        assert (decision.decision, decision.lms_id, decision.decided_by) == (
            "link", legacy_b, ACTOR)
        [(action, actor, target, detail)] = [
            (r[0], r[1], r[2], json.loads(r[3])) for r in app.store.conn.execute(
                "SELECT action, actor, target, detail FROM audit WHERE action LIKE 'match%'")]
        assert (action, actor, target) == ("match_link", ACTOR, "E00008")
        assert detail["lms_id"] == legacy_b and detail["decision_id"] == decision.id
        # The panel, refreshed after the action, shows the decision in force.
        assert screen.data["match"]["decision"]["lms_id"] == legacy_b


async def test_ignore_asks_a_reason_then_confirms_it(world):
    app = make_app(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00008")
        await settle(pilot)
        await pilot.press("i")
        await settle(pilot)
        assert isinstance(app.screen, ReasonModal)
        await pilot.press("enter")  # no reason: refused in the form
        await settle(pilot)
        assert isinstance(app.screen, ReasonModal)
        await pilot.press(*"shared mailbox", "enter")
        await settle(pilot)
        assert isinstance(app.screen, ConfirmModal)
        assert "(reason: shared mailbox)" in app.screen.request.question
        await pilot.press("y")
        await settle(pilot)
        decision = match_store.active(app.store, "E00008")
        assert (decision.decision, decision.reason) == ("ignore", "shared mailbox")


async def test_match_keys_say_why_for_a_person_without_a_match(world):
    app = make_app(world)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.open_person("E00003")
        await settle(pilot)
        assert not app.screen.query_one(MatchPanel).display
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, PersonScreen)
        assert any("no disputed or unlinked match" in n for n in app.notices_seen())
