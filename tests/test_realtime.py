"""Real-time sync against the BambooHR sandbox and a SCIM LMS on loopback: signed
webhooks in, per-person syncs through the guards out."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from rostersync.sandbox.bamboohr import BambooSandbox, generate
from rostersync.storage import events as event_store
from rostersync.storage import intake as intake_store
from rostersync.storage import ops as op_store
from rostersync.storage import suppressions
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, ConfigError, config_from_dict
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.engine import Engine
from rostersync.sync.realtime import intake, signatures
from rostersync.sync.realtime.service import RealtimeService
from tests.support import TOKEN_ENV, by_external_id, lms_users

KEY, KEY_ENV = "sandbox-key", "ROSTERSYNC_TEST_BAMBOOHR_KEY"
HOOK_KEY, HOOK_ENV = "bamboo-private-key", "ROSTERSYNC_TEST_HOOK_KEY"
EVENT_KEY, EVENT_ENV = "generic-event-key", "ROSTERSYNC_TEST_EVENT_KEY"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
# Yesterday: a termination takes effect at the end of its last day (guards default).
LAST_DAY = (NOW - timedelta(days=1)).date().isoformat()
TERMINATED = {"employmentHistoryStatus": "Terminated", "status": "Inactive",
              "terminationDate": LAST_DAY}


def make_config(tmp_path, hris, scim, **realtime) -> Config:
    return Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "bamboohr", "base_url": hris.base_url, "api_key_env": KEY_ENV},
        "lms": {"type": "scim", "base_url": scim.base_url, "token_env": TOKEN_ENV},
        "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                      "inactive": "terminated"}},
        "guards": {"mass_deactivation_min": 3, "mass_deactivation_percent": 0},
        "realtime": {"enabled": True, "listen": "127.0.0.1:0", "bamboohr_secret_env": HOOK_ENV,
                     "generic_secret_env": EVENT_ENV, **realtime},
    })


@pytest.fixture
def world(tmp_path, scim_server, lms_token):
    os.environ.update({KEY_ENV: KEY, HOOK_ENV: HOOK_KEY, EVENT_ENV: EVENT_KEY})
    clock = FrozenClock(NOW)
    with BambooSandbox(api_key=KEY, clock=clock.now) as hris:
        for employee in generate(20):
            hris.put(employee)
        clock.advance(minutes=1)

        def engine_for(**realtime) -> Engine:
            config = make_config(tmp_path, hris, scim_server, **realtime)
            return Engine(config, Store(config.database.path), clock=clock,
                          source=BambooHRSource(config.hris, now=clock.now))

        engine = engine_for()
        report = asyncio.run(engine.sync("full"))
        assert report.status == "succeeded", report.message
        yield SimpleNamespace(clock=clock, hris=hris, scim=scim_server, token=lms_token,
                              engine=engine, engine_for=engine_for)


def lms_active(world, employee_id: str) -> bool:
    return by_external_id(lms_users(world.scim.base_url, world.token))[employee_id][0]["active"]


async def started(engine: Engine) -> RealtimeService:
    """The listener without the background dispatcher: the test drains the queue."""
    service = RealtimeService(engine, engine.config)
    await service.listener.start()
    return service


def generic(employee_id: str, stamp: int, key: str = EVENT_KEY, body: bytes | None = None):
    body = body or json.dumps({"employee_id": employee_id, "event": "terminated"}).encode()
    signature = signatures.generic_signature(key.encode(), body, str(stamp))
    return body, {"X-Rostersync-Signature": signature, "X-Rostersync-Timestamp": str(stamp)}


async def post(service: RealtimeService, path: str, body: bytes, headers) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(service.listener.url + path, content=body, headers=headers)


def ops_of(engine: Engine, employee_id: str) -> list[dict]:
    """The person's operations after the first full sync (run 1) created the accounts."""
    return [o for o in op_store.list_ops(engine.store, employee_id=employee_id)
            if o["run_id"] != 1]


# -- intake ------------------------------------------------------------------------------


