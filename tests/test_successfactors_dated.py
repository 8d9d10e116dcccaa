"""SuccessFactors as the real API behaves: __next links with the default port, several job
records on one date, terminations the Entra filter hides, future-dated records that only
the top-level entity shows, and schema drift (issue 16 and 15; docs/successfactors.md).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from rostersync.sandbox.successfactors import SuccessFactorsSandbox
from rostersync.sandbox.successfactors_data import organisation, person
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config
from rostersync.sync.connectors.base import FeedError, RecordError
from rostersync.sync.connectors.odata import ODataFormatError, check_next_url, origin_of
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.engine import Engine
from tests.support import TOKEN_ENV

PASSWORD, PASSWORD_ENV = "sandbox-dated-pw", "ROSTERSYNC_TEST_SF_DATED_PW"
NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TODAY = NOW.date()
OLD_FILTER = "personEmpTerminationInfoNav/activeEmploymentsCount ne null"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock):
    os.environ[PASSWORD_ENV] = PASSWORD
    with SuccessFactorsSandbox("ACME", username="api", password=PASSWORD,
                               clock=clock.now) as server:
        for record in organisation(7):
            server.put(record)
        yield server


def source(base_url: str, clock: FrozenClock, **settings) -> SuccessFactorsSource:
    config = SuccessFactorsSourceConfig(**{
        "base_url": base_url, "company_id": "ACME", "username": "api",
        "password_env": PASSWORD_ENV, **settings})
    return SuccessFactorsSource(config, now=clock.now, jitter=lambda: 1.0)


def pulled(src: SuccessFactorsSource) -> dict[str, dict[str, str | None]]:
    return {r.key: src.fields(r) for r in src.scan_full()}


# -- __next with an explicit default port (KBA 2489065) ---------------------------------


@pytest.mark.parametrize(("link", "base"), [
    ("https://api4.successfactors.com:443/odata/v2/PerPerson?$skiptoken=x",
     "https://api4.successfactors.com/odata/v2/PerPerson"),
    ("https://api4.successfactors.com/odata/v2/PerPerson?$skiptoken=x",
     "https://api4.successfactors.com:443/odata/v2/PerPerson"),
    ("http://hris.example:80/odata/v2/EmpJob?$skiptoken=x", "http://hris.example/odata/v2/EmpJob"),
    ("https://API4.SuccessFactors.com:443/odata/v2/PerPerson?$skiptoken=x",
     "https://api4.successfactors.com/odata/v2/PerPerson"),
])
def test_next_link_with_the_default_port_is_the_same_origin(link, base):
    assert check_next_url(link, base) == link


@pytest.mark.parametrize(("link", "base"), [
    # the port next to the default, either side; the other scheme's default; another host
    ("https://api4.successfactors.com:444/odata/v2/PerPerson", "https://api4.successfactors.com"),
    ("https://api4.successfactors.com:442/odata/v2/PerPerson", "https://api4.successfactors.com"),
    ("https://api4.successfactors.com:80/odata/v2/PerPerson", "https://api4.successfactors.com"),
    ("http://api4.successfactors.com:443/odata/v2/PerPerson", "https://api4.successfactors.com"),
    ("https://api4.successfactors.com.evil:443/odata/v2/PerPerson",
     "https://api4.successfactors.com"),
    ("https://api4.successfactors.com@evil.example:443/odata/v2/PerPerson",
     "https://api4.successfactors.com"),
    ("https://api4.successfactors.com:443/odata/v2/EmpJob", "https://api4.successfactors.com"),
])
def test_next_link_to_another_origin_or_entity_is_refused(link, base):
    with pytest.raises(ODataFormatError, match="points outside"):
        check_next_url(link, base + "/odata/v2/PerPerson")


def test_origin_normalises_default_ports_only():
    assert origin_of("https://h") == origin_of("https://h:443") == ("https", "h", 443)
    assert origin_of("http://h") == ("http", "h", 80)
    assert origin_of("http://h:8080") == ("http", "h", 8080)
    with pytest.raises(ODataFormatError, match="port"):
        origin_of("https://h:99999/x")


def test_sandbox_writes_next_links_with_an_explicit_port_and_a_multi_page_pull_completes(
        hris, clock):
    with httpx.Client(auth=("api@ACME", PASSWORD)) as c:
        first = c.get(f"{hris.base_url}/odata/v2/PerPerson?$format=json&customPageSize=2")
    port = httpx.URL(hris.base_url).port
    assert first.json()["d"]["__next"].startswith(f"http://127.0.0.1:{port}/odata/v2/PerPerson?")
    src = source(hris.base_url, clock, page_size=2)
    assert len(pulled(src)) == 7
    assert sum("$skiptoken" in q for _, _, q in hris.requests) == 4 * 3  # 4 entity sets


def test_a_pull_through_the_default_port_follows_links_naming_it(clock):
    """The client addresses http://127.0.0.1 (no port); the server writes :80 into __next
    the way SAP writes :443 (KBA 2489065). Needs port 80 on loopback."""
    os.environ[PASSWORD_ENV] = PASSWORD
    server = SuccessFactorsSandbox("ACME", username="api", password=PASSWORD, clock=clock.now,
                                   port=80)
    try:
        server.start()
    except (RuntimeError, OSError, SystemExit) as exc:
        pytest.skip(f"port 80 is not available on loopback here ({exc})")
    try:
        for record in organisation(5):
            server.put(record)
        src = source("http://127.0.0.1", clock, page_size=2)
        assert len(pulled(src)) == 5
        links = [q for _, _, q in server.requests if "$skiptoken" in q]
        assert len(links) == 4 * 2
    finally:
        server.stop()


# -- several job records on one date (KBA 3201077) -------------------------------------


def test_several_job_records_on_one_date_pick_the_latest_sequence(hris, clock):
    hris.store.add_job_record("1002", TODAY, jobTitle="Lead")  # seqNumber 1
    hris.store.add_job_record("1002", TODAY, jobTitle="Principal")  # seqNumber 2
    hris.store.add_job_record("1003", TODAY - timedelta(days=5), jobTitle="Analyst")
    with httpx.Client(auth=("api@ACME", PASSWORD)) as c:
        listed = c.get(f"{hris.base_url}/odata/v2/EmpJob?$format=json&$filter=userId eq "
                       f"'u1002'&fromDate={TODAY}&toDate=9999-12-31").json()["d"]["results"]
    # The API lists the later record of the date first, and the old one overlaps it.
    assert [(j["jobTitle"], j["seqNumber"]) for j in listed] == [
        ("Specialist", 1), ("Principal", 2), ("Lead", 1)]
    got = pulled(source(hris.base_url, clock))
    assert got["1002"]["job_title"] == "Principal"
    assert got["1003"]["job_title"] == "Analyst"  # overlapping end date, later start wins
    clock.advance(days=1)
    assert pulled(source(hris.base_url, clock))["1002"]["job_title"] == "Principal"


# -- terminations the Entra filter hides (connectors.md §3.6) ---------------------------


def test_a_termination_is_seen_in_the_delta_though_termination_info_goes_null(hris, clock):
    clock.advance(minutes=1)
    src = source(hris.base_url, clock, delta_overlap_minutes=0)
    list(src.scan_full())
    since = datetime.fromisoformat(src.watermark())
    clock.advance(minutes=10)
    hris.store.terminate("1004", TODAY - timedelta(days=1))
    row = hris.store.get("1004")
    assert row is not None and row["personEmpTerminationInfoNav"] is None
    clock.advance(minutes=5)
    got = {r.key: src.fields(r) for r in src.scan_delta(since)}
    assert list(got) == ["1004"]
    assert (got["1004"]["status"], got["1004"]["termination_date"]) == ("terminated",
                                                                         "2026-05-03")
    assert "1004" in pulled(source(hris.base_url, clock))  # and in the next full pull
    # The filter the default used to be drops them from both.
    hidden = source(hris.base_url, clock, delta_overlap_minutes=0, person_filter=OLD_FILTER)
    assert list(hidden.scan_delta(since)) == []


def test_the_default_reads_every_person_with_an_employment_and_no_one_else(hris, clock):
    loner = person("2001", "Dana", "Dependent")
    loner["employmentNav"] = []  # PerPerson also holds non-workers (§3.3)
    hris.put(loner)
    assert SuccessFactorsSourceConfig(base_url="https://x", company_id="A", username="u",
                                      password_env="P").person_filter == ""
    assert "2001" not in pulled(source(hris.base_url, clock))


# -- future-dated records: fromDate/toDate filter the top level only (KBA 2853045) ------


def test_a_future_termination_is_scheduled_not_applied_early_and_applied_at_its_time(
        hris, clock):
    last_day = TODAY + timedelta(days=10)
    hris.store.terminate("1005", last_day)
    src = source(hris.base_url, clock)
    got = pulled(src)["1005"]
    assert (got["status"], got["termination_date"]) == ("active", last_day.isoformat())
    clock.advance(days=10)  # the last working day: still active
    assert pulled(src)["1005"]["status"] == "active"
    clock.advance(days=1)  # the day after: terminated
    got = pulled(src)["1005"]
    assert (got["status"], got["termination_date"]) == ("terminated", last_day.isoformat())


def test_a_future_hire_is_pre_hire_with_names_not_invalid(hris, clock):
    start = TODAY + timedelta(days=14)
    hris.put(person("1008", "Nina", "Late", hired=start))
    src = source(hris.base_url, clock)
    got = pulled(src)["1008"]
    assert (got["status"], got["hire_date"]) == ("pre_hire", start.isoformat())
    assert (got["first_name"], got["last_name"]) == ("Nina", "Late")
    clock.advance(days=14)
    assert pulled(src)["1008"]["status"] == "active"


def test_segment_lookback_days_reaches_the_dated_entities(hris, clock):
    src = source(hris.base_url, clock, segment_lookback_days=30)
    list(src.scan_full())
    dated = [dict(httpx.URL("/?" + q).params) for _, p, q in hris.requests
             if p in ("/odata/v2/EmpJob", "/odata/v2/PerPersonal")]
    assert {d["fromDate"] for d in dated} == {(TODAY - timedelta(days=30)).isoformat()}


# -- schema drift: the columns a pull carried, and a property the tenant does not know --


def test_source_columns_are_the_selected_properties_the_answers_carried(hris, clock):
    src = source(hris.base_url, clock)
    assert src.source_columns() is None  # nothing read yet
    list(src.scan_full())
    columns = src.source_columns()
    assert {"PerPerson/personIdExternal", "EmpJob/departmentNav/name_localized",
            "EmpJob/seqNumber", "EmpEmployment/userNav/title", "PerPersonal/firstName"
            } <= set(columns)
    hris.drop_property("employmentNav/assignmentClass")
    list(src.scan_full())
    assert set(columns) - set(src.source_columns()) == {"EmpEmployment/assignmentClass"}


def test_an_unknown_selected_property_rejects_the_feed_naming_it_and_its_key(hris, clock):
    with httpx.Client(auth=("api@ACME", PASSWORD)) as c:
        answer = c.get(f"{hris.base_url}/odata/v2/EmpJob?$format=json&$select=jobTitel")
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "COE_PROPERTY_NOT_FOUND"
    with pytest.raises(FeedError) as caught:
        list(source(hris.base_url, clock, fields={"job_title": "job.jobTitel"}).scan_full())
    assert str(caught.value) == (
        "SuccessFactors GET /odata/v2/EmpJob: the configured property 'job.jobTitel' (named "
        "by hris.fields.job_title) is missing from the EmpJob properties of the tenant "
        "(HTTP 400: COE_PROPERTY_NOT_FOUND - Invalid property names: EmpJob/jobTitel. "
        "Please check the property name and try again.); restore it in the export, or "
        "correct the config, or list it in hris.optional_columns if the feed may lack it")
    optional = source(hris.base_url, clock, fields={"job_title": "job.jobTitel|user.title"},
                      optional_columns=["job.jobTitel"])
    assert {f["job_title"] for f in pulled(optional).values()} == {"Specialist"}


def test_schema_drift_reaches_the_run_counts_and_a_refused_property_is_a_rejected_feed(
        clock, hris, scim_server, lms_token, tmp_path):
    def engine_for(**hris_settings) -> Engine:
        config = Config.model_validate({
            "database": {"path": str(tmp_path / "rostersync.db")},
            "hris": {"type": "successfactors", "base_url": hris.base_url, "company_id": "ACME",
                     "username": "api", "password_env": PASSWORD_ENV, **hris_settings},
            "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV}})
        src = SuccessFactorsSource(config.hris, now=clock.now)
        return Engine(config, Store(config.database.path), source=src, clock=clock)

    clock.advance(hours=2)
    engine = engine_for()
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    hris.drop_property("employmentNav/assignmentClass")
    clock.advance(hours=1)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["columns"] == {"disappeared": ["EmpEmployment/assignmentClass"]}
    clock.advance(hours=1)
    rejected = asyncio.run(engine_for(fields={"department": "job.dept"}).sync("full"))
    assert rejected.status == "rejected"
    assert "'job.dept' (named by hris.fields.department)" in rejected.message


def test_a_record_error_still_names_the_field_for_a_bad_seq_number(hris, clock):
    hris.store.edit("1006", lambda r, now: r["employmentNav"][0]["jobInfoNav"][0].update(
        seqNumber="x"))
    src = source(hris.base_url, clock)
    record = next(r for r in src.scan_full() if r.key == "1006")
    with pytest.raises(RecordError, match="seqNumber is not a whole number"):
        src.fields(record)
