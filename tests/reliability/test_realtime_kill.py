"""kill -9 during real-time dispatch (issue 17, "not yet tried").

`rostersync serve` (a child process, real-time mode, the webhook listener on 127.0.0.1)
receives one signed event naming six new hires; its real-time run creates their accounts
on the SCIM sandbox. The process is SIGKILLed at a point drawn from a seeded generator: as
soon as the listener has answered 202 (the run may not have started), or at the n-th create
the LMS receives, held until the kill has landed and then let through or not (also drawn).

The event was written to the database before the listener answered, so it is not lost: the
next `serve` finds it queued, syncs it and marks it synced. Afterwards the LMS holds
exactly one account per person, every new hire has one, no operation is left pending,
running or failed, and each new hire's create reached the LMS exactly once (a create of
unknown outcome is read back from the LMS, not sent again).
Seeds are in the test ids; ROSTERSYNC_RELIABILITY=full runs more of them.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sync.realtime import signatures
from tests.reliability import figures
from tests.reliability.holds import HoldCreate
from tests.scim_fixtures import SCIM_TOKEN
from tests.serve_process import ServeProcess
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

STAFF, HIRES = 24, 6
EVENT_KEY, EVENT_ENV = "realtime-kill-event-key", "ROSTERSYNC_TEST_KILL_EVENT_KEY"
SEEDS = [9000 + n for n in range(figures.scale(4, 16))]
if os.environ.get("ROSTERSYNC_CRASH_SEED"):
    SEEDS = [int(os.environ["ROSTERSYNC_CRASH_SEED"])]


class CreatesPerPerson:
    """The sandbox's body-aware fault hook, used only to count: how many creates reached
    the SCIM server for each externalId (it then handles each as usual)."""

    wants_body = True

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, method: str, path: str, body: bytes) -> None:
        # No body: the client was killed before sending it; the server creates nothing.
        if method == "POST" and path.rstrip("/").endswith("/Users") and body:
            key = str(json.loads(body).get("externalId"))
            self.counts[key] = self.counts.get(key, 0) + 1


def serve_on(config: Path) -> ServeProcess:
    return ServeProcess(config, {TOKEN_ENV: SCIM_TOKEN, EVENT_ENV: EVENT_KEY})


def webhook_url(serve: ServeProcess) -> str:
    """Where serve's webhook listener listens, once it says so."""
    listening = serve.wait_logged(60, event="listening", what="webhooks")
    assert listening is not None, serve.output()
    return str(listening["url"])


def synced(serve: ServeProcess, timeout: float = 120) -> bool:
    return serve.wait_logged(timeout, event="realtime_run", status="succeeded") is not None


def new_hires() -> list[str]:
    return [f"E{n:05d}" for n in range(STAFF + 1, STAFF + HIRES + 1)]


def setup(tmp_path: Path, lms: ScimSandbox, capsys) -> Path:
    world = World.generate(STAFF + HIRES)
    rows = list(world.rows.values())
    csv_path = world.write(tmp_path / "employees.csv", rows[:STAFF])
    config = write_config(tmp_path, lms.base_url, csv_path, lms={"bulk": "off"})
    config.write_text(config.read_text() + "\n".join([
        "", "[realtime]", "enabled = true", 'listen = "127.0.0.1:0"', 'mode = "realtime"',
        f'generic_secret_env = "{EVENT_ENV}"', "buffer_seconds = 0",
        # Only the real-time run writes while the test watches.
        "", "[schedule]", "full_every_minutes = 100000", "retry_every_minutes = 100000", ""]))
    assert main(["sync", "--config", str(config), "--json"]) == 0, capsys.readouterr()
    world.write(csv_path, rows)  # the new hires are in HR now; the event names them
    return config


def deliver(url: str, employee_ids: list[str]) -> httpx.Response:
    body = json.dumps({"events": [{"employee_id": e, "event": "hired"}
                                  for e in employee_ids]}).encode()
    stamp = str(int(time.time()))
    signature = signatures.generic_signature(EVENT_KEY.encode(), body, stamp)
    return httpx.post(url + "/webhooks/event", content=body, timeout=30,
                      headers={"X-Rostersync-Signature": signature,
                               "X-Rostersync-Timestamp": stamp})


