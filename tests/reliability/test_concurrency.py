"""Concurrency: two processes against one database. While one applies (it holds the
writer lease), a second `sync` is refused with who holds it (exit 5) and changes nothing,
and a watcher (`status`, `ops list`) reads freely; a lease left by a killed writer is
recovered by the next run without an operator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from tests.reliability import figures
from tests.reliability.test_crash_sigkill import KillSwitch
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config


def test_one_writer_one_watcher_and_a_stale_lease_is_recovered(tmp_path, capsys):
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    world = World.generate(40)
    csv_path = world.write(tmp_path / "employees.csv")
    with ScimSandbox(token=SCIM_TOKEN) as lms:
        # One POST per create, so the switch stops the writer mid-run at a known one.
        config = str(write_config(tmp_path, lms.base_url, csv_path, lms={"bulk": "off"}))
        switch = KillSwitch(lms, "POST", 10)  # the writer stops at its 10th create
        writer = subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", "sync", "--config",
                                   config, "--json"], env={**os.environ},
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert switch.reached.wait(120)
            assert main(["sync", "--config", config, "--json"]) == 5
            err = capsys.readouterr().err
            assert "holds the writer lease" in err and str(writer.pid) in err
            figures.add("concurrency: second writers refused")
            assert main(["status", "--config", config, "--json"]) in (0, 1, 2)
            watched = json.loads(capsys.readouterr().out)
            assert watched["ops"]["running"] + watched["ops"]["pending"] > 0
            figures.add("concurrency: watcher reads while a writer applies")
            writer.send_signal(signal.SIGKILL)
            writer.wait(30)
        finally:
            switch.release.set()
            lms.on_request = None
            if writer.poll() is None:
                writer.kill()
        # The dead writer's lease does not block the next run.
        assert main(["sync", "--config", config, "--json"]) == 0, capsys.readouterr()
        figures.add("concurrency: stale leases recovered")
        users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
        assert len(users) == 40 and all(len(v) == 1 for v in users.values())
