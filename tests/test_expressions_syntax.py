"""The mapping language's syntax: literals, fields, operators and precedence, the
inputs an expression reads, and one-sentence errors naming the attribute and the column,
with the length and nesting limits tested at their edges (docs/mapping.md)."""

from __future__ import annotations

from datetime import date

import pytest

from rostersync.sync.expressions import (
    HR_FIELDS,
    MAX_DEPTH,
    MAX_LENGTH,
    EvaluationError,
    ExpressionError,
    compile_expression,
)
from rostersync.sync.models import Person

TODAY = date(2026, 12, 5)


def ev(text: str, values: dict | None = None) -> object:
    return compile_expression(text, name="attr").evaluate(values or {}, today=TODAY)


def error_of(text: str, **options: object) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text, name="login", **options)
    return caught.value


# --- literals and fields ------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('"Acme"', "Acme"), ("'Acme'", "Acme"), ('"say \\"hi\\""', 'say "hi"'),
    ("'it\\'s'", "it's"), ('"a\\\\b"', "a\\b"), ('"tab\\there"', "tab\there"),
    ('"line\\nbreak"', "line\nbreak"), ('"\\u00e9"', "é"), ('""', ""), ("'\"'", '"'),
    ("42", 42), ("0", 0), ("1.5", 1.5), ("-7", -7), ("- 7", -7), ("true", True),
    ("false", False), ("null", None), ("123456789012345678", 123456789012345678),
])
def test_literals(text, expected):
    assert ev(text) == expected
    assert type(ev(text)) is type(expected)


def test_fields_and_extras_are_read_by_name_and_missing_ones_are_null():
    expression = compile_expression("join(' ', first_name, attributes.country)", name="x")
    assert expression.inputs == frozenset({"first_name", "attributes.country"})
    assert expression.text == "join(' ', first_name, attributes.country)"
    assert expression.evaluate({"first_name": "Ann", "attributes.country": "NO"},
                               today=TODAY) == "Ann NO"
    assert expression.evaluate({}, today=TODAY) == ""
    assert ev("hire_date", {"hire_date": date(2024, 5, 1)}) == date(2024, 5, 1)


def test_the_fields_are_the_person_fields():
    assert frozenset(Person.model_fields) - {"attributes"} == HR_FIELDS
    for name in HR_FIELDS:
        assert compile_expression(name, name="x").inputs == {name}


def test_tables_used_are_known_before_evaluation():
    expression = compile_expression(
        'coalesce(lookup("department", department), lookup_strict("title", job_title))',
        name="x")
    assert expression.tables == frozenset({"department", "title"})
    assert expression.inputs == frozenset({"department", "job_title"})


# --- operators ----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "values", "expected"), [
    ('first_name + "." + last_name', {"first_name": "ann", "last_name": "lee"}, "ann.lee"),
    ('first_name + "." + last_name', {"first_name": "ann"}, None),  # never half a login
    ('first_name + ""', {"first_name": ""}, ""),
    ("1 + 2", {}, 3), ("1 + 2.5", {}, 3.5), ('"1" + 2', {}, "12"), ("10 - 2 - 3", {}, 5),
    ('number("10") - 2', {}, 8), ('"10" - 2', {}, 8), ("-(2 - 5)", {}, 3),
    ('"n" + 1 + 2', {}, "n12"), ("1 + 2 + \"n\"", {}, "3n"),
    ('"hired " + hire_date', {"hire_date": date(2024, 5, 1)}, "hired 2024-05-01"),
    ('"x" + true', {}, "xtrue"), ("null - 1", {}, None), ("-null", {}, None),
])
def test_plus_and_minus(text, values, expected):
    assert ev(text, values) == expected


@pytest.mark.parametrize(("text", "function"), [
    ("hire_date + 1", "+"), ('"a" - 1', "-"), ('-"a"', "-"), ("hire_date - 1", "-"),
])
def test_operator_errors_name_the_operator(text, function):
    with pytest.raises(EvaluationError) as caught:
        ev(text, {"hire_date": date(2024, 5, 1)})
    assert caught.value.function == function


