"""SCIM vendor profiles: what an LMS will not do (delete, change a user's key) is known up
front, refused in the config or left alone by the engine, never discovered as errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError, config_from_dict, load_config
from rostersync.sync.engine import Engine
from tests.support import World, by_external_id, lms_users, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
BASE = {"hris": {"type": "csv", "path": "x.csv"},
        "lms": {"type": "scim", "base_url": "http://127.0.0.1:9/v2"}}


def config(**lms):
    return config_from_dict({**BASE, "lms": {**BASE["lms"], **lms}})


def test_profiles_that_cannot_delete_refuse_delete_in_the_config():
    for profile in ("linkedin_learning", "talentlms"):
        with pytest.raises(ConfigError, match=f"not possible with profile '{profile}'"):
            config(profile=profile, deactivate_by="delete")
    assert config(profile="absorb", deactivate_by="delete").lms.deactivate_by == "delete"


def test_an_lms_keyed_by_email_needs_email_user_names():
    assert config(profile="360learning").lms.unmanaged_fields == {"user_name", "email"}
    assert config(profile="360learning", immutable_fields=[]).lms.unmanaged_fields == set()
    with pytest.raises(ConfigError, match=r'mapping\.user_name must be "email"'):
        config_from_dict({**BASE, "lms": {**BASE["lms"], "profile": "360learning"},
                          "mapping": {"user_name": "employee_id"}})


def test_an_email_change_is_not_sent_to_an_lms_keyed_by_email(tmp_path, scim_server,
                                                              lms_token):
    world = World.generate(10)
    csv_path = world.write(tmp_path / "employees.csv")
    path = write_config(tmp_path, scim_server.base_url, csv_path)
    path.write_text(path.read_text().replace('[lms]\ntype = "scim"',
                                             '[lms]\ntype = "scim"\nprofile = "360learning"'))
    cfg = load_config(path)
    engine = Engine(cfg, Store(cfg.database.path), clock=FrozenClock(NOW))
    assert asyncio.run(engine.sync("full")).counts["planned"] == {"create": 10}
    before = by_external_id(lms_users(scim_server.base_url, lms_token))["E00004"][0]
    world.rows["E00004"].update({"Work Email": "renamed.4@acme.example", "Job Title": "Lead"})
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.counts["planned"] == {"update": 1}  # the title only
    after = by_external_id(lms_users(scim_server.base_url, lms_token))["E00004"][0]
    assert after["userName"] == before["userName"] and after["emails"] == before["emails"]
    assert after["title"] == "Lead"
    assert asyncio.run(engine.sync("full")).counts["planned"] == {}
