"""Workday schema drift: the report's XML Schema (?xsds) tells a renamed column from an
empty one. A configured alias the schema no longer lists rejects the feed (exit 4)
naming the alias and its config key; an optional one may go; a schema that cannot be had
is noted and the pull goes on unchecked."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from rostersync.sandbox.workday import WorkdaySandbox, json_error, malformed, soap_fault
from rostersync.sandbox.workday_data import REPORT_COLUMNS, generate, report_xsd
from rostersync.storage import runs as run_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.connectors.workday_schema import SchemaUnreadable, report_columns
from tests.support import by_external_id, lms_users
from tests.test_workday import (
    NOW,
    PASSWORD,
    PASSWORD_ENV,
    USER,
    W,
    canned,
    engine_for,
    source,
)

STANDARD = [alias for alias, _kind in REPORT_COLUMNS]


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock):
    os.environ[PASSWORD_ENV] = PASSWORD
    with WorkdaySandbox(user=USER, password=PASSWORD, clock=clock.now) as server:
        for worker in generate(7):
            server.put(worker)
        yield server


def schema_calls(hris) -> int:
    return sum(1 for _m, _s, params in hris.requests if "xsds" in params)


# -- the schema as served ----------------------------------------------------------------


def test_the_sandbox_serves_the_reports_schema_listing_every_alias(hris):
    answer = httpx.get(f"{hris.report_url}?xsds", auth=(USER, PASSWORD))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert b'targetNamespace="urn:com.workday.report/LMS_Workers"' in answer.content
    # Termination_Date is empty in every row (so left out of every row) but still listed.
    assert report_columns(answer.content) == STANDARD


def test_report_columns_reads_the_entry_type_in_order_and_refuses_other_documents():
    xsd = report_xsd("R", [("B", "string"), ("A", "date"), ("B", "string")])
    assert report_columns(xsd) == ["B", "A"]
    for body, why in [
        (b"<html>Sign in</html>", "root element is 'html'"),
        (b"<?xml version='1.0'?><x", "not XML"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x/>', "DOCTYPE"),
        (b'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema"/>',
         "defines no Report_EntryType"),
    ]:
        with pytest.raises(SchemaUnreadable, match=why):
            report_columns(body)


# -- the source ------------------------------------------------------------------------


def test_a_renamed_alias_rejects_the_feed_naming_alias_and_key(hris, clock):
    hris.rename_column("Supervisory_Organization", "Sup_Org")
    src = source(hris, clock)
    with pytest.raises(FeedError) as err:
        list(src.scan_full())
    assert str(err.value) == (
        f"Workday GET {hris.report_url}?xsds: the configured column "
        "'Supervisory_Organization' (named by hris.columns.department) is missing from "
        "the report's schema; restore it in the export, or correct the config, or list it "
        "in hris.optional_columns if the feed may lack it")


def test_a_renamed_termination_date_is_caught_though_no_row_carries_one(hris, clock):
    # No worker has a termination date, so no row ever carried the alias: only the
    # schema shows that it is gone (rows alone cannot).
    hris.rename_column("Termination_Date", "Term_Date")
    with pytest.raises(FeedError, match=r"'Termination_Date' \(named by "
                                        r"hris\.columns\.termination_date\)"):
        list(source(hris, clock).scan_full())


def test_a_renamed_flag_alias_names_the_status_key(hris, clock):
    hris.rename_column("Active", "Is_Active")
    with pytest.raises(FeedError, match=r"'Active' \(named by hris\.status\.active_flag\)"):
        list(source(hris, clock).scan_full())


def test_an_optional_alias_may_disappear(hris, clock):
    hris.rename_column("Supervisory_Organization", "Sup_Org")
    src = source(hris, clock, optional_columns=["Supervisory_Organization"])
    got = {r.key: src.fields(r) for r in src.scan_full()}
    assert len(got) == 7 and all(f["department"] is None for f in got.values())
    assert "Sup_Org" in src.source_columns()
    assert "Supervisory_Organization" not in src.source_columns()


def test_source_columns_are_the_schemas_aliases_in_report_order(hris, clock):
    src = source(hris, clock)
    assert src.source_columns() is None  # nothing read yet
    list(src.scan_full())
    assert src.source_columns() == STANDARD
    assert schema_calls(hris) == 1


def test_an_alias_the_schema_omits_but_rows_carry_is_not_missing(hris, clock):
    # One integration saw schemas leave out columns; a row that carries the alias
    # proves the column is there.
    rows = [{"Worker_WID": "a", "Worker_Status": "Active", "Extra_Alias": "x"}]
    hris.faults.push(canned(rows))
    src = source(hris, clock, attributes={"extra": "Extra_Alias"})
    [record] = src.scan_full()
    assert src.fields(record)["attributes.extra"] == "x"
    assert src.source_columns() == STANDARD  # the schema was read, and lacks the alias


@pytest.mark.parametrize(("answer", "why"), [
    (soap_fault(404, "Client", "No schema for this report"),
     "HTTP 404: No schema for this report"),
    (json_error(500, "Report schema failed"), "HTTP 500: Report schema failed"),
    (malformed(), "its root element is 'html', not an XML Schema"),
])
def test_a_schema_that_cannot_be_had_is_noted_and_the_pull_goes_on(hris, clock, caplog,
                                                                   answer, why):
    hris.app.schema_fault = answer
    hris.rename_column("Supervisory_Organization", "Sup_Org")  # not seen without a schema
    src = source(hris, clock)
    with caplog.at_level("WARNING", logger="rostersync.sync.connectors.workday"):
        assert len(list(src.scan_full())) == 7
    assert src.source_columns() is None
    assert src.schema_note == (
        f"Workday GET {hris.report_url}?xsds: could not read the report's schema ({why}), "
        "so renamed columns were not checked this time; set hris.schema_check = false if "
        "the tenant serves none")
    assert [r.getMessage() for r in caplog.records] == [src.schema_note]


def test_schema_check_off_makes_no_schema_request(hris, clock):
    hris.rename_column("Supervisory_Organization", "Sup_Org")
    src = source(hris, clock, schema_check=False)
    assert len(list(src.scan_full())) == 7
    assert schema_calls(hris) == 0 and src.schema_note.startswith("not checked")


def test_the_schema_query_is_configurable(hris, clock):
    src = source(hris, clock, schema_query="xsd")  # the sandbox knows only ?xsds
    list(src.scan_full())
    assert src.schema_note.startswith(f"Workday GET {hris.report_url}?xsd: could not read")


def test_optional_columns_must_name_a_configured_alias_and_not_the_key(hris, clock):
    with pytest.raises(ValueError, match=r"'Nope' is not an alias named in hris\.columns"):
        source(hris, clock, optional_columns=["Nope"])
    with pytest.raises(ValueError, match="'Worker_WID' is the key"):
        source(hris, clock, optional_columns=["Worker_WID"])


# -- end to end ------------------------------------------------------------------------


def test_engine_rejects_a_renamed_column_keeps_the_lms_and_records_column_events(
        hris, clock, scim_server, lms_token, tmp_path):
    engine, _config = engine_for(hris, clock, scim_server, tmp_path)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    accepted = run_store.last_accepted_snapshot(engine.store)
    assert accepted["columns"] == STANDARD
    before = by_external_id(lms_users(scim_server.base_url, lms_token))

    clock.advance(hours=1)
    hris.update(W(4), Termination_Date="2026-11-01")  # would deactivate: must not
    hris.rename_column("Supervisory_Organization", "Sup_Org")
    report = asyncio.run(engine.sync("full"))
    assert (report.status, report.exit_code) == ("rejected", 4)
    assert "'Supervisory_Organization' (named by hris.columns.department)" in report.message
    assert by_external_id(lms_users(scim_server.base_url, lms_token)) == before
    assert run_store.last_accepted_snapshot(engine.store)["id"] == accepted["id"]

    # An unmapped column appearing is recorded on the next accepted feed.
    hris.rename_column("Supervisory_Organization", "Supervisory_Organization")
    hris.update(W(2), Badge="B-2")
    clock.advance(hours=1)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["columns"] == {"appeared": ["Badge"]}
