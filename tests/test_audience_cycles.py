"""`manager_chain` audience rules over manager links that loop: the walk stops at the
first repeat, the chain above the loop still counts, and every explanation (the
placement, `audiences explain` as JSON and as text) says the chain loops and where."""

from __future__ import annotations

import json

import pytest

from rostersync.console.cli import main
from rostersync.storage.db import Store
from rostersync.sync.audiences.chain import MAX_CHAIN, walk_managers
from rostersync.sync.audiences.explain import explain
from rostersync.sync.audiences.membership import compile_audiences, place
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import config_from_dict, load_config
from tests.audience_support import NOW, audience_config, group_members, sync
from tests.support import World
from tests.test_audiences import BASE, person

TEAM_RULE = 'manager_chain contains "E00003"'
AUDIENCES = f'''
[[audiences]]
id = "team-e00003"
rule = '{TEAM_RULE}'

[[audiences]]
id = "sales"
rule = 'department == "Sales"'
'''


# -- the walk (pure) -------------------------------------------------------------------

def test_two_people_who_manage_each_other_stop_the_walk_and_name_the_loop():
    managers = {"E1": "E2", "E2": "E1"}
    chain = walk_managers("E1", managers.get)
    assert chain.managers == ("E2", "E1")  # what the links say, each once
    assert chain.loop == ("E1", "E2")
    assert chain.note() == "manager chain loops: E1 -> E2 -> E1"


def test_a_person_below_a_loop_keeps_the_chain_up_to_it():
    managers = {"C": "A", "A": "B", "B": "A"}
    chain = walk_managers("C", managers.get)
    assert chain.managers == ("A", "B")
    assert chain.note() == "manager chain loops: A -> B -> A"


def test_a_person_who_manages_themselves_is_a_loop_of_one():
    chain = walk_managers("E1", {"E1": "E1"}.get)
    assert (chain.managers, chain.note()) == (("E1",), "manager chain loops: E1 -> E1")


def test_a_chain_without_a_loop_says_nothing():
    chain = walk_managers("E3", {"E3": "E2", "E2": "E1", "E1": None}.get)
    assert (chain.managers, chain.loop, chain.note()) == (("E2", "E1"), (), None)


@pytest.mark.parametrize("depth, kept", [
    (MAX_CHAIN - 1, MAX_CHAIN - 1), (MAX_CHAIN, MAX_CHAIN), (MAX_CHAIN + 1, MAX_CHAIN)])
def test_a_long_chain_is_cut_at_the_limit_and_is_no_loop(depth, kept):
    managers = {f"P{i}": f"P{i + 1}" for i in range(depth)}  # P0 -> P1 -> ... -> P<depth>
    chain = walk_managers("P0", managers.get)
    assert len(chain.managers) == kept and chain.loop == ()


def test_a_loop_just_past_the_limit_is_cut_before_it_is_seen():
    # P0 .. P<MAX_CHAIN> then back to P1: the repeat would be the (MAX_CHAIN + 1)th manager.
    managers = {f"P{i}": f"P{i + 1}" for i in range(MAX_CHAIN)} | {f"P{MAX_CHAIN}": "P1"}
    assert walk_managers("P0", managers.get).loop == ()
    # One link shorter: the repeat is the MAX_CHAIN-th manager, and is seen.
    managers = {f"P{i}": f"P{i + 1}" for i in range(MAX_CHAIN - 1)} | {
        f"P{MAX_CHAIN - 1}": "P1"}
    assert walk_managers("P0", managers.get).loop[0] == "P1"


# -- the placement (pure) ----------------------------------------------------------------

def test_placement_notes_the_loop_on_manager_chain_audiences_only():
    config = config_from_dict({**BASE, "audiences": [
        {"id": "team", "rule": 'manager_chain contains "E2"'},
        {"id": "sales", "rule": 'department == "Sales"'}]})
    audiences = compile_audiences(config)
    chain = walk_managers("E1", {"E1": "E2", "E2": "E1"}.get)
    placed = place(person(manager_id="E2"), audiences, NOW, chain.managers, chain.loop)
    assert set(placed.desired) == {"team", "sales"}
    assert placed.notes == {"team": "manager chain loops: E1 -> E2 -> E1"}
    assert place(person(), audiences, NOW, ("E2",)).notes == {}


# -- the engine, the store and the CLI against a real scim2-server ------------------------

@pytest.fixture
def looped(tmp_path, scim_server, lms_token):
    """60 people; E00003 and E00012 (who reports to E00003) are made to manage each
    other, and E00057's manager is E00012: below the loop."""
    world = World.generate(60)
    csv_path = world.write(tmp_path / "employees.csv")
    config_path = audience_config(tmp_path, scim_server.base_url, csv_path, AUDIENCES)
    clock = FrozenClock(NOW)
    assert sync(config_path, clock).status == "succeeded"
    world.rows["E00003"]["Manager ID"] = "E00012"
    world.write(csv_path)
    report = sync(config_path, clock)
    assert report.status == "succeeded", report.message
    return config_path, clock, scim_server, lms_token


def test_explain_says_the_chain_loops_and_membership_still_follows_it(looped, capsys):
    config_path, clock, lms, token = looped
    config = load_config(config_path)
    store = Store(config.database.path)
    try:
        below = explain(store, config, "E00057", clock.now())
        on_loop = explain(store, config, "E00012", clock.now())
        clear = explain(store, config, "E00002", clock.now())  # reports to E00001: no loop
    finally:
        store.close()
    assert below["manager_chain"] == "manager chain loops: E00012 -> E00003 -> E00012"
    team = {a["id"]: a for a in below["audiences"]}
    assert team["team-e00003"]["should_be_in"] and team["team-e00003"]["rule"] == TEAM_RULE
    assert team["team-e00003"]["note"] == below["manager_chain"]
    assert team["sales"]["note"] is None
    assert on_loop["manager_chain"] == "manager chain loops: E00012 -> E00003 -> E00012"
    assert clear["manager_chain"] is None
    assert {a["id"]: a["note"] for a in clear["audiences"]} == {"team-e00003": None,
                                                                "sales": None}
    assert {"E00012", "E00057"} <= group_members(lms.base_url, token)["team-e00003"]

    assert main(["audiences", "explain", "E00057", "--config", str(config_path)]) == 0
    text = capsys.readouterr().out
    assert "(manager chain loops: E00012 -> E00003 -> E00012)" in text
    assert main(["audiences", "explain", "E00057", "--json", "--config",
                 str(config_path)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["manager_chain"] == below["manager_chain"]
