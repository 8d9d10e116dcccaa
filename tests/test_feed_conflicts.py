"""Conflicts inside the HR feed: shared logins/e-mails, unknown managers, manager cycles.

The pure checks (sync.feed_conflicts) directly, then the real engine against a real
scim2-server on 127.0.0.1: the people involved get drift owned by HR naming each other,
nothing is written for the conflicting field, and everything else still syncs.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.feed_conflicts import Facts, find_conflicts, manager_issues, walk
from rostersync.sync.reports import drift as drift_report
from rostersync.sync.reports.period import parse_period
from rostersync.sync.status import build_status
from tests.support import World, by_external_id, lms_users, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


# -- the pure checks -------------------------------------------------------------------

def test_shared_email_names_both_people_and_the_field():
    facts = {"A": Facts("a", "x@e", None), "B": Facts("b", "X@E".lower(), None),
             "C": Facts("c", "c@e", None)}
    found = find_conflicts(facts)
    assert found == {"A": {"email": ("x@e", ("B",))}, "B": {"email": ("x@e", ("A",))}}


def test_a_person_wanting_no_account_claims_nothing():
    facts = {"A": Facts("a", "x@e", None), "B": Facts("b", "x@e", None, claims=False)}
    assert find_conflicts(facts) == {}


def test_walk_terminates_on_cycles_and_names_the_loop():
    managers = {"A": "B", "B": "C", "C": "B", "D": None}
    chain = walk("A", managers.get, managers.__contains__)
    assert chain.loop == ("B", "C") and chain.managers == ("B", "C")
    assert walk("D", managers.get, managers.__contains__).loop == ()
    assert walk("A", {"A": "A"}.get, lambda k: True).loop == ("A",)
    assert walk("A", {"A": "Z"}.get, lambda k: k == "A").unknown == "Z"


def test_manager_issues_report_unknown_managers_and_every_loop_member():
    managers = {"A": "B", "B": "A", "C": "A", "D": "GHOST", "E": None}
    unknown, cycles = manager_issues(["C", "D", "E"], managers.get, managers.__contains__,
                                     lambda k: True)
    assert unknown == {"D": "GHOST"}
    # C reports into the loop but is not in it: its manager (A) is real.
    assert cycles == {"A": ("A", "B"), "B": ("B", "A")}


# -- property: generated feeds with injected duplicates and cycles --------------------

@st.composite
def feeds(draw):
    n = draw(st.integers(3, 25))
    keys = [f"P{i}" for i in range(n)]
    emails = {k: f"{k.lower()}@acme.example" for k in keys}
    managers: dict[str, str | None] = {k: (keys[i - 1] if i else None)
                                       for i, k in enumerate(keys)}
    dup_pairs = draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(keys)),
                              max_size=4))
    for a, b in dup_pairs:
        emails[b] = emails[a]
    for a, b in draw(st.lists(st.tuples(st.sampled_from(keys), st.sampled_from(keys)),
                              max_size=3)):
        managers[a], managers[b] = b, a  # a two-person (or self) loop
    ghosts = draw(st.lists(st.sampled_from(keys), max_size=2))
    for k in ghosts:
        managers[k] = f"GHOST-{k}"
    return keys, emails, managers


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(feeds())
def test_every_injected_case_is_named(feed):
    keys, emails, managers = feed
    facts = {k: Facts(k.lower(), emails[k], managers[k]) for k in keys}
    conflicts = find_conflicts(facts)
    holders: dict[str, set[str]] = {}
    for k in keys:
        holders.setdefault(emails[k], set()).add(k)
    for k in keys:
        shared = holders[emails[k]] - {k}
        if shared:
            assert set(conflicts[k]["email"][1]) == shared
        else:
            assert "email" not in conflicts.get(k, {})
    unknown, cycles = manager_issues(keys, managers.get, facts.__contains__, lambda k: True)
    for k in keys:
        manager = managers[k]
        if manager is not None and manager not in facts:
            assert unknown[k] == manager
        # k is on a loop exactly when following the links from k comes back to k
        node, seen, on_loop = manager, set(), False
        while node is not None and node in facts and node not in seen:
            if node == k:
                on_loop = True
                break
            seen.add(node)
            node = managers[node]
        assert (k in cycles) == on_loop
        if on_loop:
            assert cycles[k][0] == k and set(cycles[k]) <= set(keys)


# -- the real engine against scim2-server ----------------------------------------------

@pytest.fixture
def small(tmp_path, scim_server, lms_token):
    world = World.generate(12)
    csv_path = world.write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, scim_server.base_url, csv_path))
    clock = FrozenClock(START)
    engine = Engine(config, make_store(config.database), clock=clock)

    class Small:
        pass

    s = Small()
    s.world, s.csv, s.config, s.clock, s.engine = world, csv_path, config, clock, engine
    s.run = lambda kind="full", **kw: asyncio.run(engine.sync(kind, **kw))
    s.users = lambda: {k: v[0] for k, v in by_external_id(
        lms_users(scim_server.base_url, lms_token)).items()}
    s.drift = lambda kind: {r["subject"]: {**r, "detail": json.loads(r["detail"])}
                            for r in engine.store.rows(
                                "SELECT * FROM drift WHERE resolved_at IS NULL AND kind = ?",
                                (kind,))}
    s.ops_for = lambda key: engine.store.rows(
        "SELECT kind, status, payload FROM ops WHERE employee_id = ? ORDER BY id", (key,))

    def edit(key: str, **values: str) -> None:
        world.rows[key].update(values)
        world.write(csv_path)
    s.edit = edit
    return s


def _writes(ops, field_names):
    return [op for op in ops if any(f in json.loads(op["payload"] or "{}").get("changes", {})
                                    for f in field_names)]


def test_shared_email_is_hr_drift_and_no_write_touches_it(small):
    assert small.run().exit_code == 0
    before = small.users()
    taken = small.world.rows["E00003"]["Work Email"]
    # E00004 now has E00003's address, and a new title: the title still syncs.
    small.edit("E00004", **{"Work Email": taken, "Job Title": "Lead"})
    report = small.run()
    assert report.exit_code == 0, report.message
    drift = small.drift("conflict")
    assert set(drift) == {"E00003", "E00004"}
    assert drift["E00004"]["owner"] == "HR" and drift["E00004"]["detail"]["with"] == ["E00003"]
    assert drift["E00003"]["detail"]["with"] == ["E00004"]
    assert set(drift["E00004"]["detail"]["fields"]) == {"email", "user_name"}
    for key in ("E00003", "E00004"):
        assert _writes(small.ops_for(key), ("email", "user_name")) == []
    users = small.users()
    assert users["E00004"]["userName"] == before["E00004"]["userName"]
    assert users["E00004"]["title"] == "Lead"
    assert not [o for o in small.engine.store.rows("SELECT status FROM ops")
                if o["status"] in ("failed", "dead")]
    status = build_status(small.engine.store, small.config, small.clock.now())
    assert status["drift"]["conflict"] == 2
    period = parse_period("7d", None, small.clock.now())
    quality = drift_report.build(small.engine.store, period)["data_quality"]
    rows = {(q["field"], q["kind"]): q for q in quality}
    assert rows[("email", "conflict")]["owner"] == "HR" and rows[("email", "conflict")]["open"] == 2
    # HR fixes the address: the drift resolves and the field syncs.
    fixed = "fixed.e00004@acme.example"
    small.edit("E00004", **{"Work Email": fixed})
    assert small.run().exit_code == 0
    assert small.drift("conflict") == {}
    assert small.users()["E00004"]["emails"][0]["value"] == fixed


def test_two_new_people_sharing_a_login_get_no_account(small):
    small.world.rows["E00013"] = World.person(13)
    small.world.rows["E00014"] = World.person(
        14, **{"Work Email": small.world.rows["E00013"]["Work Email"]})
    small.world.write(small.csv)
    assert small.run().exit_code == 0
    assert set(small.drift("conflict")) == {"E00013", "E00014"}
    assert "E00013" not in small.users() and "E00014" not in small.users()
    assert small.ops_for("E00013") == [] and small.ops_for("E00014") == []
    assert "E00012" in small.users()


def test_unknown_manager_is_drift_and_the_lms_manager_stays(small):
    small.run()
    manager_before = small.users()["E00007"][ENTERPRISE]["manager"]["value"]
    small.edit("E00007", **{"Manager ID": "E09999"})
    assert small.run().exit_code == 0
    drift = small.drift("manager_unknown")
    assert set(drift) == {"E00007"} and drift["E00007"]["owner"] == "HR"
    assert drift["E00007"]["detail"]["chain"] == ["E00007", "E09999"]
    assert small.users()["E00007"][ENTERPRISE]["manager"]["value"] == manager_before
    assert _writes(small.ops_for("E00007"), ("manager_key",)) == []
    small.edit("E00007", **{"Manager ID": "E00001"})
    small.run()
    assert small.drift("manager_unknown") == {}


def test_people_who_manage_each_other_are_drift_naming_the_chain(small):
    small.run()
    users = small.users()
    managers_before = {k: users[k][ENTERPRISE]["manager"]["value"] for k in ("E00003", "E00004")}
    small.edit("E00003", **{"Manager ID": "E00004"})
    small.edit("E00004", **{"Manager ID": "E00003"})
    assert small.run().exit_code == 0
    drift = small.drift("manager_cycle")
    assert set(drift) == {"E00003", "E00004"}
    assert drift["E00003"]["detail"]["chain"] == ["E00003", "E00004"]
    assert drift["E00003"]["detail"]["cycle"] == "E00003 -> E00004 -> E00003"
    assert drift["E00004"]["owner"] == "HR"
    users = small.users()
    assert {k: users[k][ENTERPRISE]["manager"]["value"]
            for k in managers_before} == managers_before


def test_manager_depths_terminate_on_a_loop_and_say_who_is_on_it():
    from rostersync.sync.plan import manager_depths
    loops: set[str] = set()
    depths = manager_depths({"A": "B", "B": "A", "C": "A", "D": None}, set(), loops)
    assert set(depths) == {"A", "B", "C", "D"} and loops == {"A", "B"}


def test_new_people_who_manage_each_other_are_created_without_the_loop(small):
    small.world.rows["E00013"] = World.person(13, **{"Manager ID": "E00014"})
    small.world.rows["E00014"] = World.person(14, **{"Manager ID": "E00013"})
    small.world.write(small.csv)
    assert small.run().exit_code == 0
    assert set(small.drift("manager_cycle")) == {"E00013", "E00014"}
    users = small.users()
    assert not users["E00013"].get(ENTERPRISE, {}).get("manager")
    assert not users["E00014"].get(ENTERPRISE, {}).get("manager")


def test_open_conflicts_hold_while_only_other_fields_change(small):
    """People whose login, e-mail and manager did not change are not looked up again,
    unless a conflict of theirs is open: a new title must not resolve it."""
    assert small.run().exit_code == 0
    small.edit("E00004", **{"Work Email": small.world.rows["E00003"]["Work Email"]})
    small.edit("E00007", **{"Manager ID": "E09999"})
    assert small.run().exit_code == 0
    opened = {k: r["id"] for kind in ("conflict", "manager_unknown")
              for k, r in small.drift(kind).items()}
    assert set(opened) == {"E00003", "E00004", "E00007"}
    for key in opened:
        small.edit(key, **{"Job Title": f"Lead {key}"})
    assert small.run().exit_code == 0
    still = {k: r["id"] for kind in ("conflict", "manager_unknown")
             for k, r in small.drift(kind).items()}
    assert still == opened  # the same drift rows, never resolved in between
    assert all(small.users()[k]["title"] == f"Lead {k}" for k in opened)


def test_a_manager_leaving_the_feed_unsettles_a_report_whose_row_changed(small):
    assert small.run().exit_code == 0
    manager = small.world.rows["E00007"]["Manager ID"]
    del small.world.rows[manager]
    small.world.rows["E00007"]["Job Title"] = "Lead"
    small.world.write(small.csv)
    assert small.run().exit_code == 0
    assert small.drift("manager_unknown")["E00007"]["detail"]["chain"] == ["E00007", manager]
