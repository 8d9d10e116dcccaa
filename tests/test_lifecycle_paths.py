"""Less travelled paths: deltas, unmapped values, scoping, leave, LMS-side orphans and
edits, and the scheduler."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime

import httpx

from rostersync.sandbox.world import HEADER
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from rostersync.sync.scheduler import SyncScheduler
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def make(tmp_path, lms, n=30, **sections):
    world = World.generate(n)
    csv_path = world.write(tmp_path / "employees.csv")
    path = write_config(tmp_path, lms.base_url, csv_path, **sections)
    config = load_config(path)
    engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))
    return world, csv_path, config, engine


def users(lms, token):
    return {k: v[0] for k, v in by_external_id(lms_users(lms.base_url, token)).items()}


def test_delta_run_reads_only_the_changes_file(tmp_path, scim_server, lms_token):
    world, _csv_path, config, engine = make(tmp_path, scim_server)
    asyncio.run(engine.sync("full"))
    delta = tmp_path / "changes.csv"
    changed = {**world.rows["E00004"], "Job Title": "Team Lead"}
    world.write(delta, [changed])
    config.hris.delta_path = delta
    engine = Engine(config, engine.store, clock=FrozenClock(NOW))
    report = asyncio.run(engine.sync("delta"))
    assert report.counts["rows"] == 1 and report.counts["planned"] == {"update": 1}
    assert users(scim_server, lms_token)["E00004"]["title"] == "Team Lead"


def test_unmapped_department_is_reported_not_guessed(tmp_path, scim_server, lms_token):
    world, csv_path, _config, engine = make(tmp_path, scim_server)
    asyncio.run(engine.sync("full"))
    before = users(scim_server, lms_token)["E00006"][ENT]["department"]
    world.rows["E00006"].update({"Department": "Growth Hacking", "Job Title": "Hacker"})
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.counts["drift"]["unmapped"] == 1
    after = users(scim_server, lms_token)["E00006"]
    assert after[ENT]["department"] == before  # left as it was
    assert after["title"] == "Hacker"  # the rest of the person still syncs
    detail = engine.store.rows("SELECT detail, owner FROM drift WHERE kind='unmapped'")[0]
    assert json.loads(detail["detail"])["fields"] == {"department": "Growth Hacking"}
    assert detail["owner"] == "L&D"


def test_out_of_scope_people_get_no_account_and_lose_one(tmp_path, scim_server, lms_token):
    world, csv_path, _config, engine = make(tmp_path, scim_server)
    world.rows["E00030"]["Worker Type"] = "Contractor"
    world.write(csv_path)
    asyncio.run(engine.sync("full"))
    assert "E00030" not in users(scim_server, lms_token)
    world.rows["E00029"]["Worker Type"] = "Contractor"
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.counts["planned"] == {"deactivate": 1}
    assert users(scim_server, lms_token)["E00029"]["active"] is False


def test_leave_policy_suspend_deactivates_and_return_reactivates(tmp_path, scim_server,
                                                                 lms_token):
    world, csv_path, _config, engine = make(tmp_path, scim_server,
                                           guards={"leave_policy": "suspend"})
    asyncio.run(engine.sync("full"))
    world.rows["E00012"]["Status"] = "Leave of Absence"
    world.write(csv_path)
    asyncio.run(engine.sync("full"))
    assert users(scim_server, lms_token)["E00012"]["active"] is False
    world.rows["E00012"]["Status"] = "Active"
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.counts["planned"] == {"reactivate": 1}
    assert users(scim_server, lms_token)["E00012"]["active"] is True


def test_lms_side_edits_and_unknown_accounts_are_drift(tmp_path, scim_server, lms_token):
    _world, _csv_path, _config, engine = make(tmp_path, scim_server)
    asyncio.run(engine.sync("full"))
    lms = users(scim_server, lms_token)
    headers = {"Authorization": f"Bearer {lms_token}", "Content-Type": "application/scim+json"}
    patch = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
             "Operations": [{"op": "replace", "path": "title", "value": "Edited by hand"}]}
    with httpx.Client(headers=headers) as client:
        client.patch(f"{scim_server.base_url}/Users/{lms['E00003']['id']}", json=patch)
        client.post(f"{scim_server.base_url}/Users", json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ghost@acme.example", "externalId": "X-GHOST", "active": True})
    report = asyncio.run(engine.sync("full"))
    assert report.counts["lms_changed"] == 2
    assert report.counts["drift"] == {"mismatch": 1, "orphan": 1}
    assert users(scim_server, lms_token)["E00003"]["title"] == "Specialist"  # put back
    orphan = engine.store.rows("SELECT subject, detail FROM drift WHERE kind='orphan' "
                               "AND resolved_at IS NULL")
    assert orphan[0]["subject"] == "X-GHOST"
    assert users(scim_server, lms_token)["X-GHOST"]["active"] is True  # report only


def test_scheduler_runs_jobs_in_the_event_loop(tmp_path, scim_server, lms_token):
    _world, _csv_path, config, engine = make(tmp_path, scim_server)

    async def go():
        sched = SyncScheduler(engine, config)
        sched.start()
        try:
            assert set(sched.next_runs()) == {"full", "retry"}
            report = await sched.run_now("full")
            again = await sched.run_now("retry")
            return report, again
        finally:
            sched.shutdown()

    report, again = asyncio.run(go())
    assert report.exit_code == 0 and again.kind == "retry"
    assert len(users(scim_server, lms_token)) == 30


def test_stopping_the_scheduler_lets_a_running_job_finish(tmp_path, scim_server, lms_token):
    # APScheduler's shutdown cancels the coroutine jobs it started; the run must not be
    # cut off mid-plan (its thread would write on after the lease was released).
    _world, _csv_path, config, engine = make(tmp_path, scim_server)

    async def go():
        started = asyncio.Event()
        engine.on_event = lambda e: started.set() if type(e).__name__ == "RunStarted" else None
        sched = SyncScheduler(engine, config)
        sched.start()
        sched.scheduler.modify_job("full", next_run_time=datetime.now(UTC))
        sched.scheduler.wakeup()
        await started.wait()
        await sched.stop()

    asyncio.run(go())
    runs = engine.store.rows("SELECT status, message FROM runs")
    assert runs == [{"status": "succeeded", "message": None}]
    assert len(users(scim_server, lms_token)) == 30
    # Released: the row stays (for its fencing token), expired.
    assert engine.store.scalar("SELECT count(*) FROM lease WHERE expires_at > acquired_at") == 0


def test_serve_logs_json_lines_and_stops_on_sigterm(tmp_path, scim_server, lms_token):
    world = World.generate(5)
    csv_path = world.write(tmp_path / "employees.csv")
    path = write_config(tmp_path, scim_server.base_url, csv_path)
    proc = subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", "serve", "--config",
                             str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, TOKEN_ENV: lms_token})
    first = json.loads(proc.stdout.readline())
    assert first["event"] == "serving" and "full" in first["jobs"]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
    rest = [json.loads(line) for line in proc.stdout.read().splitlines()]
    assert [r["event"] for r in rest] == ["stopping", "stopped"]
    assert rest[0]["signal"] == "SIGTERM"


def test_header_lacking_a_required_column_rejects_the_feed(tmp_path, scim_server, lms_token):
    _world, csv_path, _config, engine = make(tmp_path, scim_server)
    asyncio.run(engine.sync("full"))
    text = csv_path.read_text().replace("Last Name", "Surname", 1)
    csv_path.write_text(text)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "rejected" and report.exit_code == 4
    assert "required column 'Last Name' (last_name) is missing" in report.message
    assert HEADER  # the world's header is the contract the config maps


def test_reports_of_linked_and_disputed_managers_converge_without_churn(
        tmp_path, scim_server, lms_token):
    _world, _csv_path, _config, engine = make(tmp_path, scim_server)
    headers = {"Authorization": f"Bearer {lms_token}"}
    schema = ["urn:ietf:params:scim:schemas:core:2.0:User"]
    two, three = World.person(2)["Work Email"], World.person(3)["Work Email"]
    with httpx.Client(headers=headers) as client:
        for body in ({"userName": two, "emails": [{"value": two}]},
                     {"userName": "old-3a", "emails": [{"value": three}]},
                     {"userName": "old-3b", "emails": [{"value": three}]}):
            client.post(f"{scim_server.base_url}/Users", json={"schemas": schema, **body})
    report = asyncio.run(engine.sync("full"))
    assert report.exit_code == 0
    lms = users(scim_server, lms_token)
    # E00002's reports (E00007-E00011) point at the linked account in the same run.
    assert all(lms[f"E0000{i}" if i < 10 else f"E000{i}"][ENT]["manager"]["value"]
               == lms["E00002"]["id"] for i in range(7, 12))
    # E00003 is disputed: its reports exist without a manager, and nothing churns.
    assert "manager" not in lms["E00012"].get(ENT, {})
    open_drift = {r["kind"] for r in engine.store.rows(
        "SELECT kind FROM drift WHERE resolved_at IS NULL")}
    assert open_drift == {"disputed"}
    again = asyncio.run(engine.sync("full"))
    assert again.counts["planned"] == {}


def test_a_new_manager_is_stored_and_synced_and_an_invalid_row_keeps_the_old(
        tmp_path, scim_server, lms_token):
    world, csv_path, _config, engine = make(tmp_path, scim_server)
    asyncio.run(engine.sync("full"))

    def stored_manager(key):
        return engine.store.scalar("SELECT manager_id FROM people WHERE employee_id = ?",
                                   (key,))

    old = stored_manager("E00012")
    assert old and old != "E00004"
    world.rows["E00012"]["Manager ID"] = "E00004"
    world.write(csv_path)
    asyncio.run(engine.sync("full"))
    lms = users(scim_server, lms_token)
    assert stored_manager("E00012") == "E00004"
    assert lms["E00012"][ENT]["manager"]["value"] == lms["E00004"]["id"]
    # A row that fails validation changes nothing stored: the last good state stays.
    world.rows["E00012"].update({"Manager ID": "E00005", "Work Email": "not-an-email"})
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.counts["drift"].get("invalid") == 1
    assert stored_manager("E00012") == "E00004"
