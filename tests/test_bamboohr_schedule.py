"""BambooHR future-dated values: the sandbox shows them as BambooHR does with
onlyCurrent=false, and the source keeps them out of the current values, carries a future
termination, and re-reads a person when a scheduled change falls due. Also: a resync
refuses a configured field the one-person answer no longer has.

Assumed (docs/bamboohr.md marks them [inferred]): the tables' JSON shape, and that a row
taking effect does not show in /v1/employees/changed.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rostersync.sandbox.bamboohr import EmployeeStore, generate, seed_schedule
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.config import BambooHRSourceConfig, Config
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.bamboohr_schedule import SCHEDULED
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.engine import Engine
from tests.bamboo_fixtures import KEY, KEY_ENV, NOW
from tests.support import TOKEN_ENV, by_external_id, lms_users

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

def day(days: int) -> str:
    return (NOW + timedelta(days=days)).date().isoformat()




def source(hris, clock, **config) -> BambooHRSource:
    return BambooHRSource(BambooHRSourceConfig(base_url=hris.base_url, api_key_env=KEY_ENV,
                                               **config), now=clock.now)


def employee(hris, emp_id: str, only_current: bool) -> dict:
    flag = "true" if only_current else "false"
    with httpx.Client(auth=(KEY, "x"), headers={"Accept": "application/json"}) as c:
        answer = c.get(f"{hris.base_url}/v1/employees/{emp_id}?fields=employmentHistoryStatus,"
                       f"department,jobTitle,terminationDate&onlyCurrent={flag}")
    return answer.json()


# -- the sandbox ----------------------------------------------------------------------


def test_only_current_false_shows_every_future_dated_history_value(hris, clock):
    hris.schedule("4", "employmentStatus", day(5), employmentStatus="Leave of Absence")
    hris.schedule("4", "jobInfo", day(3), department="Sales", jobTitle="Lead")
    assert employee(hris, "4", only_current=True) == {
        "id": "4", "employmentHistoryStatus": "Full-Time", "department": "Engineering",
        "jobTitle": "Specialist", "terminationDate": "0000-00-00"}
    assert employee(hris, "4", only_current=False) == {
        "id": "4", "employmentHistoryStatus": "Leave of Absence", "department": "Sales",
        "jobTitle": "Lead", "terminationDate": "0000-00-00"}
    clock.advance(days=3)
    now_current = employee(hris, "4", only_current=True)
    assert (now_current["department"], now_current["employmentHistoryStatus"]) == (
        "Sales", "Full-Time")  # the transfer's date came; the leave's has not


def test_a_row_dated_today_is_current(hris):
    hris.schedule("2", "jobInfo", day(0), department="Finance")
    assert employee(hris, "2", only_current=True)["department"] == "Finance"


def test_table_rows_and_a_row_taking_effect_is_not_a_change(hris, clock):
    hris.schedule("5", "jobInfo", day(2), department="Sales", location="Munich")
    with httpx.Client(auth=(KEY, "x"), headers={"Accept": "application/json"}) as c:
        rows = c.get(f"{hris.base_url}/v1/employees/5/tables/jobInfo").json()
        clock.advance(days=3)
        changed = c.get(f"{hris.base_url}/v1/employees/changed?since="
                        + (NOW + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")).json()
    assert rows == [{"id": "1", "employeeId": "5", "date": day(2), "department": "Sales",
                     "location": "Munich"}]
    assert changed["employees"] == {}


def test_the_seeded_world_has_a_scheduled_leave_and_transfer(clock):
    store = EmployeeStore(clock.now)
    for person in generate(5):
        store.put(person)
    seed_schedule(store, 5)
    assert store.rows("3") == {"employmentStatus": [
        {"date": day(21), "employmentStatus": "Leave of Absence"}]}
    assert store.rows("4")["jobInfo"][0]["date"] == day(14)


# -- the source: current values stay current -----------------------------------------


def test_scheduled_leave_and_transfer_are_not_read_as_current(hris, clock):
    hris.schedule("4", "employmentStatus", day(5), employmentStatus="Leave of Absence")
    hris.schedule("5", "jobInfo", day(3), department="Sales", jobTitle="Lead")
    hris.update("6", terminationDate=day(10))
    src = source(hris, clock)
    records = {r.key: r for r in src.scan_full()}
    four, five = src.fields(records["4"]), src.fields(records["5"])
    assert four["status"] == "Full-Time"
    # A future termination is still seen (the engine schedules it for its date).
    assert src.fields(records["6"])["termination_date"] == day(10)
    assert SCHEDULED not in records["6"].raw
    assert (five["department"], five["job_title"]) == ("Engineering", "Specialist")
    assert records["4"].raw[SCHEDULED] == [{"date": day(5), "table": "employmentStatus",
                                            "changes": {"employmentHistoryStatus":
                                                        "Leave of Absence"}}]
    assert records["5"].raw[SCHEDULED] == [{"date": day(3), "table": "jobInfo",
                                            "changes": {"department": "Sales",
                                                        "jobTitle": "Lead"}}]
    assert SCHEDULED not in records["3"].raw


def test_fetch_one_keeps_current_values_and_the_future_termination(hris, clock):
    hris.schedule("4", "employmentStatus", day(5), employmentStatus="Leave of Absence")
    hris.update("4", terminationDate=day(30))
    src = source(hris, clock)
    fields = src.fields(src.fetch_one("4"))
    assert (fields["status"], fields["termination_date"]) == ("Full-Time", day(30))


def test_delta_rereads_a_person_when_the_scheduled_date_comes(hris, clock):
    clock.advance(minutes=1)
    src = source(hris, clock)
    list(src.scan_full())
    clock.advance(minutes=1)
    hris.schedule("5", "jobInfo", (NOW + timedelta(days=3)).date().isoformat(),
                  department="Sales")
    clock.advance(minutes=1)
    since = datetime.fromisoformat(src.watermark())
    [five] = list(src.scan_delta(since))  # the row was entered: a change
    assert src.fields(five)["department"] == "Engineering"
    since = NOW + timedelta(days=1)  # past that change (changed?since= is inclusive)

    # The day before (the last minute of it): nothing changed, nobody is due.
    clock.set(datetime(2026, 11, 28, 23, 59, tzinfo=UTC))
    assert list(src.scan_delta(since)) == []
    # The date itself: the row took effect without a change; the source re-reads 5.
    clock.advance(minutes=1)
    [again] = list(src.scan_delta(since))
    assert again.key == "5" and src.fields(again)["department"] == "Sales"
    assert SCHEDULED not in again.raw
    assert list(src.scan_delta(since)) == []  # no longer pending


# -- the resync: a configured field missing from the one-person answer ----------------


def test_resync_refuses_a_configured_field_missing_from_the_one_person_answer(hris, clock):
    hris.forget_field("department")  # HR renamed it
    with pytest.raises(FeedError) as caught:
        source(hris, clock).fetch_one("3")
    assert str(caught.value) == (
        "BambooHR GET /v1/employees/{id}: the configured field 'department' (named by "
        "hris.fields) is missing from the employee's fields; restore it in the export, or "
        "correct the config, or list it in hris.optional_columns if the feed may lack it")
    relaxed = source(hris, clock, optional_columns=["department"])
    assert relaxed.fields(relaxed.fetch_one("3"))["department"] is None


def test_engine_resync_is_rejected_and_writes_nothing(hris, clock, scim_server, lms_token,
                                                      tmp_path):
    config = _config(hris, scim_server, tmp_path)
    clock.advance(minutes=1)
    engine = Engine(config, Store(config.database.path),
                    source=BambooHRSource(config.hris, now=clock.now), clock=clock)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    hris.update("3", department="Sales")
    hris.forget_field("department")
    report = asyncio.run(engine.resync("3"))
    assert report.status == "rejected"
    assert "the configured field 'department' (named by hris.fields)" in report.message
    users = by_external_id(lms_users(scim_server.base_url, lms_token))
    assert users["3"][0][ENTERPRISE]["department"] == "Engineering"


# -- end to end: never applied early, applied on the date ---------------------------


def _config(hris, scim_server, tmp_path) -> Config:
    return Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "bamboohr", "base_url": hris.base_url, "api_key_env": KEY_ENV},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
        "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                      "leave of absence": "leave", "inactive": "terminated"}},
        "guards": {"leave_policy": "suspend"},
    })


def test_scheduled_leave_and_transfer_wait_for_their_dates(hris, clock, scim_server,
                                                           lms_token, tmp_path):
    config = _config(hris, scim_server, tmp_path)
    clock.advance(minutes=1)
    engine = Engine(config, Store(config.database.path),
                    source=BambooHRSource(config.hris, now=clock.now), clock=clock)
    assert asyncio.run(engine.sync("full")).status == "succeeded"

    clock.advance(minutes=10)
    hris.schedule("4", "employmentStatus", day(5), employmentStatus="Leave of Absence")
    hris.schedule("5", "jobInfo", day(3), department="Sales")
    hris.update("6", terminationDate=day(10))
    report = asyncio.run(engine.sync("delta"))
    assert report.status == "succeeded", report.message
    assert report.counts["scheduled"] == 1  # the termination, and only it

    def account(emp_id: str) -> dict:
        return by_external_id(lms_users(scim_server.base_url, lms_token))[emp_id][0]

    assert account("4")["active"] is True
    assert account("5")[ENTERPRISE]["department"] == "Engineering"
    [deactivate] = [o for o in op_store.list_ops(engine.store, employee_id="6")
                    if o["kind"] == "deactivate"]
    assert deactivate["next_attempt_at"] > day(10)

    clock.advance(days=3)  # the transfer's date
    assert asyncio.run(engine.sync("delta")).status == "succeeded"
    assert account("5")[ENTERPRISE]["department"] == "Sales"
    assert account("4")["active"] is True  # the leave is still two days ahead

    clock.advance(days=2)  # the leave's date
    assert asyncio.run(engine.sync("delta")).status == "succeeded"
    assert account("4")["active"] is False
    assert account("6")["active"] is True  # the termination keeps its own date


def test_a_fresh_process_rereads_a_change_that_fell_due(hris, clock, scim_server, lms_token,
                                                        tmp_path):
    """`rostersync sync --delta` from cron is a new process each time: the day to read a
    person again is kept in the database, not in the connector's memory."""
    config = _config(hris, scim_server, tmp_path)

    def run(kind: str) -> None:
        engine = Engine(config, Store(config.database.path),
                        source=BambooHRSource(config.hris, now=clock.now), clock=clock)
        report = asyncio.run(engine.sync(kind))
        assert report.status == "succeeded", report.message

    def department(emp_id: str) -> str:
        return by_external_id(lms_users(scim_server.base_url, lms_token))[emp_id][0][
            ENTERPRISE]["department"]

    clock.advance(minutes=1)
    run("full")
    clock.advance(minutes=10)
    hris.schedule("5", "jobInfo", day(3), department="Sales")
    run("delta")  # lists the scheduled row's edit: the day is recorded
    store = Store(config.database.path)
    assert store.scalar("SELECT revisit_on FROM people WHERE employee_id = '5'") == day(3)
    clock.advance(hours=1)
    hris.update("3", jobTitle="Lead")  # a later edit moves the delta's watermark past 5's
    run("delta")

    eve = datetime.combine(NOW.date() + timedelta(days=3), datetime.min.time(), UTC)
    clock.advance(seconds=(eve - clock.now()).total_seconds() - 60)
    assert clock.now().isoformat() == f"{day(2)}T23:59:00+00:00"
    run("delta")  # the day before: not read again
    assert department("5") == "Engineering"
    clock.advance(minutes=1)  # midnight: read again by a process that never saw it
    run("delta")
    assert department("5") == "Sales"
    assert store.scalar("SELECT revisit_on FROM people WHERE employee_id = '5'") is None
