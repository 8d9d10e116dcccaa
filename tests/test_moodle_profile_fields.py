"""Moodle custom profile fields as [mapping.attributes] targets (docs/moodle.md §8), against
the Moodle sandbox: written on create and update as customfields, read back and compared,
a checkbox field as true/false, and doctor's check of the mapped shortnames."""

from __future__ import annotations

import asyncio
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.world import COLUMNS
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError, config_from_dict
from rostersync.sync.connectors.moodle import MoodleTarget
from rostersync.sync.engine import Engine
from tests.support import World

TOKEN = "0123456789abcdef0123456789abcdef"
TOKEN_ENV = "ROSTERSYNC_TEST_MOODLE_TOKEN"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
MAPPING = ["[mapping.attributes]", "profile_field_costcentre = 'upper(department)'",
           "profile_field_mentor = 'attributes.worker_type == \"Employee\"'"]


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=("costcentre", "mentor")) as server:
        server.site.profile_datatypes["mentor"] = "checkbox"
        yield server


def _config(tmp_path: Path, base_url: str, csv_path: Path, extra: list[str]):
    lines = ["[database]", f'path = "{tmp_path / "rostersync.db"}"', "",
             "[hris]", 'type = "csv"', f'path = "{csv_path}"', "", "[hris.columns]",
             *[f'{k} = "{v}"' for k, v in COLUMNS.items()], "",
             "[hris.attributes]", 'worker_type = "Worker Type"', "",
             "[lms]", 'type = "moodle"', f'base_url = "{base_url}"',
             f'token_env = "{TOKEN_ENV}"', 'auth = "oauth2"', "batch_size = 10", "",
             *extra, "", "[guards]", "mass_deactivation_min = 1000", ""]
    path = tmp_path / "rostersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return config_from_dict(tomllib.loads(path.read_text()), path)


def _engine(tmp_path: Path, lms: MoodleSandbox, people: int = 12) -> tuple[Engine, World]:
    world = World.generate(people)
    csv_path = world.write(tmp_path / "employees.csv")
    config = _config(tmp_path, lms.base_url, csv_path, MAPPING)
    return Engine(config, Store(config.database.path), clock=FrozenClock(NOW)), world


def _sync(engine: Engine):
    return asyncio.run(engine.sync("full"))


def test_a_profile_field_name_is_taken_and_anything_else_refused(tmp_path):
    csv_path = World.generate(1).write(tmp_path / "employees.csv")
    config = _config(tmp_path, "http://127.0.0.1:1", csv_path, MAPPING)
    assert config.lms.mapped_attributes == ("profile_field_costcentre", "profile_field_mentor")
    for extra, says in (
            (["[mapping.attributes]", "city = 'location'"],
             "takes custom profile fields, named profile_field_<shortname>"),
            (["[mapping.attributes]", "'profile_field_cost centre' = 'department'"],
             "takes custom profile fields"),
            (["[lms.fields]", 'title = "profile_field_costcentre"', "",
              "[mapping.attributes]", "profile_field_costcentre = 'department'"],
             "lms.fields.title already writes that profile field; map title instead")):
        with pytest.raises(ConfigError, match=says):
            _config(tmp_path, "http://127.0.0.1:1", csv_path, extra)


def test_mapped_profile_fields_are_written_read_back_and_then_idle(tmp_path, lms):
    engine, world = _engine(tmp_path, lms)
    assert _sync(engine).status == "succeeded"
    for key, row in world.rows.items():
        fields = lms.site.user_by("idnumber", key)["customfields"]
        assert fields["costcentre"] == row["Department"].upper()
        assert fields["mentor"] == ("1" if row["Worker Type"] == "Employee" else "0")
    second = _sync(engine)
    assert second.counts.get("planned", {}) == {}  # checkbox "1"/"0" reads back as true/false
    # An LMS-side change is put back by one update, sent as customfields.
    first = next(iter(world.rows))
    lms.site.user_by("idnumber", first)["customfields"]["costcentre"] = "HAND-EDITED"
    third = _sync(engine)
    assert third.counts["planned"] == {"update": 1}
    assert lms.site.user_by("idnumber", first)["customfields"]["costcentre"] == \
        world.rows[first]["Department"].upper()
    updates = [body for function, _query, body in lms.calls
               if function == "core_user_update_users"]
    assert len(updates) == 1 and "%5Bcustomfields%5D%5B0%5D%5Btype%5D=costcentre" in updates[0]


def test_a_field_the_site_lacks_fails_the_write_naming_it(tmp_path, lms):
    lms.site.profile_fields.discard("costcentre")  # the site silently ignores the value
    engine, _world = _engine(tmp_path, lms, people=3)
    report = _sync(engine)
    assert report.status != "succeeded"
    errors = [r["last_error"] for r in engine.store.rows("SELECT * FROM ops")]
    assert all("profile_field_costcentre: sent" in (e or "") for e in errors)


def test_doctor_confirms_fields_users_hold_and_warns_of_the_others(tmp_path, lms):
    engine, _world = _engine(tmp_path, lms, people=3)

    async def check():
        async with MoodleTarget(engine.config.lms) as target:
            return await target.check_mapped_attributes()

    before = asyncio.run(check())
    assert before[0] and before[1].startswith("could not confirm profile_field_costcentre, "
                                              "profile_field_mentor")
    _sync(engine)
    assert asyncio.run(check()) == (True, "the site's users show all 2 mapped profile fields")
