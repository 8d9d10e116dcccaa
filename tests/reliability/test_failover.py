"""Failover between two `rostersync serve` nodes on one database (docs/ha.md).

- The drill: the leader is SIGKILLed at the n-th create of a run of a few thousand (n
  drawn from a seeded generator); the standby must lead within the lease time and finish
  the run: every person exactly one account, every create sent exactly once (POSTs counted
  at the LMS), nothing pending or in flight left in the outbox, the audit chain whole.
  On SQLite (two processes, one file) and on PostgreSQL (tests/pg_server.py).
- A paused leader (SIGSTOP past its lease, then SIGCONT) sends nothing more: its fencing
  token is stale, and it records why its run stopped.
- A partitioned leader (its database link cut) stops applying before its lease ends.

Takeover times (kill to the standby's lease) are printed and recorded in docs/ha.md.
"""

from __future__ import annotations

import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from tests.pg_server import why_unavailable
from tests.reliability import figures
from tests.reliability.failover_rig import (
    Node,
    TcpLink,
    leader_and_standby,
    leader_of,
    node_config,
    wait_for,
)
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

LEASE = 3.0
# Process scheduling on two shared cores: a standby's takeover lands this much after the
# lease's expiry at most (it wakes at the expiry it saw; then one SQLite/PG transaction).
SCHEDULING_SLACK = 0.5
TAKEOVERS: dict[str, list[float]] = {}


class CountPosts:
    """Counts the creates (POST /Users) the LMS received whole, per person; at the n-th,
    signals the leader once, while that create is in flight (received, not answered)."""

    wants_body = True  # the sandbox calls this hook with each request's whole body

    def __init__(self, lms: ScimSandbox, nth: int, act: threading.Event) -> None:
        self.per_person: Counter[str] = Counter()
        self.nth = nth
        self.reached = act
        self._lock = threading.Lock()
        self.victim: int | None = None
        self.signal = signal.SIGKILL
        lms.fault = self

    @property
    def count(self) -> int:
        return sum(self.per_person.values())

    def __call__(self, method: str, path: str, body: bytes) -> None:
        if method != "POST" or not path.rstrip("/").endswith("/Users"):
            return None
        key = json.loads(body).get("externalId", "?")
        with self._lock:
            self.per_person[key] += 1
            hit = self.count == self.nth and self.victim is not None
        if hit:
            os.kill(self.victim, self.signal)
            self.reached.set()
        return None  # the LMS acts on it as usual


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as server:
        yield server


def _port(lms: ScimSandbox) -> int:
    port = urlsplit(lms.base_url).port
    assert port is not None
    return port


def _via(lms: ScimSandbox, link: TcpLink) -> str:
    """The LMS's base URL through ``link``."""
    return lms.base_url.replace(f":{_port(lms)}", f":{link.port}", 1)


def _pg_url(request: pytest.FixtureRequest) -> str:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    try:
        from rostersync.storage import pg_store  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the PostgreSQL store is not importable: {exc}")
    return str(request.getfixturevalue("pg_database"))


def _world(folder: Path, lms: ScimSandbox, people: int) -> Path:
    csv_path = World.generate(people).write(folder / "employees.csv")
    return write_config(folder, lms.base_url, csv_path, lms={"bulk": "off"})


def _outbox(config: Path) -> Counter[str]:
    store = make_store(load_config(config).database)
    try:
        return Counter({r["status"]: r["n"] for r in store.rows(
            "SELECT status, count(*) AS n FROM ops GROUP BY status")})
    finally:
        store.close()


def _finished(config: Path, people: int, lms: ScimSandbox) -> bool:
    ops = _outbox(config)
    if ops["pending"] or ops["running"] or sum(ops.values()) < people:
        return False
    return len(lms_users(lms.base_url, SCIM_TOKEN)) >= people


def _operator_acts(config: Path, employee: str) -> None:
    """A suppression of someone outside the feed: audited, and no change to the run."""
    assert main(["ops", "suppress", "--employee", employee, "--reason", "failover drill",
                 "--until", "7d", "--config", str(config)]) == 0


