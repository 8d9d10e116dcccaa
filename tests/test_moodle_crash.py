"""SIGKILL a first sync to Moodle in the middle of its pipelined batches, restart, check.

The sync runs as its own process (``rostersync sync``) against the Moodle sandbox, in
batches of 10 with ``concurrency = 2`` and ``pipeline_depth = 2``, so a batch's write and
the last batch's read-back are out together. The kill lands at a chosen write or
read-back call (the sandbox counts them, so it lands at a precise point, not after a
sleep): either while the call is held in the site (then answered 503: the site never
acted) or just as the site acts on it (its answer is lost with the process).

After each kill the database is sound, and once the operator has run again (and retried
what failed), Moodle holds exactly one account per person as HR has it, every operation
ended (none lost) and none succeeded twice: a batch whose outcome was unknown was looked
up before anything of it was sent again.
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
from typing import Any

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.world import COLUMNS
from tests.support import World
from tests.test_moodle_batch import FIELDS, PROFILE, TOKEN, TOKEN_ENV, _assert_matches_hr

PEOPLE = 60  # six batches of 10: six writes and six read-backs
WATCHED = ("core_user_create_users", "core_user_get_users_by_field")
TRIALS = [7100 + t for t in range(6)]


class KillSwitch:
    """Counts the site's batch writes and read-backs and holds the n-th until the test
    lets it go; ``acts`` says whether the site then acts on it or answers 503."""

    def __init__(self, lms: MoodleSandbox, nth: int) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()
        self.acts = True
        self._nth, self._seen = nth, 0
        self._lms, self._real = lms, lms.app.faults
        lms.app.faults = self  # type: ignore[assignment]

    def __call__(self, function: str, params: dict[str, Any]) -> Any:
        if function in WATCHED:
            self._seen += 1  # the site answers one call at a time: no lock needed
            if self._seen == self._nth:
                self.reached.set()
                self.release.wait(60)
                if not self.acts:
                    return 503, {}, b"Service Unavailable"
        return self._real(function, params)

    def restore(self) -> None:
        self._lms.app.faults = self._real


def _config(folder: Path, base_url: str, csv_path: Path) -> Path:
    lines = ["[database]", f'path = "{folder / "rostersync.db"}"', "",
             "[hris]", 'type = "csv"', f'path = "{csv_path}"', "", "[hris.columns]",
             *[f'{k} = "{v}"' for k, v in COLUMNS.items()], "",
             "[lms]", 'type = "moodle"', f'base_url = "{base_url}"',
             f'token_env = "{TOKEN_ENV}"', 'auth = "oauth2"', "batch_size = 10",
             "concurrency = 2", "pipeline_depth = 2", "backoff_base_seconds = 0", "",
             "[lms.fields]", *[f'{k} = "{v}"' for k, v in FIELDS.items()], "",
             "[guards]", "mass_deactivation_min = 1000", ""]
    path = folder / "rostersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _kill_at(switch: KillSwitch, config: Path, in_flight: bool) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", "sync",
                             "--config", str(config), "--json"],
                            env={**os.environ, TOKEN_ENV: TOKEN},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # A run that ends before the chosen call must not leave the test waiting.
    threading.Thread(target=lambda: (proc.wait(), switch.reached.set()), daemon=True).start()
    try:
        if not switch.reached.wait(120) or proc.poll() is not None:
            proc.kill()
            raise AssertionError("the run never reached the chosen call: "
                                 f"{proc.stderr.read().decode()[-800:] if proc.stderr else ''}")
        switch.acts = not in_flight
        if not in_flight:
            switch.release.set()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        switch.release.set()
        switch.restore()
        if proc.stderr:
            proc.stderr.close()


def _converge(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--config", str(config), "--json"]) in (0, 1), capsys.readouterr()
    capsys.readouterr()
    listed = main(["ops", "list", "--status", "failed", "--config", str(config), "--json"])
    if listed == 0 and json.loads(capsys.readouterr().out):
        assert main(["ops", "retry", "--all-failed", "--config", str(config),
                     "--json"]) == 0, capsys.readouterr()
    assert main(["sync", "--config", str(config), "--json"]) == 0, capsys.readouterr()
    capsys.readouterr()


@pytest.mark.parametrize("seed", TRIALS)
def test_sigkill_mid_pipeline_then_restart_leaves_every_account_once(
        seed: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(seed)
    nth, in_flight = rng.randint(1, 2 * PEOPLE // 10), rng.random() < 0.5
    sys.stderr.write(f"moodle crash trial seed={seed}: kill at call #{nth} of "
                     f"{', '.join(WATCHED)} ({'in flight' if in_flight else 'as it acts'})\n")
    world = World.generate(PEOPLE)
    csv_path = world.write(tmp_path / "employees.csv")
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE) as lms:
        config = _config(tmp_path, lms.base_url, csv_path)
        _kill_at(KillSwitch(lms, nth), config, in_flight)
        with sqlite3.connect(tmp_path / "rostersync.db") as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            done = db.execute("SELECT count(*) FROM ops WHERE status = 'succeeded'")
            assert done.fetchone()[0] < PEOPLE  # the kill landed mid-run
        _converge(config, capsys)
        _assert_matches_hr(lms, world)  # every person, once, as HR has them
        with sqlite3.connect(tmp_path / "rostersync.db") as db:
            counts = dict(db.execute("SELECT status, count(*) FROM ops GROUP BY status"))
            assert set(counts) <= {"succeeded", "superseded"}, counts
            twice = db.execute("SELECT op_id FROM op_attempts WHERE outcome = 'ok' "
                               "GROUP BY op_id HAVING count(*) > 1").fetchall()
            assert not twice, twice
