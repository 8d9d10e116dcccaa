"""Schema drift: a configured column that the export no longer offers rejects the feed
(exit 4) naming the column and its config key, unless the config marks it optional; the
LMS (a real scim2-server) is untouched and the last accepted snapshot stays in force."""

from __future__ import annotations

import asyncio
import csv
import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.world import HEADER
from rostersync.storage import runs as run_store
from rostersync.storage.db import parse_ts
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import (
    BambooHRSourceConfig,
    Config,
    ConfigError,
    config_from_dict,
    load_config,
)
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.schema_check import (
    MissingColumn,
    column_changes,
    column_keys,
    describe,
    missing_columns,
)
from rostersync.sync.status import COLUMN_CHANGE_HOURS, build_status
from tests.bamboo_fixtures import KEY_ENV
from tests.support import TOKEN_ENV, by_external_id, lms_users

# -- the pure check ------------------------------------------------------------------


def test_missing_columns_in_config_order_without_the_optional_ones():
    configured = column_keys({"employee_id": "ID", "department": "Dept", "email": "Mail"},
                             {"region": "Region"})
    present = {"ID", "Mail"}
    assert missing_columns(configured, present) == [
        MissingColumn("Dept", "hris.columns.department"),
        MissingColumn("Region", "hris.attributes.region")]
    assert missing_columns(configured, present, ["Region"]) == [
        MissingColumn("Dept", "hris.columns.department")]
    assert missing_columns(configured, present | {"Dept", "Region"}) == []


def test_a_column_named_by_two_keys_is_reported_once():
    configured = column_keys({"department": "Org"}, {"org": "Org"})
    assert missing_columns(configured, set()) == [
        MissingColumn("Org", "hris.columns.department")]


def test_the_message_is_one_sentence_naming_column_key_and_the_way_out():
    one = describe([MissingColumn("Dept", "hris.columns.department")], "the header")
    assert one.startswith("the configured column 'Dept' (named by hris.columns.department) "
                          "is missing from the header;")
    assert "hris.optional_columns" in one and "\n" not in one
    two = describe([MissingColumn("a", "hris.fields"), MissingColumn("b", "hris.fields")],
                   "the report's fields", "field")
    assert two.startswith("the configured fields 'a' (named by hris.fields), 'b' (named by "
                          "hris.fields) are missing from the report's fields;")


def test_column_changes_between_accepted_feeds():
    assert column_changes(["A", "B"], ["A", "B"]) == {}
    assert column_changes(None, ["A"]) == {}  # no earlier feed to compare with
    assert column_changes(["A"], None) == {}  # the source cannot tell
    assert column_changes(["A", "B"], ["C", "A"]) == {
        "columns": {"appeared": ["C"], "disappeared": ["B"]}}
    assert column_changes(["A"], ["A", "B"]) == {"columns": {"appeared": ["B"]}}


# -- the config ----------------------------------------------------------------------


def _csv_config(tmp_path, **hris) -> dict:
    return {"hris": {"type": "csv", "path": str(tmp_path / "e.csv"),
                     "columns": {"employee_id": "ID", "first_name": "First",
                                 "last_name": "Last", "status": "Status",
                                 "department": "Dept"}, **hris},
            "lms": {"type": "scim", "base_url": "http://127.0.0.1:1/scim"}}


def test_optional_columns_must_name_a_configured_column(tmp_path):
    with pytest.raises(ConfigError) as err:
        config_from_dict(_csv_config(tmp_path, optional_columns=["Department"]))
    assert str(err.value) == ("key 'hris.optional_columns': 'Department' is not a column "
                              "named in hris.columns or hris.attributes")
    config = config_from_dict(_csv_config(tmp_path, optional_columns=["Dept"]))
    assert config.hris.optional_columns == ["Dept"]


def test_a_required_column_cannot_be_optional(tmp_path):
    with pytest.raises(ConfigError) as err:
        config_from_dict(_csv_config(tmp_path, optional_columns=["Status"]))
    assert str(err.value) == ("key 'hris.optional_columns': 'Status' holds a required field "
                              "and cannot be optional")


