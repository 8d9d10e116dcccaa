"""Each function of the mapping language, with its edge cases: empty text, null, positions
out of range, negative numbers, unicode, and the one-sentence errors (docs/mapping.md)."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from rostersync.sync.expressions import (
    FUNCTIONS,
    MAX_TEXT,
    EvaluationError,
    UnknownValue,
    compile_expression,
)
from rostersync.sync.models import Status

TODAY = date(2026, 12, 5)
TABLES = {"department": {"SLS": "Sales", "ENG": "Engineering"},
          "country": {"Berlin": "DE", "Paris": "FR"}}


def ev(text: str, **values: object) -> object:
    values = {k.replace("__", "."): v for k, v in values.items()}
    return compile_expression(text, name="attr").evaluate(values, today=TODAY, tables=TABLES)


def fails(text: str, **values: object) -> EvaluationError:
    with pytest.raises(EvaluationError) as caught:
        ev(text, **values)
    return caught.value


# --- text ---------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value", "expected"), [
    ("lower(first_name)", "ÅSA", "åsa"),
    ("lower(first_name)", "", ""),
    ("lower(first_name)", None, None),
    ("upper(first_name)", "straße", "STRASSE"),
    ("upper(first_name)", None, None),
    ("trim(first_name)", "  Ann \t", "Ann"),
    ("trim(first_name)", "   ", ""),
    ("trim(first_name)", None, None),
    ("lower(first_name)", Status.active, "active"),
])
def test_case_and_trim(text, value, expected):
    assert ev(text, first_name=value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ("Jürgen", "Jurgen"), ("Groß", "Gross"), ("Øyvind", "Oyvind"), ("Łukasz", "Lukasz"),
    ("Ærø", "AEro"), ("Đorđe", "Dorde"), ("François", "Francois"), ("Ｊｏｓé", "Jose"),
    ("Smith", "Smith"), ("", ""), (None, None), ("李", "李"),
])
def test_normalize_diacritics(value, expected):
    assert ev("normalize_diacritics(first_name)", first_name=value) == expected


def test_replace():
    assert ev('replace(first_name, " ", "")', first_name="Mary Ann") == "MaryAnn"
    assert ev('replace(first_name, "", "x")', first_name="abc") == "abc"  # nothing to find
    assert ev('replace(first_name, "a", null)', first_name="banana") == "bnn"
    assert ev('replace(first_name, "a", "b")', first_name=None) is None


def test_replace_refuses_to_grow_past_the_text_limit():
    just_fits = "a" * (MAX_TEXT // 2)
    assert len(ev('replace(first_name, "a", "bb")', first_name=just_fits)) == MAX_TEXT
    error = fails('replace(first_name, "a", "bb")', first_name=just_fits + "a")
    assert error.function == "replace" and "longer than" in str(error)


@pytest.mark.parametrize(("text", "expected"), [
    ('left("Anna", 2)', "An"), ('left("Anna", 0)', ""), ('left("Anna", 9)', "Anna"),
    ('left("", 3)', ""), ('left(null, 3)', None), ('left("Anna", null)', None),
    ('left("Anna", "3")', "Ann"), ('left("Žofia", 1)', "Ž"),
    ('right("Anna", 2)', "na"), ('right("Anna", 0)', ""), ('right("Anna", 9)', "Anna"),
    ('mid("Anderson", 2, 3)', "nde"), ('mid("Anderson", 1, 0)', ""),
    ('mid("Anderson", 8, 5)', "n"), ('mid("Anderson", 9, 5)', ""), ('mid(null, 1, 1)', None),
])
def test_left_right_mid(text, expected):
    assert ev(text) == expected


@pytest.mark.parametrize(("text", "function", "value"), [
    ('left("Anna", -1)', "left", -1), ('right("Anna", -2)', "right", -2),
    ('mid("Anna", 0, 2)', "mid", 0), ('mid("Anna", -1, 2)', "mid", -1),
    ('mid("Anna", 1, -1)', "mid", -1), ('left("Anna", "two")', "left", "two"),
    ('left("Anna", 1.5)', "left", 1.5),
])
def test_bad_counts_and_positions_name_the_function_and_value(text, function, value):
    error = fails(text)
    assert (error.name, error.function, error.value) == ("attr", function, value)
    assert str(error).startswith(f"attr: {function}: ")
    assert str(error).count(".") <= 1  # one sentence


@pytest.mark.parametrize(("index", "expected"), [
    (1, "a"), (3, "c"), (4, None), (-1, "c"), (-3, "a"), (-4, None),
])
def test_split_positions(index, expected):
    assert ev(f'split(email, "/", {index})', email="a/b/c") == expected


def test_split_edges():
    assert ev('split(email, "@", 2)', email="ann@acme.example") == "acme.example"
    assert ev('split(email, "@", 1)', email="") == ""
    assert ev('split(email, "@", 1)', email=None) is None
    assert fails('split(email, "@", 0)', email="a@b").value == 0
    assert fails('split(email, "", 1)', email="a@b").function == "split"


def test_join_skips_missing_parts():
    assert ev('join(" ", first_name, preferred_name, last_name)', first_name="Ann",
              preferred_name=None, last_name="Lee") == "Ann Lee"
    assert ev('join(".", first_name, "")', first_name="ann") == "ann"
    assert ev('join(".", first_name)', first_name=None) == ""
    assert ev('join(null, "a", "b")') == "ab"
    assert ev('join("-", 1, true, hire_date)', hire_date=date(2024, 5, 1)) == "1-true-2024-05-01"


def test_length_contains_starts_ends():
    assert ev("length(first_name)", first_name="Zoë") == 3
    assert ev("length(first_name)", first_name="") == 0
    assert ev("length(first_name)", first_name=None) is None
    assert ev('contains(email, "@")', email="a@b") is True
    assert ev('contains(email, "@")', email=None) is False
    assert ev('contains(email, "")', email="x") is True
    assert ev('starts_with(job_title, "Senior")', job_title="Senior Dev") is True
    assert ev('starts_with(job_title, "senior")', job_title="Senior Dev") is False
    assert ev('ends_with(email, "@acme.example")', email="a@acme.example") is True
    assert ev('ends_with(email, null)', email="a") is False


# --- choice ------------------------------------------------------------------------

def test_coalesce_and_default_skip_null_and_empty():
    assert ev("coalesce(preferred_name, first_name)", preferred_name="", first_name="Ann") \
        == "Ann"
    assert ev("coalesce(preferred_name, first_name)", preferred_name="Al",
              first_name="Alan") == "Al"
    assert ev("coalesce(preferred_name, first_name)") is None
    assert ev("coalesce(0, 5)") == 0  # zero is a value
    assert ev('default(location, "Remote")', location=None) == "Remote"
    assert ev('default(location, "Remote")', location="") == "Remote"
    assert ev('default(location, "Remote")', location="Oslo") == "Oslo"


def test_coalesce_does_not_evaluate_what_it_does_not_need():
    assert ev('coalesce(first_name, parse_date("junk"))', first_name="Ann") == "Ann"
    assert ev('if(true, "a", parse_date("junk"))') == "a"
    assert ev('false and parse_date("junk") == today()') is False


@pytest.mark.parametrize(("value", "expected"), [
    (None, True), ("", True), ("  ", True), ("x", False), (0, False), (False, False),
])
def test_is_empty(value, expected):
    assert ev("is_empty(location)", location=value) is expected


@pytest.mark.parametrize(("cond", "expected"), [
    (True, "yes"), (False, "no"), (None, "no"), ("", "no"), ("TRUE", "yes"),
    (" false ", "no"),
])
def test_if_conditions(cond, expected):
    assert ev('if(attributes.flag, "yes", "no")', attributes__flag=cond) == expected


def test_if_without_else_is_null_and_a_non_condition_is_an_error():
    assert ev('if(false, "yes")') is None
    error = fails('if(attributes.flag, "yes", "no")', attributes__flag="maybe")
    assert (error.function, error.value) == ("if", "maybe")


def test_switch():
    text = 'switch(attributes.type, "C", "Contractor", "E", "Employee", "Other")'
    assert ev(text, attributes__type="C") == "Contractor"
    assert ev(text, attributes__type="E") == "Employee"
    assert ev(text, attributes__type="e") == "Other"  # exact, like the value maps
    assert ev(text, attributes__type=None) == "Other"
    assert ev('switch(attributes.level, 1, "one", 2, "two", "many")',
              attributes__level="2") == "two"
    assert ev('switch(hire_date, "2024-05-01", "first", null)',
              hire_date=date(2024, 5, 1)) == "first"
    assert ev('switch(location, "", "none", "some")', location=None) == "none"


def test_one_of_and_equals():
    assert ev('one_of(attributes.type, "Intern", "Contractor")',
              attributes__type="Intern") is True
    assert ev('one_of(attributes.type, "Intern")', attributes__type=None) is False
    assert ev('equals(location, "Oslo")', location="Oslo") is True
    assert ev("equals(location, null)", location="") is True


@pytest.mark.parametrize(("text", "expected"), [
    ("and(true, true, true)", True), ("and(true, false)", False), ("and(null)", False),
    ("or(false, false)", False), ("or(false, true)", True), ("not(null)", True),
    ('not "false"', True), ("true and not false", True), ("false or true and false", False),
    ("(false or true) and true", True),
])
def test_and_or_not(text, expected):
    assert ev(text) is expected


# --- lookups ------------------------------------------------------------------------

def test_lookup_translates_and_passes_unknown_values_through():
    assert ev('lookup("department", department)', department="SLS") == "Sales"
    assert ev('lookup("department", department)', department="HR") == "HR"
    assert ev('lookup("department", department, "Unassigned")', department="HR") \
        == "Unassigned"
    assert ev('lookup("department", department)', department=None) is None


def test_lookup_strict_reports_the_unknown_value_never_guesses():
    assert ev('lookup_strict("country", location)', location="Paris") == "FR"
    assert ev('lookup_strict("country", location)', location=None) is None
    assert ev('lookup_strict("country", location)', location="") is None
    with pytest.raises(UnknownValue) as caught:
        ev('lookup_strict("country", location)', location="Lisbon")
    assert (caught.value.table, caught.value.value, caught.value.name) == \
        ("country", "Lisbon", "attr")
    assert str(caught.value) == \
        "attr: lookup_strict: value 'Lisbon' is not in the table 'country'"
    assert isinstance(caught.value, LookupError)


def test_lookup_of_a_table_the_run_does_not_have_is_one_sentence():
    expression = compile_expression('lookup("region", location)', name="region")
    with pytest.raises(EvaluationError, match="'region' is not a table the config defines"):
        expression.evaluate({"location": "Oslo"}, today=TODAY, tables=None)


# --- conversion ---------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("12", 12), (" -3 ", -3), ("1.5", 1.5), (7, 7), (None, None), ("", None),
])
def test_number(value, expected):
    assert ev("number(attributes.n)", attributes__n=value) == expected


@pytest.mark.parametrize("value", ["12a", "1e5", "nan", "inf", "1,5", True])
def test_a_number_that_is_not_one(value):
    error = fails("number(attributes.n)", attributes__n=value)
    assert (error.function, error.value) == ("number", value)
    assert "is not a number" in str(error)


def test_text():
    assert ev("text(hire_date)", hire_date=date(2024, 5, 1)) == "2024-05-01"
    assert ev("text(true)") == "true"
    assert ev("text(12)") == "12"
    assert ev("text(null)") is None


# --- dates --------------------------------------------------------------------------

def test_today_is_the_run_date():
    assert ev("today()") == TODAY


@pytest.mark.parametrize("hire", [date(2024, 5, 1), "2024-05-01", datetime(2024, 5, 1, 9),
                                  "2024-05-01T09:00:00"])
def test_dates_arrive_as_dates_or_iso_text(hire):
    assert ev('format_date(hire_date, "%d.%m.%Y")', hire_date=hire) == "01.05.2024"
    assert ev("days_since(hire_date)", hire_date=hire) == (TODAY - date(2024, 5, 1)).days
    assert ev("add_days(hire_date, 30)", hire_date=hire) == date(2024, 5, 31)


def test_date_edges():
    assert ev("days_since(hire_date)", hire_date=TODAY) == 0
    assert ev("days_since(hire_date)", hire_date=date(2026, 12, 6)) == -1  # still to come
    assert ev("days_since(hire_date)", hire_date=None) is None
    assert ev("days_since(hire_date)", hire_date="") is None
    assert ev("add_days(hire_date, -1)", hire_date="2024-03-01") == date(2024, 2, 29)
    assert ev("add_days(hire_date, null)", hire_date="2024-03-01") is None
    assert ev('format_date(hire_date, "%Y-%m")', hire_date=None) is None
    assert ev('parse_date(attributes.start, "%d.%m.%Y")', attributes__start="31.01.2025") \
        == date(2025, 1, 31)
    assert ev("parse_date(attributes.start)", attributes__start="2025-01-31") \
        == date(2025, 1, 31)
    assert ev("parse_date(attributes.start)", attributes__start=None) is None
    assert ev("parse_date(hire_date)", hire_date=date(2025, 1, 31)) == date(2025, 1, 31)


@pytest.mark.parametrize(("text", "values", "function", "value"), [
    ('parse_date(attributes.start, "%d.%m.%Y")', {"attributes.start": "31.02.2025"},
     "parse_date", "31.02.2025"),
    ("days_since(hire_date)", {"hire_date": "May 1st"}, "days_since", "May 1st"),
    ("add_days(hire_date, 1)", {"hire_date": "2024-13-01"}, "add_days", "2024-13-01"),
    ("add_days(hire_date, 1)", {"hire_date": date.max}, "add_days", 1),
    ('format_date(hire_date, "")', {"hire_date": date(2024, 5, 1)}, "format_date", ""),
    ("format_date(hire_date, 12)", {"hire_date": 12}, "format_date", 12),
])
def test_date_errors_name_the_function_and_value(text, values, function, value):
    expression = compile_expression(text, name="start")
    with pytest.raises(EvaluationError) as caught:
        expression.evaluate(values, today=TODAY)
    assert (caught.value.name, caught.value.function, caught.value.value) == \
        ("start", function, value)
    assert str(caught.value).startswith(f"start: {function}: ")


def test_every_function_in_the_table_has_a_test_here():
    source = Path(__file__).read_text(encoding="utf-8")
    untested = [name for name in FUNCTIONS if f"{name}(" not in source]
    assert untested == []


def test_the_docs_list_every_function_with_its_summary():
    docs = (Path(__file__).resolve().parent.parent / "docs" / "mapping.md").read_text(
        encoding="utf-8")
    functions = docs.split("## Functions", 1)[1]
    missing = [f.name for f in FUNCTIONS.values()
               if f"| `{f.signature}` | {f.summary} |" not in functions]
    assert missing == []


def test_joining_texts_stops_at_the_text_limit():
    half = "a" * (MAX_TEXT // 2)
    assert len(ev("first_name + last_name", first_name=half, last_name=half)) == MAX_TEXT
    error = fails("first_name + last_name", first_name=half, last_name=half + "a")
    assert error.function == "+" and f"longer than {MAX_TEXT} characters" in str(error)
    assert len(ev('join("", first_name, last_name)', first_name=half, last_name=half)) \
        == MAX_TEXT
    assert fails('join("", first_name, last_name)', first_name=half,
                 last_name=half + "a").function == "join"
    sep_fits = "a" * (MAX_TEXT // 2 - 1)
    assert len(ev('join("-", first_name, last_name)', first_name=sep_fits,
                  last_name=sep_fits + "a")) == MAX_TEXT
