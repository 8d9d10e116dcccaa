"""`rostersync demo`: the product on its built-in sandbox, with no accounts anywhere.

It starts a real SCIM 2.0 LMS (scim2-server) on 127.0.0.1 behind a fault layer, writes a
generated organisation into a sandbox HRIS and a config into a folder, and keeps HR life
going (sandbox.hr_life): every few seconds a hire, a transfer, a termination, bad data,
a truncated export, an LMS that throttles or refuses the token. A scripted on-call
operator (sandbox.oncall) resumes the job and reviews held leavers, so the story recovers
and settles into normal HR life. The engine's scheduler syncs it all, in the console
(console/demo_app.py) or headless with a JSON summary.

The config shows the whole product: audiences (SCIM Groups by department group, for
managers, for the first 30 days), real-time intake in hybrid mode fed by the BambooHR
sandbox's signed webhooks, a Prometheus endpoint, and alerts written to a file in the
demo's folder by a command channel (sandbox.alert_file).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from rostersync.sandbox.alert_file import read_notices
from rostersync.sandbox.bamboohr import BambooSandbox
from rostersync.sandbox.bamboohr_webhooks import WebhookSender
from rostersync.sandbox.faults import FaultPlan
from rostersync.sandbox.hr_life import HrLife
from rostersync.sandbox.publish import BambooPublisher
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sandbox.world import DEPARTMENTS, World
from rostersync.storage import audit_key
from rostersync.storage import drift as drift_store
from rostersync.storage import events as event_store
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.storage.store_factory import make_store
from rostersync.sync.audiences.explain import overview
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config, load_config
from rostersync.sync.engine import Engine
from rostersync.sync.scheduler import SyncScheduler
from rostersync.sync.status import build_status

TOKEN_ENV = "ROSTERSYNC_DEMO_LMS_TOKEN"
HRIS_KEY_ENV = "ROSTERSYNC_DEMO_HRIS_KEY"
WEBHOOK_KEY_ENV = "ROSTERSYNC_DEMO_WEBHOOK_KEY"
ALERTS_FILE = "alerts.jsonl"
PEOPLE = 2000
TICK_SECONDS = 2.5
# Who each line of the story comes from: the console's notices carry it as their title.
IN_HR = "in HR"
ON_CALL = "on-call"


def _config_text(hris_url: str, lms_url: str, alerts_path: Path) -> str:
    departments = "\n".join(f'"{d}" = "{d}"' for d in DEPARTMENTS)
    # A JSON array of strings is a TOML array: paths with any character stay intact.
    alert_command = json.dumps([sys.executable, "-m", "rostersync.sandbox.alert_file",
                                str(alerts_path)])
    return f"""# Written by `rostersync demo`: the sandbox world's config. The sandboxes stop with
# the demo; the database stays:  {rostersync_command()} status --config THIS_FILE
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

# Audiences: SCIM Groups whose members follow rules over HR fields (docs/audiences.md).
# "department" is in mapping.strict and read by rules, so a department nobody mapped
# (HR's "Growth") is unmapped drift and leaves those people's audiences as they are.
[[audiences]]
id = "sales-enablement"
name = "Sales enablement"
rule = 'department == "Sales"'

[[audiences]]
id = "finance-controls"
name = "Finance controls"
rule = 'department == "Finance"'
compliance = true

[[audiences]]
id = "people-managers"
name = "People managers"
rule = 'job_title in ["Manager", "Director"]'
compliance = true

[[audiences]]
id = "onboarding"
name = "Onboarding (first 30 days)"
rule = "hire_date within 30 days"

# Real-time intake: the BambooHR sandbox sends signed webhooks here; hires and
# terminations act at once, profile changes wait for the scheduled runs.
[realtime]
enabled = true
listen = "127.0.0.1:0"            # any free port; the demo prints it
mode = "hybrid"
bamboohr_secret_env = "{WEBHOOK_KEY_ENV}"
buffer_seconds = 1                # a burst of leavers arrives as one real-time run
mass_window_minutes = 0.25        # the demo's clock runs fast