def test_bamboohr_optional_fields_must_be_requested():
    base = {"base_url": "http://127.0.0.1:1/api/gateway.php/acme", "api_key_env": "X"}
    with pytest.raises(ValueError, match=r"'dept' is not a column named in hris\.fields"):
        BambooHRSourceConfig(**base, optional_columns=["dept"])
    with pytest.raises(ValueError, match="'id' holds a required field"):
        BambooHRSourceConfig(**base, optional_columns=["id"])


# -- CSV, through the command line, into a real scim2-server ---------------------------


def run(capsys, workspace, *argv: str) -> tuple[int, dict]:
    code = main(workspace.args(*argv, "--json"))
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def write_renamed(workspace, renames: dict[str, str]) -> None:
    """The workspace's rows under a header where HR renamed some columns."""
    header = [renames.get(name, name) for name in HEADER]
    with workspace.csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in workspace.world.rows.values():
            writer.writerow([row[name] for name in HEADER])


def mark_optional(workspace, columns: list[str]) -> None:
    text = workspace.config_path.read_text(encoding="utf-8")
    listed = ", ".join(json.dumps(c) for c in columns)
    text = text.replace("[hris.columns]", f"optional_columns = [{listed}]\n\n[hris.columns]", 1)
    workspace.config_path.write_text(text, encoding="utf-8")


def lms_state(workspace) -> dict[str, tuple]:
    found = by_external_id(lms_users(workspace.lms.base_url, workspace.token))
    return {k: json.dumps(v, sort_keys=True) for k, v in found.items()}


