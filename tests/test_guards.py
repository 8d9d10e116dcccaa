"""Guards and lifecycle timing, driven through the Engine with an injected clock against
a real scim2-server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from rostersync.storage import ops as op_store
from rostersync.storage import suppressions as suppression_store
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine, EngineBusy
from rostersync.sync.status import build_status
from tests.support import World, by_external_id, lms_users

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def small(tmp_path, scim_server, lms_token):
    world = World.generate(40)
    csv_path = world.write(tmp_path / "employees.csv")
    from tests.support import write_config
    config = load_config(write_config(tmp_path, scim_server.base_url, csv_path,
                                      lms={"bulk": "off"}))
    clock = FrozenClock(START)
    engine = Engine(config, make_store(config.database), clock=clock)

    class Small:
        pass

    s = Small()
    s.world, s.csv, s.config, s.clock, s.engine, s.lms, s.token = (
        world, csv_path, config, clock, engine, scim_server, lms_token)
    s.run = lambda kind="full", **kw: asyncio.run(engine.sync(kind, **kw))
    s.users = lambda: {k: v[0] for k, v in by_external_id(
        lms_users(scim_server.base_url, lms_token)).items()}
    return s


def test_vanished_person_is_kept_until_the_grace_period_passes(small):
    assert small.run().exit_code == 0
    del small.world.rows["E00040"]
    small.world.write(small.csv)
    report = small.run()
    assert report.counts["vanished"] == 1 and "deactivate" not in report.counts["planned"]
    assert small.users()["E00040"]["active"] is True
    small.clock.advance(hours=23)
    small.run()
    assert small.users()["E00040"]["active"] is True
    small.clock.advance(hours=2)
    report = small.run()
    assert report.counts["planned"] == {"deactivate": 1}
    assert small.users()["E00040"]["active"] is False
    status = build_status(small.engine.store, small.config, small.clock.now())
    assert status["drift_total"] == 0


def test_future_termination_applies_at_its_effective_time_in_the_persons_zone(small):
    small.run()
    # E00011 works in America/New_York (see sandbox.world.ZONES): last day 27 Nov.
    small.world.rows["E00011"]["Termination Date"] = "2026-11-27"
    small.world.write(small.csv)
    report = small.run()
    assert report.counts["scheduled"] == 1
    small.clock.set(datetime(2026, 11, 28, 4, 59, tzinfo=UTC))  # 23:59 in New York
    asyncio.run(small.engine.apply_due())
    assert small.users()["E00011"]["active"] is True
    small.clock.set(datetime(2026, 11, 28, 5, 0, tzinfo=UTC))  # midnight in New York
    report = asyncio.run(small.engine.apply_due())
    assert report.counts["applied"] == {"succeeded": 1}
    assert small.users()["E00011"]["active"] is False


def test_suppressed_person_is_left_alone_until_the_suppression_expires(small):
    small.run()
    suppression_store.add(small.engine.store, small.clock.now(), "E00020", "legal hold",
                          small.clock.now() + timedelta(days=2), "alice")
    small.world.rows["E00020"]["Job Title"] = "Director"
    small.world.write(small.csv)
    report = small.run()
    assert report.counts["suppressed_new"] == 1
    assert small.users()["E00020"]["title"] == "Specialist"
    small.clock.advance(days=3)
    small.run()
    assert small.users()["E00020"]["title"] == "Director"


def test_throttling_is_retried_after_retry_after(small):
    small.run()
    calls = {"n": 0}

    def fault(method, path):
        if method == "PATCH":
            calls["n"] += 1
            if calls["n"] == 1:
                return 429, {"Retry-After": "2"}, b""
        return None

    small.lms.fault = fault
    small.world.rows["E00005"]["Job Title"] = "Lead"
    small.world.write(small.csv)
    report = small.run()
    assert report.exit_code == 0
    assert small.clock.slept and small.clock.slept[0] >= 2
    assert small.users()["E00005"]["title"] == "Lead"
    op = op_store.list_ops(small.engine.store, employee_id="E00005")[0]
    assert [a["outcome"] for a in op_store.get_op(small.engine.store, op["id"])["attempt_log"]] \
        == ["error", "ok"]


def test_circuit_breaker_quarantines_the_job_and_resume_recovers(small):
    small.run()
    small.lms.fault = lambda method, path: (503, {}, b"maintenance") if method == "PATCH" \
        else None
    for key in list(small.world.rows)[:30]:
        small.world.rows[key]["Job Title"] = "Analyst"
    small.world.write(small.csv)
    report = small.run()
    assert report.status == "quarantined" and report.exit_code == 5
    assert "circuit breaker" in report.message
    status = build_status(small.engine.store, small.config, small.clock.now())
    assert status["job"]["state"] == "quarantined" and status["exit_code"] == 2
    # Still quarantined: the next run plans but does not apply.
    small.lms.fault = None
    assert small.run().status == "quarantined"
    from rostersync.storage import runs as run_store
    run_store.set_job_state(small.engine.store, small.clock.now(), "active", None, "bob")
    small.clock.advance(hours=2)
    assert small.run().exit_code == 0
    assert all(u["title"] == "Analyst" for k, u in small.users().items()
               if k in list(small.world.rows)[:30])


def test_revoked_token_quarantines_instead_of_failing_every_op(small):
    small.run()
    small.lms.fault = lambda method, path: (401, {}, b"") if method == "PATCH" else None
    small.world.rows["E00003"]["Job Title"] = "Lead"
    small.world.write(small.csv)
    report = small.run()
    assert report.status == "quarantined"
    assert "credentials" in report.message


def test_dry_run_changes_nothing(small):
    report = small.run(dry_run=True)
    assert report.counts["planned"] == {"create": 40}
    assert len(report.plan) == 40
    assert small.users() == {}
    assert op_store.counts_by_status(small.engine.store) == {}


def test_existing_account_is_linked_by_unique_email_and_disputed_when_ambiguous(small):
    import httpx
    person7, person8 = World.person(7), World.person(8)
    headers = {"Authorization": f"Bearer {small.token}"}
    schema = ["urn:ietf:params:scim:schemas:core:2.0:User"]
    with httpx.Client(headers=headers) as client:
        for body in ({"userName": person7["Work Email"],
                      "emails": [{"value": person7["Work Email"]}]},
                     {"userName": "legacy-a", "emails": [{"value": person8["Work Email"]}]},
                     {"userName": "legacy-b", "emails": [{"value": person8["Work Email"]}]}):
            client.post(f"{small.lms.base_url}/Users", json={"schemas": schema, **body})
    report = small.run()
    assert report.counts["planned"]["link"] == 1
    assert report.counts["drift"]["disputed"] == 1
    users = small.users()
    assert users["E00007"]["userName"] == person7["Work Email"]
    assert "E00008" not in users
    assert len([u for u in lms_users(small.lms.base_url, small.token)
                if u["userName"] == person7["Work Email"]]) == 1


def test_second_writer_is_refused_while_the_lease_is_held(small):
    other = Engine(small.config, make_store(small.config.database), clock=small.clock)
    from rostersync.storage import lease
    assert lease.acquire(other.store, other.holder, small.clock.now(), 60) is None
    with pytest.raises(EngineBusy, match="holds the writer lease"):
        small.run()
    small.clock.advance(seconds=61)  # the holder stopped renewing: the lease is stale
    assert small.run().exit_code == 0


def test_resync_one_person_now(small):
    small.run()
    small.world.rows["E00009"]["Last Name"] = "Renamed"
    small.world.write(small.csv)
    report = asyncio.run(small.engine.resync("E00009"))
    assert report.counts["planned"] == {"update": 1}
    assert small.users()["E00009"]["name"]["familyName"] == "Renamed"
    report = asyncio.run(small.engine.resync("E99999"))
    assert report.status == "failed" and "not in the HRIS export" in report.message


def test_scheduled_termination_is_not_planned_twice_when_it_becomes_effective(small):
    small.run()
    small.world.rows["E00016"]["Termination Date"] = "2026-11-30"  # Tokyo? see ZONES
    small.world.write(small.csv)
    first = small.run()
    assert first.counts["scheduled"] == 1
    scheduled = op_store.list_ops(small.engine.store, employee_id="E00016")[0]
    small.clock.advance(days=5)
    # A full run after the effective time, before any retry sweep applied it.
    report = small.run()
    assert report.counts["planned"] == {}
    op = op_store.get_op(small.engine.store, scheduled["id"])
    assert op["status"] == "succeeded"
    assert small.users()["E00016"]["active"] is False