[metrics]
enabled = true
listen = "127.0.0.1:0"            # GET /metrics; the demo prints the port

[alerts]
check_every_seconds = 5

[[alerts.channels]]
type = "command"                  # each notice appended to alerts.jsonl in this folder
command = {alert_command}
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


def shape_org(world: World, today: date) -> None:
    """Titles and start dates the audiences read: whoever has reports is a Manager (a
    Director when their reports manage too), and a few people started this month."""
    managers = {row["Manager ID"] for row in world.rows.values() if row["Manager ID"]}
    directors = {world.rows[m]["Manager ID"] for m in managers if world.rows[m]["Manager ID"]}
    for key in managers:
        world.rows[key]["Job Title"] = "Director" if key in directors else "Manager"
    for n, key in enumerate(list(world.rows)[12::50]):
        world.rows[key]["Hire Date"] = (today - timedelta(days=n % 28)).isoformat()


class OnCall(Protocol):
    """Whoever answers the demo's incidents: each tick they look at the store and say
    what they did (console.demo_oncall acts through the console's operator actions)."""

    actor: str

    def tick(self, store: Store, now: datetime) -> list[str]: ...


class DemoWorld:
    """The sandbox LMS, the HR export and HR life, in one folder."""

    def __init__(self, folder: Path, people: int = PEOPLE,
                 on_call: Callable[[DemoWorld], OnCall] | None = None) -> None:
        self.folder = folder
        # A token chosen by the user (exported before `make demo`) lets them query the
        # sandbox LMS themselves, e.g. with curl, to check what the console did there.
        self.token = os.environ.get(TOKEN_ENV) or secrets.token_urlsafe(24)
        self.hris_key = secrets.token_hex(16)
        self.webhook_key = secrets.token_hex(16)
        self.faults = FaultPlan()
        self.lms = ScimSandbox(token=self.token, fault=self.faults)
        self.hris = BambooSandbox(api_key=self.hris_key)
        world = World.generate(people)
        for i in range(5, people, 20):  # contractors are out of scope
            world.rows[f"E{i:05d}"]["Worker Type"] = "Contractor"
        shape_org(world, date.today())
        self.world = world
        self.config_path = folder / "rostersync.toml"
        self.alerts_path = folder / ALERTS_FILE
        # Seven ticks of a truncated export: longer than the 15 s between full runs.
        self.life = HrLife(world, BambooPublisher(self.hris), self.faults, mass_termination=60,
                           truncated_ticks=7)
        self.events: list[dict[str, Any]] = []
        # The demo's on-call operator answers the incidents the story raises. They act
        # through the console's operator actions, so the command line brings them in
        # (console.demo_oncall); without one, nobody answers.
        self.on_call = on_call(self) if on_call is not None else None
        self.on_call_log: list[dict[str, Any]] = []
        self.webhooks: WebhookSender | None = None
        self.endpoints: dict[str, str] = {}

    def start(self) -> Config:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.lms.start()
        self.hris.start()
        self.life.publish()
        self.config_path.write_text(
            _config_text(self.hris.base_url, self.lms.base_url, self.alerts_path),
            encoding="utf-8")
        os.chmod(self.config_path, 0o600)
        _seed_lms(self.lms.base_url, self.token)
        # This process only; never written anywhere.
        os.environ[TOKEN_ENV] = self.token
        os.environ[HRIS_KEY_ENV] = self.hris_key
        os.environ[WEBHOOK_KEY_ENV] = self.webhook_key
        return load_config(self.config_path)

    def connect(self, scheduler: SyncScheduler) -> dict[str, str]:
        """Once the scheduler listens: note its addresses and let BambooHR send webhooks
        for every HR change from now on (the organisation itself was loaded before)."""
        if scheduler.metrics is not None and scheduler.metrics.listener is not None:
            self.endpoints["metrics"] = scheduler.metrics.listener.url + "/metrics"
        if scheduler.realtime is not None:
            if "/metrics" in scheduler.realtime.routes:  # metrics share the listener
                self.endpoints["metrics"] = scheduler.realtime.listener.url + "/metrics"
            self.send_webhooks_to(scheduler.realtime.listener.url)
        self.endpoints["alerts"] = str(self.alerts_path)
        return self.endpoints

    def send_webhooks_to(self, listener_url: str) -> None:
        url = listener_url + "/webhooks/bamboohr"
        self.endpoints["webhooks"] = url
        self.webhooks = WebhookSender(url, self.webhook_key, clock=self.hris.store.clock)
        self.hris.store.listeners.append(self._hr_changed)
        self.webhooks.start()

    def _hr_changed(self, action: str, before: dict[str, Any] | None,
                    after: dict[str, Any] | None) -> None:
        emp_id = (after or before or {}).get("id")
        if action in ("Inserted", "Deleted") and emp_id in self.life.withheld:
            return  # rows a truncated export left out: the export's fault, not an HR change
        if self.webhooks is not None:
            self.webhooks.on_change(action, before, after)

    def stop(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()
        self.lms.stop()
        self.hris.stop()

    def tick(self, store: Store, now: datetime | None = None) -> list[tuple[str, str]]:
        """One step of the story: HR's event, then the on-call's look at the job and the
        held list. Returns (who, what) for each thing that happened."""
        at = time.strftime("%H:%M:%S")
        what = self.life.tick()
        self.events.append({"at": at, "event": what})
        said = [(IN_HR, what)]
        if self.on_call is None:
            return said
        for action in self.on_call.tick(store, now or Clock().now()):
            self.on_call_log.append({"at": at, "actor": self.on_call.actor,
                                     "action": action})
            said.append((ON_CALL, action))
        return said


def _history(store: Store) -> dict[str, Any]:
    """What the demo has shown so far, resolved or not: the status document counts only
    what is open now, while a minute of HR life raises and resolves much of it."""
    def count(sql: str) -> int:
        return int(store.scalar(sql) or 0)

    return {
        "failed_attempts": count("SELECT count(*) FROM op_attempts WHERE outcome = 'error'"),
        "ops_held": count("SELECT count(*) FROM ops WHERE hold_reason IS NOT NULL"),
        "feeds_rejected": count("SELECT count(*) FROM snapshots WHERE accepted = 0"),
        "drift_opened": dict(store.conn.execute(
            "SELECT kind, count(*) FROM drift GROUP BY kind ORDER BY kind")),
    }


def summary(store: Store, config: Config, world: DemoWorld) -> dict[str, Any]:
    now = Clock().now()
    status = build_status(store, config, now)
    runs = dict(store.conn.execute("SELECT status, count(*) FROM runs GROUP BY status"))
    return {
        "folder": str(world.folder),
        "endpoints": world.endpoints,
        "runs": runs,
        "ops": op_store.counts_by_status(store),
        "drift": drift_store.counts_by_kind(store),
        "held": status["ops"]["held"],
        "quarantines": runs.get("quarantined", 0),
        "job": status["job"],
        # Members each audience has in the LMS, as `rostersync audiences list` says.
        "audiences": {a["id"]: a["size"] for a in overview(store, config)},
        # HR events the webhook listener received (24 h), by what became of them.
        "events_received": event_store.summary(store, now)["last_24h"],
        "alerts_sent": [{"alert": n.get("alert"), "state": n.get("state"), "at": n.get("at")}
                        for n in read_notices(world.alerts_path)],
        "seen": _history(store),
        "hr_events": world.events,
        "on_call": world.on_call_log,
        "story": {"phase": world.life.phase, "ticks": world.life.ticks},
        "lms_faults_served": world.faults.faults_served,
        "status": status,
    }


async def _settle(world: DemoWorld, scheduler: SyncScheduler,
                  log: Callable[[str], None]) -> None:
    """Before the summary: every HR change sent has been received and acted on, and the
    alerts owed have been sent, so the summary reads a settled database."""
    if world.webhooks is not None:
        await asyncio.to_thread(world.webhooks.flush)
    realtime = scheduler.realtime
    if realtime is not None:
        try:
            await realtime.dispatcher.drain()
        except Exception as exc:  # said, not raised: the summary still tells the story
            log(f"the last HR events were not synced: {type(exc).__name__}: {exc}")
        async with scheduler.lock:
            realtime.close()  # nothing runs while the lock is ours: stop between runs
    await scheduler.check_alerts()


async def run_headless(world: DemoWorld, config: Config, store: Store, seconds: float,
                       log: Callable[[str], None], tick_seconds: float = TICK_SECONDS) -> None:
    engine = Engine(config, store)
    scheduler = SyncScheduler(engine, config, log=lambda r: log(json.dumps(r, default=str)))
    scheduler.start()
    try:
        await scheduler.ready()
        for name, where in world.connect(scheduler).items():
            log(f"{name}: {where}")
        report = await scheduler.run_now("full")
        if report is not None:
            log(f"first sync: run {report.run_id} {report.status}")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(min(tick_seconds, max(0.0, deadline - time.monotonic())))
            if time.monotonic() < deadline:
                for who, what in await asyncio.to_thread(world.tick, store):
                    log(f"{who}: {what}")
        await _settle(world, scheduler, log)
    finally:
        # Let a job that is running finish, so the summary reads a settled database.
        await scheduler.stop()


def run_demo(args: argparse.Namespace, *, on_call: Callable[[DemoWorld], OnCall] | None = None,
             run_console: Callable[[DemoWorld, Config, Store], None] | None = None) -> int:
    """The demo, headless or (``run_console``) in the console; the command line chooses
    and brings the console and the on-call operator, so the sandbox needs neither."""
    folder = (args.keep or Path(tempfile.mkdtemp(prefix="rostersync-demo-"))).resolve()
    world = DemoWorld(folder, on_call=on_call)
    config = world.start()
    store = make_store(config.database)
    # The demo's audit log is keyed like any other: the key file beside its config, so
    # `rostersync audit verify` on the demo folder checks the on-call's and your actions.
    audit_key.attach(store, audit_key.default_key_path(world.config_path), os.environ)
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
        elif run_console is not None:
            run_console(world, config, store)
    finally:
        world.stop()
        close_compacted(store)
    if not args.json:
        print(closing_message(folder, world.config_path, world.endpoints))
    return 0


def closing_message(folder: Path, config_path: Path, endpoints: dict[str, str],
                    command: str | None = None) -> str:
    """What the demo leaves behind and the commands that explore it, each runnable as
    printed from any shell; the sandboxes' addresses stopped with the demo, so only the
    files are named (pure but for the default command)."""
    command = command or rostersync_command()
    config_arg = shlex.quote(str(config_path))
    files = "".join(f"\n  {name}: {where}" for name, where in endpoints.items()
                    if not where.startswith(("http://", "https://")))
    return (f"\nThe demo's files are in {folder} (database, config, alerts; remove the "
            f"folder when done); its sandboxes stopped with it.{files}\n"
            f"Explore them: {command} status --config {config_arg}\n"
            f"              {command} audiences list --config {config_arg}\n"
            f"              {command} console --read-only --config {config_arg}")


def rostersync_command(argv0: str | None = None, executable: str | None = None) -> str:
    """How to run rostersync again from any shell. The entry point that is running is
    on PATH only while its virtualenv is active, so it is named by its absolute path;
    run some other way (python -m), this Python runs the CLI module."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    entry = Path(argv0) if argv0 else None
    if entry is not None and entry.name == "rostersync" and entry.is_file():
        # abspath also folds `..` (`make demo` runs `.venv/bin/rostersync` by a relative
        # path; a virtualenv beside the checkout gives `../venv/bin/rostersync`).
        return shlex.quote(os.path.abspath(entry))
    return f"{shlex.quote(executable or sys.executable)} -m {CLI_MODULE}"


# The CLI module, named from this module's own package path, so that it stays right
# wherever the packages are installed (sandbox.demo -> console.cli).
CLI_MODULE = __name__.removesuffix("sandbox.demo") + "console.cli"


def close_compacted(store: Store) -> None:
    """The write-ahead log holds most of a long demo's bytes: fold it into the database
    so the folder left behind is as small as its data."""
    # Busy: the folder stays larger, nothing is lost.
    with contextlib.suppress(sqlite3.Error):
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
