"""What a real Moodle 4.3 site (PHP 8.2, PostgreSQL 15, docs/moodle.md "Checking against a
real Moodle") answered where the sandbox or the connector had assumed otherwise.

Each test pins one answer: the sandbox now gives it, and the connector handles it.
"""

from __future__ import annotations

import os

import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.moodle_data import WsError
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.moodle_wire import MoodleFault, classify_fault
from rostersync.sync.models import ErrorClass
from tests.test_moodle import PROFILE, TOKEN, TOKEN_ENV, ada, make, run

PASSWORD = "Rs1!abcdefghijkLMN"


def _site(debug: bool = True) -> MoodleSandbox:
    os.environ[TOKEN_ENV] = TOKEN
    site = MoodleSandbox(token=TOKEN, profile_fields=PROFILE, debug=debug)
    return site


@pytest.fixture
def lms():
    with _site() as server:
        server.add_cohort("dept-sales")
        yield server


def _user(name: str, email: str, idnumber: str = "") -> dict:
    return {"username": name, "firstname": "A", "lastname": "B", "email": email,
            "idnumber": idnumber, "password": PASSWORD}


# -- lookups ----------------------------------------------------------------------------


def test_a_lookup_by_email_is_exact_but_find_by_email_ignores_letter_case(lms):
    # 4.3: get_users_by_field email "PROBE1@example.org" answered [] for probe1@example.org.
    lms.site.create_users({"users": [_user("hand", "Ada.Novak@ACME.example", "H1")]})
    assert lms.site.get_users_by_field({"field": "email",
                                        "values": ["ada.novak@acme.example"]}) == []
    found = run(make(lms), lambda t: t.find_by_email("ada.novak@acme.example"))
    assert [a.user_name for a in found] == ["hand"]


def test_a_lookup_by_a_username_cleaning_would_change_is_refused(lms):
    # 4.3: get_users_by_field username "PROBE1" is invalid_parameter_exception.
    with pytest.raises(WsError) as refused:
        lms.site.get_users_by_field({"field": "username", "values": ["ADA"]})
    assert refused.value.exception == "invalid_parameter_exception"
    with pytest.raises(WsError) as coding:
        lms.site.get_users_by_field({"field": "auth", "values": ["manual"]})
    assert coding.value.errorcode == "codingerror"


def test_an_unsupported_listing_key_is_dropped_with_a_warning_not_an_empty_list(lms):
    answer = lms.site.get_users({"criteria": [{"key": "bogus", "value": "x"}]})
    assert {u["username"] for u in answer["users"]} == {"guest", "admin"}
    assert answer["warnings"][0]["warningcode"] == "invalidfieldparameter"


def test_a_create_refused_for_an_email_taken_in_another_case_is_a_conflict():
    # Without debugging the refusal is only "Invalid parameter value detected"; create_users
    # compares emails ignoring case, so the lookup that explains it must too.
    with _site(debug=False) as lms:
        lms.add_cohort("dept-sales")
        lms.site.create_users({"users": [_user("hand", "ADA.NOVAK@acme.example", "H1")]})
        with pytest.raises(ConnectorError) as caught:
            run(make(lms), lambda t: t.create(ada(), None))
    assert caught.value.error_class is ErrorClass.conflict
    assert "already belongs to Moodle user" in caught.value.message


# -- update_users warnings ----------------------------------------------------------------


@pytest.mark.parametrize(("email", "code", "error_class"), [
    ("taken@acme.example", "useremailduplicate", ErrorClass.conflict),
    ("TAKEN@acme.example", "useremailduplicate", ErrorClass.conflict),
    ("not-an-email", "useremailinvalid", ErrorClass.data),
])
def test_update_users_warns_with_its_own_email_codes(lms, email, code, error_class):
    lms.site.create_users({"users": [_user("taken", "taken@acme.example")]})
    lms_id = run(make(lms), lambda t: t.create(ada(), None)).lms_id
    with pytest.raises(ConnectorError) as caught:
        run(make(lms), lambda t: t.update(lms_id, {"email": email}))
    assert caught.value.code == code and caught.value.error_class is error_class
    assert f'email sent: "{email}"' in caught.value.message  # the warning names no field
    assert lms.user("E1")["email"] == "ada.novak@acme.example"


