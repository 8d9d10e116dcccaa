"""The demo world headless: HR life, faults, webhooks and the scheduler together, and a
summary that agrees with `rostersync status --json` and `rostersync audiences list
--json` on the same database. The story recovers on its own (the demo's on-call resumes
the job and reviews the held burst) and settles into normal HR life."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

from rostersync.console.cli import main
from rostersync.console.demo_oncall import (
    ACTOR,
    APPROVE_REASON,
    RETRY_REASON,
    DemoOnCall,
    demo_on_call,
)
from rostersync.sandbox.alert_file import read_notices
from rostersync.sandbox.demo import (
    IN_HR,
    ON_CALL,
    DemoWorld,
    close_compacted,
    rostersync_command,
    run_headless,
    summary,
)
from rostersync.sandbox.hr_life import INCIDENT_PASS, NORMAL_LIFE
from rostersync.storage import audit
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store, ts
from rostersync.sync.alerts import Alerter
from rostersync.sync.clock import Clock
from rostersync.sync.engine import Engine
from rostersync.sync.status import build_status
from tests.console_harness import VIEWED_AT, fresh_db

OUTCOMES = {"queued", "synced", "coalesced", "gated", "batched", "ignored", "held",
            "partial", "quarantined", "paused", "failed"}


def test_headless_demo_runs_the_story_and_agrees_with_status(tmp_path, capsys):
    world = DemoWorld(tmp_path / "demo", people=300, on_call=demo_on_call)
    world.life.mass_termination = 30
    world.life.fault_seconds = 0.05  # the LMS's faults last as long as the ticks do
    # This test reads the held burst; the on-call's review of it is the subject of
    # test_the_story_recovers_on_its_own below.
    world.on_call.review_after = 10**6
    config = world.start()
    store = Store(config.database.path)
    try:
        # A tick every 0.2 s walks the whole story (21 events) in under 5 s of scheduler
        # time; the assertions below hold for any interleaving of ticks and runs.
        asyncio.run(run_headless(world, config, store, 5.0, lambda _line: None,
                                 tick_seconds=0.2))
        delivered, failures = world.webhooks.events_delivered, world.webhooks.failures
        # One more full run reads where the story left HR: a burst of leavers, a renamed
        # department, a rehire...
        world.faults.clear()  # the story's LMS outage may still be on
        # The revoked token quarantines the job until an operator resumes it.
        assert main(["resume", "--config", str(world.config_path)]) == 0
        capsys.readouterr()
        report = asyncio.run(Engine(config, store).sync("full"))
        # The burst is held now whatever happened before: the alert channel says so.
        Alerter(store, config).check()
        doc = summary(store, config, world)
        future_dated = store.rows("SELECT count(*) AS n FROM people WHERE effective_at > ?",
                                  (ts(Clock().now()),))[0]["n"]
    finally:
        world.stop()
    assert len(doc["hr_events"]) >= 20
    assert doc["runs"].get("succeeded", 0) >= 1
    assert doc["ops"].get("succeeded", 0) >= 280  # 300 people, 15 contractors out of scope
    # The burst is held, not applied: by this run (exit 3) or by a run before it.
    assert report.exit_code in (0, 3) and doc["held"] >= 30
    assert doc["drift"].get("unmapped", 0) >= 1  # "Growth" has no mapping
    # Leavers whose last day (yesterday, in their own time zone) has not ended yet are
    # scheduled, not pending: how many depends on the hour the test runs.
    assert doc["drift"].get("pending_termination", 0) + future_dated >= 30

    # Audiences: a fifth of the organisation in each department's group, the managers,
    # and the recent starters (the org's and the story's hires) onboarding.
    groups = doc["audiences"]
    assert set(groups) == {"sales-enablement", "finance-controls", "people-managers",
                           "onboarding"}
    assert groups["sales-enablement"] >= 30 and groups["finance-controls"] >= 30
    assert groups["people-managers"] >= 30 and groups["onboarding"] >= 1

    # Every HR change BambooHR sent was received (and stored) before the summary; none
    # waits in the queue: the demo settles the intake before it stops.
    assert failures == [] and delivered >= 20
    events = doc["events_received"]
    assert sum(events.values()) == delivered
    assert set(events) <= OUTCOMES and not events.get("queued")

    # The command channel wrote each notice to the demo folder; the held burst fired.
    notices = read_notices(world.alerts_path)
    assert [(n["alert"], n["state"]) for n in notices] == \
        [(a["alert"], a["state"]) for a in doc["alerts_sent"]]
    assert ("held", "firing") in {(n["alert"], n["state"]) for n in notices}

    assert main(["status", "--json", "--config", str(world.config_path)]) in (0, 1, 2)
    status = json.loads(capsys.readouterr().out)
    assert status["drift"] == {**status["drift"], **doc["drift"]}
    assert {k: v for k, v in status["ops"].items() if v} == doc["ops"]
    if status.get("intake"):  # the status document's real-time section, where present
        assert {k: v for k, v in status["intake"]["events_24h"].items() if v} == events
    assert main(["audiences", "list", "--json", "--config", str(world.config_path)]) == 0
    listed = json.loads(capsys.readouterr().out)["audiences"]
    assert {a["id"]: a["size"] for a in listed} == doc["audiences"]


def test_the_story_recovers_on_its_own_and_settles_into_normal_life(tmp_path):
    """Each tick is followed by a full run, so what the on-call sees does not depend on
    timing; faults that last seconds end at once (the token's revocation lasts ticks)."""
    world = DemoWorld(tmp_path / "demo", people=300, on_call=demo_on_call)
    world.life.mass_termination = 30
    world.life.fault_seconds = 0
    world.on_call.review_after = 12  # the demo waits longer for a person at the console
    world.life.taken_login_ticks = 5  # IT frees the taken login well before the token
    config = world.start()
    store = Store(config.database.path)
    engine = Engine(config, store)
    said: list[tuple[int, str, str]] = []
    phases: list[str] = []

    async def live(ticks: int) -> None:
        await engine.sync("full")
        for tick in range(1, ticks + 1):
            said.extend((tick, who, what) for who, what in world.tick(store))
            phases.append(world.life.phase)
            await engine.sync("full")

    try:
        asyncio.run(live(len(world.life.script) + 12))
        status = build_status(store, config, Clock().now())
        approved = store.rows("SELECT status, approved_by FROM ops WHERE approved_by = ?",
                              (ACTOR,))
    finally:
        world.stop()

    def tick_of(who: str, text: str) -> int:
        return next(tick for tick, by, what in said if by == who and text in what)

    # Trouble first: the token revoked quarantined the job; IT restored it later.
    revoked, restored = tick_of(IN_HR, "token is revoked"), tick_of(IN_HR, "token back in")
    assert restored - revoked == world.life.revoked_ticks
    # The on-call resumed it on the third tick they saw it quarantined with a working
    # token (the restoring tick is the first), and approved the held burst, audited
    # under their name with the reason.
    assert tick_of(ON_CALL, "resumed the job") == restored + world.on_call.resume_after - 1
    rows = [r for r in audit.entries(store, limit=1000) if r["actor"] == ACTOR]
    by_action = {r["action"]: json.loads(r["detail"]) for r in rows}
    assert set(by_action) == {"resume", "approve", "retry"} and len(rows) == 3
    assert by_action["retry"]["reason"] == RETRY_REASON  # the create refused as taken
    assert by_action["resume"]["was"] == "quarantined"
    assert by_action["approve"]["reason"] == APPROVE_REASON
    assert len(by_action["approve"]["ops"]) >= 30  # the burst of leavers
    # The backlog drained: the approved ops applied, nothing held, no leaver waits.
    assert approved and {r["status"] for r in approved} == {"succeeded"}
    assert status["job"]["state"] == "active"
    assert status["ops"]["held"] == 0
    assert status["terminations"]["pending"] == 0
    # The incident pass came first and normal life followed.
    assert phases[0] == INCIDENT_PASS and phases[-1] == NORMAL_LIFE
    assert phases.index(NORMAL_LIFE) == restored - 1


def test_normal_life_has_an_incident_every_so_often_that_ends_on_its_own(tmp_path):
    world = DemoWorld(tmp_path / "demo", people=60, on_call=demo_on_call)
    life = world.life
    life.incident_every, life.bad_email_ticks, life.revoked_ticks = 3, 2, 2
    life.step = len(life.script)  # straight into normal life
    seen = [life.tick() for _ in range(3 * len(life.incidents) + 5)]
    assert life.phase == NORMAL_LIFE
    # An incident on every third normal tick (not the second, not the fourth), each kind
    # in turn; what one owes (a fix, a restored token) takes a tick of its own.
    marks = ("throttles", "slowly", "down for", "resets", "broken email", "revoked")
    incidents = [(i, mark) for i, what in enumerate(seen, 1) for mark in marks
                 if mark in what]
    assert [i for i, _ in incidents[:3]] == [3, 6, 9]
    assert [mark for _, mark in incidents[:len(marks)]] == list(marks)
    # What an incident owes follows it: the e-mail fixed, the token restored.
    bad_at = next(i for i, what in enumerate(seen, 1) if "broken email" in what)
    assert "fixed" in seen[bad_at + life.bad_email_ticks - 1]
    revoked_at = next(i for i, what in enumerate(seen, 1) if "revoked" in what)
    assert "token back in" in seen[revoked_at + life.revoked_ticks - 1]
    assert not world.faults.revoked and life.bad_email is None


def test_the_exit_message_names_a_command_that_runs_without_the_virtualenv(tmp_path):
    entry = tmp_path / "bin" / "rostersync"
    entry.parent.mkdir()
    entry.write_text("#!/bin/sh\n")
    # The entry point that is running, by its absolute path (it is not on PATH).
    assert rostersync_command(str(entry)) == str(entry.absolute())
    # Run another way (python -m): this Python runs the CLI module, which works.
    command = rostersync_command("/somewhere/console/cli.py", sys.executable)
    assert command == f"{sys.executable} -m rostersync.console.cli"
    done = subprocess.run([sys.executable, "-m", "rostersync.console.cli", "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "demo" in done.stdout
    assert rostersync_command(str(tmp_path / "bin" / "missing" / "rostersync"),
                              "/opt/py") == "/opt/py -m rostersync.console.cli"


def _on_call_store(seeded, tmp_path) -> Store:
    """The seeded console world: 30 leavers held by the mass guard, the job active."""
    return Store(fresh_db(seeded, tmp_path / "on-call"))


def _on_call_audit(store: Store) -> list[tuple[str, dict]]:
    return [(r["action"], json.loads(r["detail"])) for r in
            reversed(audit.entries(store, limit=1000)) if r["actor"] == ACTOR]


def test_the_on_call_resumes_a_quarantine_on_the_nth_tick_of_a_working_token(
        seeded, tmp_path):
    store = _on_call_store(seeded, tmp_path)
    token = {"works": False}
    on_call = DemoOnCall(lambda: token["works"], resume_after=3, review_after=10**6)
    run_store.set_job_state(store, VIEWED_AT, "quarantined", "the LMS refused the token",
                            actor="rostersync")
    for _ in range(5):  # the token is still revoked: waiting does not count
        assert on_call.tick(store, VIEWED_AT) == []
    token["works"] = True
    assert on_call.tick(store, VIEWED_AT) == []  # 1st tick with a working token
    assert on_call.tick(store, VIEWED_AT) == []  # 2nd: just below
    assert run_store.job_state(store)["state"] == "quarantined"
    said = on_call.tick(store, VIEWED_AT)         # 3rd: exactly at
    assert len(said) == 1 and "resumed the job" in said[0]
    job = run_store.job_state(store)
    assert (job["state"], job["actor"]) == ("active", ACTOR)
    assert on_call.tick(store, VIEWED_AT) == []  # just above: nothing left to resume
    assert [(a, d["was"]) for a, d in _on_call_audit(store)] == [("resume", "quarantined")]


def test_the_on_call_leaves_an_operators_pause_alone(seeded, tmp_path):
    store = _on_call_store(seeded, tmp_path)
    on_call = DemoOnCall(lambda: True, resume_after=1, review_after=10**6)
    run_store.set_job_state(store, VIEWED_AT, "paused", "paused by operator", actor="ann")
    assert [on_call.tick(store, VIEWED_AT) for _ in range(3)] == [[], [], []]
    assert run_store.job_state(store)["state"] == "paused" and _on_call_audit(store) == []


def test_the_on_call_approves_the_held_burst_after_reviewing_it(seeded, tmp_path):
    store = _on_call_store(seeded, tmp_path)
    held = sorted(op_store.ids_with_status(store, "held"))
    assert len(held) == 30
    on_call = DemoOnCall(lambda: True, resume_after=1, review_after=4)
    for _ in range(3):  # up to just below: still under review
        assert on_call.tick(store, VIEWED_AT) == []
    assert sorted(op_store.ids_with_status(store, "held")) == held
    said = on_call.tick(store, VIEWED_AT)  # exactly at
    assert len(said) == 1 and said[0].startswith("approved 30 held operation(s)")
    assert op_store.ids_with_status(store, "held") == []
    assert on_call.tick(store, VIEWED_AT) == []  # just above: nothing held any more
    [(action, detail)] = _on_call_audit(store)
    assert action == "approve" and detail["ops"] == held
    assert detail["reason"] == APPROVE_REASON
    approvers = store.rows("SELECT DISTINCT approved_by FROM ops WHERE status = 'pending' "
                           "AND approved_by IS NOT NULL")
    assert [r["approved_by"] for r in approvers] == [ACTOR]


def test_the_folder_left_behind_holds_no_write_ahead_log(seeded, tmp_path):
    store = _on_call_store(seeded, tmp_path)
    run_store.set_job_state(store, VIEWED_AT, "paused", "a write", actor="ann")
    wal = store.path.with_name(store.path.name + "-wal")
    assert wal.stat().st_size > 0
    close_compacted(store)
    assert not wal.exists() or wal.stat().st_size == 0
    assert run_store.job_state(Store(store.path))["state"] == "paused"  # nothing lost


def test_the_on_call_retries_a_refused_create_once_it_freed_login_allows_it(
        seeded, tmp_path):
    store = _on_call_store(seeded, tmp_path)
    with store.tx() as conn:  # the seeded failed op, refused as a taken login and dead
        conn.execute("UPDATE ops SET status = 'dead', error_class = 'conflict' "
                     "WHERE employee_id = 'E00005' AND status = 'failed'")
    [dead] = op_store.ids_with_status(store, "dead")
    free = {"yes": False}
    on_call = DemoOnCall(lambda: True, review_after=10**6, logins_free=lambda: free["yes"])
    assert on_call.tick(store, VIEWED_AT) == []  # IT has not freed the login yet
    free["yes"] = True
    said = on_call.tick(store, VIEWED_AT)
    assert len(said) == 1 and said[0].startswith("retried 1 refused create(s)")
    assert store.scalar("SELECT status FROM ops WHERE id = ?", (dead,)) == "pending"
    with store.tx() as conn:  # it went dead again: the on-call does not loop on it
        conn.execute("UPDATE ops SET status = 'dead' WHERE id = ?", (dead,))
    assert on_call.tick(store, VIEWED_AT) == []
    [(action, detail)] = _on_call_audit(store)
    assert action == "retry" and detail["ops"] == [dead]
    assert detail["reason"] == RETRY_REASON
