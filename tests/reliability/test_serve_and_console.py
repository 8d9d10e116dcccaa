"""Two processes of different kinds on one database: `rostersync serve` (a child process,
its scheduler running a full sync) and the operator console (ConsoleApp, headless, in
this process).

While serve applies, it holds the writer lease: the console watches (its views read the
run in progress) and its actions say why they cannot run now, naming the holder, and
change nothing. When serve is SIGKILLed mid-run its lease is stale (the holder's process
is gone): the console's next action takes the writer role at once and converges the
LMS, one account per person.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest

from rostersync.console.app import ConsoleApp
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage.db import Store
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.console_harness import SIZE, settle
from tests.reliability import figures
from tests.reliability.test_crash_sigkill import KillSwitch
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

# anyio's pytest plugin (it comes with httpx) runs the async test on asyncio.
pytestmark = pytest.mark.anyio
PEOPLE = 40


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _notes(app: ConsoleApp) -> list[str]:
    return app.notices_seen()


def _runs(app: ConsoleApp) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in app.store.conn.execute(
        "SELECT trigger, status FROM runs ORDER BY id")]


async def test_serve_writes_the_console_watches_then_takes_over_when_serve_dies(tmp_path):
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    csv_path = World.generate(PEOPLE).write(tmp_path / "employees.csv")
    with ScimSandbox(token=SCIM_TOKEN) as lms:
        # One POST per create, so the switch stops serve mid-run at a known one.
        path = write_config(tmp_path, lms.base_url, csv_path, lms={"bulk": "off"})
        # serve's scheduler starts a full run well under a second after it starts.
        path.write_text(path.read_text() + "\n[schedule]\nfull_every_minutes = 0.01\n")
        switch = KillSwitch(lms, "POST", 10)  # serve's run stops at its 10th create
        log = (tmp_path / "serve.log").open("wb")
        serve = subprocess.Popen([sys.executable, "-m", "rostersync.console.cli", "serve", "--config",
                                  str(path)], env={**os.environ}, stdout=log,
                                 stderr=subprocess.STDOUT)
        try:
            reached = await asyncio.to_thread(switch.reached.wait, 120)
            assert reached and serve.poll() is None, (tmp_path / "serve.log").read_text()
            config = load_config(path)
            store = Store(config.database.path)
            app = ConsoleApp(config, store, engine=Engine(config, store), run_scheduler=False,
                             live=False, actor="operator")
            async with app.run_test(size=SIZE) as pilot:
                await settle(pilot)
                # Watching: the runs view shows serve's run in progress.
                await pilot.press("5")
                await settle(pilot)
                assert ("schedule", "running") in _runs(app)
                figures.add("concurrency: console watches while serve writes")

                # Its actions say why they cannot run now, and who holds the lease.
                app.start_sync("full")
                await settle(pilot)
                app.start_resync("E00001")
                await settle(pilot)
                refusals = [n for n in _notes(app) if "holds the writer lease" in n]
                assert len(refusals) == 2, _notes(app)
                assert all(f":{serve.pid}:" in n and "nothing was done" in n
                           for n in refusals), refusals
                assert [s for t, s in _runs(app) if t == "console"] == []
                figures.add("concurrency: console actions refused, serve writing", 2)

                serve.send_signal(signal.SIGKILL)
                assert await asyncio.to_thread(serve.wait, 30) == -signal.SIGKILL
                switch.release.set()  # the held create reaches the LMS; serve never learns
                lms.on_request = None

                # The stale lease does not stand in the way: the console is the writer now.
                app.start_sync("full")
                await settle(pilot)
                assert any(n.startswith("full sync: run ") and " succeeded" in n
                           for n in _notes(app)), \
                    _notes(app)
                statuses = _runs(app)
                assert statuses[-1] == ("console", "succeeded"), statuses
                assert ("schedule", "running") not in statuses  # serve's run was closed
                figures.add("concurrency: writer role recovered by the console")
            store.close()
        finally:
            switch.release.set()
            lms.on_request = None
            if serve.poll() is None:
                serve.kill()
                serve.wait(30)
            log.close()
        users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
        assert len(users) == PEOPLE and all(len(v) == 1 for v in users.values())
