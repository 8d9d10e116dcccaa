"""Test helpers: a generated organisation written as an HRIS CSV, a config that points
at it and at a real SCIM server, and a way to read back what the LMS holds."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from rostersync.sandbox.world import DEPARTMENTS, World  # noqa: F401 - re-exported for tests
from tests.pg_server import fresh_database_url, switched_to_pg

TOKEN_ENV = "ROSTERSYNC_TEST_LMS_TOKEN"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def write_config(folder: Path, base_url: str, csv_path: Path, **sections: dict[str, Any]) -> Path:
    guards = {"vanished_grace_hours": 24, **sections.get("guards", {})}
    # `pytest --database=pg`: the same config on a fresh PostgreSQL database.
    database = (f'url = "{fresh_database_url()}"' if switched_to_pg()
                else f'path = "{folder / "rostersync.db"}"')
    lines = [
        "[database]", database, "",
        "[hris]", 'type = "csv"', f'path = "{csv_path}"',
        'date_formats = ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y"]', "",
        "[hris.columns]",
        'employee_id = "Employee ID"', 'employee_number = "Employee Number"',
        'first_name = "First Name"', 'last_name = "Last Name"',
        'preferred_name = "Preferred Name"', 'email = "Work Email"',
        'department = "Department"', 'job_title = "Job Title"', 'location = "Location"',
        'manager_id = "Manager ID"', 'status = "Status"', 'hire_date = "Hire Date"',
        'termination_date = "Termination Date"', 'timezone = "Time Zone"', "",
        "[hris.attributes]", 'worker_type = "Worker Type"', "",
        "[lms]", 'type = "scim"', f'base_url = "{base_url}"', f'token_env = "{TOKEN_ENV}"',
        "page_size = 100", "concurrency = 8",
        *[f"{k} = {_toml(v)}" for k, v in sections.get("lms", {}).items()], "",
        "[mapping]", 'strict = ["department"]', "",
        "[mapping.values.department]",
        *[f'"{d}" = "{d}"' for d in DEPARTMENTS], "",
        "[scope]", 'exclude = { "attributes.worker_type" = ["Contractor"] }', "",
        "[guards]", *[f"{k} = {_toml(v)}" for k, v in guards.items()], "",
    ]
    path = folder / "rostersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


class Refusing:
    """A fault for the sandbox LMS that answers some requests instead of the server:
    single requests, and the same operations inside a /Bulk request (each with its own
    status, RFC 7644 §3.7.3). ``answer(method, path)`` gives (status, headers, body)."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def __call__(self, method: str, path: str) -> Any:
        return self.answer(method, path)

    def refusal(self, method: str, path: str, _body: bytes) -> Any:
        return self.answer(method, path)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def lms_users(base_url: str, token: str) -> list[dict[str, Any]]:
    """Every user the SCIM server holds, read with plain httpx (not our connector)."""
    out: list[dict[str, Any]] = []
    start = 1
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
        while True:
            page = client.get(f"{base_url}/Users", params={"startIndex": start, "count": 500})
            page.raise_for_status()
            body = page.json()
            resources = body.get("Resources", [])
            out.extend(resources)
            start += len(resources)
            if not resources or start > body["totalResults"]:
                return out


def by_external_id(users: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for user in users:
        out.setdefault(user.get("externalId") or "", []).append(user)
    return out


def set_token_env(value: str) -> None:
    os.environ[TOKEN_ENV] = value


def give_audit_key(config_path: Path) -> Path:
    """The audit key file beside ``config_path`` (as `rostersync init` writes it): a node
    with [ha] enabled is refused without one, since no node makes its own there."""
    from rostersync.storage.audit_key import create_key_file, default_key_path

    path = default_key_path(config_path)
    if not path.exists():
        create_key_file(path)
    return path
