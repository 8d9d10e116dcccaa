"""Canvas: the sandbox's wire rules, the target against it, and one engine run into it.

The wire behaviour (bearer auth, the user and login endpoints' shapes, suspending a login
through its workflow_state or a user event, the nested error body, telling a throttled
403 by its "Rate Limit Exceeded" text) is cited from Canvas's source in docs/canvas.md;
tests/test_canvas_sources.py pins the points where that source corrected the sandbox.
"""

from __future__ import annotations

import asyncio
import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from rostersync.sandbox.canvas import CanvasSandbox, Truncated, json_reply, once, throttle_burst
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, config_from_dict
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.canvas_wire import parse_link_header, split_names
from rostersync.sync.connectors.factory import make_target
from rostersync.sync.engine import Engine
from rostersync.sync.models import Account, ErrorClass
from rostersync.sync.status import build_status
from tests.support import World

TOKEN = "canvas-sandbox-token-7f3a"
READ_ONLY = "canvas-read-only-token"
TOKEN_ENV = "ROSTERSYNC_TEST_CANVAS_TOKEN"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "canvas.toml"


class Sleeper:
    """The injected retry sleep: records each wait and moves the sandbox's clock on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def lms(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with CanvasSandbox(token=TOKEN, read_only_token=READ_ONLY, clock=sleeper.clock) as server:
        yield server


def target(lms, sleeper, **settings: Any) -> CanvasTarget:
    config = CanvasTargetConfig(base_url=lms.base_url, token_env=TOKEN_ENV,
                                account_id=lms.account_id, **settings)
    return CanvasTarget(config, sleep=sleeper, jitter=lambda: 1.0)


def run(coro):
    return asyncio.run(coro)


async def listed(t: CanvasTarget) -> list[Account]:
    async with t:
        return [a async for a in t.list_accounts()]


def person(i: int, **overrides: Any) -> Account:
    fields = {"external_key": f"E{i:03d}", "user_name": f"p{i}@acme.example",
              "given_name": "Ada", "family_name": f"Novak{i}", "display_name": f"Ada Novak{i}",
              "email": f"p{i}@acme.example", "employee_number": f"{100000 + i}"}
    return Account(**{**fields, **overrides})


def seed(lms, count: int) -> None:
    for i in range(count):
        lms.data.create_user({
            "user[name]": f"Ada Novak{i}", "user[sortable_name]": f"Novak{i}, Ada",
            "user[short_name]": f"Ada Novak{i}", "pseudonym[unique_id]": f"p{i}@acme.example",
            "pseudonym[sis_user_id]": f"E{i:03d}", "pseudonym[integration_id]": f"{100000 + i}",
            "communication_channel[address]": f"p{i}@acme.example"})


def api(lms, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=lms.base_url + "/api/v1",
                        headers={"Authorization": f"Bearer {token}"})


# -- pure wire rules ----------------------------------------------------------------------


def test_link_header_parsing_is_case_insensitive_and_keeps_commas_in_urls():
    header = ('<https://c.example/api/v1/users?page=bookmark:a,b&per_page=10>; rel="next", '
              '<https://c.example/api/v1/users?page=1>; REL="first prev",<x>;rel=last')
    assert parse_link_header(header) == {
        "next": "https://c.example/api/v1/users?page=bookmark:a,b&per_page=10",
        "first": "https://c.example/api/v1/users?page=1",
        "prev": "https://c.example/api/v1/users?page=1", "last": "x"}
    assert parse_link_header(None) == {} and parse_link_header("garbage") == {}


def test_names_split_back_even_with_a_comma_in_a_part():
    assert split_names("Ann Smith, Jr.", "Smith, Jr., Ann") == ("Ann", "Smith, Jr.")
    assert split_names("Ada Novak", "Novak, Ada") == ("Ada", "Novak")


# -- the sandbox speaks Canvas ------------------------------------------------------------


def test_sandbox_pages_by_link_header_and_caps_per_page(lms):
    seed(lms, 23)
    with api(lms) as c:
        first = c.get(f"/accounts/{lms.account_id}/users")
        big = c.get(f"/accounts/{lms.account_id}/users", params={"per_page": 500})
        links = parse_link_header(first.headers["link"])
        second = c.get(links["next"])
    assert len(first.json()) == 10 and len(big.json()) == 23  # default 10, cap 100
    assert set(links) == {"current", "next", "first", "last"}
    assert "page=bookmark" in links["next"]  # opaque: follow it, never build it
    assert [u["id"] for u in second.json()] != [u["id"] for u in first.json()]
    assert float(first.headers["x-rate-limit-remaining"]) < 700
    assert "x-request-cost" in first.headers


def test_sandbox_refuses_bad_tokens_and_read_only_writes(lms):
    with api(lms, "nope") as c:
        wrong = c.get("/users/101")
    with api(lms, READ_ONLY) as c:
        denied = c.post(f"/accounts/{lms.account_id}/users",
                        data={"pseudonym[unique_id]": "x@acme.example"})
    assert wrong.status_code == 401
    assert wrong.json() == {"errors": [{"message": "Invalid access token."}]}
    assert denied.status_code == 401 and "not authorized" in denied.text


def test_sandbox_keeps_login_ids_unique_ignoring_case(lms):
    seed(lms, 1)
    with api(lms) as c:
        taken = c.post(f"/accounts/{lms.account_id}/users",
                       data={"pseudonym[unique_id]": "P0@ACME.example"})
    assert taken.status_code == 400
    [detail] = taken.json()["errors"]["pseudonym"]["unique_id"]
    assert detail["type"] == "taken" and "already in use" in detail["message"]


# -- reads --------------------------------------------------------------------------------


def test_listing_follows_every_page_even_when_the_server_caps_per_page(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with CanvasSandbox(token=TOKEN, max_per_page=4, omit_last=True) as lms:
        seed(lms, 23)
        lms.data.update_login(5003, {"login[workflow_state]": "suspended"})
        accounts = run(listed(target(lms, sleeper, per_page=50)))
        pages = [q for m, p, q in lms.requests if p.endswith("/users") and m == "GET"]
    assert len(accounts) == 23 and len(pages) == 6  # 4 per page whatever we asked
    assert {a.external_key for a in accounts} == {f"E{i:03d}" for i in range(23)}
    # Asked once; after that the links are followed as given (they carry the server's cap).
    assert "per_page=50" in pages[0] and all("page=bookmark" in q for q in pages[1:])
    suspended = [a for a in accounts if not a.active]
    assert [a.external_key for a in suspended] == ["E002"]
    one = next(a for a in accounts if a.external_key == "E007")
    assert (one.user_name, one.given_name, one.family_name, one.display_name, one.email,
            one.employee_number, one.title, one.department, one.manager_key) == (
        "p7@acme.example", "Ada", "Novak7", "Ada Novak7", "p7@acme.example", "100007",
        None, None, None)


def test_lookups_by_sis_id_login_and_email_return_only_exact_matches(lms, sleeper):
    seed(lms, 12)  # p1@ is a prefix of p10@ and p11@: a search finds all three
    lms.data.add("Hand Made", "hand@acme.example", email="hand@acme.example")

    async def lookups():
        async with target(lms, sleeper) as t:
            return (await t.find_by_external_key("E001"), await t.find_by_external_key("E999"),
                    await t.find_by_user_name("P1@acme.example"),
                    await t.find_by_email("hand@acme.example"),
                    await t.find_by_user_name("nobody@acme.example"),
                    await t.get("102"), await t.get("999"))

    by_sis, no_sis, by_login, by_email, nobody, got, missing = run(lookups())
    assert [a.user_name for a in by_sis] == ["p1@acme.example"] and no_sis == []
    assert [a.external_key for a in by_login] == ["E001"]
    assert [(a.user_name, a.external_key) for a in by_email] == [("hand@acme.example", None)]
    assert nobody == [] and missing is None and got is not None and got.lms_id == "102"
    assert ("GET", "/api/v1/users/sis_user_id:E001", "") in lms.requests


def test_a_lookup_answering_another_sis_id_is_an_error(lms, sleeper):
    seed(lms, 3)
    other = lms.data.user_json(102)  # holds E001
    lms.fault = once(json_reply(200, other), "GET", "sis_user_id:E002")
    t = target(lms, sleeper)
    with pytest.raises(ConnectorError) as caught:
        run(t.find_by_external_key("E002"))
    assert caught.value.error_class is ErrorClass.conflict
    assert 'lookup of sis_user_id "E002" answered with user 102, which has sis_user_id ' \
           '"E001"' in str(caught.value)


# -- writes -------------------------------------------------------------------------------


def test_create_update_suspend_and_unsuspend(lms, sleeper):
    async def story():
        async with target(lms, sleeper) as t:
            created = await t.create(person(1), manager_lms_id="555")
            renamed = await t.update(created.lms_id, {
                "given_name": "Adele", "email": "adele@acme.example",
                "user_name": "adele@acme.example", "employee_number": "200001"})
            await t.set_active(created.lms_id, False)
            suspended = await t.get(created.lms_id)
            await t.set_active(created.lms_id, True)
            return created, renamed, suspended, await t.get(created.lms_id)

    created, renamed, suspended, back = run(story())
    user_id = int(created.lms_id)
    assert created.external_key == "E001" and created.active
    assert created.extra["login_id"]
    stored = lms.data.user_json(user_id)
    assert (stored["name"], stored["sortable_name"], stored["short_name"], stored["email"],
            stored["login_id"], stored["integration_id"]) == (
        "Adele Novak1", "Novak1, Adele", "Ada Novak1", "adele@acme.example",
        "adele@acme.example", "200001")
    assert renamed.given_name == "Adele" and renamed.user_name == "adele@acme.example"
    assert suspended.active is False and back.active is True
    assert lms.data.login_state(user_id) == "active"
    login_puts = [q for m, p, q in lms.requests if m == "PUT" and "/logins/" in p]
    assert len(login_puts) == 3  # ids, suspend, unsuspend


def test_user_event_suspends_every_login(lms, sleeper):
    async def story():
        async with target(lms, sleeper, deactivate_by="user_event") as t:
            created = await t.create(person(2), None)
            await t.set_active(created.lms_id, False)
            return created, await t.get(created.lms_id)

    created, after = run(story())
    assert after.active is False
    assert lms.data.login_state(int(created.lms_id)) == "suspended"
    assert not [p for m, p, q in lms.requests if m == "PUT" and "/logins/" in p]


def test_a_write_that_does_not_take_is_an_error(lms, sleeper):
    seed(lms, 1)
    login = {"id": 5001, "user_id": 101, "unique_id": "p0@acme.example",
             "sis_user_id": "E000", "workflow_state": "active"}
    lms.fault = once(json_reply(200, login), "PUT", "/logins/")
    with pytest.raises(ConnectorError) as caught:
        run(target(lms, sleeper).update("101", {"active": False}))
    assert "did not take: workflow_state reads back as \"active\", not \"suspended\"" \
        in str(caught.value)


def test_fields_canvas_cannot_hold_are_refused_after_the_rest_lands(lms, sleeper):
    seed(lms, 1)
    with pytest.raises(ConnectorError) as only:
        run(target(lms, sleeper).update("101", {"title": "Lead", "manager_key": "E009"}))
    assert only.value.error_class is ErrorClass.mapping
    assert "no place for manager_key, title" in str(only.value)
    assert not [m for m, _p, _q in lms.requests if m != "GET"]
    with pytest.raises(ConnectorError, match="no place for department"):
        run(target(lms, sleeper).update("101", {"family_name": "Costa",
                                                "department": "Sales"}))
    assert lms.data.user_json(101)["sortable_name"] == "Costa, Ada"


def test_delete_removes_the_user(lms, sleeper):
    seed(lms, 2)
    run(target(lms, sleeper).delete("101"))
    assert [a.external_key for a in run(listed(target(lms, sleeper)))] == ["E001"]


# -- error shapes -------------------------------------------------------------------------


def test_a_taken_login_id_is_a_conflict_and_bad_values_are_data(lms, sleeper):
    seed(lms, 1)
    with pytest.raises(ConnectorError) as taken:
        run(target(lms, sleeper).create(person(5, user_name="P0@acme.example"), None))
    with pytest.raises(ConnectorError) as bad_email:
        run(target(lms, sleeper).create(person(6, email="not an address"), None))
    with pytest.raises(ConnectorError) as bad_state:
        run(target(lms, sleeper, suspended_state="frozen").update("101", {"active": False}))
    assert taken.value.error_class is ErrorClass.conflict and taken.value.code == "taken"
    assert str(taken.value) == (
        'Canvas create of login "P0@acme.example" (sis_user_id "E005") failed: 400 '
        "pseudonym.unique_id: ID already in use for this account and authentication provider")
    assert bad_email.value.error_class is ErrorClass.data
    assert "communication_channel.address: is invalid" in str(bad_email.value)
    assert bad_state.value.error_class is ErrorClass.data and bad_state.value.status == 400


def test_invalid_token_is_auth_and_never_quoted(lms, sleeper, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "wrong-secret-value")
    with pytest.raises(ConnectorError) as caught:
        run(listed(target(lms, sleeper)))
    text = str(caught.value)
    assert caught.value.error_class is ErrorClass.auth and caught.value.status == 401
    assert "Invalid access token." in text and f"${TOKEN_ENV}" in text
    assert "wrong-secret-value" not in text
    assert sleeper.slept == []


def test_rate_limit_403_is_retried_but_a_permission_refusal_is_not(lms, sleeper, monkeypatch):
    seed(lms, 3)
    lms.fault = throttle_burst(2)
    assert len(run(listed(target(lms, sleeper)))) == 3
    assert sleeper.slept == [5.0, 5.0]  # drained back to the low-water mark (0 -> 50)

    monkeypatch.setenv(TOKEN_ENV, READ_ONLY)
    lms.requests.clear()
    with pytest.raises(ConnectorError) as caught:
        run(target(lms, sleeper).update("101", {"given_name": "Bo"}))
    assert caught.value.error_class is ErrorClass.auth and caught.value.status == 401
    assert "not authorized" in str(caught.value) and "lacks the permission" in str(caught.value)
    assert [m for m, _p, _q in lms.requests].count("PUT") == 1


def test_a_throttled_write_is_retried_since_canvas_did_nothing(lms, sleeper):
    lms.fault = throttle_burst(1)
    created = run(target(lms, sleeper).create(person(3), None))
    assert created.external_key == "E003" and len(sleeper.slept) == 1
    assert [m for m, p, _q in lms.requests if p.endswith("/users")] == ["POST", "POST"]


def test_a_real_bucket_burst_is_survived_with_nothing_lost(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    # Each request costs 300 of the 700-unit bucket, which drains 10 units/s: the third
    # in a row overflows, and a 30 s wait makes room for one more.
    with CanvasSandbox(token=TOKEN, request_cost=300, clock=sleeper.clock) as lms:
        seed(lms, 6)
        accounts = run(listed(target(lms, sleeper, per_page=3, low_water_remaining=0,
                                     backoff_base_seconds=30)))
        throttled = len(lms.requests) - 2 - 6  # two pages, six login lists
    assert sorted(a.external_key for a in accounts) == [f"E{i:03d}" for i in range(6)]
    assert throttled > 0 and len(sleeper.slept) == throttled


def test_pacing_waits_when_the_bucket_runs_low(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with CanvasSandbox(token=TOKEN, request_cost=330, clock=sleeper.clock) as lms:
        seed(lms, 1)

        async def three_calls():
            async with target(lms, sleeper, low_water_remaining=400) as t:
                return [a async for a in t.list_accounts()], await t.get("101")

        accounts, one = run(three_calls())
    # 370 units left after the first call: wait 3 s to get back to 400; from then on 70
    # are left after each call (330 drained, 330 spent): wait 33 s. None was throttled.
    assert len(accounts) == 1 and one is not None
    assert sleeper.slept == [pytest.approx(3.0), pytest.approx(33.0), pytest.approx(33.0)]
    assert len(lms.requests) == 4  # page, logins, user, logins


def test_endless_throttling_gives_up_with_a_clear_error(lms, sleeper):
    lms.fault = throttle_burst(99)
    with pytest.raises(ConnectorError) as caught:
        run(listed(target(lms, sleeper, max_attempts=3)))
    assert caught.value.error_class is ErrorClass.transient
    assert "403 403 Forbidden (Rate Limit Exceeded) (still failing after 3 attempts)" \
        in str(caught.value)
    assert len(sleeper.slept) == 2


def test_a_server_error_on_a_write_is_transient_and_not_repeated(lms, sleeper):
    lms.fault = once(json_reply(502, {"errors": [{"message": "Bad Gateway"}]}), "POST")
    with pytest.raises(ConnectorError) as caught:
        run(target(lms, sleeper).create(person(4), None))
    assert caught.value.error_class is ErrorClass.transient and caught.value.status == 502
    assert [m for m, _p, _q in lms.requests] == ["POST"]


def test_malformed_or_truncated_pages_are_reread_and_nothing_is_lost(lms, sleeper):
    seed(lms, 5)
    lms.fault = once((200, {"Content-Type": "application/json"}, b'[{"id": 101, "na'), "GET")
    assert len(run(listed(target(lms, sleeper)))) == 5
    lms.fault = once(Truncated(b'[{"id": 101', 4000), "GET", "/users")
    assert len(run(listed(target(lms, sleeper)))) == 5
    assert len(sleeper.slept) == 2


def test_a_body_that_stays_malformed_is_one_clear_error(lms, sleeper):
    seed(lms, 2)
    lms.fault = lambda method, path: (200, {}, b"<html>maintenance</html>")
    with pytest.raises(ConnectorError) as caught:
        run(listed(target(lms, sleeper, max_attempts=2)))
    assert str(caught.value) == (
        "Canvas list of users (GET /api/v1/accounts/1/users, page 1) failed: the 200 answer "
        "is not JSON (malformed or cut short: '<html>maintenance</html>')")
    assert caught.value.error_class is ErrorClass.transient


def test_a_next_link_to_another_host_is_not_followed(lms, sleeper):
    seed(lms, 2)
    evil = '<https://evil.example/api/v1/accounts/1/users?page=2>; rel="next"'
    lms.fault = once((200, {"Content-Type": "application/json", "Link": evil},
                      json.dumps([lms.data.user_json(101)]).encode()), "GET", "/users")
    with pytest.raises(ConnectorError, match=r"the next page is on evil\.example"):
        run(listed(target(lms, sleeper)))


# -- config, factory, doctor --------------------------------------------------------------


def test_example_config_validates_and_the_factory_builds_the_target(monkeypatch):
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = Config.model_validate(data)
    assert config.lms.type == "canvas" and config.lms.deactivate_by == "login_state"
    monkeypatch.setenv(config.lms.token_env, "example-token")
    built = make_target(config.lms)
    assert isinstance(built, CanvasTarget)
    run(built.aclose())
    assert config_from_dict(data, EXAMPLE).lms.account_id == config.lms.account_id


def test_bad_config_values_are_named():
    from rostersync.sync.config import ConfigError

    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["lms"]["account_id"] = "acme"
    with pytest.raises(ConfigError, match=r"key 'lms\.account_id'"):
        config_from_dict(data)


def test_check_names_the_account(lms, sleeper):
    assert run(target(lms, sleeper).check()) == (
        f"Canvas at {lms.base_url} (account Acme Learning #1)")


# -- end to end: CSV HRIS -> engine -> Canvas -------------------------------------------

# Canvas holds no title, department or manager (docs/canvas.md); they are mapped all the
# same: the engine leaves what the target cannot hold out of its comparisons.
CANVAS_COLUMNS = {
    "employee_id": "Employee ID", "employee_number": "Employee Number",
    "first_name": "First Name", "last_name": "Last Name", "preferred_name": "Preferred Name",
    "email": "Work Email", "status": "Status", "hire_date": "Hire Date",
    "termination_date": "Termination Date", "timezone": "Time Zone",
    "job_title": "Job Title", "department": "Department", "manager_id": "Manager ID",
}


def canvas_config(folder: Path, csv_path: Path, lms) -> Config:
    return config_from_dict({
        "database": {"path": str(folder / "rostersync.db")},
        "hris": {"type": "csv", "path": str(csv_path), "columns": CANVAS_COLUMNS,
                 "date_formats": ["%Y-%m-%d"]},
        "lms": {"type": "canvas", "base_url": lms.base_url, "token_env": TOKEN_ENV,
                "account_id": lms.account_id, "per_page": 7, "concurrency": 4},
    })


def test_engine_converges_canvas_and_a_termination_suspends_the_login(lms, sleeper, tmp_path):
    world = World.generate(20)
    csv_path = world.write(tmp_path / "employees.csv")
    config = canvas_config(tmp_path, csv_path, lms)
    clock = FrozenClock(NOW)
    engine = Engine(config, Store(config.database.path), clock=clock,
                    target_factory=lambda: CanvasTarget(config.lms, sleep=sleeper))

    report = run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"create": 20}
    assert build_status(engine.store, config, clock.now())["drift_total"] == 0
    users = {u["sis_user_id"]: u for u in lms.data.list_users()}
    assert len(users) == 20
    row = World.person(7)
    assert users["E00007"]["login_id"] == row["Work Email"]
    assert users["E00007"]["sortable_name"] == f"{row['Last Name']}, {row['First Name']}"
    assert users["E00007"]["integration_id"] == row["Employee Number"]

    clock.advance(hours=1)
    again = run(engine.sync("full"))
    assert again.status == "succeeded" and again.counts.get("planned") == {}
    world.rows["E00011"]["Job Title"] = "Principal"  # nowhere to put it in Canvas
    world.write(csv_path)
    clock.advance(hours=1)
    retitled = run(engine.sync("full"))
    assert retitled.counts["changed"] == 1 and retitled.counts.get("planned") == {}
    assert build_status(engine.store, config, clock.now())["drift_total"] == 0

    world.rows["E00013"].update({"Status": "Terminated", "Termination Date": "2026-11-01"})
    world.write(csv_path)
    clock.advance(hours=1)
    leaver = run(engine.sync("full"))
    assert leaver.status == "succeeded", leaver.message
    assert leaver.counts["planned"] == {"deactivate": 1}
    assert lms.data.login_state(users["E00013"]["id"]) == "suspended"
    assert sum(lms.data.login_state(u["id"]) == "active" for u in users.values()) == 19

    clock.advance(hours=1)
    last = run(engine.sync("full"))
    assert last.status == "succeeded" and last.counts.get("planned") == {}
    assert build_status(engine.store, config, clock.now())["drift_total"] == 0