def _trial(folder: Path, lms: ScimSandbox, people: int, kill_at: int, backend: str,
           database_url: str | None) -> float:
    base = _world(folder, lms, people)
    reached = threading.Event()
    posts = CountPosts(lms, kill_at, reached)
    with TcpLink(_port(lms)) as link_a, TcpLink(_port(lms)) as link_b:
        a_conf = node_config(base, folder, "node-a", _via(lms, link_a), LEASE,
                             lms.base_url, database_url=database_url)
        b_conf = node_config(base, folder, "node-b", _via(lms, link_b), LEASE,
                             lms.base_url, database_url=database_url)
        with leader_and_standby(a_conf, b_conf,
                                lambda a: setattr(posts, "victim", a.proc.pid)) as (a, b):
            # An operator acts through the leader's config while it applies, and again
            # through the survivor's after the takeover: the audit chain, written by
            # other processes around a SIGKILL, must come out whole with both entries.
            _operator_acts(a_conf, "X-DRILL-BEFORE")
            assert reached.wait(120), f"the leader never reached create {kill_at}"
            killed_at = datetime.now(UTC)
            a.proc.wait(30)
            row = wait_for(lambda: (r := leader_of(b_conf)) and r.node == "node-b" and r,
                           LEASE * 4, f"node-b to take over\n{b.output()}")
            takeover = (row.acquired_at - killed_at).total_seconds()
            assert takeover <= LEASE + SCHEDULING_SLACK, takeover
            _operator_acts(b_conf, "X-DRILL-AFTER")
            wait_for(lambda: _finished(b_conf, people, lms), 300,
                     f"node-b to finish the run\n{b.output()}", every=0.25)
    users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    assert len(users) == people, len(users)  # none lost
    assert all(len(v) == 1 for v in users.values())  # no duplicate account
    assert len(posts.per_person) == people  # every create reached the LMS...
    assert max(posts.per_person.values()) == 1, posts.per_person.most_common(3)  # ...once
    ops = _outbox(b_conf)
    assert set(ops) <= {"succeeded", "superseded"} and sum(ops.values()) == people, ops
    assert main(["audit", "verify", "--config", str(b_conf)]) == 0
    store = make_store(load_config(b_conf).database)
    try:
        recovered = store.scalar("SELECT count(*) FROM op_attempts "
                                 "WHERE outcome = 'interrupted'")
        audited = [r["target"] for r in store.rows("SELECT target FROM audit ORDER BY id")]
        assert audited == ["X-DRILL-BEFORE", "X-DRILL-AFTER"], audited
    finally:
        store.close()
    figures.add(f"failover ({backend}): trials with one account per person")
    figures.add(f"failover ({backend}): creates in flight at the kill, recovered", recovered)
    return takeover


