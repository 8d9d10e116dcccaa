"""Commands run by hand that apply (`sync`, `resync`, `ops retry`, `ops approve`) are fenced
by the leader lease when [ha] is enabled: refused while another node leads, fenced by the
leader's lease on the leader's node, and holding the lease themselves while nobody leads
(real SQLite files, the SCIM sandbox, the command line run in-process)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.storage import lease
from rostersync.storage.db import Store
from rostersync.storage.lease import Fence, LeaseHolder
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.ha_fence import (
    Refuse,
    TakeLeaseForRun,
    UseLeaderFence,
    decide,
    run_fenced,
)
from rostersync.sync.run_report import EXIT_FAILED, EXIT_NOT_APPLIED, EXIT_OK
from tests.support import World, give_audit_key, lms_users, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def _lease(node: str, expires_at: datetime, token: int = 7) -> LeaseHolder:
    return LeaseHolder(f"{node}/host:1:abc", 1, "host", expires_at, NOW - timedelta(hours=1),
                       token, node)


# -- the policy (pure) --------------------------------------------------------------------

@pytest.mark.parametrize(("expires_in", "led"), [(-SECOND, False), (timedelta(0), False),
                                                 (SECOND, True)],
                         ids=["expired a second ago", "expires exactly now", "a second left"])
def test_another_nodes_lease_refuses_until_it_expires(expires_in, led):
    decision = decide("node-b", _lease("node-a", NOW + expires_in), NOW)
    if led:
        assert isinstance(decision, Refuse)
        assert "node node-a leads" in decision.sentence
        assert "since 2026-11-26T08:00:00+00:00" in decision.sentence
        assert "run it on node-a, or wait until its lease expires at" in decision.sentence
        assert "nothing was planned or sent" in decision.sentence
    else:
        assert decision == TakeLeaseForRun()


@pytest.mark.parametrize(("expires_in", "leads"), [(-SECOND, False), (timedelta(0), False),
                                                   (SECOND, True)],
                         ids=["expired a second ago", "expires exactly now", "a second left"])
def test_this_nodes_live_lease_is_the_fence(expires_in, leads):
    held = _lease("node-a", NOW + expires_in)
    decision = decide("node-a", held, NOW)
    if leads:
        assert decision == UseLeaderFence(Fence(held.holder, 7, "leader"))
    else:
        assert decision == TakeLeaseForRun()


def test_no_lease_row_means_the_command_takes_the_lease():
    assert decide("node-a", None, NOW) == TakeLeaseForRun()


# -- the command line ---------------------------------------------------------------------

def _setup(tmp_path: Path, base_url: str, people: int, node: str) -> Path:
    csv_path = World.generate(people).write(tmp_path / "employees.csv")
    path = write_config(tmp_path, base_url, csv_path, lms={"bulk": "off"})
    text = path.read_text().replace("concurrency = 8", "concurrency = 1")
    path.write_text(text + f'\n[ha]\nenabled = true\nnode = "{node}"\nlease_seconds = 30\n')
    give_audit_key(path)
    return path


def _db(path: Path) -> Path:
    return path.parent / "rostersync.db"


def _now() -> datetime:
    return datetime.now(UTC)


def test_sync_on_a_standby_node_refuses_and_sends_nothing(tmp_path, scim_server, lms_token,
                                                           capsys):
    path = _setup(tmp_path, scim_server.base_url, 5, "node-b")
    store = Store(_db(path))
    lease.take(store, "node-a/x", _now(), 60, "leader", "node-a")
    assert main(["sync", "--config", str(path), "--json"]) == EXIT_NOT_APPLIED
    out = capsys.readouterr()
    assert "node node-a leads" in out.err and "run it on node-a" in out.err
    assert out.err.count("\n") == 1 and "Traceback" not in out.err
    doc = json.loads(out.out)
    assert doc["status"] == "busy" and doc["exit_code"] == EXIT_NOT_APPLIED
    assert lms_users(scim_server.base_url, lms_token) == []
    assert store.scalar("SELECT count(*) FROM runs") == 0
    assert store.scalar("SELECT count(*) FROM ops") == 0
    assert lease.current(store, _now(), "leader").node == "node-a"  # untouched


@pytest.mark.parametrize("command", [["ops", "retry", "--all-failed"], ["resync", "E0001"]],
                         ids=["ops retry", "resync"])
def test_other_applying_commands_on_a_standby_node_refuse(tmp_path, scim_server, lms_token,
                                                          capsys, command):
    path = _setup(tmp_path, scim_server.base_url, 5, "node-b")
    store = Store(_db(path))
    lease.take(store, "node-a/x", _now(), 60, "leader", "node-a")
    assert main([*command, "--config", str(path)]) == EXIT_NOT_APPLIED
    assert "node node-a leads" in capsys.readouterr().err
    assert store.scalar("SELECT count(*) FROM runs") == 0
    assert lms_users(scim_server.base_url, lms_token) == []


def test_sync_on_the_leaders_node_is_fenced_by_its_lease(tmp_path, scim_server, lms_token):
    path = _setup(tmp_path, scim_server.base_url, 20, "node-a")
    db = _db(path)
    mine, _ = lease.take(Store(db), "node-a/serve", _now(), 60, "leader", "node-a")
    posts: list[str] = []

    def leadership_moves_after_five(method: str, where: str) -> None:
        if method == "POST" and where.rstrip("/").endswith("/Users"):
            posts.append(where)
            if len(posts) == 5:  # node-b takes over while the fifth create is in flight
                with sqlite3.connect(db, timeout=30) as conn:
                    conn.execute("UPDATE lease SET holder = 'node-b/serve', node = 'node-b', "
                                 "token = token + 1 WHERE name = 'leader'")

    scim_server.on_request = leadership_moves_after_five
    try:
        code = main(["sync", "--config", str(path)])
    finally:
        scim_server.on_request = None
    assert code == EXIT_FAILED
    store = Store(db)
    run = store.one("SELECT status, message FROM runs ORDER BY id DESC LIMIT 1")
    assert f"no longer holds the leader lease with token {mine.token}" in run[1]
    assert len(lms_users(scim_server.base_url, lms_token)) == 5
    assert store.scalar("SELECT count(*) FROM ops WHERE status = 'running'") == 0


def test_sync_on_the_leaders_node_applies_while_it_leads(tmp_path, scim_server, lms_token):
    path = _setup(tmp_path, scim_server.base_url, 5, "node-a")
    store = Store(_db(path))
    mine, _ = lease.take(store, "node-a/serve", _now(), 60, "leader", "node-a")
    assert main(["sync", "--config", str(path)]) == EXIT_OK
    assert len(lms_users(scim_server.base_url, lms_token)) == 5
    after = lease.current(store, _now(), "leader")
    assert (after.holder, after.token) == (mine.holder, mine.token)  # the serve's, kept


def test_sync_with_no_leader_holds_the_lease_for_its_run(tmp_path, scim_server, lms_token):
    path = _setup(tmp_path, scim_server.base_url, 5, "node-a")
    db = _db(path)
    store = Store(db)
    # node-b led once and its lease lapsed: token 3, expired.
    lease.take(store, "node-b/serve", _now() - timedelta(minutes=5), 30, "leader", "node-b")
    with store.tx() as conn:
        conn.execute("UPDATE lease SET token = 3 WHERE name = 'leader'")
    during: list[LeaseHolder | None] = []

    def look(method: str, where: str) -> None:
        if method == "POST" and not during:
            during.append(lease.current(Store(db), _now(), "leader"))

    scim_server.on_request = look
    try:
        assert main(["sync", "--config", str(path)]) == EXIT_OK
    finally:
        scim_server.on_request = None
    assert len(lms_users(scim_server.base_url, lms_token)) == 5
    held = during[0]
    assert held is not None and held.node == "node-a" and held.token == 4
    assert lease.current(store, _now(), "leader") is None  # released after the run
    assert lease.last(store, "leader").token == 4
    # a standby takes over normally afterwards, with a greater token
    _, ours = lease.take(store, "node-b/serve", _now(), 30, "leader", "node-b")
    assert ours and lease.last(store, "leader").token == 5


def test_ha_off_changes_nothing(tmp_path, scim_server, lms_token):
    csv_path = World.generate(5).write(tmp_path / "employees.csv")
    path = write_config(tmp_path, scim_server.base_url, csv_path)
    store = Store(_db(path))
    lease.take(store, "node-a/x", _now(), 60, "leader", "node-a")  # ignored without [ha]
    assert main(["sync", "--config", str(path)]) == EXIT_OK
    assert len(lms_users(scim_server.base_url, lms_token)) == 5


def test_a_long_run_with_no_leader_renews_the_lease_it_took(tmp_path):
    path = _setup(tmp_path, "http://127.0.0.1:9", 1, "node-a")
    clock = FrozenClock(NOW)
    engine = Engine(load_config(path), Store(_db(path)), clock=clock)
    end = NOW + timedelta(seconds=100)  # past three lease times of 30 s

    async def long_work() -> LeaseHolder | None:
        # The renewals advance the frozen clock as they sleep; wait for them to get there.
        for _ in range(1_000_000):
            if clock.now() >= end:
                break
            await asyncio.sleep(0)
        return lease.current(engine.store, clock.now(), "leader")

    held = asyncio.run(run_fenced(engine, long_work))
    assert clock.now() >= end
    assert held is not None and held.node == "node-a" and held.token == 1
    assert engine.fence == Fence(held.holder, 1, "leader")
    assert lease.current(engine.store, clock.now(), "leader") is None  # released after
