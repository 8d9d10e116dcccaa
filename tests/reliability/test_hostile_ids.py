"""Hostile answers naming another person than asked, and ids of a type no id has.

An LMS answer to a create, update or read that names another person (another SIS id,
externalId, username, idnumber or record id) is never taken as the asked-for person's
account: the operation fails as a conflict, which the executor resolves by reading the
LMS again before any retry. Each relay serves the sandbox's real answer with that one
thing changed (tests/reliability/hostile_server.py).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rostersync.sync.config import ScimTargetConfig
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.connectors.wire_types import is_text_id, other_person
from tests import test_canvas, test_moodle
from tests.reliability import figures
from tests.reliability.hostile_rigs import (
    canvas_rig,
    moodle_rig,
    moodle_target,
    no_wait,
    scim_rig,
)
from tests.reliability.hostile_server import (
    Exchange,
    HostileServer,
    relay,
)
from tests.support import TOKEN_ENV

# -- wrong ids in LMS answers ----------------------------------------------------------


def test_a_canvas_create_answered_with_another_person_fails():
    with canvas_rig() as rig:
        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, body = exchange
            if method == "POST" and path.endswith("/users") and status == 200:
                data = json.loads(body)
                data["id"] = 101  # the first person seeded (E000)
                body = json.dumps(data).encode()
            return method, path, status, headers, body

        with HostileServer(relay(rig.upstream, change)) as server:
            config = CanvasTargetConfig(base_url=server.base_url, account_id="1",
                                        token_env=test_canvas.TOKEN_ENV)
            target = CanvasTarget(config, sleep=no_wait, jitter=lambda: 1.0)

            async def create() -> Any:
                async with target:
                    return await target.create(test_canvas.person(50), None)

            with pytest.raises(ConnectorError) as caught:
                asyncio.run(create())
        # The read-back of the id it named shows another person: not taken as theirs.
        assert "E000" in str(caught.value) and "E050" in str(caught.value), caught.value
    figures.add("hostile: answers naming another person refused")


def test_a_moodle_create_answered_with_another_persons_id_writes_nothing_to_them():
    """The create answer names an existing user's id (the username as sent): the new
    person's cohort must not be given to that user before the read-back refuses it."""
    with moodle_rig() as rig:
        lms = rig.sandbox
        lms.add_cohort("dept-finance")
        other = lms.user("E0")

        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, body = exchange
            if "core_user_create_users" in path and status == 200:
                data = json.loads(body)
                data[0]["id"] = other["id"]
                body = json.dumps(data).encode()
            return method, path, status, headers, body

        with HostileServer(relay(rig.upstream, change)) as server:
            target = moodle_target(server.base_url, cohorts={"field": "department"})

            async def create() -> Any:
                async with target:
                    return await target.create(
                        test_moodle.ada("E50", user_name="p50@acme.example",
                                        email="p50@acme.example", department="Finance"), None)

            with pytest.raises(ConnectorError) as caught:
                asyncio.run(create())
        assert f"user {other['id']}" in str(caught.value), caught.value
        assert lms.cohort_members("dept-finance") == set()
    figures.add("hostile: answers naming another person refused")


def test_a_moodle_read_answered_with_another_person_fails():
    with moodle_rig() as rig:
        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, body = exchange
            query = parse_qs(urlsplit(path).query)
            if query.get("wsfunction") == ["core_user_get_users_by_field"] and status == 200:
                data = json.loads(body)
                for user in data:
                    user["idnumber"] = "E2"
                body = json.dumps(data).encode()
            return method, path, status, headers, body

        with HostileServer(relay(rig.upstream, change)) as server:
            target = moodle_target(server.base_url)

            async def find() -> Any:
                async with target:
                    return await target.find_by_external_key("E1")

            with pytest.raises(ConnectorError) as caught:
                asyncio.run(find())
        assert "E2" in str(caught.value), caught.value
    figures.add("hostile: answers naming another person refused")


