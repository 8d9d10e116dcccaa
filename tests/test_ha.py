"""Several serve nodes on one database: the leader lease and its fencing token, the
[ha] config, self-fencing, job claims and fenced applies (SQLite files, real SCIM)."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from rostersync.storage import lease
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.storage.lease import Fence, Fenced
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError, config_from_dict, load_config
from rostersync.sync.config_ha import HaConfig
from rostersync.sync.engine import Engine, EngineBusy
from rostersync.sync.events import OpFinished
from rostersync.sync.leadership import Leadership, must_stand_down
from tests.support import World, lms_users, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
TINY = timedelta(microseconds=1)


def store_at(tmp_path):
    return Store(tmp_path / "shared.db")


# -- the lease and its token --------------------------------------------------------------

def test_the_token_grows_across_holders_and_releases(tmp_path):
    store = store_at(tmp_path)
    a, ours = lease.take(store, "a", NOW, 30, "leader", "node-a")
    assert ours and a.token == 1 and a.node == "node-a" and a.acquired_at == NOW
    renewed, ours = lease.take(store, "a", NOW + timedelta(seconds=10), 30, "leader", "node-a")
    assert ours and renewed.token == 1 and renewed.acquired_at == NOW  # same term
    lease.release(store, "a", "leader")
    assert lease.current(store, NOW, "leader") is None
    assert lease.last(store, "leader").token == 1  # the row stays, expired
    b, ours = lease.take(store, "b", NOW + timedelta(seconds=11), 30, "leader", "node-b")
    assert ours and b.token == 2
    # b lapses; a takes it again: a new term, a greater token
    later = NOW + timedelta(seconds=41)
    again, ours = lease.take(store, "a", later, 30, "leader", "node-a")
    assert ours and again.token == 3 and again.acquired_at == later
    now_leading = lease.current(store, later, "leader")
    assert (now_leading.node, now_leading.token, now_leading.acquired_at) == ("node-a", 3, later)


def test_the_same_holder_taking_a_lapsed_lease_gets_a_new_token(tmp_path):
    store = store_at(tmp_path)
    lease.take(store, "a", NOW, 30, "leader", "node-a")
    lapsed, ours = lease.take(store, "a", NOW + timedelta(seconds=30), 30, "leader", "node-a")
    assert ours and lapsed.token == 2


@pytest.mark.parametrize(("offset", "taken"), [(-TINY, False), (timedelta(0), True),
                                               (TINY, True)],
                         ids=["just before expiry", "at expiry", "just after"])
def test_a_standby_takes_the_lease_only_once_it_expired(tmp_path, offset, taken):
    store = store_at(tmp_path)
    lease.take(store, "a", NOW, 30, "leader", "node-a")
    at = NOW + timedelta(seconds=30) + offset
    holder, ours = lease.take(store, "b", at, 30, "leader", "node-b")
    assert ours is taken
    assert holder.node == ("node-b" if taken else "node-a")
    assert holder.token == (2 if taken else 1)


def test_a_dead_pid_frees_the_leader_lease_only_for_the_same_node(tmp_path):
    store = store_at(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    store.conn.execute(
        "INSERT INTO lease(name, holder, pid, host, acquired_at, expires_at, token, node) "
        "VALUES ('leader', 'gone', ?, ?, ?, ?, 4, 'node-a')",
        (child.pid, socket.gethostname(), "2026-11-26T09:00:00.000000Z",
         "2026-11-26T09:00:30.000000Z"))
    other, ours = lease.take(store, "b", NOW, 30, "leader", "node-b")
    assert not ours and other.node == "node-a"  # another node waits for the expiry
    mine, ours = lease.take(store, "a2", NOW, 30, "leader", "node-a")
    assert ours and mine.token == 5  # the restarted node itself need not wait


def test_renew_keeps_only_an_unexpired_lease_of_this_token(tmp_path):
    store = store_at(tmp_path)
    a, _ = lease.take(store, "a", NOW, 30, "leader", "node-a")
    fence = Fence("a", a.token)
    assert lease.renew(store, fence, NOW + timedelta(seconds=30) - TINY, 30)
    renewed_until = NOW + timedelta(seconds=60) - TINY
    assert not lease.renew(store, fence, renewed_until, 30)  # at expiry: lapsed
    assert not lease.renew(store, Fence("a", a.token + 1), NOW, 30)  # another token


def test_claims_run_a_scheduled_job_once(tmp_path):
    one, two = store_at(tmp_path), Store(tmp_path / "shared.db")
    fire = datetime(2026, 11, 26, 9, 5, tzinfo=UTC)
    assert lease.claim_job(one, "retry", fire, "node-a", NOW) is None
    assert lease.claim_job(two, "retry", fire, "node-b", NOW) == "node-a"
    assert lease.claim_job(two, "retry", fire + timedelta(minutes=5), "node-b", NOW) is None


def test_claims_older_than_a_week_are_dropped(tmp_path):
    store = store_at(tmp_path)
    fire = datetime(2026, 11, 1, tzinfo=UTC)
    lease.claim_job(store, "full", fire, "node-a", NOW - timedelta(days=lease.CLAIMS_KEPT_DAYS))
    lease.claim_job(store, "full", fire + timedelta(days=1), "node-a", NOW)
    assert store.scalar("SELECT count(*) FROM job_claims") == 2  # exactly a week: kept
    lease.claim_job(store, "full", fire + timedelta(days=2), "node-a", NOW + TINY)
    assert store.scalar("SELECT count(*) FROM job_claims") == 2  # just over: dropped


# -- the fence on an operation ---------------------------------------------------------

def _one_op(store):
    store.conn.execute("INSERT INTO ops(employee_id, kind, idem_key, status, created_at, "
                       "updated_at) VALUES ('E1', 'create', 'k1', 'pending', 'x', 'x')")
    return store.scalar("SELECT max(id) FROM ops")


def test_an_attempt_is_refused_once_another_node_holds_the_lease(tmp_path):
    store = store_at(tmp_path)
    op_id = _one_op(store)
    a, _ = lease.take(store, "a", NOW, 30, "leader", "node-a")
    fence = Fence("a", a.token)
    op_store.begin_attempt(store, NOW, op_id, 1, fence)
    assert store.scalar("SELECT status FROM ops WHERE id = ?", (op_id,)) == "running"
    store.conn.execute("UPDATE ops SET status = 'pending' WHERE id = ?", (op_id,))
    lease.take(store, "b", NOW + timedelta(seconds=30), 30, "leader", "node-b")
    with pytest.raises(Fenced, match="no longer holds the leader lease with token 1"):
        op_store.begin_attempt(store, NOW + timedelta(seconds=31), op_id, 2, fence)
    assert store.scalar("SELECT status FROM ops WHERE id = ?", (op_id,)) == "pending"
    with pytest.raises(Fenced), store.tx() as conn:
        op_store.begin_attempts(conn, NOW + timedelta(seconds=31), [(op_id, 2)], fence)


@pytest.mark.parametrize(("offset", "allowed"), [(-TINY, True), (timedelta(0), False)],
                         ids=["just before expiry", "at expiry"])
def test_an_attempt_is_refused_once_the_lease_expired(tmp_path, offset, allowed):
    store = store_at(tmp_path)
    op_id = _one_op(store)
    a, _ = lease.take(store, "a", NOW, 30, "leader", "node-a")
    at = NOW + timedelta(seconds=30) + offset
    if allowed:
        op_store.begin_attempt(store, at, op_id, 1, Fence("a", a.token))
    else:
        with pytest.raises(Fenced):
            op_store.begin_attempt(store, at, op_id, 1, Fence("a", a.token))


# -- [ha] config ---------------------------------------------------------------------

def _config(tmp_path, ha):
    world = World.generate(3)
    csv_path = world.write(tmp_path / "employees.csv")
    path = write_config(tmp_path, "http://127.0.0.1:9", csv_path)
    path.write_text(path.read_text() + "\n[ha]\n" + ha, encoding="utf-8")
    return path


def test_ha_defaults_are_off_with_the_host_name():
    ha = HaConfig()
    assert (ha.enabled, ha.node, ha.lease_seconds) == (False, socket.gethostname(), 30.0)


@pytest.mark.parametrize("seconds", [59.999, 60])
def test_a_lease_of_at_most_a_minute_is_accepted(tmp_path, seconds):
    config = load_config(_config(tmp_path, f"enabled = true\nlease_seconds = {seconds}\n"))
    assert config.ha.lease_seconds == seconds


def test_a_longer_lease_is_one_sentence_naming_the_key(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, "enabled = true\nlease_seconds = 60.001\n"))
    message = str(caught.value)
    assert "ha.lease_seconds" in message and "at most 60 seconds" in message
    assert "60.001" in message and "Traceback" not in message


def test_a_blank_node_name_is_refused():
    with pytest.raises(ConfigError, match=r"ha\.node"):
        config_from_dict({"hris": {"type": "csv", "path": "x.csv"},
                          "lms": {"type": "scim", "base_url": "http://127.0.0.1:9"},
                          "ha": {"node": "  "}})


# -- leadership ------------------------------------------------------------------------

class Node:
    """One node's Leadership on its own connection to the shared file."""

    def __init__(self, tmp_path, name, clock, lease_seconds=30.0):
        self.events: list[dict] = []
        self.changes: list[str] = []
        self.leadership = Leadership(
            Store(tmp_path / "shared.db"), HaConfig(enabled=True, node=name,
                                                    lease_seconds=lease_seconds),
            clock, on_lead=lambda fence: self.changes.append(f"lead {fence.token}"),
            on_standby=lambda why: self.changes.append(f"standby: {why}"),
            log=self.events.append)

    def tick(self):
        asyncio.run(self.leadership.tick())