def events(tmp_path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(tmp_path / "rostersync.db") as db:
        return db.execute("SELECT employee_id, status FROM events_received "
                          "ORDER BY id").fetchall()


@pytest.mark.parametrize("seed", SEEDS, ids=[f"realtime-{s}" for s in SEEDS])
def test_kill_during_realtime_dispatch_loses_no_event_and_duplicates_nothing(
        tmp_path, capsys, seed):
    rng = random.Random(seed)
    kill_at = rng.randint(0, HIRES)  # 0: as soon as the listener has answered
    in_flight = rng.random() < 0.5  # the held create: released after the kill, or before
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as lms:
        per_person = CreatesPerPerson()
        lms.fault = per_person
        config = setup(tmp_path, lms, capsys)
        creates = HoldCreate(lms, kill_at or HIRES + 1)
        serve = serve_on(config)
        try:
            answer = deliver(webhook_url(serve), new_hires())
            assert answer.status_code == 202, answer.text
            if kill_at:
                assert creates.reached.wait(60) and serve.proc.poll() is None, serve.output()
                if not in_flight:
                    creates.release.set()
            serve.signal(signal.SIGKILL)
            assert serve.proc.wait(30) == -signal.SIGKILL
        finally:
            creates.release.set()
            serve.kill()
        figures.add("realtime kill: SIGKILL trials during dispatch")
        # The accepted event is in the database, whatever the kill interrupted.
        recorded = events(tmp_path)
        assert sorted(e for e, _s in recorded) == new_hires(), recorded
        unfinished = [e for e, s in recorded if s == "queued"]
        figures.add("realtime kill: events found still queued after the kill", len(unfinished))

        again = serve_on(config)
        try:
            webhook_url(again)
            if unfinished:
                assert synced(again), again.output()
            assert again.stop() == 0, again.output()
        finally:
            again.kill()
        assert "Traceback" not in again.output(), again.output()
        users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))

    duplicates = sum(len(v) - 1 for v in users.values())
    figures.add("realtime kill: duplicate accounts after restart", duplicates)
    assert duplicates == 0, {k: len(v) for k, v in users.items() if len(v) > 1}
    missing = [e for e in new_hires() if e not in users]
    figures.add("realtime kill: events lost (new hire without an account)", len(missing))
    assert not missing and len(users) == STAFF + HIRES
    # Every create that reached the LMS made an account: one each, none sent again.
    again_sent = {e: n for e, n in per_person.counts.items() if n > 1}
    figures.add("realtime kill: creates that reached the LMS twice for one person",
                len(again_sent))
    assert not again_sent and all(per_person.counts.get(e) == 1
                                  for e in new_hires()), per_person.counts
    assert all(s in ("synced", "coalesced") for _e, s in events(tmp_path)), events(tmp_path)
    with sqlite3.connect(tmp_path / "rostersync.db") as db:
        left = db.execute("SELECT status, count(*) FROM ops WHERE status NOT IN "
                          "('succeeded', 'superseded') GROUP BY status").fetchall()
        assert left == [], left
        assert db.execute("SELECT count(*) FROM runs WHERE status = 'running'"
                          ).fetchone()[0] == 0


def test_sigterm_during_realtime_dispatch_keeps_the_events_queued(tmp_path, capsys):
    """A graceful stop in the middle of a real-time run: the create in flight finishes and
    is recorded (before: the dispatcher was cancelled and its outcome left unknown), no
    further create is sent, the events stay queued, and the next serve syncs them."""
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as lms:
        config = setup(tmp_path, lms, capsys)
        config.write_text(config.read_text().replace("concurrency = 8", "concurrency = 1"))
        creates = HoldCreate(lms, 3)
        serve = serve_on(config)
        try:
            assert deliver(webhook_url(serve), new_hires()).status_code == 202
            assert creates.reached.wait(60), serve.output()
            serve.signal(signal.SIGTERM)
            # The stop waits for the create in flight; release it once serve has heard.
            assert serve.wait_logged(30, event="stopping"), serve.output()
            creates.release.set()
            assert serve.proc.wait(60) == 0, serve.output()
        finally:
            creates.release.set()
            serve.kill()
        assert creates.count == 3, serve.output()  # nothing sent after the signal
        assert [s for _e, s in events(tmp_path)] == ["queued"] * HIRES
        with sqlite3.connect(tmp_path / "rostersync.db") as db:
            left = dict(db.execute("SELECT status, count(*) FROM ops WHERE run_id > 1 "
                                   "GROUP BY status").fetchall())
            assert left.get("running", 0) == 0 and left.get("succeeded") == 3, left
            held = "SELECT count(*) FROM lease WHERE expires_at > acquired_at"  # released: expired
            assert db.execute(held).fetchone()[0] == 0
        figures.add("sigterm: real-time runs interrupted, events kept queued")
        again = serve_on(config)
        try:
            webhook_url(again)
            assert synced(again), again.output()
            assert again.stop() == 0, again.output()
        finally:
            again.kill()
        users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    assert len(users) == STAFF + HIRES and all(len(v) == 1 for v in users.values())
    assert creates.count == HIRES  # each new hire created once
    assert all(s in ("synced", "coalesced") for _e, s in events(tmp_path))
