"""Crash consistency: SIGKILL the engine at a random request of a run, restart, check.

Four phases, each killed at a request chosen by a seeded generator (the LMS counts the
requests, so the kill lands at a precise point of the run, not after a sleep):

- create: the first sync of an empty LMS, killed at the n-th POST;
- update: a sync that changes job titles, killed at the n-th PATCH;
- deactivate: a sync that terminates people, killed at the n-th PATCH;
- retry: `ops retry --all-failed` after a run whose connections were reset (some before
  the LMS acted, some after it acted but before the answer), killed at the n-th request.

Each phase runs twice: with one request per operation, and with SCIM Bulk (the LMS
advertising 10 operations per request, so that a run is a dozen /Bulk requests and the
kill lands in one of them).

After each kill: the database passes PRAGMA integrity_check, the next run is not blocked
by the dead process's lease, and once converged the LMS holds exactly one account per
person in the state HR asks for, every operation ended (none lost), and no operation or
idempotency key succeeded twice (none applied twice).

Every trial prints its seed; rerun one with
``ROSTERSYNC_CRASH_SEED=<seed> pytest tests/reliability/test_crash_sigkill.py -k <phase>``.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.faults import FaultPlan
from rostersync.sandbox.scim_server import ScimSandbox
from tests.reliability import figures
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

BASE_SEED = int(os.environ.get("ROSTERSYNC_CRASH_SEED", "7000"))
PEOPLE = 120
PHASES = ("create", "update", "deactivate", "retry")
TRIALS_PER_PHASE = figures.scale(1, 15)


MODES = ("single", "bulk")
BULK_OPERATIONS = 10  # the maxOperations the LMS advertises in the bulk trials


def _trials() -> list[tuple[str, str, int]]:
    single = os.environ.get("ROSTERSYNC_CRASH_SEED")
    if single:  # replay one seed in every phase
        return [(mode, phase, int(single)) for mode in MODES for phase in PHASES]
    return [(mode, phase, BASE_SEED + 1000 * p + t) for mode in MODES
            for p, phase in enumerate(PHASES) for t in range(TRIALS_PER_PHASE)]


class SmallBulk:
    """The fault plan, behind a /ServiceProviderConfig that offers small bulk requests."""

    wants_body = True

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.spc: bytes | None = None

    def __call__(self, method: str, path: str, body: bytes = b"") -> object:
        if path.endswith("/ServiceProviderConfig") and self.spc is not None:
            return 200, {"Content-Type": "application/scim+json"}, self.spc
        return self.plan(method, path, body)

    def offer(self, base_url: str, operations: int) -> None:
        import httpx
        spc = httpx.get(f"{base_url}/ServiceProviderConfig").json()
        spc["bulk"]["maxOperations"] = operations
        self.spc = json.dumps(spc).encode()


class KillSwitch:
    """Counts the LMS's /Users requests (of one method, or all) and fires at the n-th,
    holding that request back until the test lets it go: the kill then lands either while
    the request is in flight (released after the kill: the LMS never acts on it) or just
    as the LMS acts on it (released before the kill: the answer may be lost)."""

    def __init__(self, lms: ScimSandbox, method: str | None, nth: int) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self._method, self._nth, self._seen = method, nth, 0
        self._lock = threading.Lock()
        lms.on_request = self

    def __call__(self, method: str, path: str) -> None:
        if path.endswith("/Bulk"):
            method = "BULK"  # a bulk request stands for any write
        elif "/Users" not in path:
            return
        if self._method and method not in (self._method, "BULK"):
            return
        with self._lock:
            self._seen += 1
            hit = self._seen == self._nth
        if hit:
            self.reached.set()
            self.release.wait(60)


def _cli(config: Path, *argv: str) -> subprocess.Popen:
    env = {**os.environ, TOKEN_ENV: SCIM_TOKEN}
    return subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", *argv, "--config",
                             str(config), "--json"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _kill_at(lms: ScimSandbox, config: Path, argv: tuple[str, ...], method: str | None,
             nth: int, in_flight: bool) -> None:
    switch = KillSwitch(lms, method, nth)
    proc = _cli(config, *argv)
    # A run that ends before the chosen request must not leave the test waiting.
    threading.Thread(target=lambda: (proc.wait(), switch.reached.set()), daemon=True).start()
    try:
        if not switch.reached.wait(120) or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"the run never reached request #{nth}: "
                                 f"{proc.stderr.read().decode()[-800:]}")
        if not in_flight:
            switch.release.set()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        switch.release.set()
        lms.on_request = None
        if proc.stderr:
            proc.stderr.close()


def _db(folder: Path) -> sqlite3.Connection:
    return sqlite3.connect(folder / "rostersync.db")


def _assert_sound_after_kill(folder: Path) -> None:
    with _db(folder) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _converge(config: Path, capsys) -> None:
    """What an operator (or the scheduler) does after a crash: run again, and retry what
    failed. The first command must not be refused by the dead process's lease."""
    assert main(["sync", "--config", str(config), "--json"]) in (0, 1), capsys.readouterr()
    capsys.readouterr()
    if main(["ops", "list", "--status", "failed", "--config", str(config), "--json"]) == 0:
        failed = json.loads(capsys.readouterr().out)
        if failed:
            assert main(["ops", "retry", "--all-failed", "--config", str(config),
                         "--json"]) == 0, capsys.readouterr()
    assert main(["sync", "--config", str(config), "--json"]) == 0, capsys.readouterr()
    capsys.readouterr()