def test_a_sandbox_termination_webhook_deactivates_the_lms_account(world):
    async def scenario():
        service = await started(world.engine)
        sender = world.hris.add_webhook(service.listener.url + "/webhooks/bamboohr", HOOK_KEY)
        try:
            world.hris.update("5", **TERMINATED)
            await asyncio.to_thread(sender.flush)
            assert sender.delivered == 1 and not sender.failures
            [report] = await service.dispatcher.drain()
            return report
        finally:
            sender.stop()
            await service.stop()

    assert lms_active(world, "5")
    report = asyncio.run(scenario())
    assert report.kind == "realtime" and report.status == "succeeded", report.message
    assert report.counts["applied"] == {"succeeded": 1}
    assert not lms_active(world, "5")
    [event] = event_store.recent(world.engine.store)
    assert (event["employee_id"], event["action"], event["status"]) == ("5", "Updated", "synced")
    assert event["run_id"] == report.run_id


def test_forged_unsigned_stale_and_replayed_requests_are_refused(world):
    now = int(world.clock.now().timestamp())
    body = json.dumps({"employees": [{"id": "6", "action": "Updated",
                                      "changedFields": ["Status"], "fields": {}}]}).encode()

    def bamboo(key: str, stamp: int) -> dict[str, str]:
        return {"X-BambooHR-Signature": signatures.bamboohr_signature(key.encode(), body,
                                                                      str(stamp)),
                "X-BambooHR-Timestamp": str(stamp)}

    async def scenario():
        service = await started(world.engine)
        try:
            path = "/webhooks/bamboohr"
            answers = {
                "unsigned": await post(service, path, body, {}),
                "forged": await post(service, path, body, bamboo("guessed-key", now)),
                "tampered": await post(service, path, body.replace(b'"6"', b'"7"'),
                                       bamboo(HOOK_KEY, now)),
                "stale": await post(service, path, body, bamboo(HOOK_KEY, now - 3600)),
                "good": await post(service, path, body, bamboo(HOOK_KEY, now)),
                "replayed": await post(service, path, body, bamboo(HOOK_KEY, now)),
            }
            return answers, service.refused
        finally:
            await service.stop()

    answers, refused = asyncio.run(scenario())
    codes = {name: a.status_code for name, a in answers.items()}
    assert codes == {"unsigned": 401, "forged": 401, "tampered": 401, "stale": 401,
                     "good": 202, "replayed": 409}
    assert "not signed" in answers["unsigned"].json()["error"]
    assert "stale or replayed" in answers["stale"].json()["error"]
    assert HOOK_KEY not in json.dumps([a.json() for a in answers.values()])
    assert refused == 5
    assert [e["employee_id"] for e in event_store.queued(world.engine.store)] == ["6"]
    # Stored too, for `rostersync status` in another process: 4 unauthorised, 1 replay.
    stored = world.engine.store.rows("SELECT status, sum(refused) AS n FROM webhook_refusals "
                                     "GROUP BY status ORDER BY status")
    assert [(r["status"], r["n"]) for r in stored] == [(401, 4), (409, 1)]
    assert intake_store.refusals_since(world.engine.store, world.clock.now())["count"] == 5


def test_a_burst_for_one_person_makes_one_operation(world):
    now = int(world.clock.now().timestamp())

    async def scenario():
        service = await started(world.engine)
        try:
            world.hris.update("7", **TERMINATED)
            for n in range(6):  # the sender retries and HR edits the record again
                answer = await post(service, "/webhooks/event", *generic("7", now + n))
                assert answer.status_code == 202
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    [report] = asyncio.run(scenario())
    assert report.counts["people"] == 1
    [op] = ops_of(world.engine, "7")
    assert (op["kind"], op["status"]) == ("deactivate", "succeeded")
    statuses = sorted(e["status"] for e in event_store.recent(world.engine.store))
    assert statuses == ["coalesced"] * 5 + ["synced"]
    assert not lms_active(world, "7")


# -- modes and guards ------------------------------------------------------------------------


