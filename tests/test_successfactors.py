"""SuccessFactors: the sandbox's wire rules, the source against it, and engine runs into SCIM.

Behaviour docs/successfactors.md marks inferred (the d/results envelope, /Date(ms+0000)/
for Edm.DateTimeOffset, the OData error body, fromDate/toDate showing future segments,
managerId being a userId, "NO_MANAGER") is assumed here and must be checked against a
real tenant before go-live.
"""

from __future__ import annotations

import asyncio
import base64
import os
import tomllib
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from rostersync.sandbox.successfactors import SuccessFactorsSandbox, Truncated, burst, odata_error
from rostersync.sandbox.successfactors_data import organisation, person
from rostersync.storage import drift as drift_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import FeedError, RecordError
from rostersync.sync.connectors.factory import make_source
from rostersync.sync.connectors.odata import ODataFormatError, parse_odata_date
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.engine import Engine
from tests.support import TOKEN_ENV, by_external_id, lms_users

PASSWORD = "sandbox-pw"
PASSWORD_ENV = "ROSTERSYNC_TEST_SF_PASSWORD"
TOKEN = "sandbox-bearer"
BEARER_ENV = "ROSTERSYNC_TEST_SF_TOKEN"
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "successfactors.toml"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock):
    os.environ[PASSWORD_ENV] = PASSWORD
    os.environ[BEARER_ENV] = TOKEN
    with SuccessFactorsSandbox("ACME", username="api", password=PASSWORD, token=TOKEN,
                               clock=clock.now) as server:
        for record in organisation(7):
            server.put(record)
        yield server


def config(hris, **settings) -> SuccessFactorsSourceConfig:
    return SuccessFactorsSourceConfig(**{
        "base_url": hris.base_url, "company_id": "ACME", "username": "api",
        "password_env": PASSWORD_ENV, **settings})


def source(hris, clock, **settings) -> SuccessFactorsSource:
    slept = settings.pop("slept", None)
    kwargs = {"sleep": slept.append} if slept is not None else {}
    return SuccessFactorsSource(config(hris, **settings), now=clock.now,
                                jitter=lambda: 1.0, **kwargs)


def by_key(src: SuccessFactorsSource, records) -> dict[str, dict[str, str | None]]:
    return {r.key: src.fields(r) for r in records}


def requests_to(hris, entity: str) -> list[dict[str, str]]:
    """The query parameters of each request the sandbox received for ``entity``."""
    return [dict(httpx.URL("/?" + query).params) for _, path, query in hris.requests
            if path == f"/odata/v2/{entity}"]


def listing(hris, query: str) -> httpx.Response:
    with httpx.Client(auth=("api@ACME", PASSWORD)) as c:
        return c.get(f"{hris.base_url}/odata/v2/PerPerson?$format=json&{query}")


# -- the sandbox speaks OData v2 --------------------------------------------------------


def test_server_paging_follows_next_with_skiptokens(hris):
    first = listing(hris, "$select=personIdExternal&customPageSize=3").json()["d"]
    assert [r["personIdExternal"] for r in first["results"]] == ["1001", "1002", "1003"]
    assert first["results"][0]["__metadata"]["type"] == "SFOData.PerPerson"
    token = first["__next"].partition("$skiptoken=")[2]
    assert base64.b64decode(token.replace("%3D", "=")) == b'{"startRow": 3, "endRow": 6}'
    with httpx.Client(auth=("api@ACME", PASSWORD)) as c:
        second = c.get(first["__next"]).json()["d"]
    assert [r["personIdExternal"] for r in second["results"]] == ["1004", "1005", "1006"]
    top = listing(hris, "$select=personIdExternal&$top=2&$skip=5").json()["d"]
    assert [r["personIdExternal"] for r in top["results"]] == ["1006", "1007"]
    assert "__next" not in top


