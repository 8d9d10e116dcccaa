"""Audiences end to end against a real scim2-server on 127.0.0.1: transfers, the
onboarding window, a renamed department, and the CLI's list / explain / dry-run."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from rostersync.console.cli import main
from rostersync.storage import drift as drift_store
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from tests.audience_support import NOW, audience_config, group_members, people_in, sync
from tests.support import World


@pytest.fixture
def org(tmp_path, scim_server, lms_token):
    world = World.generate(120)
    csv_path = tmp_path / "employees.csv"
    world.write(csv_path)
    config = audience_config(tmp_path, scim_server.base_url, csv_path)

    class Org:
        pass

    o = Org()
    o.world, o.csv, o.config, o.lms, o.token = world, csv_path, config, scim_server, lms_token
    o.clock = FrozenClock(NOW)
    o.groups = lambda: group_members(scim_server.base_url, lms_token)
    o.db = lambda: Store(tmp_path / "rostersync.db")
    return o


def test_first_sync_fills_every_audience_exactly(org):
    report = sync(org.config, org.clock)
    assert report.status == "succeeded", report.message
    groups = org.groups()
    assert groups["sales-compliance"] == people_in(org.world, "Sales")
    assert groups["finance-compliance"] == people_in(org.world, "Finance")
    # E00003 (by its second rule) and everyone below them in the manager tree.
    team = {"E00003", *(f"E{i:05d}" for i in range(12, 17)),
            *(f"E{i:05d}" for i in range(57, 82))}
    assert groups["team-e00003"] == team
    assert "onboarding" not in groups or groups["onboarding"] == set()
    again = sync(org.config, org.clock)
    assert again.counts["planned"] == {} and again.status == "succeeded"


def test_transfer_moves_a_person_between_audiences_in_one_run(org):
    sync(org.config, org.clock)
    org.world.rows["E00005"]["Department"] = "Finance"  # was Sales
    org.world.write(org.csv)
    report = sync(org.config, org.clock)
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"update": 1, "member_add": 1, "member_remove": 1}
    groups = org.groups()
    assert "E00005" in groups["finance-compliance"]
    assert "E00005" not in groups["sales-compliance"]
    store = org.db()
    ops = op_store.list_ops(store, employee_id="E00005")
    add = next(o for o in ops if o["kind"] == "member_add")
    remove = next(o for o in ops if o["kind"] == "member_remove")
    # The addition to the new compliance audience landed before the removal.
    assert add["finished_at"] <= remove["finished_at"]
    assert not drift_store.counts_by_kind(store)


def test_new_hire_joins_onboarding_and_leaves_after_the_window(org):
    sync(org.config, org.clock)
    hire = World.person(121, **{"Hire Date": "2026-05-30", "Department": "Support"})
    org.world.rows[hire["Employee ID"]] = hire
    org.world.write(org.csv)
    report = sync(org.config, org.clock)
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"create": 1, "member_add": 1}
    assert org.groups()["onboarding"] == {"E00121"}

    org.clock.advance(days=20)  # still inside the 30 days: nothing to do
    assert sync(org.config, org.clock).counts["planned"] == {}
    org.clock.set(NOW + timedelta(days=30))  # the window ends on 29 June in Tokyo
    report = sync(org.config, org.clock)
    assert report.counts["planned"] == {"member_remove": 1}, report.counts
    assert org.groups()["onboarding"] == set()


def test_renamed_department_is_unmapped_and_held_instead_of_emptying(org):
    sync(org.config, org.clock)
    sales = people_in(org.world, "Sales")
    for key in sales:
        org.world.rows[key]["Department"] = "Revenue"  # renamed in HR, no rule knows it
    org.world.write(org.csv)
    report = sync(org.config, org.clock)
    assert report.exit_code == 3, report.as_dict()
    assert org.groups()["sales-compliance"] == sales  # nobody dropped out
    store = org.db()
    held = op_store.list_ops(store, status="held", limit=1000)
    assert {o["employee_id"] for o in held} == sales
    assert all(o["kind"] == "member_remove" for o in held)
    assert "unmapped value" in held[0]["hold_reason"]
    rows = store.rows("SELECT subject, owner, detail FROM drift WHERE kind = 'unmapped' "
                      "AND resolved_at IS NULL")
    assert {r["subject"] for r in rows} == sales
    assert rows[0]["owner"] == "L&D"
    # Every audience whose rules read the department waits for L&D, for these people.
    assert json.loads(rows[0]["detail"])["audiences"] == ["finance-compliance",
                                                          "sales-compliance"]


def test_mass_removal_without_known_values_is_held(org, tmp_path):
    # Without a strict department mapping the rename is not recognisable as unmapped:
    # the membership mass-change guard is what stops the audience being emptied.
    text = org.config.read_text().replace('strict = ["department"]', "strict = []")
    org.config.write_text(text)
    sync(org.config, org.clock)
    sales = people_in(org.world, "Sales")
    for key in sales:
        org.world.rows[key]["Department"] = "Revenue"
    org.world.write(org.csv)
    report = sync(org.config, org.clock)
    assert report.exit_code == 3
    assert any("mass membership change" in r for r in report.reasons), report.reasons
    assert org.groups()["sales-compliance"] == sales


def run_cli(capsys, config, *argv):
    code = main([*argv, "--config", str(config)])
    return code, capsys.readouterr()


def test_cli_list_explain_and_dry_run(org, capsys):
    sync(org.config, org.clock)
    code, out = run_cli(capsys, org.config, "audiences", "list", "--json")
    assert code == 0, out.err
    doc = {a["id"]: a for a in json.loads(out.out)["audiences"]}
    assert doc["sales-compliance"]["size"] == len(people_in(org.world, "Sales"))
    assert doc["sales-compliance"]["rules"] == ['department == "Sales"']

    code, out = run_cli(capsys, org.config, "audiences", "explain", "E00003", "--json")
    assert code == 0, out.err
    why = {a["id"]: a for a in json.loads(out.out)["audiences"]}
    assert why["team-e00003"]["should_be_in"] and why["team-e00003"]["is_in"]
    assert why["team-e00003"]["rule"] == 'employee_number == "100003"'
    assert not why["sales-compliance"]["should_be_in"]

    code, out = run_cli(capsys, org.config, "audiences", "explain", "E00005")
    assert code == 0
    assert 'sales-compliance' in out.out and 'department == "Sales"' in out.out

    code, out = run_cli(capsys, org.config, "audiences", "explain", "E99999")
    assert code == 2 and "E99999" in out.err

    org.world.rows["E00010"]["Department"] = "Finance"  # Sales -> Finance
    org.world.write(org.csv)
    code, out = run_cli(capsys, org.config, "sync", "--dry-run", "--json")
    plan = json.loads(out.out)["plan"]
    moves = {(p["kind"], p["audience"]) for p in plan if p["kind"].startswith("member")}
    assert moves == {("member_add", "finance-compliance"),
                     ("member_remove", "sales-compliance")}
    assert "E00010" in org.groups()["sales-compliance"]  # a dry run changes nothing