@pytest.mark.parametrize(("after", "due"), [(19.999999, False), (20, True), (20.000001, True)])
def test_a_leader_stands_down_a_margin_before_its_lease_ends(after, due):
    # lease 30 s, margin a third: due 20 s after the last renewal
    assert must_stand_down(NOW + timedelta(seconds=after), NOW, 30, 10) is due


def test_one_node_leads_the_other_takes_over_when_the_lease_expired(tmp_path):
    clock = FrozenClock(NOW)
    a, b = Node(tmp_path, "node-a", clock), Node(tmp_path, "node-b", clock)
    a.tick()
    b.tick()
    assert a.changes == ["lead 1"] and b.changes == []
    assert b.events[-1]["state"] == "standby" and b.events[-1]["leader"] == "node-a"
    clock.advance(seconds=10)
    a.tick()  # renews: the lease now ends at +40 s
    clock.advance(seconds=29.999999)
    b.tick()
    assert b.changes == []  # just before it expires: still a standby
    clock.advance(seconds=0.000001)
    b.tick()
    assert b.changes == ["lead 2"]
    led = lease.current(b.leadership.store, clock.now(), "leader")
    assert (led.node, led.token, led.acquired_at) == ("node-b", 2, clock.now())


def test_a_paused_leader_stands_down_without_writing_when_it_wakes_late(tmp_path):
    clock = FrozenClock(NOW)
    a = Node(tmp_path, "node-a", clock)
    a.tick()
    clock.advance(seconds=20)  # no renewal for lease - margin: a SIGSTOP, a frozen loop
    a.tick()
    assert a.changes[-1].startswith("standby: could not renew the leader lease in time")
    assert a.leadership.fence is None
    assert lease.last(a.leadership.store, "leader").expires_at == NOW + timedelta(seconds=30)