def test_segments_follow_as_of_or_from_to_and_not_both(hris):
    hris.store.terminate("1003", TODAY + timedelta(days=20))
    expand = "$expand=employmentNav/jobInfoNav/emplStatusNav&$filter=personIdExternal eq '1003'"

    def codes(extra: str) -> list[str]:
        row = listing(hris, f"{expand}&{extra}").json()["d"]["results"][0]
        jobs = row["employmentNav"]["results"][0]["jobInfoNav"]["results"]
        return [j["emplStatusNav"]["externalCode"] for j in jobs]

    assert codes("x=1") == ["A"]  # asOfDate defaults to today
    # fromDate/toDate choose the top level's records only; navigations stay as of today
    # (KBA 2853045). EmpJob read at the top level shows the scheduled T record.
    assert codes(f"fromDate={TODAY}&toDate=9999-12-31") == ["A"]
    with httpx.Client(auth=("api@ACME", PASSWORD)) as c:
        top = c.get(f"{hris.base_url}/odata/v2/EmpJob?$format=json&$expand=emplStatusNav"
                    f"&$filter=userId eq 'u1003'&fromDate={TODAY}&toDate=9999-12-31").json()
        today_only = c.get(f"{hris.base_url}/odata/v2/EmpJob?$format=json&$expand="
                           "emplStatusNav&$filter=userId eq 'u1003'").json()
    assert [j["emplStatusNav"]["externalCode"] for j in top["d"]["results"]] == ["A", "T"]
    assert top["d"]["results"][0]["__metadata"]["type"] == "SFOData.EmpJob"
    assert [j["emplStatusNav"]["externalCode"] for j in today_only["d"]["results"]] == ["A"]
    refused = listing(hris, f"{expand}&asOfDate={TODAY}&fromDate={TODAY}")
    assert refused.status_code == 400
    assert "asOfDate" in refused.json()["error"]["message"]["value"]
    unexpanded = listing(hris, "$filter=personIdExternal eq '1001'").json()["d"]["results"][0]
    assert "__deferred" in unexpanded["employmentNav"]
    assert unexpanded["lastModifiedDateTime"] == "/Date(1777885200000+0000)/"


def test_sandbox_refuses_bad_credentials_and_unknown_properties(hris):
    with httpx.Client(auth=("api", PASSWORD)) as c:  # no @companyId
        denied = c.get(f"{hris.base_url}/odata/v2/PerPerson?$format=json")
    assert denied.status_code == 401
    assert denied.json()["error"]["message"]["value"].startswith("Authentication failed")
    bad = listing(hris, "$filter=nosuchNav/x eq 1")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "COE_PROPERTY_NOT_FOUND"


# -- pure parsing -----------------------------------------------------------------------


def test_odata_dates_with_and_without_offset():
    plain = parse_odata_date("/Date(1751241600000)/")
    assert (plain.day, plain.has_offset, plain.iso()) == (date(2025, 6, 30), False, "2025-06-30")
    stamped = parse_odata_date("/Date(1751241600123+0000)/")
    assert stamped.iso() == "2025-06-30T00:00:00.123000Z"
    assert parse_odata_date("/Date(253402214400000)/").day == date(9999, 12, 31)
    assert parse_odata_date("/Date(-86400000)/").day == date(1969, 12, 31)
    for broken in ("/Date(12x)/", "2025-06-30", "/Date(1751241600000+00)/"):
        with pytest.raises(ODataFormatError, match="not an OData date"):
            parse_odata_date(broken)


# -- the source -------------------------------------------------------------------------


