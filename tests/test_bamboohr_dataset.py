"""BambooHR Datasets v2 (hris.read_via = "dataset"): the sandbox speaks the documented wire
format, and the source reads the same people and values through it as through the
custom report, falls back to the report when the dataset is not there, and rejects a
configured field the dataset does not list.

Assumed (docs/bamboohr.md §1.2 E marks them [inferred]): the dataset names of fields other
than jobInformation*/employmentStatus/status, and a 400 for unknown fields.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from rostersync.sync.config import BambooHRSourceConfig
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import FeedError
from tests.bamboo_fixtures import KEY, KEY_ENV, NOW


def source(hris, clock, **config) -> BambooHRSource:
    return BambooHRSource(BambooHRSourceConfig(base_url=hris.base_url, api_key_env=KEY_ENV,
                                               **config), now=clock.now)


def post(hris, body) -> httpx.Response:
    with httpx.Client(auth=(KEY, "x"), headers={"Accept": "application/json"}) as c:
        return c.post(f"{hris.base_url}/v2/datasets/employee/data", json=body)


def dataset_calls(hris) -> list[tuple[str, str]]:
    return [(m, p.rpartition("/acme/")[2]) for m, p, _ in hris.requests if "datasets" in p]


# -- the sandbox ----------------------------------------------------------------------


def test_dataset_pages_and_meta(hris):
    first = post(hris, {"fields": ["employeeId", "jobInformationDepartment"], "pageSize": 3})
    last = post(hris, {"fields": ["employeeId"], "pageSize": 3, "page": 3})
    assert first.status_code == 200
    body = first.json()
    assert body["meta"] == {"page": 1, "pageSize": 3, "totalPages": 3, "totalItems": 7}
    assert body["data"][0] == {"fields": {"employeeId": "7",
                                          "jobInformationDepartment": "Engineering"}}
    assert "next" in body["links"] and "prev" not in body["links"]
    assert len(last.json()["data"]) == 1 and "next" not in last.json()["links"]


def test_dataset_errors_are_problem_documents(hris):
    mixed = post(hris, {"fields": ["employeeId"],
                        "filter": "status eq 'Active' and employeeId eq '1' or employeeId eq '2'"})
    unknown = post(hris, {"fields": ["department"]})  # the employee endpoints' name
    too_big = post(hris, {"fields": ["employeeId"], "pageSize": 1001})
    assert mixed.status_code == 422 and mixed.json()["code"] == "INVALID_FILTER"
    assert mixed.headers["content-type"] == "application/problem+json"
    assert unknown.status_code == 400 and "department" in unknown.json()["detail"]
    assert too_big.status_code == 400
    assert post(hris, {"fields": ["employeeId"], "pageSize": 1000}).status_code == 200


# -- the source -----------------------------------------------------------------------


def test_dataset_reads_what_the_report_reads(hris, clock):
    hris.schedule("4", "employmentStatus", (NOW + timedelta(days=5)).date().isoformat(),
                  employmentStatus="Leave of Absence")
    hris.update("6", terminationDate=(NOW + timedelta(days=9)).date().isoformat())
    via_report = source(hris, clock)
    via_dataset = source(hris, clock, read_via="dataset")
    report = {r.key: via_report.fields(r) for r in via_report.scan_full()}
    hris.requests.clear()
    got = {r.key: via_dataset.fields(r) for r in via_dataset.scan_full()}
    assert got == report
    assert got["4"]["status"] == "Full-Time"  # current, not the scheduled leave
    assert got["6"]["termination_date"] == (NOW + timedelta(days=9)).date().isoformat()
    assert dataset_calls(hris) == [("GET", "v1_2/datasets/employee/fields"),
                                   ("POST", "v2/datasets/employee/data")]


@pytest.mark.parametrize(("size", "pages"), [(6, 2), (7, 1), (8, 1), (1, 7)])
def test_dataset_paging_at_the_edge(hris, clock, size, pages):
    src = source(hris, clock, read_via="dataset", dataset_page_size=size)
    assert sorted(r.key for r in src.scan_full()) == [str(i) for i in range(1, 8)]
    assert dataset_calls(hris).count(("POST", "v2/datasets/employee/data")) == pages


def test_dataset_delta_reads_the_changed_ids(hris, clock):
    clock.advance(minutes=1)
    src = source(hris, clock, read_via="dataset")
    list(src.scan_full())
    since = datetime.fromisoformat(src.watermark())
    clock.advance(minutes=1)
    hris.update("2", jobTitle="Head")
    hris.update("7", jobTitle="Lead")
    hris.requests.clear()
    records = list(src.scan_delta(since))
    assert sorted((r.key, src.fields(r)["job_title"]) for r in records) == [
        ("2", "Head"), ("7", "Lead")]
    assert ("POST", "v2/datasets/employee/data") in dataset_calls(hris)


def test_a_missing_dataset_falls_back_to_the_report(hris, clock, caplog):
    src = source(hris, clock, read_via="dataset", dataset_name="nosuch")
    assert len(list(src.scan_full())) == 7
    assert "custom report instead" in caplog.text
    assert any(p.endswith("/v1/reports/custom") for _, p, _ in hris.requests)
    # doctor shows it as a warning (console/doctor.py: " could not " in a note)
    assert " could not " in dict(src.notes())["hris read"]
    ok = source(hris, clock, read_via="dataset")
    list(ok.scan_full())
    assert dict(ok.notes())["hris read"] == ("current values from the dataset 'employee' "
                                             "(Datasets v2)")


def test_a_configured_field_the_dataset_lacks_rejects_the_feed(hris, clock):
    hris.forget_field("jobTitle")
    with pytest.raises(FeedError) as caught:
        list(source(hris, clock, read_via="dataset").scan_full())
    message = str(caught.value)
    assert message.startswith("BambooHR GET /v1_2/datasets/employee/fields: the configured "
                              "field 'jobInformationJobTitle' (named by hris.fields")
    assert "hris.optional_columns" in message
    src = source(hris, clock, read_via="dataset", optional_columns=["jobTitle"])
    assert all(src.fields(r)["job_title"] is None for r in src.scan_full())


def test_dataset_field_names_can_be_overridden(hris, clock):
    src = source(hris, clock, read_via="dataset",
                 dataset_fields={"workEmail": "noSuchEmailField"})
    with pytest.raises(FeedError, match="'noSuchEmailField'"):
        list(src.scan_full())
