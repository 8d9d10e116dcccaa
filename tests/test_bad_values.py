"""Values no LMS should receive: over-long fields, control characters (NUL, ESC, C1) and
bidirectional overrides become `invalid` drift naming the field, and nothing is sent."""

from __future__ import annotations

import json
from datetime import date

import pytest

from rostersync.console.cli import main
from rostersync.sync.config import config_from_dict
from rostersync.sync.models import Person
from rostersync.sync.validate import to_person
from tests.support import by_external_id, lms_users

MIB = 1024 * 1024
TODAY = date(2024, 6, 15)


def make_config(**mapping):
    return config_from_dict({
        "hris": {"type": "csv", "path": "employees.csv"},
        "lms": {"type": "scim", "base_url": "https://lms.example.com/scim/v2"},
        "mapping": mapping,
    })


CONFIG = make_config()


def check(**overrides: str) -> list[str] | Person:
    fields = {"employee_id": "E17", "first_name": "Ana", "last_name": "Smith",
              "status": "active", **overrides}
    result = to_person(fields, "employees.csv:17", CONFIG if "config" not in overrides
                       else overrides.pop("config"), TODAY)
    return result if isinstance(result, Person) else [str(p) for p in result]


# -- the rules, record by record ---------------------------------------------------------

@pytest.mark.parametrize(("field", "limit", "key"), [
    ("first_name", 256, "mapping.max_name_length"),
    ("last_name", 256, "mapping.max_name_length"),
    ("preferred_name", 256, "mapping.max_name_length"),
    ("job_title", 1024, "mapping.max_field_length"),
    ("employee_number", 1024, "mapping.max_field_length"),
    ("attributes.site", 1024, "mapping.max_field_length"),
])
def test_length_limit_edges(field, limit, key):
    assert isinstance(check(**{field: "x" * (limit - 1)}), Person)
    at_max = check(**{field: "x" * limit})
    assert isinstance(at_max, Person)  # exactly at the limit: accepted
    over = check(**{field: "x" * (limit + 1)})
    assert over == [f"employees.csv:17 field {field}: is {limit + 1:,} characters long, over "
                    f"the limit of {limit:,} ({key}) (value {'x' * 60!r}... "
                    f"({limit + 1:,} characters))"]


def test_limits_are_configurable():
    config = make_config(max_name_length=5, max_field_length=8)
    assert isinstance(check(first_name="Anita", job_title="Engineer", config=config), Person)
    assert check(first_name="Anitas", job_title="Engineers", config=config) == [
        "employees.csv:17 field first_name: is 6 characters long, over the limit of 5 "
        "(mapping.max_name_length) (value 'Anitas')",
        "employees.csv:17 field job_title: is 9 characters long, over the limit of 8 "
        "(mapping.max_field_length) (value 'Engineers')",
    ]


def test_a_mebibyte_field_is_named_but_never_echoed():
    problems = check(first_name="A" * MIB)
    assert len(problems) == 1 and len(problems[0]) < 250
    assert "first_name" in problems[0] and "1,048,576 characters" in problems[0]