def test_full_pull_pages_and_maps_canonical_fields(hris, clock):
    src = source(hris, clock, page_size=3)
    records = list(src.scan_full())
    assert [r.key for r in records] == [str(1001 + i) for i in range(7)]
    people, jobs = requests_to(hris, "PerPerson"), requests_to(hris, "EmpJob")
    assert len(people) == len(jobs) == 3  # 3 + 3 + 1 rows each
    assert people[0]["customPageSize"] == "3" and people[0]["paging"] == "snapshot"
    # Dated entities carry the date range; PerPerson, whose navigations it would not
    # reach (KBA 2853045), does not.
    assert (jobs[0]["fromDate"], jobs[0]["toDate"]) == (str(TODAY), "9999-12-31")
    assert "fromDate" not in people[0] and "$skiptoken" in people[1]
    fields = src.fields(records[5])
    assert fields == {
        "employee_id": "1006", "employee_number": "E1006", "first_name": "Paul",
        "last_name": "Neumann5", "preferred_name": None, "email": "paul.neumann5@acme.example",
        "department": "Engineering", "job_title": "Specialist", "location": "Berlin",
        "manager_id": "1002",  # managerId u1002 is a userId: translated to personIdExternal
        "hire_date": "2020-03-01", "source_updated_at": "2026-05-04T09:00:00Z",
        "status": "active", "termination_date": None,
    }
    assert records[5].locator == "successfactors:PerPerson 1006"
    assert src.fields(records[0])["manager_id"] is None  # NO_MANAGER
    assert src.watermark() == NOW.isoformat()


def test_status_codes_map_to_active_leave_terminated(hris, clock):
    hris.store.change_job("1002", TODAY - timedelta(days=3), status="U")
    hris.store.change_job("1003", TODAY - timedelta(days=3), status="P")
    hris.store.change_job("1004", TODAY - timedelta(days=3), status="X")  # a custom code
    src = source(hris, clock)
    records = {r.key: r for r in src.scan_full()}
    assert src.fields(records["1002"])["status"] == "leave"
    assert src.fields(records["1003"])["status"] == "leave"
    with pytest.raises(RecordError) as caught:
        src.fields(records["1004"])
    assert str(caught.value) == (
        "successfactors:PerPerson 1004 field jobInfoNav/emplStatusNav/externalCode: is not a "
        "known status code; add it to hris.status_codes (value 'X')")
    mapped = source(hris, clock, status_codes={"A": "active", "X": "terminated"})
    assert mapped.fields(next(r for r in mapped.scan_full() if r.key == "1004"))["status"] \
        == "terminated"
    fallback = source(hris, clock, unknown_status_code="terminated")
    got = by_key(fallback, fallback.scan_full())
    assert got["1004"]["status"] == "terminated" and got["1002"]["status"] == "leave"


def test_termination_date_is_the_day_before_the_t_segment(hris, clock):
    hris.store.terminate("1003", date(2026, 4, 30))  # past: T since 1 May
    hris.store.terminate("1004", date(2026, 6, 30))  # future-dated: still A today
    hris.put(person("1008", "Nina", "Late", hired=TODAY + timedelta(days=14)))  # pre-hire
    src = source(hris, clock)
    got = by_key(src, src.scan_full())
    assert (got["1003"]["status"], got["1003"]["termination_date"]) == ("terminated",
                                                                         "2026-04-30")
    assert (got["1004"]["status"], got["1004"]["termination_date"]) == ("active", "2026-06-30")
    assert got["1008"]["status"] == "pre_hire" and got["1008"]["hire_date"] == "2026-05-18"
    # Without fromDate/toDate on EmpJob itself the future T record would be invisible.
    query = requests_to(hris, "EmpJob")[-1]
    assert "fromDate" in query and "asOfDate" not in query


def test_rehire_picks_the_active_employment(hris, clock):
    rehired = person("1009", "Otto", "Again", user_id="u1009b", hired=date(2026, 1, 5))
    old = person("1009", "Otto", "Again", user_id="u1009a", hired=date(2019, 1, 1))
    old_employment = old["employmentNav"][0]
    old_employment["jobInfoNav"][0]["endDate"] = date(2020, 12, 31)
    old_employment["jobInfoNav"].append({**old_employment["jobInfoNav"][0],
                                         "startDate": date(2021, 1, 1), "endDate": date(9999, 12, 31),
                                         "emplStatusNav": {"externalCode": "T"}})
    old_employment["endDate"] = date(2020, 12, 31)
    rehired["employmentNav"].insert(0, old_employment)
    hris.put(rehired)
    src = source(hris, clock, segment_lookback_days=36500)
    fields = src.fields(next(r for r in src.scan_full() if r.key == "1009"))
    assert fields["status"] == "active" and fields["hire_date"] == "2026-01-05"
    assert fields["termination_date"] is None and fields["employee_number"] == "E1009"


