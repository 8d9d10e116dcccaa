"""to_person and null_mask: the rules that turn HR strings into a Person."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from rostersync.sync.config import CANONICAL_FIELDS, config_from_dict
from rostersync.sync.connectors.csv_source import CsvSource
from rostersync.sync.models import Person, Status
from rostersync.sync.validate import Problem, null_mask, to_person

TODAY = date(2024, 6, 15)
WHERE = "employees.csv:17"


def make_config(**hris):
    return config_from_dict(
        {
            "hris": {"type": "csv", "path": "employees.csv", **hris},
            "lms": {"type": "scim", "base_url": "https://lms.example.com/scim/v2"},
            "mapping": {"default_timezone": "Europe/Berlin"},
        }
    )


CONFIG = make_config()


def record(**overrides: str | None) -> dict[str, str | None]:
    base: dict[str, str | None] = {
        "employee_id": "E17",
        "first_name": "Ana",
        "last_name": "Smith",
        "status": "active",
    }
    return base | overrides


def person(**overrides: str | None) -> Person:
    result = to_person(record(**overrides), WHERE, CONFIG, TODAY)
    assert isinstance(result, Person), [str(p) for p in result]
    return result


def problems(**overrides: str | None) -> list[str]:
    result = to_person(record(**overrides), WHERE, CONFIG, TODAY)
    assert isinstance(result, list), result
    return [str(p) for p in result]


def test_minimal_record_becomes_a_person_with_defaults():
    p = person()
    assert (p.employee_id, p.first_name, p.last_name, p.status) == ("E17", "Ana", "Smith", "active")
    assert p.timezone == "Europe/Berlin"  # mapping.default_timezone
    assert p.email is None and p.hire_date is None and p.attributes == {}


def test_optional_text_fields_and_attributes():
    p = person(
        department=" Sales ",
        job_title="",
        manager_id=" E2 ",
        **{"attributes.worker_type": "contractor", "attributes.site": None},
    )
    assert (p.department, p.job_title, p.manager_id) == ("Sales", None, "E2")
    assert p.attributes == {"worker_type": "contractor"}


def test_required_fields():
    assert problems(employee_id=None, first_name="  ", last_name=None) == [
        "employees.csv:17 field employee_id: required but empty",
        "employees.csv:17 field first_name: required but empty",
        "employees.csv:17 field last_name: required but empty",
    ]
    assert problems(employee_id="E 17") == [
        "employees.csv:17 field employee_id: contains whitespace (value 'E 17')"
    ]


def test_email_is_checked_and_lowercased():
    assert person(email="Ana.Smith+lms@Example.COM").email == "ana.smith+lms@example.com"
    assert person(email="ines.müller@beispiel.de").email == "ines.müller@beispiel.de"
    assert problems(email="bob@@x") == [
        "employees.csv:17 field email: not a valid email address (value 'bob@@x')"
    ]
    for bad in ("bob smith@x.com", "bob@x", "bob@x.", "@x.com", "bob@.com", "a..b@x.com"):
        assert problems(email=bad)[0].startswith("employees.csv:17 field email: not a valid")


def test_status_mapping_ignores_case_and_spaces():
    assert person(status="  Active ").status is Status.active
    assert person(status="On  Leave").status is Status.leave
    assert person(status="PRE-HIRE").status is Status.pre_hire
    assert person(status="Inactive").status is Status.terminated


def test_unknown_or_empty_status():
    assert problems(status="Retired") == [
        "employees.csv:17 field status: not a known status; add it to "
        "mapping.status_values (value 'Retired')"
    ]
    assert problems(status=None) == ["employees.csv:17 field status: required but empty"]


def test_feed_without_a_status_column_means_active():
    fields = record()
    del fields["status"]
    result = to_person(fields, WHERE, CONFIG, TODAY)
    assert isinstance(result, Person) and result.status is Status.active


@pytest.mark.parametrize(
    "raw",
    ["2024-03-01", "2024/03/01", "03/01/2024", "01.03.2024", "3/1/2024"],
)
def test_dates_in_every_configured_format(raw):
    assert person(hire_date=raw).hire_date == date(2024, 3, 1)


def test_date_formats_are_tried_in_configured_order():
    eu_first = make_config(date_formats=["%d/%m/%Y", "%m/%d/%Y"])
    result = to_person(record(hire_date="03/01/2024"), WHERE, eu_first, TODAY)
    assert isinstance(result, Person) and result.hire_date == date(2024, 1, 3)


def test_zero_and_empty_dates_are_none():
    p = person(hire_date="0000-00-00", termination_date="")
    assert p.hire_date is None and p.termination_date is None


def test_unparseable_date():
    assert problems(hire_date="31/02/2024") == [
        "employees.csv:17 field hire_date: not a date in any configured format "
        "(%Y-%m-%d, %Y/%m/%d, %m/%d/%Y, %d.%m.%Y) (value '31/02/2024')"
    ]


def test_source_updated_at():
    assert person(source_updated_at="2024-05-01T09:30:00Z").source_updated_at == datetime(
        2024, 5, 1, 9, 30, tzinfo=UTC
    )
    with_offset = person(source_updated_at="2024-05-01T11:30:00+02:00").source_updated_at
    assert with_offset == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    naive = person(source_updated_at="2024-05-01 09:30:00").source_updated_at
    assert naive == datetime(2024, 5, 1, 9, 30, tzinfo=timezone(timedelta(0)))
    assert problems(source_updated_at="yesterday")[0].startswith(
        "employees.csv:17 field source_updated_at: not an ISO 8601 date-time"
    )


def test_timezone():
    assert person(timezone="America/New_York").timezone == "America/New_York"
    assert person(timezone=" ").timezone == "Europe/Berlin"
    assert problems(timezone="Mars/Olympus") == [
        "employees.csv:17 field timezone: not a valid IANA time zone (e.g. Europe/Berlin) "
        "(value 'Mars/Olympus')"
    ]
    assert problems(timezone="../../etc/passwd")[0].startswith("employees.csv:17 field timezone")


def test_own_manager():
    assert problems(manager_id="E17") == [
        "employees.csv:17 field manager_id: same as employee_id (nobody manages themselves) "
        "(value 'E17')"
    ]


def test_scheduled_termination_keeps_the_person_active():
    future = person(status="terminated", termination_date="2024-06-30")
    assert future.status is Status.active and future.termination_date == date(2024, 6, 30)
    # The termination date is the last working day: today they still work.
    assert person(status="terminated", termination_date="2024-06-15").status is Status.active
    assert person(status="terminated", termination_date="2024-06-14").status is Status.terminated
    assert person(status="terminated").status is Status.terminated


def test_past_termination_date_terminates_active_and_leave():
    assert person(status="active", termination_date="2024-06-14").status is Status.terminated
    assert person(status="leave", termination_date="2024-01-01").status is Status.terminated
    assert person(status="active", termination_date="2024-06-15").status is Status.active
    assert person(status="pre_hire", termination_date="2024-01-01").status is Status.pre_hire


def test_old_termination_date_of_a_rehire_is_history():
    rehired = person(status="active", hire_date="2024-03-01", termination_date="2022-05-31")
    assert rehired.status is Status.active


def test_all_problems_of_a_record_are_reported_together():
    result = to_person(
        record(
            last_name=None,
            email="bob@@x",
            status="Retired",
            hire_date="someday",
            timezone="Nowhere/Land",
            manager_id="E17",
        ),
        WHERE,
        CONFIG,
        TODAY,
    )
    assert isinstance(result, list)
    assert [(p.field, p.value) for p in result] == [
        ("last_name", None),
        ("email", "bob@@x"),
        ("status", "Retired"),
        ("hire_date", "someday"),
        ("timezone", "Nowhere/Land"),
        ("manager_id", "E17"),
    ]
    assert all(isinstance(p, Problem) and p.locator == WHERE for p in result)


def test_null_mask():
    assert null_mask({name: "x" for name in CANONICAL_FIELDS}) == 0
    mask = null_mask(record(email="", manager_id="  "))
    assert mask & (1 << CANONICAL_FIELDS.index("email"))
    assert mask & (1 << CANONICAL_FIELDS.index("manager_id"))  # whitespace is empty
    assert mask & (1 << CANONICAL_FIELDS.index("hire_date"))  # absent
    assert not mask & (1 << CANONICAL_FIELDS.index("employee_id"))
    assert null_mask({}) == (1 << len(CANONICAL_FIELDS)) - 1


def test_csv_row_to_person_end_to_end(tmp_path):
    path = tmp_path / "employees.csv"
    path.write_text(
        "ID,First,Last,Status,Email,Hired,Type\n"
        "E1,Ana,Smith,On Leave,Ana@Example.com,01.03.2020,contractor\n",
        encoding="utf-8",
    )
    config = make_config(
        path=str(path),
        columns={
            "employee_id": "ID",
            "first_name": "First",
            "last_name": "Last",
            "status": "Status",
            "email": "Email",
            "hire_date": "Hired",
        },
        attributes={"worker_type": "Type"},
    )
    src = CsvSource(config.hris)
    (raw,) = src.scan_full()
    p = to_person(src.fields(raw), raw.locator, config, TODAY)
    assert isinstance(p, Person)
    assert (p.status, p.email, p.hire_date) == (Status.leave, "ana@example.com", date(2020, 3, 1))
    assert p.attributes == {"worker_type": "contractor"}