def test_renamed_columns_reject_the_feed_naming_column_and_key(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    store = workspace.store()
    accepted = run_store.last_accepted_snapshot(store)["id"]
    before = lms_state(workspace)

    # HR renames two columns and, in the same export, terminates someone: nothing of
    # that export may reach the LMS.
    workspace.world.rows["E00007"].update({"Status": "Terminated",
                                           "Termination Date": "2026-01-15"})
    write_renamed(workspace, {"Department": "Dept.", "Termination Date": "Term Date"})
    code, report = run(capsys, workspace, "sync")

    assert code == 4, report
    assert report["status"] == "rejected"
    message = report["message"]
    assert ("the configured columns 'Department' (named by hris.columns.department), "
            "'Termination Date' (named by hris.columns.termination_date) are missing from "
            "the header") in message
    assert message.startswith("feed rejected: employees.csv:1: ")
    assert "Traceback" not in message
    assert lms_state(workspace) == before
    assert run_store.last_accepted_snapshot(store)["id"] == accepted

    # `status` shows the rejection as a feed problem (exit 4's error class).
    code, status = run(capsys, workspace, "status")
    assert json.dumps(status).count("hris.columns.department") >= 1

    # The header restored: the same export is accepted and the termination goes through.
    workspace.world.write(workspace.csv_path)
    assert run(capsys, workspace, "sync")[0] == 0
    users = by_external_id(lms_users(workspace.lms.base_url, workspace.token))
    assert users["E00007"][0]["active"] is False


def test_one_renamed_column_is_enough_and_only_it_is_named(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    mark_optional(workspace, ["Termination Date"])
    write_renamed(workspace, {"Department": "Dept.", "Termination Date": "Term Date"})
    code, report = run(capsys, workspace, "sync")
    assert code == 4, report
    assert ("the configured column 'Department' (named by hris.columns.department) is "
            "missing from the header") in report["message"]
    assert "Termination Date" not in report["message"]


def test_a_column_marked_optional_may_disappear(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    before = lms_state(workspace)
    mark_optional(workspace, ["Termination Date"])
    write_renamed(workspace, {"Termination Date": "Term Date"})
    code, report = run(capsys, workspace, "sync")
    assert code == 0, report
    assert report["status"] == "succeeded"
    assert lms_state(workspace) == before  # the column held no values: nothing to change


def test_columns_that_appear_or_disappear_are_counted_and_recorded(capsys, workspace):
    code, report = run(capsys, workspace, "sync")
    assert code == 0 and "columns" not in report["counts"]  # nothing to compare with
    store = workspace.store()
    assert run_store.last_accepted_snapshot(store)["columns"] == list(HEADER)

    mark_optional(workspace, ["Time Zone"])
    write_renamed(workspace, {"Time Zone": "Zone"})  # an optional one gone, a new one
    code, report = run(capsys, workspace, "sync")
    assert code == 0, report
    assert report["counts"]["columns"] == {"appeared": ["Zone"], "disappeared": ["Time Zone"]}
    assert "Zone" in run_store.last_accepted_snapshot(store)["columns"]

    code, report = run(capsys, workspace, "sync")  # the same header again: no change
    assert code == 0 and "columns" not in report["counts"]

    # The change stays an event on the dashboard and in `status` for a day, though the
    # run after it saw no change; a column that left raises the level to WARNING.
    changed = run_store.last_column_change(store, datetime(2000, 1, 1, tzinfo=UTC))
    assert changed["appeared"] == ["Zone"] and changed["disappeared"] == ["Time Zone"]
    at = parse_ts(changed["at"])
    config = load_config(workspace.config_path)
    day = timedelta(hours=COLUMN_CHANGE_HOURS)
    for now, shown in ((at, True), (at + day - timedelta(seconds=1), True), (at + day, True),
                       (at + day + timedelta(seconds=1), False)):
        status = build_status(store, config, now)
        reasons = [r for r in status["reasons"] if "export's columns changed" in r]
        assert bool(reasons) is shown, now
        assert (status["feed_columns"] is not None) is shown
        if shown:
            assert reasons == [f"the HRIS export's columns changed at {changed['at']} (run "
                               f"{changed['run_id']}): 'Time Zone' disappeared; 'Zone' "
                               "appeared"]
            assert status["exit_code"] >= 1


def test_a_column_that_only_appeared_is_news_not_a_warning(capsys, workspace):
    assert run(capsys, workspace, "sync")[0] == 0
    header = [*HEADER, "Badge"]
    with workspace.csv_path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in workspace.world.rows.values():
            writer.writerow([row[name] for name in HEADER] + ["x"])
    assert run(capsys, workspace, "sync")[0] == 0
    store = workspace.store()
    changed = run_store.last_column_change(store, datetime(2000, 1, 1, tzinfo=UTC))
    status = build_status(store, load_config(workspace.config_path), parse_ts(changed["at"]))
    assert status["feed_columns"]["appeared"] == ["Badge"]
    assert any("'Badge' appeared" in r for r in status["reasons"])
    assert not any("disappeared" in r for r in status["reasons"])


def test_optional_columns_absent_from_the_first_feed(capsys, workspace):
    mark_optional(workspace, ["Department", "Termination Date"])
    write_renamed(workspace, {"Department": "Org Unit", "Termination Date": "Term Date"})
    code, report = run(capsys, workspace, "sync")
    assert code == 0, report
    assert report["counts"]["planned"] == {"create": 500}


def test_doctor_names_the_missing_column(capsys, workspace):
    write_renamed(workspace, {"Department": "Dept."})
    main(workspace.args("doctor"))
    out = capsys.readouterr().out
    assert "'Department' (named by hris.columns.department)" in out


# -- BambooHR: the fields requested against the fields the report kept ----------------



def bamboo_config(hris, scim_server, tmp_path, **hris_settings) -> Config:
    return Config.model_validate({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": {"type": "bamboohr", "base_url": hris.base_url, "api_key_env": KEY_ENV,
                 **hris_settings},
        "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
        "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                      "inactive": "terminated"}},
    })


def test_bamboohr_report_without_a_requested_field_is_rejected(hris, clock):
    hris.forget_field("department")  # HR deleted the field: the report leaves it out
    config = BambooHRSourceConfig(base_url=hris.base_url, api_key_env=KEY_ENV)
    with pytest.raises(FeedError) as err:
        list(BambooHRSource(config, now=clock.now).scan_full())
    assert str(err.value) == (
        "BambooHR POST /v1/reports/custom: the configured field 'department' (named by "
        "hris.fields) is missing from the report's fields; restore it in the export, or "
        "correct the config, or list it in hris.optional_columns if the feed may lack it")


def test_bamboohr_engine_keeps_the_lms_and_snapshot_then_accepts_when_optional(
        hris, clock, scim_server, lms_token, tmp_path):
    from rostersync.sync.engine import Engine

    config = bamboo_config(hris, scim_server, tmp_path)
    clock.advance(minutes=1)
    engine = Engine(config, make_store(config.database),
                    source=BambooHRSource(config.hris, now=clock.now), clock=clock)
    assert asyncio.run(engine.sync("full")).status == "succeeded"
    accepted = run_store.last_accepted_snapshot(engine.store)["id"]
    before = by_external_id(lms_users(scim_server.base_url, lms_token))

    hris.forget_field("terminationDate")
    hris.update("3", employmentHistoryStatus="Terminated", status="Inactive")
    clock.advance(minutes=5)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "rejected"
    assert "'terminationDate' (named by hris.fields)" in report.message
    assert by_external_id(lms_users(scim_server.base_url, lms_token)) == before
    assert run_store.last_accepted_snapshot(engine.store)["id"] == accepted

    # A delta reads the same report: refused the same way.
    report = asyncio.run(engine.sync("delta"))
    assert report.status == "rejected", report.message

    optional = bamboo_config(hris, scim_server, tmp_path,
                             optional_columns=["terminationDate"])
    engine = Engine(optional, engine.store,
                    source=BambooHRSource(optional.hris, now=clock.now), clock=clock)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["columns"] == {"disappeared": ["terminationDate"]}
    users = by_external_id(lms_users(scim_server.base_url, lms_token))
    assert users["3"][0]["active"] is False


# -- SuccessFactors: the properties $select asked for against those returned ----------

SF_PW, SF_PW_ENV = "sandbox-sf-pw", "ROSTERSYNC_TEST_SCHEMA_SF_PW"


@pytest.fixture
def sf(clock):
    from rostersync.sandbox import successfactors_data
    from rostersync.sandbox.successfactors import SuccessFactorsSandbox

    os.environ[SF_PW_ENV] = SF_PW
    with SuccessFactorsSandbox("ACME", username="api", password=SF_PW,
                               clock=clock.now) as server:
        for record in successfactors_data.organisation(7):
            server.put(record)
        yield server


def sf_config(sf, **settings):
    return SuccessFactorsSourceConfig(base_url=sf.base_url, company_id="ACME",
                                      username="api", password_env=SF_PW_ENV, **settings)


def test_successfactors_answer_without_a_selected_property_is_rejected(sf, clock):
    from rostersync.sync.connectors.successfactors import SuccessFactorsSource

    assert len(list(SuccessFactorsSource(sf_config(sf), now=clock.now).scan_full())) == 7
    sf.drop_property("employmentNav/jobInfoNav/departmentNav/name_localized")
    with pytest.raises(FeedError) as err:
        list(SuccessFactorsSource(sf_config(sf), now=clock.now).scan_full())
    assert str(err.value) == (
        "SuccessFactors GET /odata/v2/EmpJob: the configured property "
        "'job.departmentNav.name_localized' (named by hris.fields.department) is missing "
        "from the properties returned for the $select; restore it in the export, or "
        "correct the config, or list it in hris.optional_columns if the feed may lack it")


def test_successfactors_property_marked_optional_may_be_missing(sf, clock):
    from rostersync.sync.connectors.successfactors import SuccessFactorsSource

    sf.drop_property("employmentNav/jobInfoNav/departmentNav/name_localized")
    config = sf_config(sf, optional_columns=["job.departmentNav.name_localized"])
    records = list(SuccessFactorsSource(config, now=clock.now).scan_full())
    source = SuccessFactorsSource(config, now=clock.now)
    assert len(records) == 7
    assert {source.fields(r)["department"] for r in records} == {None}


def test_successfactors_optional_paths_must_be_configured():
    with pytest.raises(ValueError, match=r"'job\.dept' is not a path named in hris\.fields"):
        SuccessFactorsSourceConfig(base_url="http://127.0.0.1:1", company_id="ACME",
                                   username="api", password_env="X",
                                   optional_columns=["job.dept"])


def test_successfactors_a_navigation_nobody_has_says_nothing(sf, clock):
    from rostersync.sync.connectors.successfactors import SuccessFactorsSource

    # An attribute under a navigation no person carries cannot be judged: accepted.
    sf.drop_property("employmentNav/jobInfoNav/departmentNav")
    config = sf_config(sf)
    assert len(list(SuccessFactorsSource(config, now=clock.now).scan_full())) == 7