def test_a_segment_taking_effect_changes_the_digest(hris, clock):
    hris.store.change_job("1002", TODAY + timedelta(days=1), jobTitle="Lead")
    src = source(hris, clock, segment_lookback_days=30)  # the same payload on both days
    before = next(r for r in src.scan_full() if r.key == "1002")
    clock.advance(days=1)
    after = next(r for r in src.scan_full() if r.key == "1002")
    assert before.raw == after.raw and before.digest != after.digest
    assert src.fields(after)["job_title"] == "Lead"


def test_delta_ors_navigation_stamps_with_a_configurable_overlap(hris, clock):
    clock.advance(minutes=1)  # the pull comes after the people were entered
    src = source(hris, clock, delta_overlap_minutes=0)
    list(src.scan_full())
    watermark = datetime.fromisoformat(src.watermark())
    clock.advance(minutes=10)
    # Only the job segment is stamped: PerPerson.lastModifiedDateTime stays old (§3.5).
    hris.store.change_job("1005", TODAY - timedelta(days=10), jobTitle="Team Lead")
    hris.store.rename("1006", firstName="Paula")
    clock.advance(minutes=5)
    fresh = source(hris, clock, delta_overlap_minutes=0)  # a new process: no userId map
    hris.requests.clear()
    got = by_key(fresh, fresh.scan_delta(watermark))
    assert sorted(got) == ["1005", "1006"]
    assert got["1005"]["job_title"] == "Team Lead" and got["1006"]["first_name"] == "Paula"
    assert got["1005"]["manager_id"] == "1001"  # looked up by userId in one call
    lookups = [q["$filter"] for q in requests_to(hris, "EmpEmployment")
               if q["$select"] == "personIdExternal,userId"]
    assert lookups == ["userId eq 'u1005'",  # EmpJob names a userId: whose is it?
                       "userId eq 'u1001' or userId eq 'u1002'"]
    assert fresh.watermark() == (NOW + timedelta(minutes=16)).isoformat()
    # A change saved 5 minutes before the watermark is only caught with an overlap.
    hris.store.rename("1002", lastName="Later")
    later = clock.now() + timedelta(minutes=5)
    assert list(source(hris, clock, delta_overlap_minutes=0).scan_delta(later)) == []
    overlapping = source(hris, clock, delta_overlap_minutes=6).scan_delta(later)
    assert [r.key for r in overlapping] == ["1002"]


def test_delta_catches_future_dated_changes_when_they_take_effect(hris, clock):
    hris.store.change_job("1007", TODAY + timedelta(days=2), department="FIN")
    clock.advance(days=1)
    src = source(hris, clock)
    list(src.scan_full())
    since = datetime.fromisoformat(src.watermark())
    clock.advance(days=1, minutes=5)  # the transfer is effective today; nothing was saved
    got = by_key(src, src.scan_delta(since))
    assert list(got) == ["1007"] and got["1007"]["department"] == "Finance"
    filter_text = requests_to(hris, "EmpJob")[-2]["$filter"]  # the last one reads 1007
    assert ("(startDate ge datetime'2026-05-05T00:00:00' and "
            "startDate le datetime'2026-05-06T00:00:00')") in filter_text
    with pytest.raises(FeedError, match="no watermark yet"):
        list(src.scan_delta(None))