def test_hybrid_mode_leaves_profile_updates_to_the_scheduled_run(world):
    now = int(world.clock.now().timestamp())

    async def scenario():
        service = await started(world.engine)
        try:
            world.hris.update("8", jobTitle="Principal")
            await post(service, "/webhooks/event", *generic("8", now))
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    [report] = asyncio.run(scenario())
    assert report.status == "succeeded" and not report.counts["planned"]
    assert ops_of(world.engine, "8") == []
    drift = world.engine.store.rows("SELECT kind FROM drift WHERE subject = '8' "
                                    "AND resolved_at IS NULL")
    assert [d["kind"] for d in drift] == ["mismatch"]  # visible, waiting for the batch
    world.clock.advance(minutes=15)
    report = asyncio.run(world.engine.sync("delta"))
    assert report.counts["planned"] == {"update": 1}
    [op] = ops_of(world.engine, "8")
    assert (op["kind"], op["status"]) == ("update", "succeeded")


def test_realtime_mode_applies_profile_updates_at_once(world):
    engine = world.engine_for(mode="realtime")
    now = int(world.clock.now().timestamp())

    async def scenario():
        service = await started(engine)
        try:
            world.hris.update("8", jobTitle="Principal")
            await post(service, "/webhooks/event", *generic("8", now))
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    [report] = asyncio.run(scenario())
    assert report.counts["planned"] == {"update": 1}
    users = by_external_id(lms_users(world.scim.base_url, world.token))
    assert users["8"][0]["title"] == "Principal"


def test_batch_mode_records_events_and_runs_nothing(world):
    engine = world.engine_for(mode="batch")
    now = int(world.clock.now().timestamp())

    async def scenario():
        service = await started(engine)
        try:
            world.hris.update("9", **TERMINATED)
            await post(service, "/webhooks/event", *generic("9", now))
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    assert asyncio.run(scenario()) == []
    [event] = event_store.recent(engine.store)
    assert event["status"] == "batched" and event["run_id"] is None
    assert ops_of(engine, "9") == [] and lms_active(world, "9")


def test_events_wait_while_the_feed_gate_is_closed(world):
    now = int(world.clock.now().timestamp())
    kept = {e["id"]: e for e in world.hris.store.all()}
    for emp_id in ("16", "17", "18", "19", "20"):  # a truncated export: 25% gone
        world.hris.delete(emp_id)
    world.clock.advance(minutes=5)
    assert asyncio.run(world.engine.sync("full")).status == "rejected"

    async def deliver():
        service = await started(world.engine)
        try:
            world.hris.update("10", **TERMINATED)
            await post(service, "/webhooks/event", *generic("10", now))
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    assert asyncio.run(deliver()) == []
    [event] = event_store.recent(world.engine.store)
    assert event["status"] == "gated" and lms_active(world, "10")

    for emp_id in ("16", "17", "18", "19", "20"):
        world.hris.put(kept[emp_id])
    world.clock.advance(minutes=5)
    assert asyncio.run(world.engine.sync("full", apply=False)).status == "succeeded"

    async def reopen():
        service = await started(world.engine)
        try:
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    [report] = asyncio.run(reopen())
    assert report.status == "succeeded"
    assert event_store.recent(world.engine.store)[0]["status"] == "synced"
    assert not lms_active(world, "10")


def test_suppressed_people_and_the_windowed_mass_hold_stop_events(world):
    store = world.engine.store
    suppressions.add(store, world.clock.now(), "11", "legal hold", None, "tester")
    now = int(world.clock.now().timestamp())

    async def scenario():
        service = await started(world.engine)
        reports = []
        try:
            # One termination at a time, each its own run: the window counts them
            # together (limit 3), so the fourth is held rather than applied.
            for n, emp_id in enumerate(("11", "12", "13", "14", "15")):
                world.hris.update(emp_id, **TERMINATED)
                await post(service, "/webhooks/event", *generic(emp_id, now + n))
                reports += await service.dispatcher.drain()
            return reports
        finally:
            await service.stop()

    reports = asyncio.run(scenario())
    statuses = {r["employee_id"]: r["status"] for r in
                store.rows("SELECT employee_id, status FROM ops WHERE kind = 'deactivate'")}
    assert statuses == {"11": "suppressed", "12": "succeeded", "13": "succeeded",
                        "14": "succeeded", "15": "held"}
    assert reports[-1].status == "held" and ("4 deactivations within 60 minutes exceed the "
                                             "limit of 3") in reports[-1].reasons[0]
    assert lms_active(world, "11") and lms_active(world, "15")


