"""Audience rules at their edges: the onboarding window's first and last day, every
operator on a missing or empty value, the reasons a rule gives, and every parse error
as the one sentence an operator reads (column and what was expected)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rostersync.sync.audiences.rules import FIELDS, Facts, RuleError, facts_for, parse_rule
from rostersync.sync.models import Person

HIRED = date(2026, 6, 1)


def facts(today: date = HIRED, hire: date | None = HIRED, chain=(), **values) -> Facts:
    return Facts(values, hire, today, tuple(chain))


@pytest.mark.parametrize(("days_since_hire", "member"), [
    (-1, False), (0, True), (1, True), (28, True), (29, True), (30, False), (31, False)])
def test_onboarding_window_includes_its_first_day_and_excludes_day_n(days_since_hire, member):
    rule = parse_rule("hire_date within 30 days")
    assert rule.holds(facts(HIRED + timedelta(days=days_since_hire))) is member


def test_window_of_one_day_and_no_hire_date():
    rule = parse_rule("hire_date within 1 day")
    assert rule.holds(facts(HIRED)) and not rule.holds(facts(HIRED + timedelta(days=1)))
    assert rule.holds(facts(hire=None)) is False
    assert rule.boundaries(HIRED) == [HIRED, HIRED + timedelta(days=1)]
    assert rule.boundaries(None) == []


def test_only_the_window_has_boundaries():
    rule = parse_rule('department == "Sales" or hire_date within 7 days')
    assert rule.boundaries(HIRED) == [HIRED, HIRED + timedelta(days=7)]


@pytest.mark.parametrize(("rule", "value", "holds"), [
    ('department == "Sales"', " sales ", True),
    ('department == "Sales"', None, False),
    ('department != "Sales"', None, True),
    ('department != "Sales"', "SALES", False),
    ('department in ["Sales", "Ops"]', "ops", True),
    ('department in ["Sales", "Ops"]', None, False),
    ('department not in ["Sales", "Ops"]', "Sales", False),
    ('department not in ["Sales", "Ops"]', "Finance", True),
    ('department not in ["Sales", "Ops"]', None, True),
    ('department startswith "Sal"', "Sales EMEA", True),
    ('department startswith "Sal"', "Finance", False),
    ('department startswith ""', "Finance", True),
    ('department startswith "Sal"', None, False),
])
def test_each_operator_on_present_and_missing_values(rule, value, holds):
    assert parse_rule(rule).holds(facts(department=value)) is holds


def test_manager_chain_contains_is_caseless_and_exact():
    rule = parse_rule('manager_chain contains "e2"')
    assert rule.holds(facts(chain=("E1", "E2")))
    assert not rule.holds(facts(chain=("E1", "E3")))
    assert not rule.holds(facts())


def test_facts_of_a_person_treat_empty_as_missing():
    person = Person(employee_id="E1", first_name="A", last_name="B", department="",
                    hire_date=HIRED,
                    location="Berlin", attributes={"worker_type": "", "band": "B2"})
    f = facts_for(person, HIRED, ("E9",))
    assert f.values["department"] is None and f.values["location"] == "Berlin"
    assert f.values["cost_center"] is None
    assert f.values["attributes.worker_type"] is None and f.values["attributes.band"] == "B2"
    assert (f.today, f.manager_chain, f.hire_date) == (HIRED, ("E9",), HIRED)
    assert not parse_rule('department == ""').holds(f)
    assert not parse_rule('cost_center == "None"').holds(f)
    assert parse_rule('attributes.band == "b2"', frozenset({"band"})).holds(f)


def test_because_names_the_tests_that_made_the_rule_hold():
    rule = parse_rule('(department == "Sales") and (location == "Berlin" or '
                      'location == "Paris")')
    f = facts(department="Sales", location="Paris")
    assert rule.holds(f)
    assert rule.because(f) == ['department == "Sales"', 'location == "Paris"']
    assert parse_rule(rule.text).text == rule.text
    negated = parse_rule('not department == "Sales"')
    assert negated.holds(facts(department="Ops"))
    assert not negated.holds(facts(department="Sales"))
    assert negated.because(facts(department="Ops")) == ['not (department == "Sales")']
    # A negated "or" holds when no branch does: nothing to name but the negation.
    neither = parse_rule('not (department == "Sales" or department == "Ops")')
    assert neither.because(facts(department="HR")) == ["not (...)"]
    nested = parse_rule('(department == "A" and (location == "B" or location == "C")) or '
                        '(hire_date within 3 days) or department == "D"')
    assert nested.because(facts(department="A", location="C")) == [
        'department == "A"', 'location == "C"']
    assert nested.because(facts(department="X", location="C")) == ["hire_date within 3 days"]
    assert parse_rule('department == "A" or department == "B"').because(
        facts(department="C")) == []


def test_literals_are_the_values_equality_and_lists_name():
    rule = parse_rule('department == "Sales" or department != "Ops" or location in ["Berlin"]'
                      ' or job_title not in ["Intern"] or cost_center startswith "C"'
                      ' or manager_chain contains "E1" or hire_date within 3 days')
    assert rule.literals() == {"department": {"Sales", "Ops"}, "location": {"Berlin"},
                               "job_title": {"Intern"}}
    assert rule.fields == frozenset({"department", "location", "job_title", "cost_center",
                                     "manager_chain", "hire_date"})


def test_quoted_values_keep_escaped_quotes():
    rule = parse_rule(r'department == "R\"D" or location == ' + r"'St\'Ives'")
    assert rule.literals() == {"department": {'R"D'}, "location": {"St'Ives"}}


NAMES = ", ".join(FIELDS)


@pytest.mark.parametrize(("text", "error"), [
    ("", "the rule is empty"),
    ("   ", "the rule is empty"),
    ('department == "Sales', 'column 15: a string is not closed'),
    ("department == 'Sales", "column 15: a string is not closed"),
    ('department == "Sales" ;', "column 23: unexpected character ';'"),
    ('department == "Sales" "x"',
     "column 23: expected 'and', 'or' or the end of the rule, found 'x'"),
    ('"("', f"column 1: expected a field name ({NAMES} or attributes.<name>), found '('"),
    ('and == "x"', f"column 1: expected a field name ({NAMES} or attributes.<name>), "
                   "found 'and'"),
    ('grade == "x"', f"column 1: unknown field 'grade'; known fields are {NAMES} and "
                     "attributes.<name>"),
    ('(department == "a" ")"', "column 20: expected ')', found ')'"),
    ('(department == "a"', "column 19: expected ')', found the end of the rule"),
    ("hire_date == 3", "column 11: expected 'within N days' after hire_date, found '=='"),
    ('hire_date within "3" days', "column 18: expected a number of days, found '3'"),
    ("hire_date within 0 days", "column 18: the window must be at least 1 day"),
    ("hire_date within 3 weeks", "column 20: expected 'days', found 'weeks'"),
    ('manager_chain == "E1"',
     "column 15: expected 'contains \"EMPLOYEE_ID\"' after manager_chain, found '=='"),
    ('department "=="',
     "column 12: expected '==', '!=', 'in', 'not in' or 'startswith', found '=='"),
    ('department in "["', "column 15: expected '[' to open a list of values, found '['"),
    ('department in ["a" "]"', "column 20: expected ',' or ']', found ']'"),
    ('department == Sales', "column 15: expected a quoted value, found 'Sales'"),
])
def test_parse_errors_name_the_column_and_what_was_expected(text, error):
    with pytest.raises(RuleError) as caught:
        parse_rule(text)
    assert str(caught.value) == error


@pytest.mark.parametrize(("attributes", "error"), [
    (frozenset(), "column 1: unknown custom field 'attributes.band'; hris.attributes names "
                  "the custom fields (none are configured)"),
    (frozenset({"level", "grade"}), "column 1: unknown custom field 'attributes.band'; "
                                    "hris.attributes names the custom fields (grade, level)"),
])
def test_custom_fields_must_be_mapped(attributes, error):
    with pytest.raises(RuleError) as caught:
        parse_rule('attributes.band == "B2"', attributes)
    assert str(caught.value) == error
    assert parse_rule('attributes.band == "B2"', attributes | {"band"}).fields == frozenset(
        {"attributes.band"})
    assert parse_rule('attributes.band == "B2"').fields == frozenset({"attributes.band"})
