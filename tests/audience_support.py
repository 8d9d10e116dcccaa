"""Helpers for the audience tests: a workspace config with [[audiences]] tables, an
engine on a frozen clock, and SCIM Group memberships read back with plain httpx."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx

from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.support import World, write_config

AUDIENCES = '''
[[audiences]]
id = "sales-compliance"
name = "Sales compliance"
rule = 'department == "Sales"'
compliance = true

[[audiences]]
id = "finance-compliance"
name = "Finance compliance"
rule = 'department == "Finance"'
compliance = true

[[audiences]]
id = "onboarding"
name = "New hire onboarding"
rule = "hire_date within 30 days"

[[audiences]]
id = "team-e00003"
rules = ['manager_chain contains "E00003"', 'employee_number == "100003"']
'''

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def audience_config(folder: Path, base_url: str, csv_path: Path, extra: str = AUDIENCES,
                    **sections) -> Path:
    path = write_config(folder, base_url, csv_path, **sections)
    path.write_text(path.read_text(encoding="utf-8") + "\n" + extra, encoding="utf-8")
    return path


def engine(config_path: Path, clock: FrozenClock) -> Engine:
    return Engine(load_config(config_path), clock=clock)


def sync(config_path: Path, clock: FrozenClock, **kwargs):
    eng = engine(config_path, clock)
    try:
        return asyncio.run(eng.sync("full", **kwargs))
    finally:
        eng.store.close()


def group_members(base_url: str, token: str) -> dict[str, set[str]]:
    """Group displayName -> externalIds of its members, read with plain httpx."""
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        users = c.get("/Users", params={"count": 10000}).json().get("Resources", [])
        key_of = {u["id"]: u.get("externalId") for u in users}
        groups = c.get("/Groups", params={"count": 1000}).json().get("Resources", [])
        return {g["displayName"]: {key_of.get(m["value"]) for m in g.get("members") or []}
                for g in groups}


def people_in(world: World, department: str) -> set[str]:
    return {k for k, row in world.rows.items() if row["Department"] == department
            and row["Status"] == "Active" and row["Worker Type"] != "Contractor"}