def test_fetch_one_by_person_id_and_checks_the_answer(hris, clock):
    src = source(hris, clock)
    record = src.fetch_one("1004")
    assert record is not None and src.fields(record)["email"] == "jonas.klein3@acme.example"
    assert "personIdExternal eq '1004'" in httpx.URL("/?" + hris.requests[0][2]).params[
        "$filter"]
    assert src.fetch_one("O'Brien") is None  # the quote is doubled, not an injection
    # A server that ignores the filter answers with everyone: refused, not trusted.
    hris.fault = lambda method, path, query: None
    everyone = listing(hris, "$select=personIdExternal").content
    hris.fault = lambda method, path, query: (200, {}, everyone)
    with pytest.raises(FeedError, match=r"asked for personIdExternal '1002', got 7 record\(s\) "
                                        "including '1001'"):
        source(hris, clock).fetch_one("1002")


def test_bearer_token_auth(hris, clock):
    src = source(hris, clock, auth="bearer", token_env=BEARER_ENV, username=None,
                 password_env=None)
    assert len(list(src.scan_full())) == 7


def test_wrong_password_names_the_setting_not_the_secret(hris, clock):
    os.environ[PASSWORD_ENV] = "wrong-secret-value"
    with pytest.raises(FeedError) as caught:
        list(source(hris, clock).scan_full())
    text = str(caught.value)
    assert text.startswith("SuccessFactors GET /odata/v2/PerPersonal: HTTP 401 "
                           "(COE_AUTHENTICATION_FAILED - Authentication failed.")
    assert "hris.password_env (ROSTERSYNC_TEST_SF_PASSWORD)" in text
    assert "wrong-secret-value" not in text


def test_odata_error_body_is_reported(hris, clock):
    hris.fault = lambda method, path, query: odata_error(
        400, "COE_GENERAL_BAD_REQUEST", "Invalid $filter near 'x'")
    with pytest.raises(FeedError, match=r"HTTP 400 \(COE_GENERAL_BAD_REQUEST - Invalid "
                                        r"\$filter near 'x'\)$"):
        list(source(hris, clock).scan_full())


def test_a_throttling_burst_is_survived(hris, clock):
    hris.fault = burst([odata_error(429, "TOO_MANY", "slow down", {"Retry-After": "5"}),
                        odata_error(503, "MAINT", "maintenance", {"Retry-After": "1"}),
                        odata_error(429, "TOO_MANY", "slow down")])
    slept: list[float] = []
    records = list(source(hris, clock, slept=slept, page_size=4).scan_full())
    assert len(records) == 7 and slept == [5.0, 1.0, 8.0]  # no Retry-After: 2 * 2**2


def test_throttling_is_bounded(hris, clock):
    hris.fault = lambda method, path, query: odata_error(429, "TOO_MANY", "slow down")
    slept: list[float] = []
    with pytest.raises(FeedError, match=r"HTTP 429 \(TOO_MANY - slow down\); still refused "
                                        "after 3 tries"):
        list(source(hris, clock, slept=slept, retry_max_attempts=3).scan_full())
    assert slept == [2.0, 4.0]
    hris.fault = lambda method, path, query: odata_error(429, "T", "x", {"Retry-After": "900"})
    slept.clear()
    with pytest.raises(FeedError, match="asked to wait 900s, more than 300s"):
        list(source(hris, clock, slept=slept).scan_full())
    assert slept == []


def test_a_truncated_page_is_a_feed_error_naming_the_url(hris, clock):
    hris.fault = lambda method, path, query: Truncated() if "$skiptoken" in query else None
    with pytest.raises(FeedError) as caught:
        list(source(hris, clock, page_size=3).scan_full())
    text = str(caught.value)
    assert text.startswith(f"SuccessFactors GET {hris.base_url}/odata/v2/PerPersonal?")
    assert "$skiptoken=" in text and "the answer is not JSON, it may be cut short" in text


def test_malformed_envelopes_and_foreign_next_links_are_refused(hris, clock):
    hris.fault = lambda method, path, query: (200, {}, b'{"value": []}')
    with pytest.raises(FeedError, match='has no "d" object'):
        list(source(hris, clock).scan_full())
    hris.fault = lambda method, path, query: (
        200, {}, b'{"d": {"results": [], "__next": "https://elsewhere.example/odata/v2/PerPerson"}}')
    with pytest.raises(FeedError, match=r'"d\.__next" points outside'):
        list(source(hris, clock).scan_full())


