"""Canvas behaviour read from Canvas's own source (instructure/canvas-lms; docs/canvas.md
cites the file and API name of each point), held against the sandbox and the target.

Each test pins a point where the source showed the earlier, inferred behaviour wrong:
a refused permission is a 401, listings carry emails only when asked, a creation's
answer has no email, searches need three characters, a login edit's validation errors
are 400s not wrapped in "login", and a user is in one group per group category.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from rostersync.sandbox.canvas import CanvasSandbox
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas import MIN_SEARCH_TERM, CanvasTarget
from rostersync.sync.connectors.canvas_config import CanvasGroupsConfig, CanvasTargetConfig
from rostersync.sync.models import ErrorClass
from tests.test_canvas import (
    READ_ONLY,
    TOKEN,
    TOKEN_ENV,
    Sleeper,
    api,
    person,
    run,
    seed,
    target,
)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
def lms(monkeypatch, sleeper):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with CanvasSandbox(token=TOKEN, read_only_token=READ_ONLY, clock=sleeper.clock) as server:
        yield server


# -- permissions: 401 with a status, not 403 ---------------------------------------------


def test_a_refused_permission_is_a_401_naming_the_permission_not_the_token(
        lms, sleeper, monkeypatch):
    seed(lms, 1)
    with api(lms, READ_ONLY) as c:
        denied = c.put("/users/101", data={"user[name]": "Bo Novak0"})
    assert denied.status_code == 401
    assert denied.json() == {"status": "unauthorized", "errors": [
        {"message": "user not authorized to perform that action"}]}

    monkeypatch.setenv(TOKEN_ENV, READ_ONLY)
    with pytest.raises(ConnectorError) as caught:
        run(target(lms, sleeper).update("101", {"given_name": "Bo"}))
    text = str(caught.value)
    assert caught.value.error_class is ErrorClass.auth and caught.value.status == 401
    assert "lacks the permission" in text and "check the access token" not in text
    assert sleeper.slept == []  # a refusal is not retried

    monkeypatch.setenv(TOKEN_ENV, "not-a-token")
    with pytest.raises(ConnectorError) as bad:
        run(target(lms, sleeper).update("101", {"given_name": "Bo"}))
    assert "check the access token" in str(bad.value)
    assert "lacks the permission" not in str(bad.value)


# -- emails: only with include[]=email, and never in a creation's answer ----------------


def test_listings_ask_for_emails_since_canvas_leaves_them_out_otherwise(lms, sleeper):
    seed(lms, 3)
    with api(lms) as c:
        bare = c.get(f"/accounts/{lms.account_id}/users").json()
        asked = c.get(f"/accounts/{lms.account_id}/users", params={"include[]": "email"}).json()
    assert all("email" not in u for u in bare)
    assert [u["email"] for u in asked] == [f"p{i}@acme.example" for i in range(3)]

    async def read():
        async with target(lms, sleeper) as t:
            listed = [a async for a in t.list_accounts()]
            return listed, await t.find_by_email("p2@acme.example")

    listed, found = run(read())
    assert sorted(a.email for a in listed) == [f"p{i}@acme.example" for i in range(3)]
    assert [a.external_key for a in found] == ["E002"]


def test_a_creation_is_read_back_because_its_answer_has_no_email(lms, sleeper):
    with api(lms) as c:
        answer = c.post(f"/accounts/{lms.account_id}/users", data={
            "user[name]": "Cy Ode", "pseudonym[unique_id]": "cy@acme.example",
            "communication_channel[address]": "cy@acme.example"}).json()
    assert "email" not in answer and answer["login_id"] == "cy@acme.example"

    created = run(target(lms, sleeper).create(person(7), None))
    assert created.email == "p7@acme.example" and created.lms_id
    calls = [(m, p) for m, p, _q in lms.requests]
    post = calls.index(("POST", f"/api/v1/accounts/{lms.account_id}/users"))
    assert ("GET", f"/api/v1/users/{created.lms_id}") in calls[post:]


# -- searches need three characters -------------------------------------------------------


def test_searches_shorter_than_three_characters_are_not_sent(lms, sleeper):
    assert MIN_SEARCH_TERM == 3
    lms.data.add("Al Bo", "ab", email="ab@acme.example")
    lms.data.add("Al Bo", "abc", email="abc@acme.example")
    with api(lms) as c:
        two = c.get(f"/accounts/{lms.account_id}/users", params={"search_term": "ab"})
        three = c.get(f"/accounts/{lms.account_id}/users", params={"search_term": "abc"})
    assert two.status_code == 400
    assert two.json()["errors"][0]["message"] == "3 or more characters is required"
    assert three.status_code == 200

    lms.requests.clear()
    with pytest.raises(ConnectorError) as short:
        run(target(lms, sleeper).find_by_user_name("ab"))  # just below: refused here
    assert short.value.error_class is ErrorClass.data
    assert "at least 3 characters" in str(short.value)
    assert lms.requests == []
    found = run(target(lms, sleeper).find_by_user_name("abc"))  # at the edge: asked
    assert [a.user_name for a in found] == ["abc"]
    found = run(target(lms, sleeper).find_by_user_name("abcd"))  # just above: asked
    assert found == [] and len(lms.requests) == 3  # a search and a login read, a search


# -- a login edit's validation errors -----------------------------------------------------


def test_a_login_edit_is_refused_with_a_400_not_wrapped_in_login(lms, sleeper):
    seed(lms, 2)
    with api(lms) as c:
        taken = c.put(f"/accounts/{lms.account_id}/logins/5002",
                      data={"login[unique_id]": "P0@acme.example"})
        state = c.put(f"/accounts/{lms.account_id}/logins/5002",
                      data={"login[workflow_state]": "frozen"})
    assert taken.status_code == 400
    [detail] = taken.json()["errors"]["unique_id"]
    assert detail["type"] == "taken"
    assert state.status_code == 400
    assert state.json() == {"errors": {"workflow_state": [{
        "attribute": "workflow_state", "type": "invalid workflow_state",
        "message": "invalid workflow_state"}]}}

    with pytest.raises(ConnectorError) as conflict:
        run(target(lms, sleeper).update("102", {"user_name": "p0@acme.example"}))
    assert conflict.value.error_class is ErrorClass.conflict
    assert conflict.value.status == 400 and "unique_id: ID already in use" in str(conflict.value)


# -- one group per category ---------------------------------------------------------------


def test_canvas_keeps_a_user_in_one_group_per_category(lms):
    category = lms.data.create_category({"name": "Shared"})
    first = lms.data.create_group(category["id"], {"name": "A"})
    second = lms.data.create_group(category["id"], {"name": "B"})
    user = lms.data.add("Ada Novak", "ada@acme.example", sis_user_id="E1")
    with api(lms) as c:
        joined = c.post(f"/groups/{first['id']}/memberships", data={"user_id": user["id"]})
        again = c.post(f"/groups/{first['id']}/memberships", data={"user_id": user["id"]})
        c.post(f"/groups/{second['id']}/memberships", data={"user_id": user["id"]})
        left = c.delete(f"/groups/{second['id']}/users/{user['id']}")
    assert joined.json()["just_created"] is True and again.json()["just_created"] is False
    assert left.json() == {"ok": True}
    # Joining B took the user out of A, as Canvas's peer-group rule does.
    assert lms.data.group_members("A") == set() and lms.data.group_members("B") == set()


def test_each_audience_has_a_category_of_its_own_so_memberships_coexist(lms, sleeper):
    config = CanvasTargetConfig(base_url=lms.base_url, token_env=TOKEN_ENV,
                                account_id=lms.account_id)
    both = [SimpleNamespace(id=name.lower(), group=name, title=name, create_missing=True)
            for name in ("Safety", "Managers")]
    user = str(lms.data.add("Ada Novak", "ada@acme.example", sis_user_id="E1")["id"])

    async def join_both():
        async with CanvasTarget(config, sleep=sleeper) as t:
            for audience in both:
                await t.add_to_audience(audience, user)
        async with CanvasTarget(config, sleep=sleeper) as t:
            return [await t.audience_members(audience) for audience in both]

    assert asyncio.run(join_both()) == [{user}, {user}]
    assert sorted(c["name"] for c in lms.data.categories()) == [
        "rostersync audiences: Managers", "rostersync audiences: Safety"]
    assert lms.data.group_members("Safety", "rostersync audiences: Safety") == {"E1"}
    assert lms.data.group_members("Managers", "rostersync audiences: Managers") == {"E1"}


@pytest.mark.parametrize("name", ["audiences", "{group}{group}", "{grp} {group}", "a } {group}"])
def test_a_category_name_that_could_hold_two_audiences_is_refused(name):
    with pytest.raises(ValidationError, match="one group per category"):
        CanvasGroupsConfig(category=name)
    assert CanvasGroupsConfig(category="LMS {group}").category == "LMS {group}"