def test_batch_and_real_time_deactivations_share_one_window(world):
    # A scheduled run deactivates 3 (exactly the limit of 3); a termination event ten
    # minutes later is the 4th in the window, so its run is held.
    for emp_id in ("16", "17", "18"):
        world.hris.update(emp_id, **TERMINATED)
    batch = asyncio.run(world.engine.sync("full"))
    assert batch.status == "succeeded" and batch.counts["held_new"] == 0
    world.clock.advance(minutes=10)
    world.hris.update("19", **TERMINATED)
    now = int(world.clock.now().timestamp())

    async def scenario():
        service = await started(world.engine)
        try:
            await post(service, "/webhooks/event", *generic("19", now))
            return await service.dispatcher.drain()
        finally:
            await service.stop()

    (report,) = asyncio.run(scenario())
    assert report.status == "held"
    assert ("4 deactivations within 60 minutes exceed the limit of 3 (3 earlier in the "
            "window, 1 in this run;") in report.reasons[0]
    assert lms_active(world, "19") and not lms_active(world, "18")


# -- pure parts and config -------------------------------------------------------------------


def test_bamboohr_signature_is_hmac_of_body_then_timestamp():
    import hashlib
    import hmac

    body, stamp = b'{"employees": []}', "1764147600"
    expected = hmac.new(b"k", body + stamp.encode(), hashlib.sha256).hexdigest()
    assert signatures.bamboohr_signature(b"k", body, stamp) == expected
    headers = {"x-bamboohr-signature": expected.upper(), "x-bamboohr-timestamp": stamp}
    moment = datetime.fromtimestamp(int(stamp), UTC) + timedelta(seconds=30)
    assert signatures.verify_bamboohr(b"k", body, headers, moment, 300) == expected
    with pytest.raises(signatures.SignatureError, match="not Unix seconds"):
        signatures.verify_bamboohr(b"k", body, {**headers, "x-bamboohr-timestamp": "soon"},
                                   moment, 300)


def test_bamboohr_deleted_records_are_recorded_not_synced():
    events = intake.parse_bamboohr(json.dumps({"employees": [
        {"id": "3", "action": "Deleted", "changedFields": [], "fields": {}},
        {"id": "4", "action": "Updated", "changedFields": ["Status"], "fields": {}}]}).encode())
    assert [(e.employee_id, e.actionable) for e in events] == [("3", False), ("4", True)]
    with pytest.raises(intake.IntakeError, match=r"employees\[0\] has no 'id'"):
        intake.parse_bamboohr(b'{"employees": [{"action": "Updated"}]}')


def test_realtime_config_needs_a_secret_and_a_host_port(tmp_path):
    base = {"hris": {"type": "csv", "path": "x.csv"},
            "lms": {"type": "scim", "base_url": "http://127.0.0.1:1"}}
    with pytest.raises(ConfigError, match="unsigned webhooks are refused"):
        config_from_dict({**base, "realtime": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"key 'realtime.listen'.*host:port"):
        config_from_dict({**base, "realtime": {"listen": "8787"}})
    config = config_from_dict(base)
    assert not config.realtime.enabled and config.realtime.event_kinds() == frozenset()
    hybrid = config_from_dict({**base, "realtime": {"enabled": True,
                                                    "generic_secret_env": "X"}})
    assert hybrid.realtime.event_kinds() == {"create", "deactivate", "reactivate", "delete"}
