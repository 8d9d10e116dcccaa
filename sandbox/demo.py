"""`rostersync demo`: the product on its built-in sandbox, with no accounts anywhere.

It starts a real SCIM 2.0 LMS (scim2-server) on 127.0.0.1 behind a fault layer, writes a
generated organisation into a sandbox HRIS and a config into a folder, and keeps HR life
going (sandbox.hr_life): every few seconds a hire, a transfer, a termination, bad data,
a truncated export, an LMS that throttles or refuses the token. The engine's scheduler
syncs it all, in the console (console/demo_app.py) or headless with a JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from sandbox.bamboohr import BambooSandbox
from sandbox.faults import FaultPlan
from sandbox.hr_life import HrLife
from sandbox.publish import BambooPublisher
from sandbox.scim_server import ScimSandbox
from sandbox.world import DEPARTMENTS, World
from storage import drift as drift_store
from storage import ops as op_store
from storage.db import Store
from sync.clock import Clock
from sync.config import Config, load_config
from sync.engine import Engine
from sync.scheduler import SyncScheduler
from sync.status import build_status

TOKEN_ENV = "ROSTERSYNC_DEMO_LMS_TOKEN"
HRIS_KEY_ENV = "ROSTERSYNC_DEMO_HRIS_KEY"
PEOPLE = 2000
TICK_SECONDS = 3.0


def _config_text(hris_url: str, lms_url: str) -> str:
    departments = "\n".join(f'"{d}" = "{d}"' for d in DEPARTMENTS)
    return f"""# Written by `rostersync demo`: the sandbox world's config. The sandboxes stop with
# the demo; the database stays:  rostersync status --config THIS_FILE
[database]
path = "rostersync.db"

[hris]
type = "bamboohr"
base_url = "{hris_url}"
api_key_env = "{HRIS_KEY_ENV}"

[hris.attributes]
employment = "employmentHistoryStatus"

[lms]
type = "scim"
base_url = "{lms_url}"
token_env = "{TOKEN_ENV}"
page_size = 500

[mapping]
strict = ["department"]

[mapping.status_values]
"active" = "active"
"full-time" = "active"
"contractor" = "active"
"leave of absence" = "leave"
"terminated" = "terminated"
"inactive" = "terminated"

[mapping.values.department]
{departments}

[scope]
exclude = {{ "attributes.employment" = ["Contractor"] }}

[guards]
mass_deactivation_percent = 1     # 60 leavers among 2,000 trips the hold
retry_base_seconds = 5            # the demo's clock runs fast
retry_max_seconds = 60
termination_sla_minutes = 1

[schedule]
delta_every_minutes = 0.1         # BambooHR changed-since every 6 s
full_every_minutes = 0.25         # a full reconcile every 15 s
retry_every_minutes = 0.1         # a retry sweep every 6 s

[thresholds]
hris_stale_warning_hours = 0.02   # a minute without a good pull is worth a warning
hris_stale_critical_hours = 0.05
lms_stale_warning_hours = 0.02
lms_stale_critical_hours = 0.05
"""


def _seed_lms(base_url: str, token: str) -> None:
    """Accounts that existed before rostersync: one to link by email, two that make an
    ambiguous match for another person."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    schema = ["urn:ietf:params:scim:schemas:core:2.0:User"]
    linkable, ambiguous = World.person(7)["Work Email"], World.person(8)["Work Email"]
    users = [{"userName": linkable, "emails": [{"value": linkable, "primary": True}]},
             {"userName": "legacy-8", "emails": [{"value": ambiguous}]},
             {"userName": "old.account.8", "emails": [{"value": ambiguous}]}]
    with httpx.Client(headers=headers) as client:
        for user in users:
            client.post(f"{base_url}/Users", json={"schemas": schema, **user}).raise_for_status()


