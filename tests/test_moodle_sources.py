"""Moodle behaviour read from Moodle's own source (docs/moodle.md cites the files), held
against the sandbox site and the target: a bare 403 means web services or REST are off,
and core_cohort_add_cohort_members answers with numbered warnings, "3" being a member
already (which an addition wants) and "2" a user or cohort that does not exist.
"""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.models import ErrorClass
from tests.test_moodle import PROFILE, TOKEN, TOKEN_ENV, ada, make, run


@pytest.fixture
def lms(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE) as server:
        for dept in ("sales", "finance", "engineering"):
            server.add_cohort(f"dept-{dept}")
        yield server


def _call(lms, function: str, **params: str) -> object:
    answer = httpx.post(f"{lms.base_url}/webservice/rest/server.php",
                        params={"wstoken": TOKEN, "wsfunction": function,
                                "moodlewsrestformat": "json"}, data=params)
    return answer.json()


def test_a_bare_403_says_web_services_or_rest_are_off_not_the_token(lms):
    lms.faults.rest_disabled()
    with pytest.raises(ConnectorError) as caught:
        run(make(lms), lambda t: t.get("2"))
    text = str(caught.value)
    assert caught.value.error_class is ErrorClass.auth and caught.value.status == 403
    assert "REST protocol are not enabled" in text and "check the token" not in text


def test_cohort_additions_answer_numbered_warnings_as_moodle_does(lms):
    user = run(make(lms), lambda t: t.create(ada(), None))
    cohort = lms.add_cohort("aud-safety")

    def add(user_type: str, value: str) -> object:
        return _call(lms, "core_cohort_add_cohort_members", **{
            "members[0][cohorttype][type]": "id", "members[0][cohorttype][value]": str(cohort),
            "members[0][usertype][type]": user_type, "members[0][usertype][value]": value})

    assert add("id", user.lms_id) == {"warnings": []}
    again = add("id", user.lms_id)
    assert [w["warningcode"] for w in again["warnings"]] == ["3"]
    assert again["warnings"][0]["message"].startswith("record already exists: cohort(")
    missing = add("id", "99999")
    assert missing == {"warnings": [{"warningcode": "2",
                                     "message": "user id=99999 not exists"}]}
    wrong_kind = add("idnumber", "E1")
    assert wrong_kind["warnings"][0] == {"warningcode": "1",
                                         "message": "invalid parameter: usertype=idnumber"}


def test_adding_a_member_already_there_holds_and_a_missing_user_is_not_found(lms):
    user = run(make(lms), lambda t: t.create(ada(), None))
    lms.add_cohort("aud-safety")
    audience = SimpleNamespace(id="safety", group="aud-safety", title="Safety",
                               create_missing=False)

    async def add_twice(t):
        await t.add_to_audience(audience, user.lms_id)
        await t.add_to_audience(audience, user.lms_id)  # a retry after a lost answer
        return await t.audience_members(audience)

    assert run(make(lms), add_twice) == {user.lms_id}

    with pytest.raises(ConnectorError) as caught:
        run(make(lms), lambda t: t.add_to_audience(audience, "99999"))
    assert caught.value.error_class is ErrorClass.not_found
    assert "user id=99999 not exists" in str(caught.value)
