"""Issue 13: a suppression is honoured for a leaver (the LMS account stays active, as
the operator asked) but never silently: `status` names the blocked termination with who
suppressed the person, why and until when, is at least WARNING for it, and CRITICAL once
its SLA clock (which keeps running) passes `guards.termination_sla_minutes`.

Real runs: a CSV HRIS and scim2-server on 127.0.0.1; the SLA edges with an injected clock.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest

from rostersync.console.cli import main
from rostersync.storage import suppressions as suppression_store
from rostersync.storage.db import parse_ts
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import Clock, FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.status import CRITICAL, OK, WARNING, build_status
from tests.support import World, by_external_id, lms_users, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LEAVER = "E00020"


@pytest.fixture
def world(tmp_path, scim_server, lms_token):
    class Small:
        people = World.generate(40)
        csv = tmp_path / "employees.csv"

        def __init__(self) -> None:
            self.people.write(self.csv)
            self.config_path = write_config(tmp_path, scim_server.base_url, self.csv)
            self.config = load_config(self.config_path)

        def args(self, *argv: str) -> list[str]:
            return [*argv, "--config", str(self.config_path)]

        def terminate(self, employee_id: str, last_day: str) -> None:
            self.people.rows[employee_id].update({"Status": "Terminated",
                                                  "Termination Date": last_day})
            self.people.write(self.csv)

        def active_in_lms(self, employee_id: str) -> bool:
            users = by_external_id(lms_users(scim_server.base_url, lms_token))
            return users[employee_id][0]["active"]

    return Small()


def cli(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_status_names_a_suppressed_leaver_whose_account_stays_active(world, capsys):
    """Through the command line, as an operator and a monitoring check would, on the
    real clock: the termination is minutes old, well inside the 60-minute SLA."""
    assert cli(capsys, *world.args("sync"))[0] == 0
    assert cli(capsys, *world.args("ops", "suppress", "--employee", LEAVER, "--reason",
                                   "legal hold: litigation", "--until", "30d"))[0] == 0
    world.terminate(LEAVER, (Clock().now() - timedelta(days=3)).date().isoformat())
    cli(capsys, *world.args("sync"))

    assert world.active_in_lms(LEAVER) is True  # the suppression is honoured

    code, out = cli(capsys, *world.args("status", "--json"))
    doc = json.loads(out)
    assert code == WARNING and doc["status"] == "WARNING"
    t = doc["terminations"]
    assert t["pending"] == 1
    assert t["blocked_by_suppression_count"] == 1 and t["blocked_by_suppression_overdue"] == 0
    store = make_store(world.config.database)
    made = store.rows("SELECT created_by, until FROM suppressions")[0]
    [entry] = t["blocked_by_suppression"]
    assert entry["employee_id"] == LEAVER and entry["overdue"] is False
    assert entry["suppressed_by"] == made["created_by"]
    assert entry["reason"] == "legal hold: litigation" and entry["until"] == made["until"]
    assert any(r.startswith("1 termination(s) blocked by a suppression: E00020 (suppressed "
                            "by ") for r in doc["reasons"])

    code, text = cli(capsys, *world.args("status"))
    assert code == WARNING
    line = next(x for x in text.splitlines() if x.strip().startswith(f"{LEAVER}:"))
    assert "legal hold: litigation" in line and "within SLA" in line


def test_a_blocked_termination_turns_critical_strictly_past_the_sla(world):
    clock = FrozenClock(START)
    store = make_store(world.config.database)
    engine = Engine(world.config, store, clock=clock)
    assert asyncio.run(engine.sync("full")).exit_code == 0
    until = START + timedelta(days=30)
    suppression_store.add(store, clock.now(), LEAVER, "legal hold", until, "alice")
    world.terminate(LEAVER, "2026-11-20")
    clock.advance(minutes=5)
    asyncio.run(engine.sync("full"))
    assert world.active_in_lms(LEAVER) is True
    assert store.scalar("SELECT status FROM ops WHERE employee_id = ? AND kind = "
                        "'deactivate'", (LEAVER,)) == "suppressed"

    seen = clock.now()  # the SLA clock starts when the termination is seen in force
    sla = timedelta(minutes=world.config.guards.termination_sla_minutes)
    for offset, level, overdue in ((-1, WARNING, False), (0, WARNING, False),
                                   (1, CRITICAL, True)):
        clock.set(seen + sla + timedelta(seconds=offset))
        doc = build_status(store, world.config, clock.now())
        t = doc["terminations"]
        [entry] = t["blocked_by_suppression"]
        assert (doc["exit_code"], entry["overdue"]) == (level, overdue), offset
        assert parse_ts(entry["sla_clock_from"]) == seen
        assert entry["age_seconds"] == sla.total_seconds() + offset
        assert (entry["suppressed_by"], entry["reason"]) == ("alice", "legal hold")
        assert parse_ts(entry["until"]) == until
        assert entry["effective_at"].startswith("2026-11-2")  # HR's date, not the run's
        assert t["blocked_by_suppression_overdue"] == int(overdue)
        blocked = [r for r in doc["reasons"] if "blocked by a suppression" in r]
        assert len(blocked) == 1 and ("past the 60-minute SLA" in blocked[0]) is overdue

    # The suppression ends at `until`: from then on nothing blocks the termination (the
    # next run plans the deactivation again), and the list of blocked ones is empty.
    clock.set(until - timedelta(seconds=1))
    assert build_status(store, world.config, clock.now())["terminations"][
        "blocked_by_suppression_count"] == 1
    clock.set(until)
    assert build_status(store, world.config, clock.now())["terminations"][
        "blocked_by_suppression"] == []


def test_lifting_the_suppression_lets_the_termination_through(world):
    clock = FrozenClock(START)
    store = make_store(world.config.database)
    engine = Engine(world.config, store, clock=clock)
    asyncio.run(engine.sync("full"))
    suppression_store.add(store, clock.now(), LEAVER, "legal hold", None, "alice")
    world.terminate(LEAVER, "2026-11-20")
    asyncio.run(engine.sync("full"))
    clock.advance(days=90)  # no expiry: still blocked, and long past the SLA
    doc = build_status(store, world.config, clock.now())
    assert doc["exit_code"] == CRITICAL
    assert doc["terminations"]["blocked_by_suppression"][0]["until"] is None
    assert world.active_in_lms(LEAVER) is True

    suppression_store.lift(store, clock.now(), LEAVER, "bob")
    asyncio.run(engine.sync("full"))
    assert world.active_in_lms(LEAVER) is False
    doc = build_status(store, world.config, clock.now())
    assert doc["terminations"]["blocked_by_suppression_count"] == 0
    assert doc["exit_code"] == OK, doc["reasons"]
