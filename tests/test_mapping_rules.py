"""[mapping] rules without servers: defaults equal to the fixed account shape they
replace, expressions at load, apply modes, generated-login choice and the mass
attribute-change hold (pure functions, real config loading)."""

from __future__ import annotations

import tomllib
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rostersync.sync.config import ConfigError, config_from_dict
from rostersync.sync.diff import changed_fields
from rostersync.sync.expressions import compile_expression
from rostersync.sync.lifecycle import Lifecycle
from rostersync.sync.mapping import map_person
from rostersync.sync.mapping_logins import choose_login
from rostersync.sync.mapping_rules import (
    BUILT_IN,
    Rule,
    compile_mapping,
    default_text,
    evaluate_rule,
)
from rostersync.sync.models import Account, OpKind, OpStatus, Person, Status
from rostersync.sync.plan import NewOp, apply_attribute_hold

ACTIVE = Lifecycle(Status.active)
TODAY = date(2026, 12, 1)


def config(mapping: str = "", lms: str = 'type = "scim"\nbase_url = "http://127.0.0.1:1/v2"'):
    text = f"""
[hris]
type = "csv"
path = "x.csv"
[lms]
{lms}
[mapping]
{mapping}
"""
    return config_from_dict(tomllib.loads(text))


def person(**kw) -> Person:
    base = {"employee_id": "E1", "first_name": "Zoë", "last_name": "Müller",
            "email": "Zoe.Mueller@acme.example", "department": "Sales", "job_title": "Lead",
            "location": "Berlin", "employee_number": "1001", "hire_date": date(2026, 1, 1)}
    base.update(kw)
    return Person(**base)


# -- the defaults are the account shape rostersync always had ---------------------------

def test_without_attributes_every_rule_is_a_native_default():
    compiled = config().mapping.compiled()
    assert [r.target for r in compiled.rules] == list(BUILT_IN)
    assert all(r.default and r.native is not None for r in compiled.rules)
    assert compiled.custom == () and not compiled.generated_login


def test_the_default_account_is_the_fixed_one():
    mapped = map_person(person(preferred_name="Zo"), ACTIVE, config())
    d = mapped.desired
    assert (d.user_name, d.given_name, d.family_name, d.display_name, d.email, d.title,
            d.department, d.employee_number) == (
        "zoe.mueller@acme.example", "Zo", "Müller", "Zo Müller", "Zoe.Mueller@acme.example",
        "Lead", "Sales", "1001")
    assert d.attributes == {} and mapped.unmanaged == frozenset()


_names = st.one_of(st.none(), st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
    min_size=1, max_size=12))


@settings(max_examples=150, deadline=None)
@given(first=_names.filter(bool), last=st.one_of(st.just(""), _names.filter(bool)),
       preferred=_names, email=_names, number=_names, department=_names, title=_names,
       strict=st.booleans(), table=st.booleans())
def test_each_native_default_equals_its_expression(first, last, preferred, email, number,
                                                  department, title, strict, table):
    values = "[mapping.values.department]\n\"Sales\" = \"Vertrieb\"\n" if table else ""
    mapping = config(('strict = ["department", "job_title"]\n' if strict else "") + values
                     ).mapping
    p = person(first_name=first, last_name=last, preferred_name=preferred, email=email,
               employee_number=number, department=department, job_title=title)
    for rule in compile_mapping(mapping).rules:
        text = default_text(rule.target, mapping)
        assert rule.native is not None and rule.text == text
        expression = Rule(rule.target, text, "always", compile_expression(text, name="x"))
        assert _outcome(rule, p, mapping) == _outcome(expression, p, mapping), text


def _outcome(rule, p, mapping):
    try:
        return ("value", evaluate_rule(rule, p, TODAY, mapping.all_tables()))
    except LookupError as exc:
        return ("unknown", getattr(exc, "value", None))


# -- expressions, tables and apply modes ---------------------------------------------

COUNTRY = "urn:acme:params:scim:schemas:extension:lms:2.0:User:country"
COST = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter"