def test_a_leader_whose_lease_was_taken_stands_down_at_its_next_renewal(tmp_path):
    clock = FrozenClock(NOW)
    a, b = Node(tmp_path, "node-a", clock), Node(tmp_path, "node-b", clock)
    a.tick()
    clock.advance(seconds=30)
    b.tick()  # a's lease expired (a was slow): b leads with token 2
    clock.set(NOW + timedelta(seconds=5))  # a's clock is behind: its deadline has not come
    a.tick()
    assert a.changes[-1] == "standby: the leader lease lapsed or another node took it"


def test_a_leader_that_cannot_reach_the_database_stands_down_before_the_lease_ends(tmp_path):
    clock = FrozenClock(NOW)
    a = Node(tmp_path, "node-a", clock, lease_seconds=3.0)
    a.tick()
    blocker = sqlite3.connect(tmp_path / "shared.db", timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # nobody else can read or write the file
    loop = asyncio.new_event_loop()
    try:
        clock.advance(seconds=1)  # the renewal is due; the stand-down comes at +2 s
        loop.run_until_complete(a.leadership.tick())  # blocks; gives up at its deadline
        assert a.changes[-1].startswith("standby: the database did not answer")
        assert a.leadership.fence is None
    finally:
        blocker.rollback()
        blocker.close()
        loop.run_until_complete(loop.shutdown_default_executor())  # the renewal's thread
        loop.close()


# -- fenced applies through the engine --------------------------------------------------

def _leading_engine(tmp_path, base_url: str, people: int, lose_after: int,
                    **lms: str) -> tuple[Engine, list[str]]:
    """An engine leading with token 1 over ``people`` to create, one request at a time;
    another node takes the lease once ``lose_after`` creates have succeeded. Returns the
    engine and the people whose create succeeded, filled as it runs."""
    world = World.generate(people)
    csv_path = world.write(tmp_path / "employees.csv")
    path = write_config(tmp_path, base_url, csv_path, lms=lms)
    path.write_text(path.read_text().replace("concurrency = 8", "concurrency = 1"))
    config = load_config(path)
    engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))
    mine, _ = lease.take(engine.store, "a", NOW, 30, "leader", "node-a")
    engine.lead(Fence("a", mine.token))
    sent: list[str] = []

    def lose_mid_apply(event):
        if isinstance(event, OpFinished) and event.status == "succeeded":
            sent.append(event.employee_id)
            if len(sent) == lose_after:  # another node takes over mid-apply
                lease.take(Store(config.database.path), "b", NOW + timedelta(seconds=30), 30,
                           "leader", "node-b")

    engine.on_event = lose_mid_apply
    return engine, sent


