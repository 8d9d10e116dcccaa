"""BambooHR: the sandbox's wire rules, the source against it, and one engine run into SCIM.

Behaviour that docs/bamboohr.md marks unconfirmed (the report's response shape, `latest` as
the watermark, "0000-00-00" dates, Retry-After on 503) is assumed here and must be
checked against a real tenant before go-live.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rostersync.sandbox.bamboohr import ERROR_HEADER, BambooSandbox
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.sync.config import BambooHRSourceConfig, Config, config_from_dict
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.connectors.factory import make_source
from rostersync.sync.engine import Engine
from tests.bamboo_fixtures import KEY, KEY_ENV, NOW
from tests.support import TOKEN_ENV, by_external_id, lms_users

REPORT = "/v1/reports/custom?format=JSON&onlyCurrent=false"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "bamboohr.toml"


def source(hris, clock, **kwargs) -> BambooHRSource:
    config = BambooHRSourceConfig(base_url=hris.base_url, api_key_env=KEY_ENV)
    return BambooHRSource(config, now=clock.now, **kwargs)


def client(key: str = KEY) -> httpx.Client:
    return httpx.Client(auth=(key, "x"), headers={"Accept": "application/json"})


# -- the sandbox speaks BambooHR ----------------------------------------------------


def test_report_needs_exactly_application_json(hris):
    with client() as c:
        body = b'{"fields": ["id", "firstName"]}'
        bad = c.post(hris.base_url + REPORT, content=body,
                     headers={"Content-Type": "application/json; charset=UTF-8"})
        good = c.post(hris.base_url + REPORT, content=body,
                      headers={"Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.headers[ERROR_HEADER] == "Malformed XML"
    assert good.status_code == 200
    assert good.json()["employees"][0] == {"id": "1", "firstName": "First1"}


def test_wrong_key_is_401_with_the_error_header(hris):
    with client("wrong") as c:
        answer = c.get(f"{hris.base_url}/v1/employees/1?fields=firstName")
    assert answer.status_code == 401
    assert answer.headers["x-bamboohr-error-message"] == "Invalid API key"


def test_both_prefixes_and_unknown_fields_silently_left_out(hris):
    with client() as c:
        gateway = c.get(f"{hris.base_url}/v1/employees/2?fields=firstName,noSuchField")
        direct = c.get(f"{hris.origin}/api/v1/employees/2?fields=firstName,noSuchField")
        other = c.get(f"{hris.origin}/api/gateway.php/globex/v1/employees/2?fields=id")
    assert gateway.json() == direct.json() == {"id": "2", "firstName": "First2"}
    assert other.status_code == 404


def test_changed_since_needs_the_plus_encoded(hris, clock):
    clock.advance(hours=1)
    hris.update("3", jobTitle="Lead")
    url = f"{hris.base_url}/v1/employees/changed?since="
    with client() as c:
        raw_plus = c.get(url + "2026-11-26T10:30:00+01:00")  # "+" decodes to a space
        encoded = c.get(url + "2026-11-26T10:30:00%2B01:00")
        compact = c.get(url + "2026-11-26T05:30:00-0400")
        zulu = c.get(url + "2026-11-26T10:00:01Z")
    assert raw_plus.status_code == 400 and "%2B" in raw_plus.headers[ERROR_HEADER]
    assert encoded.json()["employees"] == {"3": {
        "id": "3", "action": "Updated", "lastChanged": "2026-11-26T10:00:00+00:00"}}
    assert encoded.json()["latest"] == "2026-11-26T10:00:00+00:00"
    assert compact.json()["employees"].keys() == {"3"}
    assert zulu.json()["employees"] == {}


def test_report_filters_by_ids_and_last_changed(hris, clock):
    clock.advance(minutes=5)
    hris.update("4", jobTitle="Lead")
    with client() as c:
        def ids(filters):
            answer = c.post(hris.base_url + REPORT, json={"fields": ["id"], "filters": filters})
            return [e["id"] for e in answer.json()["employees"]]

        assert ids({"employeeIds": ["2", "6"]}) == ["2", "6"]
        assert ids({"lastChanged": {"includeNull": "no",
                                    "value": "2026-11-26T09:01:00Z"}}) == ["4"]


# -- the source ---------------------------------------------------------------------


def test_full_pull_maps_canonical_fields(hris, clock):
    hris.update("5", preferredName="Fifi", terminationDate="0000-00-00", hireDate=None)
    src = source(hris, clock)
    records = list(src.scan_full())
    assert [r.key for r in records] == [str(i) for i in range(1, 8)]
    five = records[4]
    assert five.locator == "bamboohr:employee 5"
    assert src.fields(five) == {
        "employee_id": "5", "employee_number": "E-10005", "first_name": "First5",
        "last_name": "Last5", "preferred_name": "Fifi", "email": "person5@acme.example",
        "department": "Engineering", "job_title": "Specialist", "location": "Berlin",
        "manager_id": "1", "status": "Full-Time", "hire_date": None, "termination_date": None,
        "timezone": "Europe/Berlin", "source_updated_at": "2026-11-26T09:00:00+00:00",
    }
    assert src.watermark() == NOW.isoformat()
    # Two report calls for everyone: current values, then the future-dated view of the
    # history fields alone (nobody has a scheduled change, so no table is read).
    assert [(r[0], r[2]) for r in hris.requests] == [
        ("POST", "format=JSON&onlyCurrent=true"), ("POST", "format=JSON&onlyCurrent=false")]


def test_status_falls_back_to_active_inactive(hris, clock):
    hris.update("6", employmentHistoryStatus=None, status="Inactive")
    src = source(hris, clock)
    six = next(r for r in src.scan_full() if r.key == "6")
    assert src.fields(six)["status"] == "Inactive"


def test_manager_resolved_by_id_then_by_employee_number(hris, clock):
    hris.update("3", supervisorEId=None, supervisorId="E-10002")  # only the number
    hris.update("4", supervisorEId="E-10001", supervisorId=None)  # Workato's reading
    hris.update("5", supervisorEId="999", supervisorId=None)  # nobody
    src = source(hris, clock)
    got = {r.key: src.fields(r)["manager_id"] for r in src.scan_full()}
    assert got == {"1": None, "2": "1", "3": "2", "4": "1", "5": "999", "6": "1", "7": "2"}


def test_delta_reads_changed_ids_then_one_filtered_report(hris, clock):
    clock.advance(minutes=1)  # the pull comes after the employees were entered
    src = source(hris, clock)
    list(src.scan_full())
    since = datetime.fromisoformat(src.watermark())
    clock.advance(minutes=10)
    hris.update("2", jobTitle="Head of Things")
    hris.update("7", supervisorEId=None, supervisorId="E-10002")
    hris.delete("6")  # a deleted record is not a termination: nothing is yielded
    fresh = source(hris, clock)  # a new process: no directory from a full pull
    hris.requests.clear()
    records = list(fresh.scan_delta(since))
    assert [r.key for r in records] == ["2", "7"]
    assert fresh.fields(records[0])["job_title"] == "Head of Things"
    assert fresh.fields(records[1])["manager_id"] == "2"  # one directory call resolved it
    assert fresh.watermark() == "2026-11-26T09:11:00+00:00"
    calls = [(method, path.rpartition("/v1/")[2]) for method, path, _ in hris.requests]
    assert calls == [("GET", "employees/changed"), ("POST", "reports/custom"),
                     ("POST", "reports/custom"), ("POST", "reports/custom")]


def test_fetch_one_reads_one_employee(hris, clock):
    src = source(hris, clock)
    record = src.fetch_one("3")
    assert record is not None and record.locator == "bamboohr:employee 3"
    assert src.fields(record)["email"] == "person3@acme.example"
    assert src.fetch_one("404") is None
    method, path, query = hris.requests[0]
    assert (method, path) == ("GET", "/api/gateway.php/acme/v1/employees/3")
    assert query.endswith("onlyCurrent=true")  # current values (§1.2 B, "Correction")
    assert hris.requests[1][2] == ("fields=id,department,jobTitle,location,"
                                   "employmentHistoryStatus,terminationDate&onlyCurrent=false")


def test_future_termination_needs_only_current_false(hris, clock):
    hris.update("4", terminationDate="2026-12-31")  # status stays Active (§1.5)
    with client() as c:
        hidden = c.get(f"{hris.base_url}/v1/employees/4?fields=terminationDate")
    assert hidden.json()["terminationDate"] is None  # onlyCurrent defaults to true
    src = source(hris, clock)
    four = next(r for r in src.scan_full() if r.key == "4")
    assert src.fields(four)["termination_date"] == "2026-12-31"


def test_throttling_is_retried_after_retry_after(hris, clock):
    answers = [(503, {"Retry-After": "7"}, b""), (429, {"Retry-After": "2"}, b"")]
    hris.fault = lambda method, path: answers.pop(0) if answers else None
    slept: list[float] = []
    records = list(source(hris, clock, sleep=slept.append).scan_full())
    assert len(records) == 7 and slept == [7.0, 2.0]


def test_throttling_gives_up_after_bounded_attempts(hris, clock):
    hris.fault = lambda method, path: (503, {ERROR_HEADER: "Slow down"}, b"")
    slept: list[float] = []
    src = source(hris, clock, sleep=slept.append, jitter=lambda: 1.0)
    with pytest.raises(FeedError, match=r"503 \(Slow down\); still throttled after 4 tries"):
        list(src.scan_full())
    assert slept == [1.0, 2.0, 4.0]  # no Retry-After: exponential backoff


def test_a_long_retry_after_is_not_waited_for(hris, clock):
    hris.fault = lambda method, path: (503, {"Retry-After": "3600"}, b"")
    slept: list[float] = []
    with pytest.raises(FeedError, match="asked to wait 3600s"):
        list(source(hris, clock, sleep=slept.append).scan_full())
    assert slept == []


def test_auth_failure_names_the_endpoint_and_message_not_the_key(hris, clock):
    os.environ[KEY_ENV] = "wrong-key-value"
    with pytest.raises(FeedError) as caught:
        list(source(hris, clock).scan_full())
    text = str(caught.value)
    assert "POST /v1/reports/custom: 401 unauthorised (Invalid API key)" in text
    assert "wrong-key-value" not in text


def test_legacy_error_header_spelling_is_read(clock):
    os.environ[KEY_ENV] = "nope"
    with (BambooSandbox(api_key=KEY, clock=clock.now, legacy_error_header=True) as hris,
          pytest.raises(FeedError, match="Invalid API key")):
        source(hris, clock).fetch_one("1")


def test_network_errors_and_timeouts_are_feed_errors(hris, clock):
    from rostersync.sandbox.bamboohr import Slow

    hris.fault = lambda method, path: Slow(1.0)
    config = BambooHRSourceConfig(base_url=hris.base_url, api_key_env=KEY_ENV,
                                  timeout_seconds=0.1)
    with pytest.raises(FeedError, match="ReadTimeout"):
        list(BambooHRSource(config, sleep=lambda _s: None).scan_full())
    dead = BambooHRSourceConfig(base_url="http://127.0.0.1:9", api_key_env=KEY_ENV)
    with pytest.raises(FeedError, match="ConnectError"):
        list(BambooHRSource(dead).scan_full())


def test_example_config_validates_and_the_factory_builds_the_source():
    data = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    config = Config.model_validate(data)
    assert config.hris.type == "bamboohr"
    assert config.hris.base_url == "https://api.bamboohr.com/api/gateway.php/acme"
    assert isinstance(make_source(config.hris), BambooHRSource)
    assert {"employee_id", "manager_id", "status"} <= set(config.hris.columns)
    assert config.fingerprint()


def test_example_config_loads_through_config_from_dict():
    config = config_from_dict(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), EXAMPLE)
    assert config.hris.type == "bamboohr"


# -- end to end: BambooHR -> engine -> SCIM ------------------------------------------


def test_engine_syncs_bamboohr_into_scim_and_schedules_a_future_termination(
        hris, clock, scim_server, lms_token, tmp_path):
    config = Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "bamboohr", "base_url": hris.base_url, "api_key_env": KEY_ENV},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
        "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                      "inactive": "terminated"}},
    })
    clock.advance(minutes=1)  # the first pull comes after the employees were entered
    src = BambooHRSource(config.hris, now=clock.now)
    engine = Engine(config, Store(config.database.path), source=src, clock=clock)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    accounts = {k: v[0] for k, v in by_external_id(lms_users(scim_server.base_url,
                                                              lms_token)).items()}
    assert set(accounts) == {str(i) for i in range(1, 8)}
    assert all(a["active"] for a in accounts.values())

    # A termination typed in advance: status stays Active until the date (§1.5).
    clock.advance(minutes=15)
    last_day = (NOW + timedelta(days=10)).date().isoformat()
    hris.update("6", terminationDate=last_day)
    report = asyncio.run(engine.sync("delta"))
    assert report.status == "succeeded", report.message
    assert report.counts["rows"] == 1 and report.counts["scheduled"] == 1
    [op] = [o for o in op_store.list_ops(engine.store, employee_id="6")
            if o["kind"] == "deactivate"]
    assert op["next_attempt_at"] > last_day
    users = by_external_id(lms_users(scim_server.base_url, lms_token))
    assert users["6"][0]["active"] is True  # not yet
