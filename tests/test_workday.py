"""Workday RaaS: the sandbox's wire rules, the source against it, and engine runs into SCIM.

Behaviour that docs/workday.md marks inferred (the SOAP Fault / JSON error bodies, empty
cells left out of rows, prompts refused when undeclared, Active cleared before a future
hire date, Retry-After on throttling) is assumed here and must be checked against a real
tenant before go-live.
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rostersync.sandbox.workday import Truncated, WorkdaySandbox, malformed, soap_fault, throttled
from rostersync.sandbox.workday_data import employee_id, generate, worker_wid
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, ConfigError, config_from_dict
from rostersync.sync.connectors.base import FeedError, RecordError
from rostersync.sync.connectors.factory import make_source
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.engine import Engine
from rostersync.sync.status import build_status
from tests.support import TOKEN_ENV, by_external_id, lms_users

USER = "isu_lms@acme"
PASSWORD = "sandbox-password"
TOKEN = "sandbox-bearer-token"
PASSWORD_ENV = "ROSTERSYNC_TEST_WORKDAY_PASSWORD"
TOKEN_ENV_WD = "ROSTERSYNC_TEST_WORKDAY_TOKEN"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "workday.toml"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
W = worker_wid  # worker i's key


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock):
    os.environ[PASSWORD_ENV] = PASSWORD
    os.environ[TOKEN_ENV_WD] = TOKEN
    with WorkdaySandbox(user=USER, password=PASSWORD, token=TOKEN, clock=clock.now) as server:
        for worker in generate(7):
            server.put(worker)
        yield server


def config_for(hris, **overrides) -> WorkdaySourceConfig:
    settings = {"base_url": hris.base_url, "report_path": hris.report_path,
                "user": USER, "password_env": PASSWORD_ENV, **overrides}
    return WorkdaySourceConfig.model_validate(settings)


def source(hris, clock, *, sleep=None, jitter=lambda: 1.0, **overrides) -> WorkdaySource:
    return WorkdaySource(config_for(hris, **overrides), now=clock.now,
                         sleep=sleep or (lambda s: pytest.fail(f"unexpected sleep {s}")),
                         jitter=jitter)


def by_key(src: WorkdaySource) -> dict[str, dict[str, str | None]]:
    return {r.key: src.fields(r) for r in src.scan_full()}


def canned(rows) -> tuple[int, dict[str, str], bytes]:
    """A 200 answer with exactly these rows (for shapes the sandbox never produces)."""
    return 200, {"Content-Type": "application/json"}, json.dumps({"Report_Entry": rows}).encode()


# -- the sandbox speaks RaaS ---------------------------------------------------------


def test_report_is_report_entry_rows_with_empty_cells_left_out(hris):
    answer = httpx.get(hris.report_url, params={"format": "json"}, auth=(USER, PASSWORD))
    rows = answer.json()["Report_Entry"]
    assert answer.status_code == 200 and len(rows) == 7
    assert rows[1]["Worker_WID"] == W(2) and rows[1]["Manager_Employee_ID"] == "21001"
    assert rows[1]["Active"] == "1" and rows[1]["On_Leave"] == "0"
    assert "Termination_Date" not in rows[1] and "Manager_Employee_ID" not in rows[0]


def test_sandbox_refuses_bad_credentials_with_a_soap_fault(hris):
    url, params = hris.report_url, {"format": "json"}
    wrong = httpx.get(url, params=params, auth=(USER, "nope"))
    bearer = httpx.get(url, params=params, headers={"Authorization": f"Bearer {TOKEN}"})
    missing = httpx.get(url, params=params)
    assert wrong.status_code == 401 and b"<faultstring>invalid username" in wrong.content
    assert bearer.status_code == 200
    assert missing.status_code == 401 and b"authentication required" in missing.content


def test_sandbox_prompts_filter_and_undeclared_ones_are_refused(hris):
    auth = (USER, PASSWORD)
    one = httpx.get(hris.report_url, params={"format": "json", "Employee_ID": "21003"},
                    auth=auth)
    typo = httpx.get(hris.report_url, params={"format": "json", "Employe_ID": "1"}, auth=auth)
    xml = httpx.get(hris.report_url, auth=auth)
    assert [r["Worker_WID"] for r in one.json()["Report_Entry"]] == [W(3)]
    assert typo.status_code == 400 and b"Invalid prompt: Employe_ID" in typo.content
    assert xml.status_code == 400


# -- the source: mapping -------------------------------------------------------------


def test_full_pull_maps_aliases_and_resolves_the_manager_to_its_key(hris, clock):
    hris.update(W(5), Preferred_First_Name="Fifi")
    src = source(hris, clock, prompts={"Worker_Type": "Employee"})
    records = list(src.scan_full())
    assert [r.key for r in records] == [W(i) for i in range(1, 8)]
    five = records[4]
    assert five.locator == f"workday:worker {W(5)} (Report_Entry[4])"
    worker = generate(5)[4]
    assert src.fields(five) == {
        "employee_id": W(5), "employee_number": "21005",
        "first_name": worker["Legal_First_Name"], "last_name": worker["Legal_Last_Name"],
        "preferred_name": "Fifi", "email": worker["Work_Email"],
        "department": worker["Supervisory_Organization"],
        "cost_center": worker["Cost_Center"], "job_title": "Specialist",
        "location": "Berlin", "manager_id": W(1), "status": "Active",
        "hire_date": "2020-03-01", "termination_date": None,
        "source_updated_at": "2026-11-26T09:00:00.000+00:00",
    }
    # The report, then its schema (one request more per full pull).
    assert hris.requests == [("GET", "basic", {"format": "json", "Worker_Type": "Employee"}),
                             ("GET", "basic", {"xsds": ""})]
    assert not src.supports_delta()


def test_bearer_auth_reads_the_token_from_its_variable(hris, clock):
    src = source(hris, clock, auth="bearer", user=None, password_env=None,
                 token_env=TOKEN_ENV_WD)
    assert len(by_key(src)) == 7
    assert hris.requests[0][1] == "bearer"


@pytest.mark.parametrize("booleans", ["text", "json"])
def test_flags_decide_the_status_in_either_boolean_encoding(clock, booleans):
    os.environ[PASSWORD_ENV] = PASSWORD
    with WorkdaySandbox(user=USER, password=PASSWORD, clock=clock.now,
                        booleans=booleans) as server:
        for worker in generate(4):
            server.put(worker)
        server.update(W(2), On_Leave=True, Worker_Status="On Leave")
        server.update(W(3), Termination_Date="2026-10-31")  # past: the report says so
        server.update(W(4), Worker_Status=None)  # no text status: the flags alone decide
        raw = httpx.get(server.report_url, params={"format": "json"}, auth=(USER, PASSWORD))
        assert raw.json()["Report_Entry"][0]["Active"] == ("1" if booleans == "text" else True)
        got = by_key(source(server, clock))
    assert {k: v["status"] for k, v in got.items()} == {
        W(1): "Active", W(2): "leave", W(3): "terminated", W(4): "active"}


def test_a_terminated_flag_and_own_spellings_can_be_configured(hris, clock):
    hris.faults.push(canned([
        {"Worker_WID": "a", "Legal_First_Name": "A", "Legal_Last_Name": "A",
         "Terminated": "Y", "Active": "Y"},
        {"Worker_WID": "b", "Legal_First_Name": "B", "Legal_Last_Name": "B",
         "Terminated": "N", "Active": "Y"},
        {"Worker_WID": "c", "Legal_First_Name": "C", "Legal_Last_Name": "C",
         "Terminated": "maybe"}]))
    src = source(hris, clock, true_values=["Y"], false_values=["N"],
                 status={"terminated_flag": "Terminated", "leave_flag": None},
                 columns={"employee_id": "Worker_WID", "first_name": "Legal_First_Name",
                          "last_name": "Legal_Last_Name"})
    a, b, c = src.scan_full()
    assert src.fields(a)["status"] == "terminated" and src.fields(b)["status"] == "active"
    with pytest.raises(RecordError) as caught:
        src.fields(c)
    assert str(caught.value) == (
        "workday:worker c (Report_Entry[2]) field Terminated: is not a yes/no flag; add the "
        "spelling to hris.true_values or hris.false_values (value 'maybe')")


def test_future_dated_termination_stays_active_until_the_date(hris, clock):
    hris.update(W(4), Termination_Date="2026-12-31")
    src = source(hris, clock)
    four = by_key(src)[W(4)]
    assert (four["status"], four["termination_date"]) == ("Active", "2026-12-31")
    clock.set(datetime(2027, 1, 1, 9, 0, tzinfo=UTC))  # the report is evaluated as of now
    four = by_key(src)[W(4)]
    assert (four["status"], four["termination_date"]) == ("terminated", "2026-12-31")


def test_future_hire_with_active_cleared_is_a_pre_hire(hris, clock):
    hris.update(W(6), Hire_Date="2027-02-01", Worker_Status="Active")
    assert by_key(source(hris, clock))[W(6)]["status"] == "pre_hire"
    rule_off = source(hris, clock, status={"future_hire_is_pre_hire": False})
    assert by_key(rule_off)[W(6)]["status"] == "terminated"


def test_zoned_dates_and_manager_references_by_key(hris, clock):
    hris.update(W(2), Hire_Date="2021-07-31-07:00", Manager_WID=W(1))
    src = source(hris, clock, manager_reference="employee_id",
                 columns={"employee_id": "Worker_WID", "first_name": "Legal_First_Name",
                          "last_name": "Legal_Last_Name", "status": "Worker_Status",
                          "hire_date": "Hire_Date", "manager_id": "Manager_WID"})
    two = by_key(src)[W(2)]
    assert (two["hire_date"], two["manager_id"]) == ("2021-07-31", W(1))


def test_a_row_without_the_key_alias_is_a_record_error_naming_index_and_field(hris, clock):
    hris.put({**generate(8)[7], "Worker_WID": ""})  # left out of the row: it is empty
    src = source(hris, clock)
    records = list(src.scan_full())
    assert [r.key for r in records][-1] == "" and len(records) == 8
    with pytest.raises(RecordError) as caught:
        src.fields(records[-1])
    assert (caught.value.locator, caught.value.field) == ("workday:Report_Entry[7]",
                                                          "Worker_WID")
    assert "no value for the key alias" in str(caught.value)


def test_a_multi_instance_cell_is_a_record_error(hris, clock):
    hris.faults.push(canned([{"Worker_WID": "x", "Work_Email": ["a@x.example", "b@x.example"],
                              "Worker_Status": "Active"}]))
    src = source(hris, clock)
    [record] = src.scan_full()
    with pytest.raises(RecordError, match="field Work_Email: holds 2 values"):
        src.fields(record)


def test_status_rules_are_part_of_each_rows_digest(hris, clock):
    plain = next(source(hris, clock).scan_full())
    other = next(source(hris, clock, status={"inactive_status": "pre_hire"}).scan_full())
    assert plain.key == other.key and plain.digest != other.digest


# -- the source: one worker ------------------------------------------------------------


def test_fetch_one_uses_the_prompt_and_resolves_the_manager(hris, clock):
    src = source(hris, clock, fetch_prompt="Worker_WID")
    record = src.fetch_one(W(3))
    assert record is not None and record.key == W(3)
    assert src.fields(record)["manager_id"] == W(1)  # one whole report filled the directory
    assert src.fetch_one("no-such-worker") is None
    assert [params for _, _, params in hris.requests] == [
        {"format": "json", "Worker_WID": W(3)}, {"format": "json"},
        {"format": "json", "Worker_WID": "no-such-worker"}]


def test_fetch_one_refuses_a_prompt_that_returns_other_workers(hris, clock):
    rows = httpx.get(hris.report_url, params={"format": "json"},
                     auth=(USER, PASSWORD)).json()["Report_Entry"]
    hris.faults.push(canned(rows[:2]))  # the prompt was ignored upstream
    src = source(hris, clock, fetch_prompt="Worker_WID")
    with pytest.raises(FeedError, match=rf"prompt Worker_WID='{W(1)}' returned other "
                                        rf"workers too \({W(2)}\)"):
        src.fetch_one(W(1))


def test_fetch_one_without_a_prompt_scans_the_report(hris, clock):
    src = source(hris, clock)
    assert src.fetch_one(W(5)).key == W(5)
    assert src.fetch_one("nobody") is None
    assert all(params == {"format": "json"} for _, _, params in hris.requests)


# -- the source: errors and throttling -----------------------------------------------


def test_a_throttling_burst_is_survived(hris, clock):
    hris.faults.push(throttled(429, "3"), throttled(503), throttled(429, "1"))
    slept: list[float] = []
    assert len(by_key(source(hris, clock, sleep=slept.append))) == 7
    assert slept == [3.0, 4.0, 1.0]  # no Retry-After: backoff_base_seconds * 2 ** 1


def test_transient_failures_give_up_after_bounded_attempts(hris, clock):
    hris.faults.push(*[soap_fault(500, "Server", "Report execution failed")] * 4)
    slept: list[float] = []
    with pytest.raises(FeedError, match=r"HTTP 500 \(Report execution failed\); still "
                                        r"failing after 4 tries"):
        list(source(hris, clock, sleep=slept.append).scan_full())
    assert slept == [2.0, 4.0, 8.0]


def test_a_long_retry_after_is_not_waited_for(hris, clock):
    hris.faults.push(throttled(503, "3600"))
    with pytest.raises(FeedError, match="asked to wait 3600s"):
        list(source(hris, clock).scan_full())


def test_auth_failures_name_the_settings_never_the_secret(hris, clock):
    os.environ[PASSWORD_ENV] = "wrong-password-value"
    with pytest.raises(FeedError) as basic:
        list(source(hris, clock).scan_full())
    os.environ[TOKEN_ENV_WD] = "wrong-token-value"
    with pytest.raises(FeedError) as bearer:
        list(source(hris, clock, auth="bearer", token_env=TOKEN_ENV_WD).scan_full())
    assert "401 unauthorised (invalid username or password); check hris.user " \
           f"({USER})" in str(basic.value)
    assert f"({PASSWORD_ENV})" in str(basic.value)
    assert "(invalid or expired token)" in str(bearer.value)
    assert "wrong-password-value" not in str(basic.value)
    assert "wrong-token-value" not in str(bearer.value)


def test_json_error_bodies_and_missing_reports_are_explained(clock):
    os.environ[PASSWORD_ENV] = "nope"
    with WorkdaySandbox(user=USER, password=PASSWORD, clock=clock.now,
                        error_body="json") as server:
        with pytest.raises(FeedError, match=r"401 unauthorised \(invalid username or password"):
            list(source(server, clock).scan_full())
        os.environ[PASSWORD_ENV] = PASSWORD
        with pytest.raises(FeedError, match=r"HTTP 404 \(No web service report at "):
            list(source(server, clock, report_path="ccx/service/customreport2/acme/x/y")
                 .scan_full())


def test_malformed_and_truncated_bodies_are_feed_errors_naming_the_url(hris, clock):
    hris.faults.push(Truncated(0.5), malformed())
    url = f"{hris.report_url}?format=json"
    with pytest.raises(FeedError) as cut:
        list(source(hris, clock).scan_full())
    with pytest.raises(FeedError) as html:
        list(source(hris, clock).scan_full())
    assert str(cut.value).startswith(f"Workday GET {url}: the JSON answer ends early after ")
    assert str(html.value).startswith(f"Workday GET {url}: the answer is not valid JSON "
                                      "(text/html, 33 bytes): Expecting value at line 1 ")


def test_unreachable_host_and_missing_secret(hris, clock):
    dead = WorkdaySource(config_for(hris, base_url="http://127.0.0.1:9"))
    with pytest.raises(FeedError, match="ConnectError"):
        list(dead.scan_full())
    with pytest.raises(ConfigError, match=r"hris\.password_env: environment variable "
                                          r"ROSTERSYNC_TEST_UNSET is not set"):
        list(source(hris, clock, password_env="ROSTERSYNC_TEST_UNSET").scan_full())


# -- configuration -------------------------------------------------------------------


def test_example_config_validates_and_the_factory_builds_the_source():
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = config_from_dict(data, EXAMPLE)
    assert config.hris.type == "workday"
    assert config.hris.report_url.startswith("https://wd2-impl-services1.workday.com/ccx/")
    assert isinstance(make_source(config.hris), WorkdaySource)
    assert {"employee_id", "manager_id", "status"} <= set(config.hris.columns)
    assert config.fingerprint()


@pytest.mark.parametrize(("change", "message"), [
    ({"password_env": None}, "auth = \"basic\" needs user"),
    ({"auth": "bearer"}, "needs token_env"),
    ({"columns": {"first_name": "Legal_First_Name"}}, "must map employee_id"),
    ({"columns": {"employee_id": "Worker_WID", "grade": "Grade"}}, "unknown field 'grade'"),
    ({"columns": {"employee_id": "W"}, "status": {"active_flag": None, "leave_flag": None}},
     "no status source"),
    ({"report_path": "ccx/x?format=json"}, "without a query"),
])
def test_config_mistakes_are_one_sentence(change, message):
    hris = {"type": "workday", "base_url": "https://wd.example", "report_path": "ccx/r",
            "user": USER, "password_env": PASSWORD_ENV, **change}
    data = {"hris": hris, "lms": {"type": "scim", "base_url": "https://lms.example"}}
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


# -- end to end: Workday -> engine -> SCIM -------------------------------------------


def engine_for(hris, clock, scim_server, tmp_path) -> tuple[Engine, Config]:
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "workday", "base_url": hris.base_url,
                 "report_path": hris.report_path, "user": USER, "password_env": PASSWORD_ENV},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
    })
    src = WorkdaySource(config.hris, now=clock.now, sleep=clock.slept.append)
    return Engine(config, Store(config.database.path), source=src, clock=clock), config


def test_engine_converges_a_workday_organisation_into_scim(
        hris, clock, scim_server, lms_token, tmp_path):
    for worker in generate(20)[7:]:
        hris.put(worker)
    engine, config = engine_for(hris, clock, scim_server, tmp_path)

    def users() -> dict[str, dict]:
        return {k: v[0] for k, v in by_external_id(lms_users(scim_server.base_url,
                                                             lms_token)).items()}

    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"create": 20}
    assert build_status(engine.store, config, clock.now())["drift_total"] == 0
    lms = users()
    assert set(lms) == {W(i) for i in range(1, 21)}
    assert lms[W(12)][ENTERPRISE]["manager"]["value"] == lms[W(3)]["id"]
    assert lms[W(12)][ENTERPRISE]["employeeNumber"] == employee_id(12)

    # A transfer, a termination that has taken effect, a new hire and a new manager.
    clock.advance(hours=1)
    hris.update(W(5), Supervisory_Organization="Finance", Business_Title="Controller")
    hris.update(W(9), Termination_Date="2026-11-20")
    hris.put(generate(21)[20])
    hris.update(W(13), Manager_Employee_ID=employee_id(2))
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"update": 2, "deactivate": 1, "create": 1}
    assert build_status(engine.store, config, clock.now())["drift_total"] == 0
    lms = users()
    assert (lms[W(5)][ENTERPRISE]["department"], lms[W(5)]["title"]) == ("Finance",
                                                                         "Controller")
    assert lms[W(9)]["active"] is False and lms[W(21)]["active"] is True
    assert lms[W(13)][ENTERPRISE]["manager"]["value"] == lms[W(2)]["id"]


def test_a_broken_report_keeps_the_last_good_snapshot(
        hris, clock, scim_server, lms_token, tmp_path):
    engine, config = engine_for(hris, clock, scim_server, tmp_path)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    clock.advance(hours=1)
    hris.update(W(4), Termination_Date="2026-11-01")
    hris.faults.push(Truncated(0.7))
    report = asyncio.run(engine.sync("full"))
    assert report.status == "rejected"
    assert f"{hris.report_url}?format=json: the JSON answer ends early" in report.message
    lms = by_external_id(lms_users(scim_server.base_url, lms_token))
    assert all(v[0]["active"] for v in lms.values())  # nothing acted on a broken answer
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"deactivate": 1}
    assert build_status(engine.store, config, clock.now())["drift_total"] == 0
    future = (NOW + timedelta(days=30)).date().isoformat()
    hris.update(W(5), Termination_Date=future)  # scheduled: still active today
    report = asyncio.run(engine.sync("full"))
    assert report.counts["scheduled"] == 1
    assert by_external_id(lms_users(scim_server.base_url, lms_token))[W(5)][0]["active"]