def _drill(tmp_path: Path, backend: str, database_urls: list[str | None] | None = None
           ) -> None:
    trials = figures.scale(1, 20)
    people = figures.scale(200, 2000)
    rng = random.Random(23)
    times: list[float] = []
    for trial in range(trials):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        os.environ[TOKEN_ENV] = SCIM_TOKEN
        with ScimSandbox(token=SCIM_TOKEN) as lms:
            url = database_urls[trial] if database_urls else None
            times.append(_trial(folder, lms, people, rng.randint(people // 10,
                                                                 people * 7 // 10),
                                backend, url))
    TAKEOVERS[backend] = times
    ms = sorted(round(t * 1000) for t in times)
    figures.add(f"failover ({backend}): trials", trials)
    figures.add(f"failover ({backend}): people per trial", people)
    figures.add(f"failover ({backend}): takeover ms min", ms[0])
    figures.add(f"failover ({backend}): takeover ms median", round(statistics.median(ms)))
    figures.add(f"failover ({backend}): takeover ms max", ms[-1])
    print(f"\nfailover on {backend}: lease {LEASE:g} s, {trials} trials of {people} people; "
          f"takeover ms min/median/max {ms[0]}/{round(statistics.median(ms))}/{ms[-1]}; "
          f"each: {ms}")


def test_failover_drill_on_sqlite(tmp_path):
    _drill(tmp_path, "sqlite")


def test_failover_drill_on_postgresql(tmp_path, request):
    urls: list[str | None] = [_pg_url(request)]
    for _ in range(figures.scale(1, 20) - 1):  # a fresh database per trial
        urls.append(str(request.getfixturevalue("pg_server").create_database(
            f"failover{os.getpid()}_{len(urls)}")))
    _drill(tmp_path, "postgresql", urls)


def test_a_paused_leader_sends_nothing_after_it_resumes(tmp_path, lms):
    people = 120
    base = _world(tmp_path, lms, people)
    reached = threading.Event()
    posts = CountPosts(lms, 20, reached)
    posts.signal = signal.SIGSTOP
    with TcpLink(_port(lms)) as link_a, TcpLink(_port(lms)) as link_b:
        # One create at a time: at the pause, the leader waits for the answer to the
        # 20th; nothing of it is between its token check and the wire.
        a_conf = node_config(base, tmp_path, "node-a", _via(lms, link_a),
                             LEASE, lms.base_url, concurrency=1)
        b_conf = node_config(base, tmp_path, "node-b", _via(lms, link_b),
                             LEASE, lms.base_url, concurrency=1)
        with leader_and_standby(a_conf, b_conf,
                                lambda a: setattr(posts, "victim", a.proc.pid)) as (a, b):
            assert reached.wait(120), "the leader never reached its 20th create"
            wait_for(lambda: (r := leader_of(b_conf)) and r.node == "node-b", LEASE * 4,
                     f"node-b to take over\n{b.output()}")
            sent_before = link_a.sent_bytes()
            chunks_before = len(link_a.chunks)
            a.proc.send_signal(signal.SIGCONT)
            stood_down = wait_for(
                lambda: a.logged(event="leadership", state="standby", node="node-a"), 30,
                f"node-a to stand down\n{a.output()}")
            started = a.logged(event="RunStarted", kind="full")
            assert started is not None, a.output()
            finished = wait_for(lambda: a.logged(event="RunFinished",
                                                 run_id=started["run_id"]), 30,
                                f"node-a to record its run\n{a.output()}")
            wait_for(lambda: _finished(b_conf, people, lms), 120,
                     f"node-b to finish the run\n{b.output()}", every=0.25)
            assert link_a.sent_bytes() == sent_before, link_a.chunks[chunks_before:]
            assert "leader lease" in (finished["message"] or ""), finished
            assert "why" in stood_down
            # Stopping a node: it exits 0; the leader releases the lease at once.
            for node in (a, b):
                node.proc.terminate()
                assert node.proc.wait(60) == 0, node.output()
                assert node.logged(event="stopped"), node.output()
            released = leader_of(b_conf)
            assert released is not None and released.node == "node-b"
            assert released.expires_at == released.acquired_at, released
    users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    assert len(users) == people and all(len(v) == 1 for v in users.values())
    assert len(posts.per_person) == people and max(posts.per_person.values()) == 1
    store = make_store(load_config(b_conf).database)
    try:
        run = store.rows("SELECT status, error_class, message FROM runs WHERE id = ?",
                         (started["run_id"],))[0]
    finally:
        store.close()
    assert (run["status"], run["error_class"]) == ("failed", "interrupted"), run
    assert "leader lease" in run["message"], run
    figures.add("failover: paused leaders that sent nothing after resuming")


def test_a_leader_cut_from_its_database_stops_before_its_lease_ends(tmp_path, lms, request):
    pytest.importorskip("psycopg")
    url = _pg_url(request)
    port = int(url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    people = 400
    base = _world(tmp_path, lms, people)
    with TcpLink(_port(lms)) as link_a, TcpLink(port) as db_a:
        a_url = url.replace(f":{port}/", f":{db_a.port}/")
        a_conf = node_config(base, tmp_path, "node-a", _via(lms, link_a),
                             LEASE, lms.base_url, database_url=a_url, concurrency=2)
        a = Node("node-a", a_conf)
        try:
            wait_for(lambda: a.logged(event="leadership", state="leading"), 60,
                     f"node-a to lead\n{a.output()}")
            wait_for(lambda: link_a.sent_bytes() > 20_000, 60, "node-a to apply")
            probe = node_config(base, tmp_path, "probe", lms.base_url, LEASE, lms.base_url,
                                database_url=url)  # the database, not through node-a's link
            db_a.sever()
            stood = wait_for(lambda: a.logged(event="leadership", state="standby"),
                             LEASE * 3, f"node-a to stand down\n{a.output()}")
            stood_at = time.time()
            # The lease as the database has it (the partitioned node cannot renew it).
            row = leader_of(probe)
            assert row is not None and row.node == "node-a"
            ends = row.expires_at.timestamp()
            last = link_a.last_sent_at or 0
            assert stood_at < ends, (stood_at, ends)
            assert last < ends, "the partitioned leader sent to the LMS after its lease"
            figures.add("failover: partitioned leaders that stopped before their lease",
                        1)
            print(f"\npartitioned leader stood down {ends - stood_at:.2f} s before its "
                  f"lease ended; last LMS byte {ends - last:.2f} s before; {stood['why']}")
        finally:
            a.stop()
