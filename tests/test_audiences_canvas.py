"""Audiences as Canvas account groups, against the Canvas sandbox on 127.0.0.1: exact
memberships, a transfer in one run, the onboarding window, strays, a refused addition
that must not cost the person their old audience, and answers that name another group.

The group endpoints and answer shapes are cited from Canvas's source in docs/canvas.md
§7.4, which is also why each audience's group has a group category of its own.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rostersync.sandbox.canvas import CanvasSandbox, json_reply
from rostersync.storage import drift as drift_store
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import config_from_dict
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.engine import Engine
from rostersync.sync.models import ErrorClass
from tests.audience_support import NOW
from tests.support import World
from tests.test_canvas import CANVAS_COLUMNS, TOKEN, TOKEN_ENV, Sleeper

CATEGORY = "rostersync audiences: {group}"  # each audience's group has a category of its own
AUDIENCES = [
    {"id": "sales-compliance", "lms_group": "Sales compliance",
     "rule": 'department == "Sales"', "compliance": True},
    {"id": "finance-compliance", "lms_group": "Finance compliance",
     "rule": 'department == "Finance"', "compliance": True},
    {"id": "onboarding", "lms_group": "Onboarding", "rule": "hire_date within 14 days"},
]


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def lms(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    # per_page is capped at 3: every group listing of more than three spans pages.
    with CanvasSandbox(token=TOKEN, clock=sleeper.clock, max_per_page=3) as server:
        yield server


class Org:
    def __init__(self, lms, sleeper, folder: Path, size: int = 20) -> None:
        self.lms, self.sleeper, self.folder = lms, sleeper, folder
        self.world = World.generate(size)
        self.csv = self.world.write(folder / "employees.csv")
        self.clock = FrozenClock(NOW)
        self.store = Store(folder / "rostersync.db")

    def config(self, audiences: list[dict[str, Any]] = AUDIENCES, **guards: Any):
        return config_from_dict({
            "database": {"path": str(self.folder / "rostersync.db")},
            "hris": {"type": "csv", "path": str(self.csv), "columns": CANVAS_COLUMNS,
                     "date_formats": ["%Y-%m-%d"]},
            "lms": {"type": "canvas", "base_url": self.lms.base_url, "token_env": TOKEN_ENV,
                    "account_id": self.lms.account_id, "concurrency": 4},
            "guards": {"retry_base_seconds": 60, **guards},
            "audiences": audiences,
        })

    def sync(self, audiences: list[dict[str, Any]] = AUDIENCES, **guards: Any):
        config = self.config(audiences, **guards)
        engine = Engine(config, self.store, clock=self.clock,
                        target_factory=lambda: CanvasTarget(config.lms, sleep=self.sleeper))
        return asyncio.run(engine.sync("full"))

    def group(self, name: str) -> set[str]:
        return self.lms.data.group_members(name, CATEGORY.replace("{group}", name))

    def group_id(self, name: str) -> int:
        [group] = [g for c in self.lms.data.categories() for g in self.lms.data.groups_in(c["id"])
                   if g["name"] == name]
        return group["id"]

    def write(self) -> None:
        self.world.write(self.csv)

    def drift(self) -> dict[str, int]:
        return drift_store.counts_by_kind(self.store)


@pytest.fixture
def org(lms, sleeper, tmp_path):
    o = Org(lms, sleeper, tmp_path)
    yield o
    o.store.close()


def department(world: World, name: str) -> set[str]:
    return {k for k, r in world.rows.items() if r["Department"] == name}


def test_groups_hold_exactly_the_audiences_members_after_a_sync(org):
    org.world.rows["E00021"] = World.person(21, **{"Hire Date": "2026-05-28"})
    org.write()
    report = org.sync()
    assert report.status == "succeeded", report.message
    assert org.group("Sales compliance") == department(org.world, "Sales")
    assert org.group("Finance compliance") == department(org.world, "Finance")
    assert org.group("Onboarding") == {"E00021"}
    categories = org.lms.data.categories()
    assert sorted(c["name"] for c in categories) == sorted(
        CATEGORY.replace("{group}", a["lms_group"]) for a in AUDIENCES)
    groups = [g for c in categories for g in org.lms.data.groups_in(c["id"])]
    assert len(groups) == len(categories)  # one group in each
    assert {g["name"]: g["join_level"] for g in groups} == {
        "Sales compliance": "invitation_only", "Finance compliance": "invitation_only",
        "Onboarding": "invitation_only"}
    assert not any(org.drift().values())

    again = org.sync()
    assert again.status == "succeeded" and again.counts["planned"] == {}
    # The second run read every group through its Link pages (3 a page, 4 members).
    paged = [q for m, p, q in org.lms.requests
             if m == "GET" and p.endswith("/memberships") and "bookmark" in q]
    assert paged, "group memberships were never read past their first page"


def test_a_transfer_moves_the_person_between_groups_in_one_run(org):
    org.sync()
    org.world.rows["E00005"]["Department"] = "Finance"  # was Sales
    org.write()
    org.clock.advance(hours=1)
    report = org.sync()
    assert report.status == "succeeded", report.message
    # Canvas has no department field: only the memberships change.
    assert report.counts["planned"] == {"member_add": 1, "member_remove": 1}
    assert "E00005" in org.group("Finance compliance")
    assert "E00005" not in org.group("Sales compliance")
    ops = op_store.list_ops(org.store, employee_id="E00005")
    add = next(o for o in ops if o["kind"] == "member_add")
    remove = next(o for o in ops if o["kind"] == "member_remove")
    assert add["finished_at"] <= remove["finished_at"]


def test_onboarding_holds_a_new_hire_for_the_window_only(org):
    org.sync()
    org.world.rows["E00021"] = World.person(21, **{"Hire Date": "2026-05-30"})
    org.write()
    report = org.sync()
    assert report.counts["planned"] == {"create": 1, "member_add": 1}, report.counts
    assert org.group("Onboarding") == {"E00021"}
    org.clock.advance(days=10)
    assert org.sync().counts["planned"] == {}
    org.clock.set(NOW + timedelta(days=14))
    report = org.sync()
    assert report.counts["planned"] == {"member_remove": 1}, report.counts
    assert org.group("Onboarding") == set()


def refuse_additions_to(lms, group_name: str, status: int = 400):
    """A fault hook: Canvas refuses every addition to one group (a 400 it will repeat,
    or a 503 that may pass)."""
    def hook(method: str, path: str):
        group = next((g for c in lms.data.categories() for g in lms.data.groups_in(c["id"])
                      if g["name"] == group_name), None)
        if group and method == "POST" and path == f"/api/v1/groups/{group['id']}/memberships":
            return json_reply(status, {"errors": {"user_id": [{
                "attribute": "user_id", "type": "invalid",
                "message": "user is not allowed in this group"}]}})
        return None
    return hook


def transfer_ops(org: Org, run_id: int) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in op_store.list_ops(org.store, employee_id="E00010")
            if o["run_id"] == run_id}


def test_a_refused_addition_holds_the_removal_until_the_addition_lands(org):
    org.sync()
    org.world.rows["E00010"]["Department"] = "Finance"  # Sales -> Finance
    org.write()
    org.lms.fault = refuse_additions_to(org.lms, "Finance compliance")
    org.clock.advance(hours=1)
    report = org.sync()
    assert report.status == "partial", report.as_dict()
    assert report.counts["applied"] == {"dead": 1, "held": 1}, report.counts
    # Still in the old compliance audience: never in neither.
    assert "E00010" in org.group("Sales compliance")
    assert "E00010" not in org.group("Finance compliance")
    ops = transfer_ops(org, report.run_id)
    assert ops["member_add"]["status"] == "dead"
    assert "not allowed in this group" in ops["member_add"]["last_error"]
    held = ops["member_remove"]
    assert held["status"] == "held" and held["attempts"] == 0
    assert "E00010 is not yet in compliance audience 'finance-compliance' (addition dead" \
        in held["hold_reason"]
    assert "would leave them in neither" in held["hold_reason"]
    assert not [m for m, p, _q in org.lms.requests if m == "DELETE"]  # nothing was sent

    org.lms.fault = None  # fixed in Canvas: the next run adds, which releases the removal
    org.clock.advance(hours=1)
    report = org.sync()
    assert report.status == "succeeded", report.as_dict()
    assert "E00010" in org.group("Finance compliance")
    assert op_store.get_op(org.store, held["id"])["status"] == "pending"
    org.clock.advance(minutes=5)
    org.sync()
    assert op_store.get_op(org.store, held["id"])["status"] == "succeeded"
    assert "E00010" not in org.group("Sales compliance")


def test_a_failing_addition_makes_the_removal_wait_for_its_retry(org):
    org.sync()
    org.world.rows["E00010"]["Department"] = "Finance"
    org.write()
    org.lms.fault = refuse_additions_to(org.lms, "Finance compliance", status=503)
    org.clock.advance(hours=1)
    report = org.sync()
    assert report.counts["applied"] == {"failed": 1, "waiting": 1}, report.counts
    ops = transfer_ops(org, report.run_id)
    add, waiting = ops["member_add"], ops["member_remove"]
    assert add["status"] == "failed" and waiting["status"] == "pending"
    assert waiting["attempts"] == 0 and waiting["next_attempt_at"] == add["next_attempt_at"]
    assert waiting["last_error"].startswith("waits until the addition is retried")
    assert "E00010" in org.group("Sales compliance")

    org.lms.fault = None
    org.clock.advance(minutes=10)  # the retry sweep: the addition, then the removal
    config = org.config()
    engine = Engine(config, org.store, clock=org.clock,
                    target_factory=lambda: CanvasTarget(config.lms, sleep=org.sleeper))
    swept = asyncio.run(engine.apply_due())
    assert swept.counts["applied"] == {"succeeded": 2}, swept.counts
    assert "E00010" in org.group("Finance compliance")
    assert "E00010" not in org.group("Sales compliance")


def test_an_approved_removal_runs_even_while_the_addition_fails(org, capsys):
    from rostersync.console.cli import main

    org.sync()
    org.world.rows["E00010"]["Department"] = "Finance"
    org.write()
    org.lms.fault = refuse_additions_to(org.lms, "Finance compliance")
    org.sync()
    remove = next(o for o in op_store.list_ops(org.store, employee_id="E00010")
                  if o["kind"] == "member_remove")
    assert remove["status"] == "held"
    config_path = org.folder / "rostersync.toml"
    config_path.write_text(TOML.format(db=org.folder / "rostersync.db", csv=org.csv,
                                       url=org.lms.base_url, account=org.lms.account_id,
                                       token_env=TOKEN_ENV), encoding="utf-8")
    code = main(["ops", "approve", str(remove["id"]), "--config", str(config_path)])
    out = capsys.readouterr()
    # The removal runs; the addition, planned again and still refused, fails the run.
    assert code == 1 and "dead 1, succeeded 1" in out.out, out.out + out.err
    assert op_store.get_op(org.store, remove["id"])["status"] == "succeeded"
    assert "E00010" not in org.group("Sales compliance")


TOML = """
[database]
path = "{db}"
[hris]
type = "csv"
path = "{csv}"
date_formats = ["%Y-%m-%d"]
[hris.columns]
""" + "".join(f'{k} = "{v}"\n' for k, v in CANVAS_COLUMNS.items()) + """
[lms]
type = "canvas"
base_url = "{url}"
account_id = "{account}"
token_env = "{token_env}"
[[audiences]]
id = "sales-compliance"
lms_group = "Sales compliance"
rule = 'department == "Sales"'
compliance = true
[[audiences]]
id = "finance-compliance"
lms_group = "Finance compliance"
rule = 'department == "Finance"'
compliance = true
"""


def test_strays_are_reported_then_removed_through_the_mass_guard(org):
    org.sync()
    sales = org.group_id("Sales compliance")
    strays = [org.lms.data.add(f"Temp {i}", f"temp{i}@acme.example") for i in range(2)]
    for user in strays:
        org.lms.data.add_membership(sales, {"user_id": str(user["id"])})
    org.clock.advance(hours=1)
    report = org.sync()  # default: report only
    assert report.status == "succeeded" and report.counts["planned"] == {}
    assert report.counts["drift"].get("member_extra") == 2
    rows = org.store.rows("SELECT subject, detail FROM drift WHERE kind = 'member_extra' "
                          "AND resolved_at IS NULL ORDER BY subject")
    assert [r["subject"] for r in rows] == [f"lms:{u['id']}" for u in strays]
    detail = json.loads(rows[0]["detail"])
    assert detail["audiences"] == ["sales-compliance"] and detail["removing"] == []

    removing = [dict(a, stray_members="remove") if a["id"] == "sales-compliance" else a
                for a in AUDIENCES]
    # The audience's own mass_removal_min (5) overrides the [guards] default (1).
    allowed = [dict(a, mass_removal_min=5) if a["id"] == "sales-compliance" else a
               for a in removing]
    org.clock.advance(hours=1)
    report = org.sync(allowed, audience_mass_removal_min=1, audience_mass_removal_percent=0.0)
    assert report.status == "succeeded", report.as_dict()
    assert report.counts["planned"] == {"member_remove": 2}, report.counts
    assert org.group("Sales compliance") == department(org.world, "Sales")
    assert not org.drift().get("member_extra")
    assert org.sync(allowed).counts["planned"] == {}

    # Without it, the [guards] default holds more than max(1, 0% of the size) removals.
    more = [org.lms.data.add(f"Temp {i}", f"temp{i}@acme.example") for i in range(2, 4)]
    for user in more:
        org.lms.data.add_membership(sales, {"user_id": str(user["id"])})
    org.clock.advance(hours=1)
    held = org.sync(removing, audience_mass_removal_min=1, audience_mass_removal_percent=0.0)
    assert held.exit_code == 3, held.as_dict()
    assert any("mass membership change: 2 removals from audience 'sales-compliance'" in r
               for r in held.reasons), held.reasons
    assert len(org.group("Sales compliance")) == len(department(org.world, "Sales")) + 2
    assert {o["employee_id"] for o in op_store.list_ops(org.store, status="held")} \
        == {f"lms:{u['id']}" for u in more}


def test_a_listing_naming_another_group_is_never_trusted(org):
    org.sync()
    before = org.group("Sales compliance")
    sales = org.group_id("Sales compliance")

    def other_group(method: str, path: str):
        if method == "GET" and path == f"/api/v1/groups/{sales}/memberships":
            return json_reply(200, [{"id": 1, "group_id": 999, "user_id": 101,
                                     "workflow_state": "accepted"}])
        return None

    org.lms.fault = other_group
    org.clock.advance(hours=1)
    report = org.sync()
    assert report.status == "failed"
    assert "membership of group \"999\", not of group" in report.message
    assert org.group("Sales compliance") == before  # nothing removed on its strength


def test_group_lookups_and_answers_are_checked(lms, sleeper):
    from rostersync.sync.connectors.canvas_config import CanvasTargetConfig

    config = CanvasTargetConfig(base_url=lms.base_url, token_env=TOKEN_ENV,
                                account_id=lms.account_id)
    audience = SimpleNamespace(id="a", group="Team A", title="Team A", create_missing=False)
    user = lms.data.add("Ada Novak", "ada@acme.example", sis_user_id="E1")

    async def attempt(coro_fn):
        async with CanvasTarget(config, sleep=sleeper) as target:
            return await coro_fn(target)

    # Missing and not to be created: one clear mapping error; reading finds nobody.
    assert asyncio.run(attempt(lambda t: t.audience_members(audience))) == set()
    with pytest.raises(ConnectorError, match="does not exist; create it in Canvas") as err:
        asyncio.run(attempt(lambda t: t.add_to_audience(audience, str(user["id"]))))
    assert err.value.error_class == ErrorClass.mapping

    category = lms.data.create_category({"name": CATEGORY.replace("{group}", "Team A")})
    other = lms.data.create_category({"name": "Clubs"})
    group = lms.data.create_group(category["id"], {"name": "Team A"})

    # A category listing that answers a group of another category.
    def foreign(method: str, path: str):
        if path == f"/api/v1/group_categories/{category['id']}/groups":
            return json_reply(200, [{**group, "group_category_id": other["id"]}])
        return None

    lms.fault = foreign
    with pytest.raises(ConnectorError, match="of category") as err:
        asyncio.run(attempt(lambda t: t.audience_members(audience)))
    assert err.value.error_class == ErrorClass.conflict

    # An addition answered with another user's membership did not take.
    def wrong_user(method: str, path: str):
        if method == "POST" and path.endswith("/memberships"):
            return json_reply(200, {"id": 5, "group_id": group["id"], "user_id": 4242,
                                    "workflow_state": "accepted"})
        return None

    lms.fault = wrong_user
    with pytest.raises(ConnectorError, match="did not take"):
        asyncio.run(attempt(lambda t: t.add_to_audience(audience, str(user["id"]))))
    lms.fault = None

    # A deleted user is not_found; a second group of the same name is a conflict.
    with pytest.raises(ConnectorError) as err:
        asyncio.run(attempt(lambda t: t.add_to_audience(audience, "99999")))
    assert err.value.error_class == ErrorClass.not_found
    asyncio.run(attempt(lambda t: t.add_to_audience(audience, str(user["id"]))))
    assert lms.data.group_members("Team A") == {"E1"}
    asyncio.run(attempt(lambda t: t.remove_from_audience(audience, str(user["id"]))))
    asyncio.run(attempt(lambda t: t.remove_from_audience(audience, str(user["id"]))))
    assert lms.data.group_members("Team A") == set()
    lms.data.create_group(category["id"], {"name": "Team A"})
    with pytest.raises(ConnectorError, match="2 groups are named"):
        asyncio.run(attempt(lambda t: t.audience_members(audience)))


def test_removal_by_membership_id(lms, sleeper):
    from rostersync.sync.connectors.canvas_config import CanvasTargetConfig

    config = CanvasTargetConfig(base_url=lms.base_url, token_env=TOKEN_ENV,
                                account_id=lms.account_id, groups={"remove_by": "membership"})
    audience = SimpleNamespace(id="a", group="Team A", title="Team A", create_missing=True)
    users = [lms.data.add(f"P {i}", f"p{i}@acme.example", sis_user_id=f"E{i}")
             for i in range(6)]

    async def scenario():
        async with CanvasTarget(config, sleep=sleeper) as target:
            for u in users:
                await target.add_to_audience(audience, str(u["id"]))
            await target.remove_from_audience(audience, str(users[5]["id"]))
            return await target.audience_members(audience)

    assert asyncio.run(scenario()) == {str(u["id"]) for u in users[:5]}
    assert any(m == "DELETE" and "/memberships/" in p for m, p, _q in lms.requests)