def test_a_canvas_create_answered_with_an_object_for_an_id_fails_naming_no_user():
    with canvas_rig() as rig:
        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, body = exchange
            if method == "POST" and path.endswith("/users") and status == 200:
                data = json.loads(body)
                data["id"] = {"id": 101}
                body = json.dumps(data).encode()
            return method, path, status, headers, body

        with HostileServer(relay(rig.upstream, change)) as server:
            config = CanvasTargetConfig(base_url=server.base_url, account_id="1",
                                        token_env=test_canvas.TOKEN_ENV)
            target = CanvasTarget(config, sleep=no_wait, jitter=lambda: 1.0)

            async def create() -> Any:
                async with target:
                    return await target.create(test_canvas.person(51), None)

            with pytest.raises(ConnectorError, match="not a user object") as caught:
                asyncio.run(create())
            # No read of a user named by the text of the object was ever sent.
            assert not any("%7B" in path or "{" in path for _, path, _ in server.requests)
        assert "'id'" not in str(caught.value), caught.value
    figures.add("hostile: ids of the wrong type refused")


@pytest.mark.parametrize("field, value", [("externalId", "E999"),
                                          ("userName", "other@acme.example")])
def test_a_scim_create_answered_with_another_person_fails(field, value):
    """The answer to POST /Users names another externalId or userName: recorded, this
    person would be linked to somebody else's account."""
    with scim_rig() as rig:
        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, body = exchange
            if method == "POST" and path.endswith("/Users") and status in (200, 201):
                data = json.loads(body)
                data[field] = value
                body = json.dumps(data).encode()
            return method, path, status, headers, body

        with HostileServer(relay(rig.upstream, change)) as server:
            config = ScimTargetConfig(base_url=server.base_url, token_env=TOKEN_ENV,
                                      bulk="off")
            target = ScimTarget(config, sleep=no_wait)

            async def create() -> Any:
                async with target:
                    return await target.create(test_canvas.person(7), None)

            with pytest.raises(ConnectorError) as caught:
                asyncio.run(create())
        assert value in str(caught.value) and caught.value.error_class == "conflict"
    figures.add("hostile: answers naming another person refused")


def test_a_scim_read_answered_with_another_user_fails():
    with scim_rig() as rig:
        config = ScimTargetConfig(base_url=rig.upstream, token_env=TOKEN_ENV, bulk="off")

        async def two() -> tuple[str, str]:
            async with ScimTarget(config, sleep=no_wait) as target:
                first = await target.create(test_canvas.person(1), None)
                second = await target.create(test_canvas.person(2), None)
                return first.lms_id or "", second.lms_id or ""

        first, second = asyncio.run(two())

        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, body = exchange
            if method == "GET" and path.endswith(f"/Users/{first}") and status == 200:
                data = json.loads(body)
                data["id"] = second  # another user's resource under the id asked for
                body = json.dumps(data).encode()
            return method, path, status, headers, body

        with HostileServer(relay(rig.upstream, change)) as server:
            config = ScimTargetConfig(base_url=server.base_url, token_env=TOKEN_ENV,
                                      bulk="off")

            async def read() -> Any:
                async with ScimTarget(config, sleep=no_wait) as target:
                    return await target.get(first)

            with pytest.raises(ConnectorError, match=f"answer is user \"{second}\""):
                asyncio.run(read())
    figures.add("hostile: answers naming another person refused")


@pytest.mark.parametrize("ids, named", [
    ({"userName": ("Ada@Acme.example", "ada@acme.example")}, None),  # a login: any case
    ({"externalId": ("E1", "e1")}, 'externalId "e1", not "E1"'),  # a key: exactly
    ({"externalId": ("E1", None)}, None),  # left out of the answer: names nobody
    ({"externalId": (None, "E2")}, None),  # nothing asked: nothing to contradict
])
def test_which_answered_ids_name_another_person(ids, named):
    assert other_person(ids) == named


@pytest.mark.parametrize("value, fit", [("E1", True), (17, True), (True, False),
                                        ({"a": 1}, False), ([1], False), (1.5, False)])
def test_which_values_can_be_an_id(value, fit):
    assert is_text_id(value) is fit
