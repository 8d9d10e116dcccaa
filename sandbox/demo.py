"""`rostersync demo`: the product on its built-in sandbox, with no accounts anywhere.

It starts a real SCIM 2.0 LMS (scim2-server) on 127.0.0.1, writes a generated HRIS
export and a config into a folder, and runs the engine through a few HR days: the
first sync, a day of lifecycle changes (hires, a transfer, terminations, a rehire, a
future-dated termination, a bad record), and a truncated export that the feed gate
rejects. The folder is kept and printed so the user can go on with the CLI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

import httpx

from sandbox.scim_server import ScimSandbox
from sandbox.world import DEPARTMENTS, World
from storage.db import Store
from sync.clock import Clock
from sync.config import load_config
from sync.engine import Engine
from sync.status import build_status

TOKEN_ENV = "ROSTERSYNC_DEMO_LMS_TOKEN"
PEOPLE = 300


def _config_text(folder: Path, base_url: str) -> str:
    departments = "\n".join(f'"{d}" = "{d}"' for d in DEPARTMENTS)
    return f"""# Written by `rostersync demo`: a config for the sandbox world.
[database]
path = "rostersync.db"

[hris]
type = "csv"
path = "employees.csv"

[hris.columns]
employee_id = "Employee ID"
employee_number = "Employee Number"
first_name = "First Name"
last_name = "Last Name"
preferred_name = "Preferred Name"
email = "Work Email"
department = "Department"
job_title = "Job Title"
location = "Location"
manager_id = "Manager ID"
status = "Status"
hire_date = "Hire Date"
termination_date = "Termination Date"
timezone = "Time Zone"

[hris.attributes]
worker_type = "Worker Type"

[lms]
type = "scim"
base_url = "{base_url}"
token_env = "{TOKEN_ENV}"

[mapping]
strict = ["department"]

[mapping.values.department]
{departments}

[scope]
exclude = {{ "attributes.worker_type" = ["Contractor"] }}
"""


def _seed_lms(base_url: str, token: str) -> None:
    """Accounts that existed before rostersync: one to link by email, two that make an
    ambiguous match for another person."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}
    schema = "urn:ietf:params:scim:schemas:core:2.0:User"
    loose = World.person(7)
    ambiguous = World.person(8)
    users = [
        {"userName": loose["Work Email"], "emails": [{"value": loose["Work Email"],
                                                      "primary": True}]},
        {"userName": "legacy-8", "emails": [{"value": ambiguous["Work Email"]}]},
        {"userName": ambiguous["Work Email"].upper().replace("@", "+old@")},
    ]
    users[2]["emails"] = [{"value": ambiguous["Work Email"]}]
    with httpx.Client(headers=headers) as client:
        for user in users:
            client.post(f"{base_url}/Users", json={"schemas": [schema], **user}).raise_for_status()


def _day_of_changes(world: World) -> None:
    rows = world.rows
    for i in (PEOPLE + 1, PEOPLE + 2, PEOPLE + 3):
        rows[f"E{i:05d}"] = World.person(i, **{"Hire Date": "2026-01-10"})
    rows["E00120"].update({"Department": "Finance", "Manager ID": "E00003"})
    for i in (150, 151, 152):
        rows[f"E{i:05d}"].update({"Status": "Terminated", "Termination Date": "2026-01-20"})
    rows["E00160"].update({"Termination Date": "2099-03-31"})
    rows["E00170"]["Work Email"] = "not-an-email"
    rows["E00180"]["Department"] = "Growth"  # renamed in HR, no mapping yet
    rows["E00190"]["Worker Type"] = "Contractor"


async def _run(folder: Path, lms: ScimSandbox, token: str, log) -> list[dict[str, Any]]:
    world = World.generate(PEOPLE)
    csv_path = world.write(folder / "employees.csv")
    config_path = folder / "rostersync.toml"
    config_path.write_text(_config_text(folder, lms.base_url), encoding="utf-8")
    os.chmod(config_path, 0o600)
    _seed_lms(lms.base_url, token)
    os.environ[TOKEN_ENV] = token
    config = load_config(config_path)
    store = Store(config.database.path)
    engine = Engine(config, store)
    reports = []

    log("first sync of a 300-person organisation into an LMS that already has 3 accounts")
    reports.append((await engine.sync("full")).as_dict())
    log(_line(reports[-1]))

    log("a day of HR changes: 3 hires, a transfer, 3 terminations, a future termination, "
        "a bad e-mail, a renamed department, a contractor")
    _day_of_changes(world)
    world.write(csv_path)
    reports.append((await engine.sync("full")).as_dict())
    log(_line(reports[-1]))

    log("the export arrives truncated (40% of the rows)")
    world.write(csv_path, list(world.rows.values())[: int(len(world.rows) * 0.4)])
    reports.append((await engine.sync("full")).as_dict())
    log(_line(reports[-1]))
    world.write(csv_path)
    return reports


def _line(report: dict[str, Any]) -> str:
    c = report["counts"]
    planned = ", ".join(f"{k} {v}" for k, v in sorted(c.get("planned", {}).items())) or "nothing"
    drift = ", ".join(f"{k} {v}" for k, v in sorted(c.get("drift", {}).items())) or "none"
    text = f"  run #{report['run_id']}: {report['status']} (exit {report['exit_code']}); " \
           f"planned: {planned}; drift seen: {drift}"
    if report.get("message"):
        text += f"\n  {report['message']}"
    return text


def run_demo(args: argparse.Namespace) -> int:
    folder = args.keep or Path(tempfile.mkdtemp(prefix="rostersync-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    quiet = args.json

    def log(text: str) -> None:
        if not quiet:
            print(text, flush=True)

    with ScimSandbox(token=token) as lms:
        log(f"sandbox LMS (scim2-server) at {lms.base_url}")
        reports = asyncio.run(_run(folder, lms, token, log))
        config = load_config(folder / "rostersync.toml")
        status = build_status(Store(config.database.path), config, Clock().now())
    if args.json:
        print(json.dumps({"folder": str(folder), "runs": reports, "status": status},
                         indent=2, default=str))
    else:
        print()
        print(f"status: {status['status']}: " + "; ".join(status["reasons"]))
        print(f"\nThe demo's files are in {folder}. The sandbox LMS has stopped; explore "
              f"what was recorded with:\n  rostersync status --config {folder}/rostersync.toml"
              f"\n  rostersync ops list --config {folder}/rostersync.toml --status held")
    return 0
