"""Moodle web services: the wire rules, the target against the sandbox site, one engine run.

The wire behaviour (error bodies with HTTP 200, warning keys, update_users answering
{"warnings": []}, email LIKE '%' listing everyone, cohort member removal by
cohortid/userid) is cited from Moodle's source in docs/moodle.md;
tests/test_moodle_sources.py pins the points where that source corrected the sandbox.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.world import COLUMNS
from rostersync.storage import drift as drift_store
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, config_from_dict
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.factory import make_target
from rostersync.sync.connectors.moodle import MoodleTarget
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_wire import (
    MoodleFault,
    Refused,
    classify_fault,
    clean_username,
    cohort_idnumber,
    encode_params,
    moodle_username,
)
from rostersync.sync.engine import Engine
from rostersync.sync.models import Account, ErrorClass
from tests.support import World

TOKEN = "0123456789abcdef0123456789abcdef"
TOKEN_ENV = "ROSTERSYNC_TEST_MOODLE_TOKEN"
PROFILE = ("jobtitle", "employeenumber", "managerid")
FIELDS = {"title": "profile_field_jobtitle", "employee_number": "profile_field_employeenumber",
          "manager_key": "profile_field_managerid"}
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "moodle.toml"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def lms():
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE) as server:
        for dept in ("sales", "finance", "engineering"):
            server.add_cohort(f"dept-{dept}")
        yield server


def make(lms, slept: list[float] | None = None, **options) -> MoodleTarget:
    options = {"fields": FIELDS, "cohorts": {"field": "department"}, **options}
    config = MoodleTargetConfig(base_url=lms.base_url, token_env=TOKEN_ENV, **options)

    async def sleep(seconds: float) -> None:
        if slept is not None:
            slept.append(seconds)

    return MoodleTarget(config, sleep=sleep, jitter=lambda: 1.0)


def run(target: MoodleTarget, work):
    async def go():
        async with target:
            return await work(target)
    return asyncio.run(go())


def ada(key: str = "E1", **changes) -> Account:
    account = Account(key, "ada.novak@acme.example", "Ada", "Novak", "Ada Novak",
                      "ada.novak@acme.example", "Engineer", "Sales", "100001", "E0")
    for name, value in changes.items():
        setattr(account, name, value)
    return account


def post(lms, function: str, content: bytes, content_type: str, token: str = TOKEN):
    return httpx.post(f"{lms.base_url}/webservice/rest/server.php",
                      params={"wstoken": token, "wsfunction": function,
                              "moodlewsrestformat": "json"},
                      content=content, headers={"Content-Type": content_type})


# -- pure wire rules ------------------------------------------------------------------


def test_php_bracket_encoding_flattens_in_order():
    pairs = encode_params({"users": [{"username": "jdoe", "suspended": True, "city": None,
                                      "customfields": [{"type": "jobtitle", "value": "X"}]}],
                           "field": "id", "values": [3, 4]})
    assert pairs == [("users[0][username]", "jdoe"), ("users[0][suspended]", "1"),
                     ("users[0][customfields][0][type]", "jobtitle"),
                     ("users[0][customfields][0][value]", "X"),
                     ("field", "id"), ("values[0]", "3"), ("values[1]", "4")]
    with pytest.raises(TypeError, match="users"):
        encode_params({"users": object()})


@pytest.mark.parametrize(("raw", "plain", "extended"), [
    ("  Ada.Novak@ACME.example ", "ada.novak@acme.example", "ada.novak@acme.example"),
    ("o'brien+tag@x.org", "obrientag@x.org", "o'brien+tag@x.org"),
    ("Zoë Müller", "zomller", "zoë müller"),
    ("jane_doe-2", "jane_doe-2", "jane_doe-2"),
])
def test_username_cleaning_follows_param_username(raw, plain, extended):
    assert clean_username(raw) == plain
    assert clean_username(raw, extended_chars=True) == extended


def test_a_username_moodle_would_change_is_refused_or_cleaned_as_configured():
    strict = MoodleTargetConfig(base_url="https://m.example", token_env="X")
    with pytest.raises(Refused, match=r"would become 'obrien@x\.org'"):
        moodle_username("O'Brien@x.org", strict)
    assert moodle_username("Ada@X.org", strict) == "ada@x.org"  # case alone is fine
    lenient = strict.model_copy(update={"invalid_username": "clean"})
    assert moodle_username("O'Brien@x.org", lenient) == "obrien@x.org"


@pytest.mark.parametrize(("exception", "code", "message", "debug", "expected"), [
    ("moodle_exception", "invalidtoken", "Invalid token - token not found", None, "auth"),
    ("webservice_access_exception", "accessexception", "Access control exception", None,
     "auth"),
    ("invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected",
     "Username already exists: jdoe", "conflict"),
    ("invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected",
     "Email address already exists: a@b", "conflict"),
    ("invalid_parameter_exception", "invalidparameter", "Invalid parameter value detected",
     "Missing required key in single structure: users", "data"),
    ("dml_missing_record_exception", "invalidrecord", "Can't find data record", None,
     "not_found"),
    ("dml_write_exception", "dmlwriteexception", "Error writing to database", None,
     "transient"),
    ("moodle_exception", "sitemaintenance", "Site is undergoing maintenance", None,
     "transient"),
])
def test_exceptions_are_classified(exception, code, message, debug, expected):
    assert classify_fault(MoodleFault(exception, code, message, debug)) == expected


def test_cohort_idnumber_from_map_then_prefix():
    from rostersync.sync.connectors.moodle_config import MoodleCohortConfig

    config = MoodleCohortConfig(idnumbers={"R&D": "rnd"})
    assert cohort_idnumber("R&D", config) == "rnd"
    assert cohort_idnumber("Customer Success", config) == "dept-customer-success"
    assert cohort_idnumber(None, config) is None
    assert cohort_idnumber("Sales", MoodleCohortConfig(idnumber_prefix=None)) is None


# -- the sandbox speaks Moodle --------------------------------------------------------


def test_sandbox_refuses_json_bodies_and_bad_tokens_inside_http_200(lms):
    as_json = post(lms, "core_user_create_users", b'{"users": []}', "application/json")
    assert as_json.status_code == 200
    assert as_json.json()["debuginfo"] == "Missing required key in single structure: users"
    wrong = post(lms, "core_user_get_users", b"criteria[0][key]=email&criteria[0][value]=%25",
                 "application/x-www-form-urlencoded", token="nope")
    assert wrong.status_code == 200 and wrong.json()["errorcode"] == "invalidtoken"
    ok = post(lms, "core_user_get_users", b"criteria[0][key]=email&criteria[0][value]=%25",
              "application/x-www-form-urlencoded")
    assert [u["username"] for u in ok.json()["users"]] == ["guest", "admin"]


# -- reads ----------------------------------------------------------------------------


def test_create_sends_bracket_fields_and_reads_the_user_back(lms):
    created = run(make(lms), lambda t: t.create(ada(), None))
    assert created.lms_id and created.external_key == "E1"
    assert (created.title, created.employee_number, created.manager_key) == (
        "Engineer", "100001", "E0")
    assert created.display_name == "Ada Novak" and created.active
    _function, query, body = next(c for c in lms.calls if c[0] == "core_user_create_users")
    assert "moodlewsrestformat=json" in query and "wstoken=" in query
    assert "users%5B0%5D%5Busername%5D=ada.novak%40acme.example" in body
    assert "users%5B0%5D%5Bidnumber%5D=E1" in body
    assert "users%5B0%5D%5Bauth%5D=manual" in body
    stored = lms.user("E1")
    assert stored["department"] == "Sales" and stored["auth"] == "manual"
    assert lms.cohort_members("dept-sales") == {"E1"}


def test_token_can_travel_in_the_body_instead(lms):
    run(make(lms, token_in="body"), lambda t: t.get("2"))
    _function, query, body = lms.calls[-1]
    assert "wstoken" not in query and body.startswith("wstoken=")


def test_listing_is_one_call_and_maps_every_user(lms):
    target = make(lms)
    run(target, lambda t: t.create(ada(), None))
    lms.calls.clear()

    async def listing(t):
        return [a async for a in t.list_accounts()]

    accounts = {a.user_name: a for a in run(make(lms), listing)}
    assert set(accounts) == {"guest", "admin", "ada.novak@acme.example"}
    assert accounts["admin"].external_key is None
    assert accounts["ada.novak@acme.example"].department == "Sales"
    assert lms.function_calls() == ["core_user_get_users", "core_cohort_get_cohorts",
                                    "core_cohort_get_cohort_members"]
    assert "criteria%5B0%5D%5Bkey%5D=email&criteria%5B0%5D%5Bvalue%5D=%25" in lms.calls[0][2]


def test_lookups_by_idnumber_username_email_and_id(lms):
    created = run(make(lms), lambda t: t.create(ada(), None))

    async def lookups(t):
        return (await t.find_by_external_key("E1"), await t.find_by_external_key("E9"),
                await t.find_by_user_name("Ada.Novak@ACME.example"),
                await t.find_by_email("ADA.NOVAK@acme.example"),
                await t.get(created.lms_id), await t.get("999"), await t.get("x"))

    by_key, none, by_name, by_email, by_id, missing, junk = run(make(lms), lookups)
    assert [a.lms_id for a in by_key + by_name + by_email] == [created.lms_id] * 3
    assert none == [] and missing is None and junk is None
    assert by_id.external_key == "E1"


def test_a_lookup_answered_with_another_users_record_is_an_error(lms):
    lms.faults.replace_next("core_user_get_users_by_field",
                            [{"id": 7, "username": "x", "idnumber": "E2"}])
    with pytest.raises(ConnectorError, match="whose idnumber is \"E2\"") as caught:
        run(make(lms), lambda t: t.find_by_external_key("E1"))
    assert caught.value.error_class == ErrorClass.conflict


# -- writes ---------------------------------------------------------------------------


def test_update_suspend_and_unsuspend_are_read_back(lms):
    lms_id = run(make(lms), lambda t: t.create(ada(), None)).lms_id

    async def story(t):
        renamed = await t.update(lms_id, {"given_name": "Adeline",
                                          "display_name": "Adeline Novak", "title": "Lead"})
        await t.set_active(lms_id, False)
        suspended = await t.get(lms_id)
        await t.set_active(lms_id, True)
        return renamed, suspended, await t.get(lms_id)

    renamed, suspended, back = run(make(lms), story)
    assert (renamed.given_name, renamed.display_name, renamed.title) == (
        "Adeline", "Adeline Novak", "Lead")
    assert suspended.active is False and back.active is True
    assert lms.user("E1")["suspended"] is False


def test_an_update_moodle_silently_ignores_is_caught_by_the_read_back(lms):
    lms_id = run(make(lms), lambda t: t.create(ada(), None)).lms_id
    lms.site.ignored_fields.add("email")
    with pytest.raises(ConnectorError, match=r"did not take effect.*email: sent "
                                             r"'new@acme\.example'") as caught:
        run(make(lms), lambda t: t.update(lms_id, {"email": "new@acme.example"}))
    assert caught.value.error_class == ErrorClass.conflict


def test_a_field_without_a_home_fails_after_the_others_are_applied(lms):
    lms_id = run(make(lms, fields={}), lambda t: t.create(ada(), None)).lms_id
    with pytest.raises(ConnectorError, match="no field for title") as caught:
        run(make(lms, fields={}), lambda t: t.update(lms_id, {"title": "Lead",
                                                               "family_name": "Ito"}))
    assert caught.value.error_class == ErrorClass.mapping
    assert lms.user("E1")["lastname"] == "Ito"


def test_cohort_membership_follows_the_department(lms):
    lms_id = run(make(lms), lambda t: t.create(ada(), None)).lms_id
    run(make(lms), lambda t: t.update(lms_id, {"department": "Finance"}))
    assert lms.cohort_members("dept-finance") == {"E1"}
    assert lms.cohort_members("dept-sales") == set()
    # Someone adds the user to a second managed cohort by hand: the listing shows it as a
    # department difference, and the update that follows puts it right.
    sales = next(c for c in lms.site.cohorts.values() if c["idnumber"] == "dept-sales")
    lms.site.members[sales["id"]].add(int(lms_id))

    async def listing(t):
        return [a async for a in t.list_accounts() if a.external_key == "E1"]

    [listed] = run(make(lms), listing)
    assert listed.department == "Finance [also in cohort dept-sales]"
    run(make(lms), lambda t: t.update(lms_id, {"department": "Finance"}))
    assert lms.cohort_members("dept-sales") == set()
    [listed] = run(make(lms), listing)
    assert listed.department == "Finance"


def test_a_missing_cohort_is_a_mapping_error_unless_created(lms):
    with pytest.raises(ConnectorError, match=r'cohort "dept-legal".*no such cohort') as caught:
        run(make(lms), lambda t: t.create(ada(department="Legal"), None))
    assert caught.value.error_class == ErrorClass.mapping
    make_them = {"field": "department", "create_missing": True}
    run(make(lms, cohorts=make_them), lambda t: t.create(ada("E2", user_name="b@acme.example",
                                                             email="b@acme.example",
                                                             department="Legal"), None))
    assert lms.cohort_members("dept-legal") == {"E2"}


# -- errors ---------------------------------------------------------------------------


def test_a_200_body_exception_for_one_user_fails_that_user_only(lms):
    lms.faults.refuse("E2", exception="invalid_parameter_exception",
                      errorcode="invalidparameter", message="Invalid parameter value detected")

    async def both(t):
        first = await t.create(ada(), None)
        with pytest.raises(ConnectorError) as caught:
            await t.create(ada("E2", user_name="b@acme.example", email="b@acme.example"), None)
        return first, caught.value

    first, error = run(make(lms), both)
    assert first.lms_id and error.error_class == ErrorClass.data and error.status == 200
    assert "core_user_create_users" in error.message and "invalidparameter" in error.message


def test_a_warning_for_our_user_is_a_failure_not_a_success(lms):
    lms_id = run(make(lms), lambda t: t.create(ada(), None)).lms_id
    lms.faults.refuse(lms_id, warning=True, errorcode="invaliduserid",
                      message="Invalid user ID")
    with pytest.raises(ConnectorError, match="refused: invaliduserid: Invalid user ID") as err:
        run(make(lms), lambda t: t.update(lms_id, {"family_name": "Ito"}))
    assert err.value.error_class == ErrorClass.not_found
    assert lms.user("E1")["lastname"] == "Novak"


@pytest.mark.parametrize("debug", [True, False])
def test_a_taken_username_is_a_conflict_with_or_without_debuginfo(debug):
    os.environ[TOKEN_ENV] = TOKEN
    with MoodleSandbox(token=TOKEN, profile_fields=PROFILE, debug=debug) as lms:
        lms.add_cohort("dept-sales")
        run(make(lms), lambda t: t.create(ada(), None))
        with pytest.raises(ConnectorError) as caught:
            run(make(lms), lambda t: t.create(ada("E2", email="other@acme.example"), None))
    assert caught.value.error_class == ErrorClass.conflict
    assert ("Username already exists" if debug else "already belongs to Moodle user") \
        in caught.value.message


def test_a_wrong_token_is_auth_and_never_quoted(lms):
    os.environ[TOKEN_ENV] = "ffffffffffffffffffffffffffffffff"
    with pytest.raises(ConnectorError, match="invalidtoken") as caught:
        run(make(lms), lambda t: t.get("2"))
    assert caught.value.error_class == ErrorClass.auth
    assert "ffffffff" not in caught.value.message and TOKEN_ENV in caught.value.message
    os.environ[TOKEN_ENV] = "not a token!"
    with pytest.raises(ConnectorError, match="letters and digits only"):
        make(lms)


def test_a_throttling_burst_is_survived_with_bounded_backoff(lms):
    lms.faults.burst(3, status=503)
    slept: list[float] = []
    created = run(make(lms, slept), lambda t: t.create(ada(), None))
    assert created.lms_id and slept == [1.0, 2.0, 4.0]
    lms.faults.burst(1, status=429, retry_after=7)
    slept.clear()
    run(make(lms, slept), lambda t: t.get(created.lms_id))
    assert slept == [7.0]


def test_throttling_beyond_the_bounds_is_a_transient_error(lms):
    lms.faults.burst(10, status=503)
    slept: list[float] = []
    with pytest.raises(ConnectorError, match="HTTP 503") as caught:
        run(make(lms, slept), lambda t: t.get("2"))
    assert caught.value.error_class == ErrorClass.transient and len(slept) == 3
    lms.faults.clear()
    lms.faults.burst(1, status=503, retry_after=3600)
    with pytest.raises(ConnectorError, match="asked to wait 3600s"):
        run(make(lms, slept), lambda t: t.get("2"))


def test_a_malformed_body_is_a_clear_error_and_nothing_is_lost(lms):
    run(make(lms), lambda t: t.create(ada(), None))
    lms.faults.malformed(4, body=b'{"users": [{"id": 3, "username": "' + TOKEN.encode())

    async def listing(t):
        return [a async for a in t.list_accounts()]

    with pytest.raises(ConnectorError, match="not JSON \\(malformed or cut short\\)") as caught:
        run(make(lms, []), listing)
    assert TOKEN not in caught.value.message and "***" in caught.value.message
    lms.faults.malformed(1)  # one bad answer: the retry reads the whole list
    assert len(run(make(lms, []), listing)) == 3


# -- config and factory ---------------------------------------------------------------


def test_example_config_validates_and_the_factory_builds_the_target():
    os.environ.setdefault("MOODLE_WS_TOKEN", TOKEN)
    config = Config.model_validate(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")))
    assert config.lms.type == "moodle" and config.lms.cohorts is not None
    assert config.lms.unmanaged_fields == frozenset()
    assert isinstance(make_target(config.lms), MoodleTarget)
    assert config_from_dict(tomllib.loads(EXAMPLE.read_text(encoding="utf-8")), EXAMPLE)


def test_config_refuses_unknown_homes_and_cohorts_on_a_homeless_field():
    with pytest.raises(ValueError, match="neither profile_field_"):
        MoodleTargetConfig(base_url="https://m.example", fields={"title": "nickname"})
    with pytest.raises(ValueError, match="cohorts follow 'title'"):
        MoodleTargetConfig(base_url="https://m.example", cohorts={"field": "title"})
    config = MoodleTargetConfig(base_url="https://m.example/webservice/rest/server.php")
    assert config.base_url == "https://m.example"
    assert config.unmanaged_fields == {"title", "employee_number", "manager_key"}


# -- end to end: CSV HRIS -> engine -> Moodle -----------------------------------------


def write_moodle_config(folder: Path, base_url: str, csv_path: Path) -> Path:
    lines = ["[database]", f'path = "{folder / "rostersync.db"}"', "",
             "[hris]", 'type = "csv"', f'path = "{csv_path}"', "", "[hris.columns]",
             *[f'{k} = "{v}"' for k, v in COLUMNS.items()], "",
             "[lms]", 'type = "moodle"', f'base_url = "{base_url}"',
             f'token_env = "{TOKEN_ENV}"', 'auth = "oauth2"', "",
             "[lms.fields]", *[f'{k} = "{v}"' for k, v in FIELDS.items()], "",
             "[lms.cohorts]", 'field = "department"', "create_missing = true", ""]
    path = folder / "rostersync.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def test_engine_converges_moodle_then_suspends_a_termination(lms, tmp_path):
    world = World.generate(20)
    csv_path = world.write(tmp_path / "employees.csv")
    config = config_from_dict(tomllib.loads(write_moodle_config(
        tmp_path, lms.base_url, csv_path).read_text()), tmp_path / "rostersync.toml")
    engine = Engine(config, Store(config.database.path), clock=FrozenClock(NOW))

    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"create": 20}
    assert drift_store.counts_by_kind(engine.store) == {}
    second = asyncio.run(engine.sync("full"))
    assert second.counts["planned"] == {}, second.counts
    stored = lms.user("E00007")
    assert stored["auth"] == "oauth2" and stored["department"] == world.rows["E00007"][
        "Department"]
    assert {f["shortname"]: f["value"] for f in stored["customfields"]}["managerid"] == "E00002"
    assert "E00007" in lms.cohort_members(f"dept-{stored['department'].lower()}")

    world.rows["E00007"].update({"Status": "Terminated", "Termination Date": "2026-01-15"})
    world.write(csv_path)
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded", report.message
    assert report.counts["planned"] == {"deactivate": 1}
    assert lms.user("E00007")["suspended"] is True
    again = asyncio.run(engine.sync("full"))
    assert again.counts["planned"] == {} and drift_store.counts_by_kind(engine.store) == {}