def test_custom_attributes_are_computed_and_strict_misses_are_unmapped():
    c = config(f"""
[mapping.tables.countries]
"Berlin" = "DE"
[mapping.attributes]
"{COUNTRY}" = 'lookup_strict("countries", location)'
"{COST}" = '"CC-" + upper(left(department, 3))'
nickName = {{ expr = "first_name", apply = "when_empty" }}
title = {{ apply = "create" }}
given_name = {{ apply = "never" }}
""")
    mapped = map_person(person(), ACTIVE, c, today=TODAY)
    assert mapped.desired.attributes == {COUNTRY: "DE", COST: "CC-SAL", "nickName": "Zoë"}
    assert mapped.when_empty == {"nickName"}
    assert {"title", "given_name"} <= mapped.unmanaged
    assert mapped.desired.given_name == ""  # never: not even sent on create
    assert mapped.desired.title == "Lead"  # create: in the create payload
    assert c.lms.mapped_attributes == (COUNTRY, COST, "nickName")

    paris = map_person(person(location="Paris"), ACTIVE, c, today=TODAY)
    assert [(u.field, u.value) for u in paris.unmapped] == [("countries", "Paris")]
    assert COUNTRY in paris.unmanaged and COUNTRY not in paris.desired.attributes


def test_a_create_only_attribute_is_sent_on_create_and_never_compared():
    c = config("[mapping.attributes]\nnickName = { expr = 'first_name', apply = 'create' }\n")
    mapped = map_person(person(), ACTIVE, c, today=TODAY)
    assert mapped.desired.attributes == {"nickName": "Zoë"}  # in the create payload
    assert "nickName" in mapped.unmanaged
    lms = Account("E1", "u", attributes={"nickName": "Edited"})
    assert "nickName" not in changed_fields(mapped.desired, lms, mapped.unmanaged)


def test_an_expression_that_cannot_be_computed_is_unmapped_with_its_sentence():
    c = config("[mapping.attributes]\nnickName = 'format_date(first_name, \"%Y\")'\n")
    mapped = map_person(person(), ACTIVE, c, today=TODAY)
    assert "nickName" in mapped.unmanaged
    assert mapped.unmapped and mapped.unmapped[0].field == "nickName"
    assert "mapping.attributes.nickName" in str(mapped.unmapped[0])


@pytest.mark.parametrize(("mapping", "expected"), [
    ("[mapping.attributes]\nnickName = 'lower(first_name'\n",
     "mapping.attributes.nickName: column "),
    ("[mapping.attributes]\nnickName = 'lookup(\"nowhere\", location)'\n", "nowhere"),
    ("[mapping.attributes]\nnickName = { apply = \"create\" }\n",
     "mapping.attributes.nickName: column 1: needs an expression"),
    ("[mapping.attributes]\nactive = 'true'\n", "mapping.attributes.active"),
    ("[mapping.attributes]\nuser_name = 'email'\n", "mapping.user_name"),
    ("user_name = []\n", "mapping.user_name"),
    ("user_name = ['lower(first_name', 'email']\n", "mapping.user_name[0]: column "),
    ("[mapping.attributes]\n\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:"
     "department\" = 'department'\n", "written by department"),
])
def test_a_broken_mapping_is_one_sentence_naming_the_key(mapping, expected):
    with pytest.raises(ConfigError) as caught:
        config(mapping)
    message = str(caught.value)
    assert expected in message and "\n" not in message and "Traceback" not in message


def test_a_custom_attribute_needs_a_target_that_holds_it():
    with pytest.raises(ConfigError, match=r"mapping\.attributes\.country': a Moodle target "
                       r"takes custom profile fields, named profile_field_<shortname>"):
        config("[mapping.attributes]\ncountry = 'location'\n",
               lms='type = "moodle"\nbase_url = "http://127.0.0.1:1"\ntoken_env = "T"')


def test_the_syntax_error_column_is_where_it_fails():
    with pytest.raises(ConfigError) as caught:
        config("[mapping.attributes]\nnickName = 'upper(first_name) +'\n")
    assert "mapping.attributes.nickName: column 20: expected a value" in str(caught.value)


def test_when_empty_writes_only_into_an_empty_lms_value():
    desired = Account("E1", "u", title="Lead", attributes={"nickName": "Zo"})
    for held, expect in ((None, {"title": "Lead", "nickName": "Zo"}), ("", {"title": "Lead",
                         "nickName": "Zo"}), ("Boss", {})):
        actual = Account("E1", "u", title=held, attributes={"nickName": held})
        got = changed_fields(desired, actual, frozenset(), frozenset({"title", "nickName"}))
        assert got == expect, held
    # always: the same LMS value is overwritten
    actual = Account("E1", "u", title="Boss", attributes={"nickName": "Boss"})
    assert changed_fields(desired, actual, frozenset()) == {"title": "Lead", "nickName": "Zo"}


def test_a_number_read_back_as_text_is_no_change():
    desired = Account("E1", "u", attributes={"level": 3, "remote": True})
    actual = Account("E1", "u", attributes={"level": "3", "remote": "true"})
    assert changed_fields(desired, actual, frozenset()) == {}


# -- generated logins ------------------------------------------------------------