@pytest.mark.parametrize(("text", "values", "expected"), [
    ('location == "Oslo"', {"location": "Oslo"}, True),
    ('location == "oslo"', {"location": "Oslo"}, False),
    ('location != "Oslo"', {"location": "Bergen"}, True),
    ("location == null", {"location": ""}, True),
    ("location == null", {}, True),
    ('location == ""', {}, True),
    ("location != null", {"location": "Oslo"}, True),
    ('attributes.grade == 3', {"attributes.grade": "3"}, True),
    ('attributes.grade >= 10', {"attributes.grade": "9"}, False),  # numbers, not texts
    ('attributes.grade < 10', {"attributes.grade": "9"}, True),
    ('attributes.grade == 3', {"attributes.grade": "three"}, False),
    ('hire_date == "2024-05-01"', {"hire_date": date(2024, 5, 1)}, True),
    ("hire_date < today()", {"hire_date": "2024-05-01"}, True),
    ("hire_date > today()", {"hire_date": "2024-05-01"}, False),
    ("hire_date <= today()", {"hire_date": TODAY}, True),
    ("hire_date < today()", {"hire_date": TODAY}, False),
    ("hire_date < today()", {}, False),  # a missing value is not before anything
    ('"b" > "a"', {}, True),
    ("true == 'true'", {}, True),
    ("days_since(hire_date) >= 30", {"hire_date": "2026-11-05"}, True),
    ("days_since(hire_date) >= 30", {"hire_date": "2026-11-06"}, False),
])
def test_comparisons(text, values, expected):
    assert ev(text, values) is expected


def test_ordering_what_cannot_be_ordered_is_one_sentence():
    with pytest.raises(EvaluationError, match=r"^attr: <: 3 cannot be compared with 'abc'$"):
        ev("attributes.x < 3", {"attributes.x": "abc"})


def test_precedence():
    assert ev('"a" + "b" == "ab" and not 1 > 2 or false') is True
    assert ev("not true == false") is True  # not (true == false)
    assert ev("1 + 2 == 3") is True


# --- errors -------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "column", "message"), [
    ("", 1, "the expression is empty"),
    ("   ", 1, "the expression is empty"),
    ("lowr(first_name)", 1, "unknown function 'lowr'; did you mean 'lower'?"),
    ("Join(' ', first_name)", 1, "unknown function 'Join'; did you mean 'join'?"),
    ("lower(frist_name)", 7, "unknown field 'frist_name'; did you mean 'first_name'?"),
    ("lower(first_name", 17, "expected ',' or ')' in the arguments of lower but found the "
                             "end of the expression"),
    ("(first_name", 12, "expected ')' to close the '(' at column 1 but found the end of the "
                        "expression"),
    ('lower("abc)', 7, "a text in quotes is not closed"),
    ("first_name +", 13, "expected a value, a field or a function but found the end of the "
                         "expression"),
    ("first_name last_name", 12, "expected an operator or the end of the expression but "
                                 "found 'last_name'"),
    ("[givenName]", 1, "unexpected character '[' (field names are written without "
                       "brackets, e.g. first_name)"),
    ("first_name & last_name", 12, "unexpected character '&' (use '+' to join texts)"),
    ("location = 'Oslo'", 10, "unexpected character '=' (use '==' to compare)"),
    ("1 < 2 < 3", 7, "comparisons cannot be chained; combine them with 'and'"),
    ("lower(first_name, 1)", 1, "lower takes 1 argument (lower(s)), not 2 arguments"),
    ("today(1)", 1, "today takes 0 arguments (today()), not 1 argument"),
    ("replace(first_name)", 1, "replace takes 3 arguments (replace(s, old, new)), not 1 "
                               "argument"),
    ("switch(location, 'a', 'b')", 1, "switch takes 4+ arguments (switch(value, key1, "
                                      "result1, ..., default)), not 3 arguments"),
    ("switch(location, 'a', 'b', 'c', 'd')", 1, "switch needs a default as its last "
                                                "argument (switch(value, key1, result1, "
                                                "..., default))"),
    ("lookup(department, department)", 8, "the table of lookup must be a name in quotes, "
                                          "e.g. lookup(\"department\", ...)"),
    ("lookup(lower('x'), department)", 8, "the table of lookup must be a name in quotes, "
                                          "e.g. lookup(\"department\", department)"),
    ("first_name(1)", 1, "'first_name' is a field, not a function"),
    ("today", 1, "today is a function: write today()"),
    ("user.firstName", 1, "unknown field 'user.firstName' (fields: " + ", ".join(
        sorted(HR_FIELDS)) + " and attributes.<name>)"),
    ("attributes.a.b", 1, "unknown field 'attributes.a.b'; extra columns are "
                          "attributes.<name>"),
    ("attributes.", 11, "a name cannot end with '.'"),
    ("3rd", 1, "'3rd' is not a number (names start with a letter)"),
    ("1.2.3", 1, "'1.2.3' is not a number (names start with a letter)"),
    ("1234567890123456789", 1, "a number has more than 18 digits"),
    ('"\\q"', 2, "unknown escape '\\' followed by 'q' (use \\\\ for a backslash)"),
    ('"\\u12"', 2, "\\u needs four hexadecimal digits"),
    ('"\\ud800"', 2, "\\ud800 is not a character"),
    ("and", 1, "expected a value but found 'and'"),
    ("first_name and", 15, "expected a value, a field or a function but found the end of "
                           "the expression"),
    ("__import__('os')", 1, "unknown function '__import__'"),
    ("'\x00' + \x7f", 7, "unexpected character U+007F"),
    ("first_name\n+ ]", 14, "unexpected character ']' (field names are written without "
                            "brackets, e.g. first_name)"),
])
def test_syntax_errors_name_the_attribute_and_the_column(text, column, message):
    error = error_of(text)
    assert (error.name, error.column, error.message) == ("login", column, message)
    assert str(error) == f"login: column {column}: {message}"
    assert isinstance(error, ValueError)


