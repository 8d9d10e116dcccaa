"""Membership changes of one SCIM Group are coalesced, against a real scim2-server.

Concurrent additions to one Group go out in few PATCHes, all of them land, and a
combined PATCH the LMS refuses for one bad member is split so that only that one fails.
scim2-server accepts any member value, so the refusal of one (RFC 7644 §3.12
invalidValue) comes from a fault in front of it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from rostersync.sandbox.faults import scim_error
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sync.config import ScimTargetConfig
from rostersync.sync.config_audiences import AudienceConfig
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.models import ErrorClass

TOKEN = "group-changes-token"
AUDIENCE = AudienceConfig(id="sales-compliance", rule='department == "Sales"')


class GroupFault:
    """Counts members PATCHes; refuses those naming a bad member, or all while down."""

    wants_body = True

    def __init__(self) -> None:
        self.patches: list[bytes] = []
        self.bad = "bad-member"
        self.down = False

    def __call__(self, method: str, path: str, body: bytes = b""):
        if method != "PATCH" or not path.startswith("/v2/Groups/"):
            return None
        self.patches.append(body)
        if self.down:
            return scim_error(503, "maintenance")
        if self.bad.encode() in body:
            return scim_error(400, f"member {self.bad} does not exist", "invalidValue")
        return None


@pytest.fixture
def lms() -> Iterator[tuple[ScimSandbox, GroupFault]]:
    fault = GroupFault()
    server = ScimSandbox(token=TOKEN, fault=fault).start()
    try:
        yield server, fault
    finally:
        server.stop()


def target(server: ScimSandbox) -> ScimTarget:
    config = ScimTargetConfig(base_url=server.base_url, token_env="UNUSED_TOKEN_ENV")
    return ScimTarget(config, token=TOKEN)


async def add_all(server: ScimSandbox, ids: list[str]) -> list[BaseException | None]:
    async with target(server) as t:
        return await asyncio.gather(*(t.add_to_audience(AUDIENCE, i) for i in ids),
                                    return_exceptions=True)


async def members(server: ScimSandbox) -> set[str]:
    async with target(server) as t:
        return await t.audience_members(AUDIENCE)


def test_concurrent_additions_to_one_group_go_out_together_and_all_land(lms):
    server, fault = lms
    ids = [f"user-{i}" for i in range(40)]
    outcomes = asyncio.run(add_all(server, ids))
    assert outcomes == [None] * 40
    assert asyncio.run(members(server)) == set(ids)
    assert 1 <= len(fault.patches) <= 3  # the first alone, the rest waiting behind it


def test_one_bad_member_fails_alone_and_the_others_land(lms):
    server, fault = lms
    ids = [f"user-{i}" for i in range(10)]
    outcomes = asyncio.run(add_all(server, [*ids[:5], fault.bad, *ids[5:]]))
    refused = outcomes[5]
    assert isinstance(refused, ConnectorError) and refused.error_class == ErrorClass.data
    assert fault.bad in str(refused)
    assert [o for i, o in enumerate(outcomes) if i != 5] == [None] * 10
    assert asyncio.run(members(server)) == set(ids)


def test_an_lms_outage_fails_every_waiting_change_without_splitting(lms):
    server, fault = lms
    asyncio.run(add_all(server, ["user-0"]))  # the Group exists; now the LMS goes down
    fault.down, fault.patches = True, []
    outcomes = asyncio.run(add_all(server, [f"user-{i}" for i in range(1, 21)]))
    assert all(isinstance(o, ConnectorError) and o.error_class == ErrorClass.transient
               for o in outcomes)
    assert 1 <= len(fault.patches) <= 3  # retried later as a whole, not member by member


def test_a_created_group_answered_without_an_id_fails_and_is_not_remembered():
    """A Group created by a POST whose answer names no id: the change fails (and is
    retried), and the next change looks for the Group again instead of using no id."""
    seen: list[tuple[str, str]] = []

    def no_id(method: str, path: str, body: bytes = b""):
        seen.append((method, path))
        if method == "POST" and path == "/v2/Groups":
            return 201, {"Content-Type": "application/scim+json"}, json.dumps(
                {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                 "displayName": AUDIENCE.group}).encode()
        return None

    no_id.wants_body = True
    server = ScimSandbox(token=TOKEN, fault=no_id).start()
    try:
        async def twice() -> list[BaseException | None]:
            async with target(server) as t:
                return [await _outcome(t.add_to_audience(AUDIENCE, "user-1")),
                        await _outcome(t.add_to_audience(AUDIENCE, "user-2"))]

        outcomes = asyncio.run(twice())
    finally:
        server.stop()
    for outcome in outcomes:
        assert isinstance(outcome, ConnectorError)
        assert outcome.error_class == ErrorClass.transient
        assert "names no Group id" in str(outcome)
    assert [m for m, p in seen if p.startswith("/v2/Groups/")] == []  # no PATCH to no id
    assert seen.count(("POST", "/v2/Groups")) == 2  # looked for and created again


async def _outcome(step) -> BaseException | None:
    try:
        await step
    except ConnectorError as exc:
        return exc
    return None
