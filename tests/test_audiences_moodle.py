"""Audiences as Moodle cohorts, against the Moodle sandbox on 127.0.0.1: cohorts end
with exactly the expected members, beside lms.cohorts' department cohorts."""

from __future__ import annotations

import asyncio
import os
import tomllib
from urllib.parse import unquote

import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ConfigError, config_from_dict
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.factory import make_target
from rostersync.sync.engine import Engine
from tests.audience_support import NOW
from tests.support import World
from tests.test_moodle import PROFILE, TOKEN, TOKEN_ENV, write_moodle_config

AUDIENCES = '''
[[audiences]]
id = "sales-compliance"
lms_group = "aud-sales"
rule = 'department == "Sales"'

[[audiences]]
id = "onboarding"
lms_group = "aud-onboarding"
rule = "hire_date within 14 days"
'''


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE) as server:
        yield server


def config_for(lms, tmp_path, extra=AUDIENCES):
    world = World.generate(30)
    csv_path = world.write(tmp_path / "employees.csv")
    path = write_moodle_config(tmp_path, lms.base_url, csv_path)
    text = path.read_text() + "\n" + extra
    return world, csv_path, config_from_dict(tomllib.loads(text), path)


def test_moodle_cohorts_follow_the_rules(lms, tmp_path):
    world, csv_path, config = config_for(lms, tmp_path)
    world.rows["E00031"] = World.person(31, **{"Hire Date": "2026-05-28"})
    world.write(csv_path)
    engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    sales = {k for k, r in world.rows.items() if r["Department"] == "Sales"}
    assert lms.cohort_members("aud-sales") == sales
    assert lms.cohort_members("aud-onboarding") == {"E00031"}

    world.rows["E00005"]["Department"] = "Support"  # leaves Sales
    world.rows["E00006"]["Department"] = "Sales"  # joins it
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert lms.cohort_members("aud-sales") == sales - {"E00005"} | {"E00006"}
    # lms.cohorts keeps its own department cohorts, untouched by the audiences.
    assert "E00005" in lms.cohort_members("dept-support")

    engine.clock.set(NOW.replace(month=6, day=12))  # the 14 days are over
    report = asyncio.run(engine.sync("full"))
    assert report.counts["planned"] == {"member_remove": 1}, report.counts
    assert lms.cohort_members("aud-onboarding") == set()
    again = asyncio.run(engine.sync("full"))
    assert again.counts["planned"] == {}


def test_an_audience_cohort_claimed_by_lms_cohorts_is_refused(lms, tmp_path):
    extra = '[[audiences]]\nid = "x"\nlms_group = "dept-sales"\nrule = \'department == "Sales"\'\n'
    with pytest.raises(ConfigError, match=r"also managed by lms\.cohorts"):
        config_for(lms, tmp_path, extra)


def test_the_audience_cohort_is_looked_up_once_not_per_member(lms, tmp_path):
    world, csv_path, config = config_for(lms, tmp_path)
    engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))
    asyncio.run(engine.sync("full"))
    joining = [k for k, r in world.rows.items() if r["Department"] != "Sales"][:10]
    for key in joining:
        world.rows[key]["Department"] = "Sales"
    world.write(csv_path)
    before = len(lms.function_calls())
    report = asyncio.run(engine.sync("full"))
    assert report.counts["planned"]["member_add"] == 10, report.counts
    calls = lms.function_calls()[before:]
    assert calls.count("core_cohort_add_cohort_members") >= 10
    assert calls.count("core_cohort_get_cohorts") < len(joining)  # not one per member
    assert set(joining) <= lms.cohort_members("aud-sales")
    # Additions waiting behind a call to the cohort went together in the next one.
    bodies = [unquote(body) for function, _query, body in lms.calls[before:]
              if function == "core_cohort_add_cohort_members"]
    assert any("members[1]" in body for body in bodies)


def test_an_unknown_user_fails_alone_among_coalesced_additions(lms, tmp_path):
    _world, _csv_path, config = config_for(lms, tmp_path)
    store = Store(config.database.path)
    asyncio.run(Engine(config, store, clock=FrozenClock(NOW)).sync("full"))
    linked = dict(store.conn.execute(
        "SELECT lms_id, external_key FROM accounts WHERE external_key IS NOT NULL"))
    ids = sorted(linked)[:8]
    onboarding = next(a for a in config.audiences if a.id == "onboarding")

    async def add_all():
        async with make_target(config.lms) as target:
            return await asyncio.gather(
                *(target.add_to_audience(onboarding, i) for i in [*ids[:4], "99999", *ids[4:]]),
                return_exceptions=True)

    outcomes = asyncio.run(add_all())
    assert isinstance(outcomes[4], ConnectorError) and "99999" in str(outcomes[4])
    assert [o for i, o in enumerate(outcomes) if i != 4] == [None] * 8
    assert lms.cohort_members("aud-onboarding") == {linked[i] for i in ids}