def test_a_record_without_its_key_is_a_record_error(hris, clock):
    hris.fault = lambda method, path, query: (
        200, {}, b'{"d": {"results": [{"personIdExternal": null, "lastModifiedDateTime": null,'
                 b' "employmentNav": []}]}}')
    src = source(hris, clock)
    [record] = list(src.scan_full())
    assert record.key == "" and record.locator == "successfactors:PerPerson page 1 row 1"
    with pytest.raises(RecordError, match="field personIdExternal: is missing"):
        src.fields(record)


# -- configuration ----------------------------------------------------------------------


def test_example_config_validates_and_the_factory_builds_the_source():
    config_ = Config.model_validate(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    assert config_.hris.type == "successfactors"
    assert config_.hris.base_url == "https://api4.successfactors.com"
    assert isinstance(make_source(config_.hris), SuccessFactorsSource)
    assert {"employee_id", "manager_id", "status", "termination_date"} <= set(
        config_.hris.columns)
    assert config_.fingerprint()


def test_config_refuses_unknown_fields_and_missing_credentials():
    with pytest.raises(ValueError, match="cannot map 'status'"):
        SuccessFactorsSourceConfig(base_url="https://x", company_id="A", username="u",
                                   password_env="P", fields={"status": "job.emplStatus"})
    with pytest.raises(ValueError, match="needs token_env"):
        SuccessFactorsSourceConfig(base_url="https://x", company_id="A", auth="bearer")


# -- end to end: SuccessFactors -> engine -> SCIM ---------------------------------------


def test_engine_converges_then_carries_a_delta_and_keeps_the_snapshot_on_a_bad_feed(
        clock, scim_server, lms_token, tmp_path):
    os.environ[PASSWORD_ENV] = PASSWORD
    with SuccessFactorsSandbox("ACME", username="api", password=PASSWORD,
                               clock=clock.now) as hris:
        for record in organisation(20):
            hris.put(record)
        config_ = Config.model_validate({
            "database": {"path": str(tmp_path / "rostersync.db")},
            "hris": {"type": "successfactors", "base_url": hris.base_url,
                     "company_id": "ACME", "username": "api", "password_env": PASSWORD_ENV,
                     "page_size": 6},
            "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
        })
        clock.advance(hours=2)  # the org was entered well before the default overlap
        src = SuccessFactorsSource(config_.hris, now=clock.now)
        engine = Engine(config_, Store(config_.database.path), source=src, clock=clock)
        report = asyncio.run(engine.sync("full"))
        assert report.status == "succeeded", report.message
        assert report.counts["planned"] == {"create": 20}
        ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        users = {k: v[0] for k, v in by_external_id(
            lms_users(scim_server.base_url, lms_token)).items()}
        assert len(users) == 20
        assert users["1006"][ent]["manager"]["value"] == users["1002"]["id"]
        again = asyncio.run(engine.sync("full"))
        assert again.counts["planned"] == {} and drift_store.counts_by_kind(engine.store) == {}

        clock.advance(minutes=15)
        hris.store.change_job("1010", clock.now().date(), jobTitle="Controller")
        delta = asyncio.run(engine.sync("delta"))
        assert delta.status == "succeeded", delta.message
        assert delta.counts["rows"] == 1 and delta.counts["planned"] == {"update": 1}
        users = by_external_id(lms_users(scim_server.base_url, lms_token))
        assert users["1010"][0]["title"] == "Controller"

        accepted = run_store.last_accepted_snapshot(engine.store)["id"]
        hris.fault = lambda method, path, query: Truncated() if "$skiptoken" in query else None
        rejected = asyncio.run(engine.sync("full"))
        assert rejected.status == "rejected" and "$skiptoken=" in rejected.message
        assert run_store.last_accepted_snapshot(engine.store)["id"] == accepted
        assert len(lms_users(scim_server.base_url, lms_token)) == 20
