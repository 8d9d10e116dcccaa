"""The sandbox LMS's fault layer, seen through the real SCIM connector."""

from __future__ import annotations

import asyncio

import pytest

from sandbox.faults import FaultPlan
from sandbox.scim_server import ScimSandbox
from sync.config import ScimTargetConfig
from sync.connectors.base import ConnectorError
from sync.connectors.scim import ScimTarget
from sync.models import Account, ErrorClass


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def account(name: str) -> Account:
    return Account(external_key=name, user_name=f"{name}@acme.example", given_name="A",
                   family_name="B", email=f"{name}@acme.example")


@pytest.fixture
def lms():
    clock = FakeTime()
    faults = FaultPlan(now=clock)
    with ScimSandbox(token="t", fault=faults) as server:
        yield server, faults, clock


async def _no_wait(_seconds: float) -> None:
    return None


def run(server, coro_fn):
    async def go():
        config = ScimTargetConfig(base_url=server.base_url, timeout_seconds=5)
        async with ScimTarget(config, token="t", sleep=_no_wait) as target:
            return await coro_fn(target)
    return asyncio.run(go())


def test_a_chosen_user_name_is_refused_as_taken(lms):
    server, faults, _clock = lms
    faults.refuse_create_of("B@acme.example")
    created = run(server, lambda t: t.create(account("a"), None))
    assert created.lms_id
    with pytest.raises(ConnectorError) as refused:
        run(server, lambda t: t.create(account("b"), None))
    assert refused.value.error_class is ErrorClass.conflict and refused.value.status == 409


def test_throttling_outage_and_revoked_token_have_their_shapes(lms):
    server, faults, clock = lms
    created = run(server, lambda t: t.create(account("a"), None))
    faults.throttle(30)
    with pytest.raises(ConnectorError) as throttled:
        run(server, lambda t: t.update(created.lms_id, {"title": "X"}))
    assert (throttled.value.status, throttled.value.retry_after) == (429, 30.0)
    clock.t += 31
    faults.outage(10)
    with pytest.raises(ConnectorError) as down:
        run(server, lambda t: t.update(created.lms_id, {"title": "X"}))
    assert down.value.status == 503 and down.value.error_class is ErrorClass.transient
    clock.t += 11
    faults.revoke_token()
    with pytest.raises(ConnectorError) as revoked:
        run(server, lambda t: t.update(created.lms_id, {"title": "X"}))
    assert revoked.value.error_class is ErrorClass.auth
    faults.clear()
    assert run(server, lambda t: t.update(created.lms_id, {"title": "X"})) is None


def test_slow_answers_arrive_late_but_arrive(lms):
    server, faults, _clock = lms
    faults.slow(0.2, for_seconds=60)
    found = run(server, lambda t: t.find_by_user_name("nobody@acme.example"))
    # The request was held back by the fault layer and still answered by the server.
    assert found == [] and faults.faults_served == 1
