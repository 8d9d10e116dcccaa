"""The sandbox LMS's fault layer, seen through the real SCIM connector."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from rostersync.sandbox.faults import FaultPlan
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ScimTargetConfig, load_config
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.engine import Engine
from rostersync.sync.models import Account, ErrorClass
from tests.support import World, by_external_id, lms_users, set_token_env, write_config


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


def test_a_reset_connection_is_a_transient_error_and_reads_retry_through_it(lms):
    server, faults, _clock = lms
    faults.reset_connections(1, method="POST")
    with pytest.raises(ConnectorError) as reset:
        run(server, lambda t: t.create(account("a"), None))
    assert reset.value.error_class is ErrorClass.transient
    assert "network error" in str(reset.value) and faults.faults_served == 1

    async def listed(target):
        return [a async for a in target.list_accounts()]

    faults.reset_connections(2, method="GET")
    assert run(server, listed) == []  # nothing was created; the reads retried
    assert faults.faults_served == 3 and not faults.resets


def test_a_reset_after_the_lms_acted_loses_only_the_answer(lms):
    server, faults, _clock = lms
    faults.reset_connections(1, method="POST", after=True)
    with pytest.raises(ConnectorError) as reset:
        run(server, lambda t: t.create(account("a"), None))
    assert reset.value.error_class is ErrorClass.transient
    # The account exists although the client never heard so: a retry must look first.
    found = run(server, lambda t: t.find_by_external_key("a"))
    assert [a.user_name for a in found] == ["a@acme.example"]


def test_creates_whose_answers_were_lost_converge_without_duplicates(lms, tmp_path):
    server, faults, _clock = lms
    set_token_env("t")
    csv_path = World.generate(12).write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, server.base_url, csv_path,
                                      lms={"bulk": "off"}))
    clock = FrozenClock(datetime(2026, 11, 26, 9, 0, tzinfo=UTC))
    engine = Engine(config, make_store(config.database), clock=clock)
    faults.reset_connections(3, method="POST", after=True)
    first = asyncio.run(engine.sync("full"))
    assert first.counts["applied"].get("failed", 0) == 3 and first.exit_code == 1
    clock.advance(hours=2)  # past every retry backoff
    asyncio.run(engine.apply_due())
    users = by_external_id(lms_users(server.base_url, "t"))
    assert all(len(found) == 1 for found in users.values())  # linked, not created twice
    assert engine.store.rows("SELECT count(*) AS n FROM ops WHERE status != 'succeeded'"
                             )[0]["n"] == 0
    assert not asyncio.run(engine.sync("full")).counts["planned"]