class DemoWorld:
    """The sandbox LMS, the HR export and HR life, in one folder."""

    def __init__(self, folder: Path, people: int = PEOPLE) -> None:
        self.folder = folder
        self.token = secrets.token_urlsafe(24)
        self.hris_key = secrets.token_hex(16)
        self.faults = FaultPlan()
        self.lms = ScimSandbox(token=self.token, fault=self.faults)
        self.hris = BambooSandbox(api_key=self.hris_key)
        world = World.generate(people)
        for i in range(5, people, 20):  # contractors are out of scope
            world.rows[f"E{i:05d}"]["Worker Type"] = "Contractor"
        self.world = world
        self.config_path = folder / "rostersync.toml"
        self.life = HrLife(world, BambooPublisher(self.hris), self.faults, mass_termination=60)
        self.events: list[dict[str, Any]] = []

    def start(self) -> Config:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lms.start()
        self.hris.start()
        self.life.publish()
        self.config_path.write_text(_config_text(self.hris.base_url, self.lms.base_url),
                                    encoding="utf-8")
        os.chmod(self.config_path, 0o600)
        _seed_lms(self.lms.base_url, self.token)
        # This process only; never written anywhere.
        os.environ[TOKEN_ENV] = self.token
        os.environ[HRIS_KEY_ENV] = self.hris_key
        return load_config(self.config_path)

    def stop(self) -> None:
        self.lms.stop()
        self.hris.stop()

    def tick(self) -> str:
        what = self.life.tick()
        self.events.append({"at": time.strftime("%H:%M:%S"), "event": what})
        return what


def summary(store: Store, config: Config, world: DemoWorld) -> dict[str, Any]:
    status = build_status(store, config, Clock().now())
    runs = dict(store.conn.execute("SELECT status, count(*) FROM runs GROUP BY status"))
    return {
        "folder": str(world.folder),
        "runs": runs,
        "ops": op_store.counts_by_status(store),
        "drift": drift_store.counts_by_kind(store),
        "held": status["ops"]["held"],
        "quarantines": runs.get("quarantined", 0),
        "job": status["job"],
        "hr_events": world.events,
        "lms_faults_served": world.faults.faults_served,
        "status": status,
    }


async def run_headless(world: DemoWorld, config: Config, store: Store, seconds: float,
                       log: Callable[[str], None], tick_seconds: float = TICK_SECONDS) -> None:
    engine = Engine(config, store)
    scheduler = SyncScheduler(engine, config, log=lambda r: log(json.dumps(r, default=str)))
    scheduler.start()
    try:
        report = await scheduler.run_now("full")
        if report is not None:
            log(f"first sync: run {report.run_id} {report.status}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(min(tick_seconds, max(0.0, deadline - time.monotonic())))
            if time.monotonic() < deadline:
                log(await asyncio.to_thread(world.tick))
    finally:
        # Let a job that is running finish, so the summary reads a settled database.
        await scheduler.stop()


def run_demo(args: argparse.Namespace) -> int:
    folder = (args.keep or Path(tempfile.mkdtemp(prefix="rostersync-demo-"))).resolve()
    world = DemoWorld(folder)
    config = world.start()
    store = Store(config.database.path)
    try:
        if args.headless:
            quiet = args.json

            def log(text: str) -> None:
                if not quiet:
                    print(text, flush=True)

            log(f"sandbox HRIS (BambooHR) at {world.hris.base_url}; LMS (SCIM) at "
                f"{world.lms.base_url}")
            asyncio.run(run_headless(world, config, store, args.seconds or 60, log))
            doc = summary(store, config, world)
            if args.json:
                print(json.dumps(doc, indent=2, sort_keys=True, default=str))
            else:
                print(f"\nstatus {doc['status']['status']}: " + "; ".join(doc["status"]["reasons"]))
        else:
            from console.demo_app import run_demo_console

            run_demo_console(world, config, store)
    finally:
        world.stop()
    if not args.json:
        print(f"\nThe demo's files are in {folder} (database, config, HR export).\n"
              f"Explore them: rostersync status --config {world.config_path}\n"
              f"              rostersync console --read-only --config {world.config_path}")
    return 0