def test_a_taken_username_in_an_update_is_a_database_write_warning(lms):
    lms.site.create_users({"users": [_user("taken", "t@acme.example")]})
    lms_id = run(make(lms), lambda t: t.create(ada(), None)).lms_id
    answer = lms.site.update_users({"users": [{"id": lms_id, "username": "taken"}]})
    assert answer["warnings"] == [{"item": "user", "itemid": int(lms_id),
                                   "warningcode": "dmlwriteexception",
                                   "message": "Error writing to database"}]
    with pytest.raises(ConnectorError, match='username sent: "taken"') as caught:
        run(make(lms), lambda t: t.update(lms_id, {"user_name": "taken"}))
    # Looked up: a conflict naming the holder, not a database stumble to retry.
    assert caught.value.error_class is ErrorClass.conflict
    assert 'username "taken" already belongs to Moodle user' in caught.value.message


def test_the_admin_token_may_suspend_the_admin(lms):
    # 4.3 applied it ({"warnings": []}); the sandbox once refused it with a warning.
    assert lms.site.update_users({"users": [{"id": 2, "suspended": 1}]}) == {"warnings": []}
    assert lms.site.users[2]["suspended"] == 1


# -- create_users --------------------------------------------------------------------------


def test_an_idnumber_may_be_shared(lms):
    created = lms.site.create_users({"users": [_user("a1", "a1@x.example", "K1"),
                                               _user("a2", "a2@x.example", "K1")]})
    assert len(created) == 2


@pytest.mark.parametrize(("code", "expected"), [
    ("<div>Passwords must be at least 8 characters long.</div>", ErrorClass.mapping),
    ("<div>Something the site refused.</div>", ErrorClass.data),
    ("invalidparameter", ErrorClass.data),
    ("generalexceptionmessage", ErrorClass.transient),
])
def test_an_errorcode_that_is_a_sentence_is_a_refusal_not_a_stumble(code, expected):
    # 4.3's password policy check throws moodle_exception with its text as the errorcode.
    assert classify_fault(MoodleFault("moodle_exception", code, "error/" + code)) is expected


# -- cohorts ----------------------------------------------------------------------------


def test_cohort_reads_and_removals_answer_as_4_3_does(lms):
    cohort = lms.add_cohort("probe")
    assert lms.site.get_cohorts({"cohortids": [9999]}) == []
    assert [c["id"] for c in lms.site.get_cohorts({"cohortids": [cohort, 9999]})] == [cohort]
    for member, code in (({"cohortid": 9999, "userid": 2}, "invalidrecord"),
                         ({"cohortid": cohort, "userid": 99999}, "invaliduser")):
        with pytest.raises(WsError) as refused:
            lms.site.delete_cohort_members({"members": [member]})
        assert (refused.value.exception, refused.value.errorcode) == (
            "dml_missing_record_exception", code)
    assert lms.site.delete_cohort_members({"members": [{"cohortid": cohort,
                                                        "userid": 2}]}) is None


# -- the listing's wait ---------------------------------------------------------------------


def test_the_listing_may_take_the_request_deadline_where_other_calls_get_the_timeout():
    # 4.3 builds the whole answer before it sends a byte: listing 5,300 users took more
    # than the default 30 s read timeout on loopback. The sandbox's cost stands in for it.
    from rostersync.sandbox.moodle import Cost

    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE, cost=Cost(call=0.3)) as slow:
        slow.add_cohort("dept-sales")

        async def listing(t):
            return [a.user_name async for a in t.list_accounts()]

        options = {"timeout_seconds": 0.05, "request_deadline_seconds": 10, "max_attempts": 1,
                   "cohorts": None}
        assert set(run(make(slow, **options), listing)) == {"guest", "admin"}
        with pytest.raises(ConnectorError, match=r"no answer within 0\.05s "
                                                 r"\(ReadTimeout; lms\.timeout_seconds\)"):
            run(make(slow, **options), lambda t: t.get("2"))


def test_in_a_batch_a_taken_username_fails_that_user_as_a_conflict_and_the_rest_apply(lms):
    from rostersync.sync.bulk import BatchItem

    lms.site.create_users({"users": [_user("taken", "t@acme.example")]})
    ids = [run(make(lms), lambda t, i=i: t.create(ada(f"E{i}", user_name=f"u{i}@acme.example",
                                                       email=f"u{i}@acme.example"), None)).lms_id
           for i in range(3)]
    items = [BatchItem(f"op{i}", "update", lms_id=lms_id,
                       changes={"user_name": "taken" if i == 1 else f"v{i}@acme.example"})
             for i, lms_id in enumerate(ids)]
    outcomes = run(make(lms), lambda t: t.apply_batch(items))
    assert outcomes["op1"].error_class is ErrorClass.conflict
    assert [outcomes[f"op{i}"].user_name for i in (0, 2)] == ["v0@acme.example",
                                                             "v2@acme.example"]
    assert lms.site.users[int(ids[1])]["username"] == "u1@acme.example"
