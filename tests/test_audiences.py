"""The audience rule language, its load-time validation and the pure membership
decisions (no servers needed)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from rostersync.sync.audiences.guard import hold_removals
from rostersync.sync.audiences.membership import compile_audiences, place
from rostersync.sync.audiences.rules import RuleError, facts_for, parse_rule
from rostersync.sync.config import ConfigError, config_from_dict
from rostersync.sync.models import OpKind, OpStatus, Person
from rostersync.sync.plan import NewOp

BASE = {"hris": {"type": "csv", "path": "e.csv", "attributes": {"worker_type": "WT"}},
        "lms": {"type": "scim", "base_url": "http://127.0.0.1:1/v2"}}


def config(*audiences, **extra):
    return config_from_dict({**BASE, **extra, "audiences": list(audiences)})


def person(**fields) -> Person:
    base = {"employee_id": "E1", "first_name": "Ada", "last_name": "Novak",
            "department": "Sales", "job_title": "Account Executive", "location": "Berlin",
            "hire_date": date(2026, 5, 20), "timezone": "Asia/Tokyo",
            "attributes": {"worker_type": "Employee"}}
    return Person(**{**base, **fields})


@pytest.mark.parametrize("rule, expected", [
    ('department == "sales"', True),  # case and spaces are ignored
    ('department != "Sales"', False),
    ('department in ["Finance", " SALES "]', True),
    ('department not in ["Finance"]', True),
    ('job_title startswith "account"', True),
    ('cost_center == "X"', False),  # empty equals nothing
    ('cost_center not in ["X"]', True),
    ("hire_date within 30 days", True),
    ("hire_date within 5 days", False),
    ('manager_chain contains "e00003"', True),
    ('attributes.worker_type == "Employee" and not location == "Remote"', True),
    ('(department == "Finance" or location == "Berlin") and status == "active"', True),
])
def test_rules_evaluate(rule, expected):
    facts = facts_for(person(), date(2026, 6, 1), ("E00002", "E00003"))
    assert parse_rule(rule).holds(facts) is expected


def test_because_names_the_branch_that_held():
    rule = parse_rule('department == "Finance" or (location == "Berlin" and hire_date within '
                      '30 days)')
    facts = facts_for(person(), date(2026, 6, 1))
    assert rule.because(facts) == ['location == "Berlin"', "hire_date within 30 days"]


@pytest.mark.parametrize("rule, message", [
    ('departmnet == "Sales"', "column 1: unknown field 'departmnet'"),
    ('department = "Sales"', "column 12: unexpected character '='"),
    ('department == Sales', "column 15: expected a quoted value, found 'Sales'"),
    ('department == "Sales" and', "column 26: expected a field name"),
    ('department in ["A", "B"', "expected ',' or ']', found the end of the rule"),
    ("hire_date within 0 days", "the window must be at least 1 day"),
    ('department == "Sales', "a string is not closed"),
    ("", "the rule is empty"),
])
def test_bad_rules_name_the_column(rule, message):
    with pytest.raises(RuleError) as err:
        parse_rule(rule)
    assert message in str(err.value)


def test_config_errors_are_one_sentence_naming_the_audience():
    with pytest.raises(ConfigError) as err:
        config({"id": "sales", "rule": 'department == "Sales" or'})
    text = str(err.value)
    assert "audience 'sales'" in text and "column" in text and "\n" not in text
    with pytest.raises(ConfigError, match=r"unknown custom field 'attributes\.grade'"):
        config({"id": "g", "rule": 'attributes.grade == "A"'})
    with pytest.raises(ConfigError, match="already used"):
        config({"id": "a", "rule": "hire_date within 3 days"},
               {"id": "a", "rule": "hire_date within 4 days", "lms_group": "other"})
    with pytest.raises(ConfigError, match="has no rule"):
        config({"id": "a"})
    with pytest.raises(ConfigError, match="stray_members"):
        config({"id": "a", "rule": "hire_date within 3 days", "stray_members": "delete"})
    # Canvas holds audiences as account groups now.
    canvas = config_from_dict({**BASE, "lms": {"type": "canvas", "base_url": "https://x",
                                               "account_id": "1"},
                               "audiences": [{"id": "a", "rule": "hire_date within 3 days"}]})
    assert canvas.lms.groups.category == "rostersync audiences: {group}"


def test_mass_removal_limits_default_to_guards_and_audiences_override_them():
    cfg = config_from_dict({**BASE, "guards": {"audience_mass_removal_min": 3,
                                               "audience_mass_removal_percent": 50.0},
                            "audiences": [
                                {"id": "a", "rule": "hire_date within 3 days"},
                                {"id": "b", "rule": "hire_date within 4 days",
                                 "mass_removal_min": 1},
                                {"id": "c", "rule": "hire_date within 5 days",
                                 "mass_removal_percent": 0.0}]})
    limits = {a.id: (a.mass_removal_min, a.mass_removal_percent)
              for a in compile_audiences(cfg).audiences}
    assert limits == {"a": (3, 50.0), "b": (1, 50.0), "c": (3, 0.0)}
    plain = compile_audiences(config({"id": "a", "rule": "hire_date within 3 days"}))
    assert (plain.audiences[0].mass_removal_min, plain.audiences[0].mass_removal_percent) \
        == (10, 10.0)


def test_fingerprint_changes_with_the_rules_and_not_without_audiences():
    plain = config_from_dict(BASE)
    one = config({"id": "a", "rule": 'department == "Sales"'})
    two = config({"id": "a", "rule": 'department == "Finance"'})
    assert len({plain.fingerprint(), one.fingerprint(), two.fingerprint()}) == 3
    assert config_from_dict(BASE).fingerprint() == plain.fingerprint()


def test_unknown_value_freezes_the_audiences_that_read_the_field():
    cfg = config({"id": "sales", "rule": 'department == "Sales"',
                  "known_values": {"department": ["Finance"]}},
                 {"id": "berlin", "rule": 'location == "Berlin"'})
    placement = place(person(department="Revenue"), compile_audiences(cfg),
                      datetime(2026, 6, 1, tzinfo=UTC))
    assert placement.unmapped == {"department": "Revenue"}
    assert "sales" in placement.frozen and "berlin" in placement.desired


def test_onboarding_window_ends_at_midnight_in_the_persons_zone():
    cfg = config({"id": "onboarding", "rule": "hire_date within 30 days"})
    placement = place(person(), compile_audiences(cfg), datetime(2026, 6, 1, tzinfo=UTC))
    assert "onboarding" in placement.desired
    assert placement.due_at.isoformat() == "2026-06-19T00:00:00+09:00"


def _removal(key: str, audience: str, **payload) -> NewOp:
    return NewOp(key, OpKind.member_remove, {"audience": audience, **payload}, key, "r",
                 None, None)


def test_mass_removal_guard_holds_one_audience_and_not_the_other():
    cfg = config({"id": "big", "rule": 'department == "Sales"'},
                 {"id": "small", "rule": 'department == "Finance"'})
    ops = [_removal(f"E{i}", "big") for i in range(31)] + [_removal("E99", "small")]
    reasons = hold_removals(ops, compile_audiences(cfg), {"big": 300, "small": 5})
    assert len(reasons) == 1 and "31 removals from audience 'big'" in reasons[0]
    assert {op.status for op in ops[:31]} == {OpStatus.held}
    assert ops[31].status == OpStatus.pending


def test_a_compliance_removal_waits_for_the_addition_it_follows():
    from types import SimpleNamespace

    from rostersync.sync.audiences.ordering import removal_wait

    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    sales = SimpleNamespace(id="sales", compliance=True)
    retrying = {"status": "failed", "next_attempt_at": "2026-06-01T12:05:00.000000Z",
                "last_error": "503 busy"}
    wait = removal_wait(sales, {"finance": retrying}, "E1", now, 60)
    assert wait is not None and wait.until == datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert wait.reason.startswith("waits until the addition is retried")
    assert "'finance' (addition failed: 503 busy)" in wait.reason and "neither" in wait.reason
    # An addition that will not land by itself: held, released when it lands.
    dead = {"status": "dead", "next_attempt_at": None, "last_error": "400 refused"}
    wait = removal_wait(sales, {"finance": dead, "legal": None}, "E1", now, 60)
    assert wait.until is None and wait.reason.startswith("waits for an addition:")
    assert "'legal' (no addition planned)" in wait.reason and "approve" in wait.reason
    # One still retrying: wait for it (rechecked after recheck_seconds without a time).
    wait = removal_wait(sales, {"finance": {**retrying, "next_attempt_at": None},
                                "legal": dead}, "E1", now, 60)
    assert wait.until == datetime(2026, 6, 1, 12, 1, tzinfo=UTC)
    # Nothing missing, or a non-compliance audience: the removal goes ahead.
    assert removal_wait(sales, {}, "E1", now, 60) is None
    club = SimpleNamespace(id="club", compliance=False)
    assert removal_wait(club, {"finance": dead}, "E1", now, 60) is None


def test_stray_members_are_reported_and_removed_only_where_configured():
    from rostersync.sync.audiences.strays import stray_decision

    audiences = compile_audiences(config(
        {"id": "a", "rule": 'department == "Sales"', "stray_members": "remove"},
        {"id": "b", "rule": 'department == "Finance"'}))
    detail, intents = stray_decision("77", {"a", "b", "gone"}, audiences)
    assert detail["audiences"] == ["a", "b"] and detail["removing"] == ["a"]
    assert [(i.kind, i.payload, i.lms_id) for i in intents] == [
        (OpKind.member_remove, {"audience": "a"}, "77")]
