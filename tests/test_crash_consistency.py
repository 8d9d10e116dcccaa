"""SIGKILL the engine mid-run, run again: no duplicate account, no lost operation.

The kill is synchronised on the LMS side (the n-th write request), not on time. The
seed of each trial is printed so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import load_config
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

SEED = int(os.environ.get("ROSTERSYNC_CRASH_SEED", "20261126"))


def _sync_subprocess(config: Path) -> subprocess.Popen:
    env = {**os.environ, TOKEN_ENV: SCIM_TOKEN}
    return subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", "sync", "--config",
                             str(config), "--json"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _kill_after(lms: ScimSandbox, method: str, nth: int) -> threading.Event:
    reached = threading.Event()
    seen = {"n": 0}
    lock = threading.Lock()

    def on_request(req_method: str, path: str) -> None:
        if req_method == method and "/Users" in path:
            with lock:
                seen["n"] += 1
                if seen["n"] == nth:
                    reached.set()

    lms.on_request = on_request
    return reached


def _check_converged(tmp_path: Path, config: Path, lms: ScimSandbox, expected: dict, capsys):
    assert main(["sync", "--config", str(config), "--json"]) == 0, capsys.readouterr()
    capsys.readouterr()
    users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
    dupes = {k: len(v) for k, v in users.items() if len(v) > 1}
    assert not dupes, f"duplicates after crash: {dupes}"
    actual = {k: v[0]["active"] for k, v in users.items()}
    assert actual == expected
    assert main(["status", "--config", str(config), "--json"]) in (0, 1)
    status = json.loads(capsys.readouterr().out)
    assert status["drift_total"] == 0
    assert status["ops"]["running"] == 0 and status["ops"]["pending"] == 0
    store = make_store(load_config(config).database)  # SQLite, or PostgreSQL (--database=pg)
    if isinstance(store.path, Path):  # a SQLite file: its pages survived the kill
        assert store.scalar("PRAGMA integrity_check") == "ok"
    # Every planned op reached an end state: none lost, none applied twice.
    counts = dict(store.conn.execute("SELECT status, count(*) FROM ops GROUP BY status"))
    assert set(counts) <= {"succeeded", "superseded"}, counts


@pytest.mark.parametrize("trial", range(3))
def test_kill_during_creates_then_rerun(trial, tmp_path, capsys):
    rng = random.Random(SEED + trial)
    nth = rng.randint(1, 150)
    print(f"crash trial seed={SEED + trial} kill at POST #{nth}")
    world = World.generate(150)
    csv_path = world.write(tmp_path / "employees.csv")
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as lms:
        # The n-th single POST: tests/reliability/test_crash_sigkill.py kills batches.
        config = write_config(tmp_path, lms.base_url, csv_path, lms={"bulk": "off"})
        reached = _kill_after(lms, "POST", nth)
        proc = _sync_subprocess(config)
        assert reached.wait(120), proc.stderr.read() if proc.poll() is not None else "timeout"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        lms.on_request = None
        _check_converged(tmp_path, config, lms, {k: True for k in world.rows}, capsys)


@pytest.mark.parametrize("trial", range(2))
def test_kill_during_updates_and_deactivations_then_rerun(trial, tmp_path, capsys):
    rng = random.Random(SEED + 100 + trial)
    world = World.generate(150)
    csv_path = world.write(tmp_path / "employees.csv")
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as lms:
        config = write_config(tmp_path, lms.base_url, csv_path, lms={"bulk": "off"},
                              guards={"mass_deactivation_min": 100})
        assert main(["sync", "--config", str(config), "--json"]) == 0
        capsys.readouterr()
        leavers = rng.sample(sorted(world.rows)[40:], 30)
        for key in leavers:
            world.rows[key].update({"Status": "Terminated", "Termination Date": "2026-02-01"})
        for key in sorted(world.rows)[1:40]:
            world.rows[key]["Job Title"] = "Senior Specialist"
        world.write(csv_path)
        nth = rng.randint(1, 69)
        print(f"crash trial seed={SEED + 100 + trial} kill at PATCH #{nth}")
        reached = _kill_after(lms, "PATCH", nth)
        proc = _sync_subprocess(config)
        assert reached.wait(120), "the run never reached the chosen PATCH"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        lms.on_request = None
        expected = {k: k not in leavers for k in world.rows}
        _check_converged(tmp_path, config, lms, expected, capsys)