def test_an_engine_run_stops_sending_once_the_lease_is_lost(tmp_path, scim_server, lms_token):
    engine, sent = _leading_engine(tmp_path, scim_server.base_url, 30, 5, bulk="off")
    report = asyncio.run(engine.sync("full"))
    assert report.error_class == "interrupted", report
    assert "no longer holds the leader lease with token 1" in report.message
    assert len(lms_users(scim_server.base_url, lms_token)) == len(sent) == 5
    assert engine.store.scalar("SELECT count(*) FROM ops WHERE status = 'running'") == 0


def test_a_standby_engine_refuses_to_apply(tmp_path, scim_server, lms_token):
    world = World.generate(5)
    csv_path = world.write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, scim_server.base_url, csv_path))
    engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))
    engine.step_down("this node is a standby")
    with pytest.raises(EngineBusy, match="standby"):
        asyncio.run(engine.sync("full"))
    assert lms_users(scim_server.base_url, lms_token) == []
    assert engine.store.scalar("SELECT count(*) FROM runs") == 0  # not even a run row


@pytest.mark.parametrize(("seen_at", "pause"), [(19.999999, 10.0), (20, 10.0), (25, 5.0)],
                         ids=["expiry a bit over a third away", "a third away", "sooner"])
def test_a_standby_looks_again_when_the_lease_it_saw_expires(tmp_path, seen_at, pause):
    clock = FrozenClock(NOW)
    a, b = Node(tmp_path, "node-a", clock), Node(tmp_path, "node-b", clock)
    a.tick()  # leads until +30 s; a standby looks every 10 s, or at that expiry if sooner
    clock.set(NOW + timedelta(seconds=seen_at))
    b.tick()
    assert b.leadership.next_tick_in() == pytest.approx(min(pause, 30 - seen_at), abs=1e-6)


# The sandbox takes at most 1 MiB a /Bulk request: this many creates need several.
PEOPLE_PAST_ONE_BATCH = 2500


def test_a_batched_run_stops_sending_once_the_lease_is_lost(tmp_path, scim_server, lms_token):
    # The lease is lost when the first batch's first create is reported.
    engine, sent = _leading_engine(tmp_path, scim_server.base_url, PEOPLE_PAST_ONE_BATCH, 1)
    report = asyncio.run(engine.sync("full"))
    assert report.error_class == "interrupted", report
    assert "no longer holds the leader lease with token 1" in report.message
    made = len(lms_users(scim_server.base_url, lms_token))
    assert made == len(sent) < PEOPLE_PAST_ONE_BATCH  # the batches after the loss were never sent
