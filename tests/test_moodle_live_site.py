"""A first sync and a wave against a live Moodle site (docs/moodle.md, "Checking against a
real Moodle"): batches in a pipeline end with every account correct and none twice, and a
batch with one user Moodle refuses fails only that user.

Skipped unless ``ROSTERSYNC_LIVE_MOODLE_URL`` names a throwaway site and
``ROSTERSYNC_LIVE_MOODLE_TOKEN`` holds its web service token. The site keeps what the
tests create: every run uses HRIS keys and addresses of its own, and lists only those.
The site is read directly (httpx) to check it, not through the connector under test.
"""

from __future__ import annotations

import asyncio
import csv
import os
import secrets
import tomllib
from pathlib import Path
from typing import Any

import httpx
import pytest

from rostersync.sandbox.world import COLUMNS, HEADER
from rostersync.storage.db import Store
from rostersync.sync.config import config_from_dict
from rostersync.sync.connectors.moodle_wire import encode_params
from rostersync.sync.engine import Engine

URL = os.environ.get("ROSTERSYNC_LIVE_MOODLE_URL", "")
TOKEN_ENV = "ROSTERSYNC_LIVE_MOODLE_TOKEN"
BAD_EMAIL = "bad_user@exa_mple.org"  # a 4.3 site refuses it: the batch fails as a whole

pytestmark = pytest.mark.skipif(not (URL and os.environ.get(TOKEN_ENV)),
                                reason="no live Moodle site: set ROSTERSYNC_LIVE_MOODLE_URL "
                                       f"and {TOKEN_ENV}")


def _people(prefix: str, count: int, start: int = 1) -> list[dict[str, str]]:
    rows = []
    for i in range(start, start + count):
        email = f"first{i}.last{i}.{prefix.lower()}{i}@acme.example"
        rows.append({"Employee ID": f"{prefix}{i:05d}", "Employee Number": str(i),
                     "First Name": f"First{i}", "Last Name": f"Last{i}",
                     "Preferred Name": "", "Work Email": email, "Department": "Sales",
                     "Job Title": "Specialist", "Location": "Berlin", "Manager ID": "",
                     "Status": "Active", "Hire Date": "2020-03-01", "Termination Date": "",
                     "Time Zone": "Europe/Berlin", "Worker Type": "Employee"})
    return rows


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, HEADER)
        writer.writeheader()
        writer.writerows(rows)


def _engine(folder: Path, prefix: str, rows: list[dict[str, str]]) -> Engine:
    csv_path = folder / "employees.csv"
    _write_csv(csv_path, rows)
    text = "\n".join([
        "[database]", f'path = "{folder / "rostersync.db"}"', "",
        "[hris]", 'type = "csv"', f'path = "{csv_path}"', "", "[hris.columns]",
        *[f'{k} = "{v}"' for k, v in COLUMNS.items()], "",
        "[lms]", 'type = "moodle"', f'base_url = "{URL}"', f'token_env = "{TOKEN_ENV}"',
        "batch_size = 50", "concurrency = 2", "pipeline_depth = 2", "timeout_seconds = 120",
        f'list_criteria_value = "%.{prefix.lower()}%"', "",
        "[guards]", "mass_deactivation_min = 100000", ""])
    path = folder / "rostersync.toml"
    path.write_text(text, encoding="utf-8")
    config = config_from_dict(tomllib.loads(text), path)
    return Engine(config, Store(config.database.path))


def _site_users(idnumbers: list[str]) -> list[dict[str, Any]]:
    """The site's users holding these idnumbers, asked directly."""
    found: list[dict[str, Any]] = []
    with httpx.Client(timeout=120) as client:
        for start in range(0, len(idnumbers), 100):
            body = encode_params({"field": "idnumber", "values": idnumbers[start:start + 100]})
            answer = client.post(f"{URL}/webservice/rest/server.php", data=dict(body), params={
                "wsfunction": "core_user_get_users_by_field", "moodlewsrestformat": "json",
                "wstoken": os.environ[TOKEN_ENV]})
            data = answer.json()
            assert isinstance(data, list), data
            found += data
    return found


def _assert_every_account_correct_once(rows: list[dict[str, str]]) -> None:
    users = _site_users([r["Employee ID"] for r in rows])
    held = [u["idnumber"] for u in users]
    assert len(held) == len(set(held)), "a person has two accounts"
    by_key = {u["idnumber"]: u for u in users}
    for row in rows:
        user = by_key.get(row["Employee ID"])
        assert user is not None, row["Employee ID"]
        assert (user["firstname"], user["lastname"], user["email"]) == (
            row["First Name"], row["Last Name"], row["Work Email"].lower())
        assert user["username"] == row["Work Email"].lower()
        assert user["department"] == row["Department"]


def test_a_first_sync_in_a_pipeline_makes_every_account_once(tmp_path: Path) -> None:
    prefix = f"L{secrets.token_hex(3).upper()}X"
    rows = _people(prefix, 240)
    engine = _engine(tmp_path, prefix, rows)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["applied"] == {"succeeded": 240}
    _assert_every_account_correct_once(rows)
    again = asyncio.run(engine.sync("full"))
    assert again.counts["planned"] == {}, again.counts


def test_a_batch_with_one_bad_user_fails_only_that_user(tmp_path: Path) -> None:
    prefix = f"W{secrets.token_hex(3).upper()}X"
    rows = _people(prefix, 40)
    engine = _engine(tmp_path, prefix, rows)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    wave = _people(prefix, 20, start=41)
    wave[7]["Work Email"] = BAD_EMAIL
    _write_csv(Path(engine.config.hris.path), rows + wave)
    report = asyncio.run(engine.sync("full"))
    ops = {o["employee_id"]: o for o in engine.store.rows(
        "SELECT * FROM ops WHERE kind = 'create'")}
    bad = wave[7]["Employee ID"]
    assert ops[bad]["status"] in ("failed", "dead") and ops[bad]["error_class"] == "data"
    assert {o["status"] for k, o in ops.items() if k != bad} == {"succeeded"}
    assert report.counts["applied"].get("succeeded") == 19
    assert _site_users([bad]) == []
    _assert_every_account_correct_once(rows + wave[:7] + wave[8:])