def test_a_value_that_is_not_text_is_refused():
    error = error_of(42)  # type: ignore[arg-type]
    assert str(error) == "login: column 1: the expression must be a text (write it in quotes)"


def test_extras_and_tables_are_checked_against_the_config_when_given():
    attrs, tables = {"country", "worker_type"}, {"department", "title"}
    assert compile_expression("attributes.country", name="c", attributes=attrs).inputs == \
        {"attributes.country"}
    assert error_of("attributes.contry", attributes=attrs).message == \
        "unknown field 'attributes.contry'; did you mean 'attributes.country'?"
    assert error_of("attributes.zone", attributes=attrs).message == \
        "unknown field 'attributes.zone' (extra columns: country, worker_type)"
    assert error_of("attributes.zone", attributes=set()).message == \
        "unknown field 'attributes.zone' (extra columns: none are configured)"
    assert error_of('lookup("departments", department)', tables=tables).message == \
        "unknown table 'departments'; did you mean 'department'?"
    error = error_of('lookup_strict("region", location)', tables=tables)
    assert (error.column, error.message) == \
        (15, "unknown table 'region' (tables: department, title)")


# --- limits at their edges ----------------------------------------------------------

def test_length_limit():
    at_limit = '"' + "a" * (MAX_LENGTH - 2) + '"'
    assert len(ev(at_limit)) == MAX_LENGTH - 2
    error = error_of(at_limit + " ")
    assert (error.column, error.message) == \
        (MAX_LENGTH + 1, f"the expression is longer than {MAX_LENGTH} characters")


@pytest.mark.parametrize("wrap", [
    ("(", ")"), ("lower(", ")"), ("-", ""), ("not ", ""),
])
def test_nesting_limit(wrap):
    opening, closing = wrap
    inner = "1" if opening == "-" else "true" if opening == "not " else '"x"'
    at_limit = opening * MAX_DEPTH + inner + closing * MAX_DEPTH
    compile_expression(at_limit, name="n")
    deeper = opening * (MAX_DEPTH + 1) + inner + closing * (MAX_DEPTH + 1)
    error = error_of(deeper)
    assert error.message == f"the expression nests deeper than {MAX_DEPTH} levels"
    assert error.column == MAX_DEPTH * len(opening) + 1


def test_long_flat_chains_are_not_nesting():
    many = " + ".join(["first_name"] * 300)
    assert ev(many, {"first_name": "a"}) == "a" * 300
    assert ev(" and ".join(["true"] * 400)) is True


def test_a_multi_line_expression_counts_columns_through_the_text():
    text = 'switch(location,\n  "Oslo", "NO",\n  "Berlin", "DE",\n  null)'
    assert ev(text, {"location": "Berlin"}) == "DE"
