"""SIGTERM to `rostersync serve` in the middle of a run (issue 17, "not yet tried").

serve runs as a child process; its scheduler starts a full sync of an empty LMS (the SCIM
sandbox on 127.0.0.1, one POST per create, one at a time), held at its 10th create as
test_serve_and_console.py does. Then:

- one SIGTERM: serve sends no further operation, lets the create in flight finish and
  records it, marks the run failed with error_class 'interrupted' (never 'running', never
  'succeeded'), releases the writer lease and exits 0;
- two signals (the LMS never answering the create in flight): serve does not wait for
  it; the run is interrupted, the lease released, the create's outcome unknown.

Either way the next `sync` converges: one account per person and exactly one POST per
person in all, the unknown create found by reading the LMS, not sent again.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from tests.reliability import figures
from tests.reliability.holds import HoldCreate
from tests.scim_fixtures import SCIM_TOKEN
from tests.serve_process import ServeProcess
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

PEOPLE = 40
HELD_AT = 10


def serve_on(config: Path) -> ServeProcess:
    return ServeProcess(config, {TOKEN_ENV: SCIM_TOKEN})


def setup_world(tmp_path: Path, lms: ScimSandbox) -> Path:
    csv_path = World.generate(PEOPLE).write(tmp_path / "employees.csv")
    path = write_config(tmp_path, lms.base_url, csv_path, lms={"bulk": "off"})
    # One create at a time, so that the held one is the only request in flight; the
    # scheduler's full run starts well under a second after serve starts.
    text = path.read_text().replace("concurrency = 8", "concurrency = 1")
    path.write_text(text + "\n[schedule]\nfull_every_minutes = 0.01\n")
    return path


def database(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "rostersync.db")


def ops_by_status(db: sqlite3.Connection) -> dict[str, int]:
    return dict(db.execute("SELECT status, count(*) FROM ops GROUP BY status").fetchall())


def converges(tmp_path: Path, config: Path, lms: ScimSandbox, hold: HoldCreate, capsys) -> None:
    """The next `sync` finishes the job: one account per person, one POST per person."""
    capsys.readouterr()
    assert main(["sync", "--config", str(config), "--json"]) == 0, capsys.readouterr()
    users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    assert len(users) == PEOPLE and all(len(v) == 1 for v in users.values())
    assert hold.count == PEOPLE  # nothing lost, nothing sent twice
    with database(tmp_path) as db:
        # Nothing pending, running or failed; an op whose create the listing found is
        # 'superseded' (the account was there, nothing was sent again).
        statuses = ops_by_status(db)
        assert set(statuses) <= {"succeeded", "superseded"} and \
            sum(statuses.values()) == PEOPLE, statuses
        assert db.execute("SELECT count(*) FROM runs WHERE status = 'running'"
                          ).fetchone()[0] == 0
    figures.add("sigterm: trials converged with one account per person")


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as server:
        yield server


def test_sigterm_mid_apply_finishes_the_request_in_flight_and_interrupts_the_run(
        tmp_path, lms, capsys):
    config = setup_world(tmp_path, lms)
    hold = HoldCreate(lms, HELD_AT)
    serve = serve_on(config)
    try:
        assert hold.reached.wait(120) and serve.proc.poll() is None, serve.output()
        serve.signal(signal.SIGTERM)
        assert serve.wait_logged(30, event="stopping"), serve.output()
        # It waits for the create in flight rather than dropping it.
        assert serve.proc.poll() is None, serve.output()
        hold.release.set()
        # Before: serve went on to create all 40, then recorded the run 'succeeded'.
        assert serve.proc.wait(60) == 0, serve.output()
    finally:
        hold.release.set()
        serve.kill()
    assert "Traceback" not in serve.output(), serve.output()
    assert hold.count == HELD_AT  # no new operation after the signal
    with database(tmp_path) as db:
        runs = db.execute("SELECT status, error_class, message FROM runs").fetchall()
        assert len(runs) == 1, runs
        status, error_class, message = runs[0]
        assert (status, error_class) == ("failed", "interrupted"), runs
        assert message.startswith("interrupted: serve was asked to stop (SIGTERM); "
                                  f"{PEOPLE - HELD_AT} planned operations were not sent"), message
        held = "SELECT count(*) FROM lease WHERE expires_at > acquired_at"  # released: expired
        assert db.execute(held).fetchone()[0] == 0
        # The create in flight finished and was recorded; the rest were never sent.
        assert ops_by_status(db) == {"succeeded": HELD_AT, "pending": PEOPLE - HELD_AT}
        state = db.execute("SELECT state FROM job_state").fetchall()
        assert all(s != "quarantined" for (s,) in state)  # a shutdown is not a fault
    assert len(lms_users(lms.base_url, SCIM_TOKEN)) == HELD_AT
    figures.add("sigterm: runs interrupted cleanly (lease released, exit 0)")
    figures.add("sigterm: operations sent after the signal", hold.count - HELD_AT)
    converges(tmp_path, config, lms, hold, capsys)


def test_a_second_signal_does_not_wait_for_the_lms(tmp_path, lms, capsys):
    config = setup_world(tmp_path, lms)
    hold = HoldCreate(lms, HELD_AT)
    serve = serve_on(config)
    try:
        assert hold.reached.wait(120) and serve.proc.poll() is None, serve.output()
        serve.signal(signal.SIGTERM)
        assert serve.wait_logged(30, event="stopping"), serve.output()
        serve.signal(signal.SIGINT)
        # The LMS still holds the create: serve stops anyway, well within systemd's bound.
        assert serve.proc.wait(60) == 0, serve.output()
    finally:
        hold.release.set()  # the LMS now acts on the create; serve never hears the answer
        serve.kill()
    assert '"force": true' in serve.output() and "Traceback" not in serve.output()
    with database(tmp_path) as db:
        status, message = db.execute("SELECT status, message FROM runs").fetchone()
        assert status == "failed" and message.startswith("interrupted"), message
        held = "SELECT count(*) FROM lease WHERE expires_at > acquired_at"  # released: expired
        assert db.execute(held).fetchone()[0] == 0
        # The create in flight: sent, outcome unknown (its attempt is still open).
        assert ops_by_status(db) == {"succeeded": HELD_AT - 1, "running": 1,
                                     "pending": PEOPLE - HELD_AT}
    figures.add("sigterm: forced stops with a request in flight")
    converges(tmp_path, config, lms, hold, capsys)