@pytest.mark.parametrize(("value", "code"), [
    ("Ana\x00", "U+0000 (NUL)"), ("An\x1b[31ma", "U+001B (ESC)"),
    ("An\x07a", "U+0007 (a control character)"), ("An\x7fa", "U+007F (DEL)"),
    ("An\x9ba", "U+009B (a control character)"), ("An\na", "U+000A (LINE FEED)"),
    ("Ana\u202eevil", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
    ("Ana\u202a", "U+202A (LEFT-TO-RIGHT EMBEDDING)"),
    ("\u2066Ana", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
    ("Ana\u2069x", "U+2069 (POP DIRECTIONAL ISOLATE)"),
])
def test_forbidden_characters_name_the_code_point(value, code):
    problems = check(last_name=value)
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"employees.csv:17 field last_name: contains {code} at "
                                  "character ")
    assert "no LMS should receive" in problems[0]


@pytest.mark.parametrize("value", [
    "Zoë", "José-María", "Nguyễn", "O'Brien", "محمد", "שרה", "李", "Ana\u200dMaria",
    "Ana\u2029x", "Ana\u202fx", "Ana~x", "Ana\u2065x", "Ana\u206ax", "Ana\u00a0B", "Ana\u0229",
])
def test_real_names_and_the_neighbours_of_the_forbidden_ranges_pass(value):
    # U+2029, U+202F, U+2065, U+206A, U+00A0 sit just outside the forbidden ranges.
    assert isinstance(check(first_name=value), Person)


def test_unsafe_values_are_reported_once_each_in_any_field():
    problems = check(email="ana\x00@acme.example", employee_id="E\x1b17",
                     **{"attributes.site": "Ber\u202elin"})
    assert [p.split(": ")[0] for p in problems] == [
        "employees.csv:17 field employee_id", "employees.csv:17 field email",
        "employees.csv:17 field attributes.site"]


# -- through the command line, against a real SCIM server --------------------------------

BAD = {
    "E00010": ("First Name", "A" * MIB, "first_name", "1,048,576 characters"),
    "E00011": ("Last Name", "Sm\x00ith", "last_name", "U+0000 (NUL)"),
    "E00012": ("Job Title", "\x1b[2JBoss", "job_title", "U+001B (ESC)"),
    "E00013": ("First Name", "Ana\u202egpj.exe", "first_name", "U+202E"),
    "E00014": ("First Name", "N" * 257, "first_name", "over the limit of 256"),
    "E00015": ("Job Title", "J" * 1025, "job_title", "over the limit of 1,024"),
}
GOOD = {"E00016": ("First Name", "N" * 256), "E00017": ("Job Title", "J" * 1024)}


def sync(capsys, workspace) -> tuple[int, dict]:
    code = main(workspace.args("sync", "--json"))
    return code, json.loads(capsys.readouterr().out)


def test_bad_values_are_invalid_drift_and_never_reach_the_lms(capsys, workspace):
    assert sync(capsys, workspace)[0] == 0
    before = {k: v[0] for k, v in by_external_id(
        lms_users(workspace.lms.base_url, workspace.token)).items()}

    rows = workspace.world.rows
    for key, (column, value, _field, _words) in BAD.items():
        rows[key][column] = value
    for key, (column, value) in GOOD.items():
        rows[key][column] = value
    # A newcomer with a bad name gets no account at all.
    rows["E00501"] = {**rows["E00020"], "Employee ID": "E00501", "Employee Number": "100501",
                      "Work Email": "new.501@acme.example", "Last Name": "New\u202eman"}
    workspace.world.write(workspace.csv_path)

    code, report = sync(capsys, workspace)
    assert code == 0, report
    assert report["counts"]["drift"]["invalid"] == len(BAD) + 1
    assert report["counts"]["planned"] == {"update": len(GOOD)}

    db = workspace.store().conn  # SQLite, or PostgreSQL (--database=pg)
    drift = {subject: json.loads(detail)["problems"] for subject, detail in db.execute(
        "SELECT subject, detail FROM drift WHERE kind = 'invalid' AND resolved_at IS NULL")}
    assert set(drift) == {*BAD, "E00501"}
    for key, (_column, _value, field, words) in BAD.items():
        (problem,) = drift[key]
        assert f"field {field}:" in problem and words in problem, problem
        assert len(problem) < 300  # the mebibyte is not repeated into the drift
    assert "field last_name: contains U+202E" in drift["E00501"][0]

    after = {k: v[0] for k, v in by_external_id(
        lms_users(workspace.lms.base_url, workspace.token)).items()}
    assert "E00501" not in after
    for key in BAD:  # untouched: what the LMS held before
        assert after[key]["name"] == before[key]["name"]
        assert after[key].get("title") == before[key].get("title")
    assert after["E00016"]["name"]["givenName"] == "N" * 256
    assert after["E00017"]["title"] == "J" * 1024