def test_a_generated_login_tries_candidates_in_order():
    taken = {"zmuller"}
    assert choose_login(["zmuller", "zoe.muller"], None, taken.__contains__) == "zoe.muller"
    assert choose_login(["zmuller"], None, taken.__contains__) is None
    # the login chosen before stays while it is free, even when an earlier one frees up
    assert choose_login(["a", "b"], "b", set().__contains__) == "b"
    assert choose_login(["a", "b"], "c", set().__contains__) == "a"


def test_generated_login_candidates_are_lowercased_and_deduplicated():
    c = config("user_name = ['left(normalize_diacritics(first_name), 1) + "
               "normalize_diacritics(last_name)', 'first_name + \".\" + last_name', "
               "'upper(left(normalize_diacritics(first_name), 1) + normalize_diacritics(last_name))']\n")
    mapped = map_person(person(), ACTIVE, c, today=TODAY)
    assert mapped.login_candidates[0] == "zmuller"
    # the third repeats the first once lowercased
    assert mapped.login_candidates == ("zmuller", "zoë.müller")
    assert "user_name" in mapped.unmanaged  # set at creation, never compared after


# -- the mass attribute-change hold ------------------------------------------------

def _updates(n: int, name: str = "nickName") -> list[NewOp]:
    return [NewOp(f"E{i}", OpKind.update, {"changes": {name: "x"}}, f"k{i}", "r", f"L{i}",
                  None) for i in range(n)]


@pytest.mark.parametrize(("count", "held"), [(99, False), (100, False), (101, True)])
def test_the_attribute_hold_trips_just_above_the_minimum(count, held):
    ops = _updates(count)
    reason = apply_attribute_hold(ops, 500, 100, 10.0)
    assert (reason is not None) is held
    assert all((op.status == OpStatus.held) is held for op in ops)
    if held:
        assert reason.startswith("mass attribute change: nickName on 101 accounts")


@pytest.mark.parametrize(("count", "held"), [(199, False), (200, False), (201, True)])
def test_the_attribute_hold_trips_just_above_the_percentage(count, held):
    ops = _updates(count) + _updates(5, "department")
    reason = apply_attribute_hold(ops, 2000, 100, 10.0)  # limit max(100, 200) = 200
    assert (reason is not None) is held
    assert all(op.status == OpStatus.pending for op in ops[count:])  # others proceed


def test_identity_fields_are_left_to_their_own_hold():
    ops = _updates(150, "user_name") + _updates(150, "email")
    assert apply_attribute_hold(ops, 500, 100, 10.0) is None


# -- SCIM: where a mapped attribute goes and how it is read back -------------------

def test_scim_bodies_carry_core_enterprise_and_custom_attributes():
    from rostersync.sync.connectors.scim_payload import (
        ENTERPRISE,
        account_from_resource,
        creation_body,
        patch_body,
    )

    account = Account("E1", "zmuller", department="Sales",
                      attributes={COUNTRY: "DE", COST: "CC-1", "name.middleName": "Q",
                                  "nickName": None})
    body = creation_body(account, None)
    acme = COUNTRY.rpartition(":")[0]
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE, acme]
    assert body[ENTERPRISE] == {"department": "Sales", "costCenter": "CC-1"}
    assert body[acme] == {"country": "DE"} and body["name"] == {"middleName": "Q"}
    assert "nickName" not in body
    ops = patch_body({"title": "Lead", COUNTRY: "FR", "nickName": ""}, None)["Operations"]
    assert {"op": "replace", "path": COUNTRY, "value": "FR"} in ops
    assert {"op": "remove", "path": "nickName"} in ops
    read = account_from_resource({**body, "id": "1"},
                                 attributes=(COUNTRY, COST, "name.middleName", "nickName"))
    assert read.attributes == {COUNTRY: "DE", COST: "CC-1", "name.middleName": "Q",
                               "nickName": None}


def test_the_schemas_answer_names_core_and_extension_attributes():
    from rostersync.sync.mapping_targets import schema_attribute_names, unknown_attributes

    known = schema_attribute_names([
        {"id": "urn:ietf:params:scim:schemas:core:2.0:User",
         "attributes": [{"name": "nickName"}, {"name": "name", "subAttributes": [
             {"name": "middleName"}]}]},
        {"id": "urn:acme:params:scim:schemas:extension:lms:2.0:User",
         "attributes": [{"name": "country"}]}, "junk", {"id": 3}])
    assert unknown_attributes(("nickName", "name.middleName", "NICKNAME", COUNTRY,
                               COUNTRY + "x", "locale"), known) == [COUNTRY + "x", "locale"]
