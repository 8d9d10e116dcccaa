"""Workday multi-value cells and dynamic prompts, against the sandbox tenant.

Multi-instance columns come as JSON lists, or joined with ";" (§2.1): a person with two
managers or two statuses is `invalid` drift naming the alias and the values, never a
silently chosen one. Prompt values may follow the clock ({today}, {today-7d}, {now}),
so an as-of prompt does not freeze the report.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime

import pytest

from rostersync.sandbox.workday import DEFAULT_PROMPTS, WorkdaySandbox
from rostersync.sandbox.workday_data import generate
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, ConfigError, config_from_dict
from rostersync.sync.connectors.base import RecordError
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_prompts import check_template, resolve
from rostersync.sync.engine import Engine
from tests.support import TOKEN_ENV, by_external_id, lms_users
from tests.test_workday import NOW, PASSWORD, PASSWORD_ENV, USER, W, canned, config_for

AS_OF = {**DEFAULT_PROMPTS, "As_Of_Date": "As_Of_Date", "Updated_From": "Updated_From"}


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock):
    os.environ[PASSWORD_ENV] = PASSWORD
    with WorkdaySandbox(user=USER, password=PASSWORD, clock=clock.now,
                        prompts=AS_OF) as server:
        for worker in generate(7):
            server.put(worker)
        yield server


def source(hris, clock, **overrides) -> WorkdaySource:
    return WorkdaySource(config_for(hris, **overrides), now=clock.now,
                         sleep=lambda s: pytest.fail(f"slept {s}"))


def fields_of(src: WorkdaySource, key: str) -> dict[str, str | None]:
    record = next(r for r in src.scan_full() if r.key == key)
    return src.fields(record)


# -- multi-value cells ---------------------------------------------------------------


@pytest.mark.parametrize(("column", "value", "message"), [
    ("Manager_Employee_ID", "21001;21002",
     "holds 2 values joined by ';' (a multi-instance column); the report must give one "
     "value (value '21001;21002')"),
    ("Manager_Employee_ID", ["21001", "21002"],
     "holds 2 values (a multi-instance column); the report must give one value "
     "(value '21001; 21002')"),
    ("Worker_Status", "Active; Terminated",
     "holds 2 values joined by ';' (a multi-instance column); the report must give one "
     "value (value 'Active; Terminated')"),
    ("Worker_Status", ["Active", "On Leave"],
     "holds 2 values (a multi-instance column); the report must give one value "
     "(value 'Active; On Leave')"),
])
def test_a_multi_valued_manager_status_or_flag_is_a_record_error(hris, clock, column, value,
                                                                 message):
    hris.update(W(3), **{column: value})
    with pytest.raises(RecordError) as err:
        fields_of(source(hris, clock), W(3))
    assert str(err.value) == f"workday:worker {W(3)} (Report_Entry[2]) field {column}: {message}"


def test_a_multi_valued_flag_is_a_record_error(hris, clock):
    # The sandbox renders flags as one boolean; this row is what a joined flag would be.
    hris.faults.push(canned([{"Worker_WID": "x", "Worker_Status": "Active", "On_Leave": "0;1"}]))
    src = source(hris, clock)
    [record] = src.scan_full()
    with pytest.raises(RecordError) as err:
        src.fields(record)
    assert str(err.value) == (
        "workday:worker x (Report_Entry[0]) field On_Leave: holds 2 values joined by ';' (a "
        "multi-instance column); the report must give one value (value '0;1')")


@pytest.mark.parametrize("value", ["21001;21001", ["21001", "21001"], "21001;"])
def test_one_value_repeated_or_with_a_stray_separator_is_one_value(hris, clock, value):
    # Other columns keep a ";" as text: a job title may hold one.
    hris.update(W(3), Manager_Employee_ID=value, Business_Title="Engineer; Platform")
    got = fields_of(source(hris, clock), W(3))
    assert (got["manager_id"], got["job_title"]) == (W(1), "Engineer; Platform")


def test_the_separator_can_be_switched_off(hris, clock):
    hris.update(W(3), Manager_Employee_ID="21001;21002")
    got = fields_of(source(hris, clock, multi_value_separator=""), W(3))
    assert got["manager_id"] == "21001;21002"  # no worker has it: the engine leaves it


def test_a_person_with_two_managers_is_invalid_drift_and_keeps_the_lms(
        hris, clock, scim_server, lms_token, tmp_path):
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "workday", "base_url": hris.base_url,
                 "report_path": hris.report_path, "user": USER, "password_env": PASSWORD_ENV},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
    })
    engine = Engine(config, Store(config.database.path),
                    source=WorkdaySource(config.hris, now=clock.now), clock=clock)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    before = by_external_id(lms_users(scim_server.base_url, lms_token))[W(7)][0]
    clock.advance(hours=1)
    hris.update(W(7), Manager_Employee_ID=["21001", "21002"], Business_Title="Lead")
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["drift"]["invalid"] == 1
    (detail,) = [json.loads(r["detail"]) for r in engine.store.rows(
        "SELECT detail FROM drift WHERE kind = 'invalid' AND resolved_at IS NULL")]
    assert "field Manager_Employee_ID: holds 2 values" in detail["problems"][0]
    assert "'21001; 21002'" in detail["problems"][0]
    after = by_external_id(lms_users(scim_server.base_url, lms_token))[W(7)][0]
    assert after.get("title") == before.get("title")  # nothing sent for that person


# -- dynamic prompts -------------------------------------------------------------------

INSTANT = datetime(2026, 11, 26, 9, 30, 15, 250000, tzinfo=UTC)


@pytest.mark.parametrize(("template", "value"), [
    ("{today}", "2026-11-26"),
    ("{today-7d}", "2026-11-19"),
    ("{today+1w}", "2026-12-03"),
    ("{today-0d}", "2026-11-26"),
    ("{now}", "2026-11-26T09:30:15.250+00:00"),
    ("{now-2h}", "2026-11-26T07:30:15.250+00:00"),
    ("{now-90m}", "2026-11-26T08:00:15.250+00:00"),
    ("{today-1d}", "2026-11-25"),  # 09:30 on the 26th minus a day: the 25th
    ("as of {today}", "as of 2026-11-26"),
    ("d588c41a446c11de98360015c5e6daf6", "d588c41a446c11de98360015c5e6daf6"),
    ("{{literal}}", "{literal}"),
])
def test_placeholders_resolve_against_the_given_instant(template, value):
    assert resolve(check_template(template), INSTANT) == value


def test_today_minus_days_crosses_midnight_at_the_edge():
    just_after = datetime(2026, 11, 26, 0, 0, 0, tzinfo=UTC)
    just_before = datetime(2026, 11, 25, 23, 59, 59, tzinfo=UTC)
    assert resolve("{today}", just_after) == "2026-11-26"
    assert resolve("{today}", just_before) == "2026-11-25"
    assert resolve("{now-1m}", just_after) == "2026-11-25T23:59:00.000+00:00"


@pytest.mark.parametrize(("template", "why"), [
    ("{yesterday}", "'{yesterday}' in '{yesterday}' is not a placeholder"),
    ("{today-7}", "'{today-7}' in '{today-7}' is not a placeholder"),
    ("{today-2h}", "{today} moves by days or weeks only"),
    ("{today", "'{' in '{today' is not a placeholder"),
])
def test_unknown_placeholders_are_refused_when_the_config_loads(template, why):
    hris = {"type": "workday", "base_url": "https://wd.example", "report_path": "ccx/r",
            "user": USER, "password_env": PASSWORD_ENV, "prompts": {"As_Of_Date": template}}
    with pytest.raises(ConfigError) as err:
        config_from_dict({"hris": hris, "lms": {"type": "scim",
                                                "base_url": "https://lms.example"}})
    assert "As_Of_Date: " in str(err.value) and why in str(err.value)


def test_prompts_follow_the_clock_from_one_pull_to_the_next(hris, clock):
    src = source(hris, clock, prompts={"As_Of_Date": "{today}", "Updated_From": "{today-7d}",
                                       "Worker_Type": "Employee"})
    list(src.scan_full())
    clock.advance(days=1)
    list(src.scan_full())
    sent = [params for _m, _s, params in hris.requests if "format" in params]
    assert sent == [
        {"format": "json", "As_Of_Date": "2026-11-26", "Updated_From": "2026-11-19",
         "Worker_Type": "Employee"},
        {"format": "json", "As_Of_Date": "2026-11-27", "Updated_From": "2026-11-20",
         "Worker_Type": "Employee"}]


def test_doctor_notes_show_the_effective_prompts(hris, clock):
    src = source(hris, clock, prompts={"As_Of_Date": "{today}", "Worker_Type": "Employee"})
    list(src.scan_full())
    notes = dict(src.notes())
    assert notes["hris prompts"] == ("sent as As_Of_Date=2026-11-26 (from '{today}'), "
                                     "Worker_Type=Employee")
    assert notes["hris auth"] == (f"HTTP Basic as {USER} (password from ${PASSWORD_ENV})")
    assert notes["hris schema"].startswith("the report's schema lists 19 columns")