def _check(folder: Path, lms: ScimSandbox, expected: dict[str, dict], capsys) -> None:
    users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    dupes = {k: len(v) for k, v in users.items() if len(v) > 1}
    assert not dupes, f"duplicate accounts: {dupes}"
    figures.add("crash: duplicate accounts found", len(dupes))
    actual = {k: {"active": v[0]["active"], "title": v[0].get("title")}
              for k, v in users.items()}
    lost = {k for k in expected if actual.get(k) != expected[k]}
    figures.add("crash: changes lost (LMS differs from HR)", len(lost))
    assert not lost, {k: (actual.get(k), expected[k]) for k in sorted(lost)[:5]}
    with _db(folder) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        counts = dict(db.execute("SELECT status, count(*) FROM ops GROUP BY status"))
        assert set(counts) <= {"succeeded", "superseded"}, counts
        twice = db.execute(
            "SELECT idem_key FROM ops WHERE status = 'succeeded' GROUP BY idem_key "
            "HAVING count(*) > 1").fetchall()
        twice += db.execute(
            "SELECT op_id FROM op_attempts WHERE outcome = 'ok' GROUP BY op_id "
            "HAVING count(*) > 1").fetchall()
        figures.add("crash: operations applied twice", len(twice))
        assert not twice, twice
        interrupted = db.execute(
            "SELECT count(*) FROM op_attempts WHERE outcome = 'interrupted'").fetchone()[0]
        figures.add("crash: attempts found interrupted and recovered", interrupted)
    assert main(["status", "--config", str(folder / "rostersync.toml"), "--json"]) in (0, 1)
    status = json.loads(capsys.readouterr().out)
    assert status["drift_total"] == 0
    assert status["ops"]["running"] == 0 and status["ops"]["pending"] == 0


def _expected(world: World, leavers: set[str]) -> dict[str, dict]:
    return {k: {"active": k not in leavers, "title": row["Job Title"]}
            for k, row in world.rows.items()}


def _requests(mode: str, operations: int) -> int:
    """How many write requests ``operations`` writes take."""
    return operations if mode == "single" else -(-operations // BULK_OPERATIONS)


@pytest.mark.parametrize(("mode", "phase", "seed"), _trials(),
                         ids=[f"{m}-{p}-{s}" for m, p, s in _trials()])
def test_sigkill_at_a_random_request_then_restart(mode, phase, seed, tmp_path, capsys):
    rng = random.Random(seed)
    world = World.generate(PEOPLE)
    csv_path = world.write(tmp_path / "employees.csv")
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    faults = FaultPlan()
    hook = SmallBulk(faults)
    leavers: set[str] = set()
    with ScimSandbox(token=SCIM_TOKEN, fault=hook) as lms:
        hook.offer(lms.base_url, BULK_OPERATIONS)
        config = write_config(tmp_path, lms.base_url, csv_path,
                              lms={"bulk": "auto" if mode == "bulk" else "off"},
                              guards={"mass_deactivation_min": 200})
        if phase == "create":
            nth, method, argv = rng.randint(1, _requests(mode, PEOPLE)), "POST", ("sync",)
        elif phase == "retry":
            # Lost answers (the LMS acted) and refused connections (it did not), spread
            # over the first run; the retry then meets both kinds.
            faults.reset_connections(4, method="POST", after=True)
            faults.reset_connections(3, method="POST")
            assert main(["sync", "--config", str(config), "--json"]) == 1
            capsys.readouterr()
            assert not faults.resets
            nth, method, argv = rng.randint(1, 10), None, ("ops", "retry", "--all-failed")
        else:
            assert main(["sync", "--config", str(config), "--json"]) == 0
            capsys.readouterr()
            keys = sorted(world.rows)[1:]
            if phase == "update":
                for key in rng.sample(keys, 50):
                    world.rows[key]["Job Title"] = "Senior Specialist"
                nth = rng.randint(1, _requests(mode, 50))
            else:
                # 30 of 120: under the feed gate's 30% active-drop limit.
                leavers = set(rng.sample(keys, 30))
                for key in leavers:
                    world.rows[key].update({"Status": "Terminated",
                                            "Termination Date": "2026-02-01"})
                nth = rng.randint(1, _requests(mode, 30))
            world.write(csv_path)
            method, argv = "PATCH", ("sync",)
        # The seed is in the test id; this line shows where it killed (pytest -s, or a
        # failure's captured output).
        in_flight = rng.random() < 0.5
        sys.stderr.write(f"crash trial mode={mode} phase={phase} seed={seed} kill at "
                         f"{method or 'any'} request #{nth} "
                         f"({'in flight' if in_flight else 'as the LMS acts'})\n")
        _kill_at(lms, config, argv, method, nth, in_flight)
        figures.add(f"crash: SIGKILL trials ({phase}{', bulk' if mode == 'bulk' else ''})")
        _assert_sound_after_kill(tmp_path)
        _converge(config, capsys)
        _check(tmp_path, lms, _expected(world, leavers), capsys)
