"""ScimTarget against a real scim2-server on loopback.

httpx.MockTransport appears only for error shapes scim2-server cannot produce (429 with
Retry-After, 503, a connection reset, a non-JSON 502). Other tests wrap the real
transport to record requests or to make the server misbehave in a controlled way.
"""
# The fixture is imported, then named as a test argument: that is how pytest works.
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from rostersync.sync.config import ScimTargetConfig
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.scim import ScimTarget, parse_retry_after
from rostersync.sync.models import Account, ErrorClass
from tests.scim_fixtures import SCIM_TOKEN, scim_server  # noqa: F401

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def make(server: Any, token: str = SCIM_TOKEN, transport: Any = None, **settings: Any
         ) -> ScimTarget:
    return ScimTarget(ScimTargetConfig(base_url=server.base_url, **settings), token=token,
                      transport=transport)


def person(n: int | str, **fields: Any) -> Account:
    values: dict[str, Any] = dict(
        external_key=f"E{n}", user_name=f"user{n}@acme.example", given_name=f"Given{n}",
        family_name=f"Family{n}", display_name=f"Given{n} Family{n}",
        email=f"user{n}@acme.example", title="Engineer", department="R&D",
        employee_number=f"{n}")
    values.update(fields)
    return Account(**values)


class Recording(httpx.AsyncHTTPTransport):
    """The real transport, keeping every request; optional hook to alter it first."""

    def __init__(self, before: Any = None) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.before = before  # async (transport, request) -> replacement request or None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.before is not None:
            request = await self.before(self, request) or request
        self.requests.append(request)
        return await super().handle_async_request(request)


# -- happy paths -------------------------------------------------------------------


def test_create_with_manager_and_read_back(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            boss = await lms.create(person(1, title="Director"), None)
            report = await lms.create(person(2), boss.lms_id)
            again = await lms.get(report.lms_id)
            return boss, report, again

    boss, report, again = run(scenario())
    assert boss.lms_id and report.lms_id and boss.lms_id != report.lms_id
    assert report.extra["manager_lms_id"] == boss.lms_id
    assert boss.extra["manager_lms_id"] is None
    assert report.manager_key is None  # the engine translates LMS ids to keys
    assert report.version and report.version == again.version
    assert again.managed() == person(2).managed()
    assert (again.external_key, again.lms_id, again.extra) == (
        "E2", report.lms_id, {"manager_lms_id": boss.lms_id})


def test_requests_use_scim_media_type(scim_server):
    recording = Recording()

    async def scenario():
        async with make(scim_server, transport=recording) as lms:
            created = await lms.create(person(1), None)
            await lms.update(created.lms_id, {"title": "Lead"})

    run(scenario())
    post, patch = (r for r in recording.requests if r.method in ("POST", "PATCH"))
    for request in (post, patch):
        assert request.headers["Content-Type"] == "application/scim+json"
        assert request.headers["Accept"] == "application/scim+json"
    body = json.loads(post.content)
    assert body["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE]
    assert body["emails"] == [{"value": "user1@acme.example", "type": "work", "primary": True}]
    assert json.loads(patch.content) == {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "title", "value": "Lead"}]}


def test_list_accounts_pages_with_one_based_start_index(scim_server):
    recording = Recording()

    async def scenario():
        async with make(scim_server, transport=recording, page_size=3) as lms:
            for n in range(8):
                await lms.create(person(n), None)
            return [a async for a in lms.list_accounts()]

    accounts = run(scenario())
    assert sorted(a.external_key for a in accounts) == [f"E{n}" for n in range(8)]
    assert len({a.lms_id for a in accounts}) == 8
    pages = [r.url.params for r in recording.requests if r.method == "GET"]
    assert [(p["startIndex"], p["count"]) for p in pages] == [("1", "3"), ("4", "3"), ("7", "3")]


def test_list_accounts_of_empty_lms(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            return [a async for a in lms.list_accounts()]

    assert run(scenario()) == []


def test_paging_stops_when_server_ignores_start_index(scim_server, caplog):
    async def drop_start_index(_, request):
        request.url = request.url.copy_remove_param("startIndex")

    async def scenario():
        async with make(scim_server, page_size=2) as lms:
            for n in range(5):
                await lms.create(person(n), None)
        transport = Recording(before=drop_start_index)
        async with make(scim_server, transport=transport, page_size=2) as lms:
            return [a async for a in lms.list_accounts()], transport

    with caplog.at_level(logging.WARNING, logger="rostersync.sync.connectors.scim"):
        accounts, transport = run(scenario())
    assert len(accounts) == 2  # the first page once, never the same page twice
    assert len(transport.requests) == 2
    assert "repeated a page" in caplog.text


# -- searches --------------------------------------------------------------------


def test_filter_escaping_quotes_and_backslashes(scim_server):
    tricky = 'o"brien\\x+y@acme.example'

    async def scenario():
        async with make(scim_server) as lms:
            await lms.create(person(1, user_name=tricky, email=tricky), None)
            await lms.create(person(2, user_name='o"brien@acme.example'), None)
            return (await lms.find_by_user_name(tricky),
                    await lms.find_by_user_name(tricky.upper()),
                    await lms.find_by_email(tricky.upper()),
                    await lms.find_by_user_name('o"brien'))

    exact, upper, by_email, partial = run(scenario())
    assert [a.user_name for a in exact] == [tricky]
    assert [a.user_name for a in upper] == [tricky]  # userName is caseExact=false
    assert [a.email for a in by_email] == [tricky]
    assert partial == []


def test_find_by_external_key_is_exact(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            for n, key in enumerate(("E1", "e1", "E10", "XE1")):
                await lms.create(person(n, external_key=key), None)
            return await lms.find_by_external_key("E1"), await lms.find_by_external_key("E9")

    hits, none = run(scenario())
    assert [a.external_key for a in hits] == ["E1"]
    assert none == []


def test_search_hits_are_verified_when_server_ignores_the_filter(scim_server):
    async def drop_filter(_, request):
        request.url = request.url.copy_remove_param("filter")

    async def scenario():
        async with make(scim_server) as lms:
            for n in range(4):
                await lms.create(person(n), None)
        async with make(scim_server, transport=Recording(before=drop_filter)) as lms:
            return (await lms.find_by_external_key("E2"),
                    await lms.find_by_user_name("USER3@acme.example"),
                    await lms.find_by_email("user1@ACME.example"))

    by_key, by_name, by_email = run(scenario())
    assert [a.external_key for a in by_key] == ["E2"]
    assert [a.external_key for a in by_name] == ["E3"]
    assert [a.external_key for a in by_email] == ["E1"]


# -- updates ---------------------------------------------------------------------


def test_patch_several_fields_then_deactivate(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            boss = await lms.create(person(1), None)
            unlinked = await lms.create(person(2, external_key=None), None)
            result = await lms.update(unlinked.lms_id, {
                "external_key": "E2", "given_name": "Ann", "display_name": "Ann Family2",
                "email": "ann@acme.example", "title": None, "department": "Finance",
                "manager_key": "E1"}, version=unlinked.version, manager_lms_id=boss.lms_id)
            updated = await lms.get(unlinked.lms_id)
            await lms.set_active(unlinked.lms_id, False)
            deactivated = await lms.get(unlinked.lms_id)
            await lms.update(unlinked.lms_id, {"manager_key": None})
            return boss, result, updated, deactivated, await lms.get(unlinked.lms_id)

    boss, result, updated, deactivated, cleared = run(scenario())
    assert result is None  # scim2-server answers PATCH with 204 No Content
    assert (updated.external_key, updated.given_name, updated.family_name) == (
        "E2", "Ann", "Family2")
    assert (updated.display_name, updated.email, updated.title, updated.department) == (
        "Ann Family2", "ann@acme.example", None, "Finance")
    assert updated.extra["manager_lms_id"] == boss.lms_id
    assert updated.active and not deactivated.active
    assert deactivated.version != updated.version
    assert cleared.extra["manager_lms_id"] is None


def test_stale_etag_is_refreshed_and_retried_once(scim_server):
    recording = Recording()

    async def scenario():
        async with make(scim_server, transport=recording) as lms:
            created = await lms.create(person(1), None)
            await lms.update(created.lms_id, {"title": "Lead"}, version=created.version)
            # created.version is stale now.
            await lms.update(created.lms_id, {"department": "Ops"}, version=created.version)
            return created, await lms.get(created.lms_id)

    created, final = run(scenario())
    assert (final.title, final.department) == ("Lead", "Ops")
    patches = [r for r in recording.requests if r.method == "PATCH"]
    assert [p.headers.get("If-Match") for p in patches] == [
        created.version, created.version, patches[2].headers["If-Match"]]
    assert patches[2].headers["If-Match"] != created.version


def test_version_mismatch_twice_is_a_conflict(scim_server):
    async def someone_else_edits_first(transport, request):
        # Another client changes the account just before each of our PATCHes lands.
        if request.method == "PATCH":
            bump = httpx.Request("PATCH", request.url, headers={
                "Authorization": f"Bearer {SCIM_TOKEN}", "Content-Type": "application/json"},
                content=json.dumps({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "nickName",
                                    "value": str(len(transport.requests))}]}))
            response = await httpx.AsyncHTTPTransport.handle_async_request(transport, bump)
            await response.aclose()

    async def scenario():
        async with make(scim_server) as lms:
            created = await lms.create(person(1), None)
        async with make(scim_server, transport=Recording(before=someone_else_edits_first)
                        ) as lms:
            await lms.update(created.lms_id, {"title": "Lead"}, version=created.version)

    with pytest.raises(ConnectorError) as info:
        run(scenario())
    assert info.value.error_class is ErrorClass.conflict
    assert info.value.status == 412


def test_etags_off_sends_no_if_match(scim_server):
    recording = Recording()

    async def scenario():
        async with make(scim_server, transport=recording, use_etags=False) as lms:
            created = await lms.create(person(1), None)
            await lms.update(created.lms_id, {"title": "Lead"}, version='W/"stale"')

    run(scenario())
    assert all("If-Match" not in r.headers for r in recording.requests)


def test_get_missing_and_delete(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            created = await lms.create(person(1), None)
            await lms.delete(created.lms_id)
            gone = await lms.get(created.lms_id)
            traversal = await lms.get("../ServiceProviderConfig")
            with pytest.raises(ConnectorError) as info:
                await lms.delete(created.lms_id)
            return gone, traversal, info.value

    gone, traversal, error = run(scenario())
    assert gone is None and traversal is None
    assert error.error_class is ErrorClass.not_found and error.status == 404


def test_check_describes_the_server(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            await lms.create(person(1), None)
            return await lms.check()

    assert run(scenario()) == (f"SCIM 2.0 at {scim_server.base_url} "
                               "(patch, filter, etag, bulk, sort; 1 user)")


# -- errors ----------------------------------------------------------------------


def test_duplicate_user_name_is_a_conflict(scim_server):
    async def scenario():
        async with make(scim_server) as lms:
            await lms.create(person(1, user_name="a@x.com"), None)
            await lms.create(person(2, user_name="a@x.com"), None)

    with pytest.raises(ConnectorError) as info:
        run(scenario())
    error = info.value
    assert (error.error_class, error.status, error.code) == (
        ErrorClass.conflict, 409, "uniqueness")
    assert str(error).startswith(
        'SCIM create of userName "a@x.com" (externalId "E2") failed: 409 uniqueness: ')


def test_refused_values_are_data_errors(scim_server):
    async def corrupt_patch(_, request):
        # Make the real server see a value it must refuse (400 invalidValue).
        if request.method == "PATCH":
            body = json.loads(request.content)
            body["Operations"][0]["value"] = "maybe"
            headers = {k: v for k, v in request.headers.items() if k != "content-length"}
            return httpx.Request("PATCH", request.url, headers=headers,
                                 content=json.dumps(body))
        return None

    async def scenario():
        errors = []
        async with make(scim_server, transport=Recording(before=corrupt_patch)) as lms:
            created = await lms.create(person(1), None)
            for call in (lms.update(created.lms_id, {"active": False}),
                         lms.update(created.lms_id, {"user_name": None}),
                         lms.create(person(2, user_name=" "), None)):
                with pytest.raises(ConnectorError) as info:
                    await call
                errors.append(info.value)
        return errors

    server_side, removed, blank = run(scenario())
    assert (server_side.error_class, server_side.status, server_side.code) == (
        ErrorClass.data, 400, "invalidValue")
    assert str(server_side).startswith('SCIM update of id "')
    # scim2-models refuses to remove a required attribute before anything is sent.
    assert (removed.error_class, removed.status, removed.code) == (
        ErrorClass.data, None, "mutability")
    assert "required attribute cannot be removed" in str(removed)
    assert (blank.error_class, blank.status) == (ErrorClass.data, None)
    assert "has no userName" in str(blank)


def test_wrong_token_is_an_auth_error_everywhere(scim_server):
    async def scenario():
        errors = []
        async with make(scim_server, token="wrong-token", token_env="LMS_TOKEN") as lms:
            calls = [lms.get("x"), lms.find_by_external_key("E1"), lms.check(),
                     lms.create(person(1), None), lms.update("x", {"title": "T"}),
                     lms.delete("x")]
            for call in calls:
                with pytest.raises(ConnectorError) as info:
                    await call
                errors.append(info.value)
            with pytest.raises(ConnectorError) as info:
                [a async for a in lms.list_accounts()]
            errors.append(info.value)
        return errors

    errors = run(scenario())
    for error in errors:
        assert (error.error_class, error.status) == (ErrorClass.auth, 401)
        assert "check the token in $LMS_TOKEN" in str(error)
        assert "wrong-token" not in str(error)


SLEPT: list[float] = []


async def _record_sleep(seconds: float) -> None:
    SLEPT.append(seconds)  # reads retry; the tests do not wait for real


def _mock(handler: Any) -> ScimTarget:
    config = ScimTargetConfig(base_url="http://lms.invalid/v2")
    return ScimTarget(config, token=SECRET, transport=httpx.MockTransport(handler),
                      sleep=_record_sleep)


SECRET = "s3cr3t-T0KEN-value"


def _fail(target: ScimTarget) -> ConnectorError:
    async def scenario():
        async with target as lms:
            await lms.get("u1")

    with pytest.raises(ConnectorError) as info:
        run(scenario())
    return info.value


def test_rate_limit_and_server_errors_are_transient():
    limited = _fail(_mock(lambda r: httpx.Response(
        429, headers={"Retry-After": "7"}, json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": "429", "detail": "Slow down"})))
    assert (limited.error_class, limited.status, limited.retry_after) == (
        ErrorClass.transient, 429, 7.0)
    assert str(limited) == 'SCIM read of id "u1" failed: 429: Slow down'

    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    busy = _fail(_mock(lambda r: httpx.Response(503, headers={"Retry-After": when})))
    assert busy.error_class is ErrorClass.transient and busy.status == 503
    assert 100 < busy.retry_after <= 120

    gateway = _fail(_mock(lambda r: httpx.Response(
        502, text="<html><body>\n<h1>502 Bad Gateway</h1></body></html>")))
    assert gateway.error_class is ErrorClass.transient and gateway.status == 502
    assert str(gateway) == ('SCIM read of id "u1" failed: 502: '
                            '<html><body> <h1>502 Bad Gateway</h1></body></html>')


def test_connection_reset_is_transient():
    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)

    error = _fail(_mock(reset))
    assert error.error_class is ErrorClass.transient and error.status is None
    assert "Connection reset by peer" in str(error)


def test_parse_retry_after():
    assert parse_retry_after("0") == 0.0
    assert parse_retry_after(" 30 ") == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_token_never_appears_in_error_messages(scim_server):
    def echo_headers(request: httpx.Request) -> httpx.Response:
        # A badly behaved proxy that echoes the request (and its token) in its error page.
        return httpx.Response(502, text="upstream failed for a request with "
                                        f"{request.headers['Authorization']} " + "x" * 300)

    def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"failed with {request.headers['Authorization']}",
                                 request=request)

    errors = [_fail(_mock(echo_headers)), _fail(_mock(reset))]

    async def real_errors():
        async with make(scim_server, token=SECRET) as wrong:
            with pytest.raises(ConnectorError) as info:
                await wrong.get("x")
            errors.append(info.value)
        async with make(scim_server) as lms:
            created = await lms.create(person(1), None)
            for call in (lms.create(person(1), None), lms.delete("missing"),
                         lms.update(created.lms_id, {"user_name": None})):
                with pytest.raises(ConnectorError) as info:
                    await call
                errors.append(info.value)

    run(real_errors())
    assert {e.error_class for e in errors} == {
        ErrorClass.transient, ErrorClass.auth, ErrorClass.conflict, ErrorClass.not_found,
        ErrorClass.data}
    assert "***" in str(errors[0])  # the echoed token was redacted
    for error in errors:
        for text in (str(error), repr(error), *map(str, error.args)):
            assert SECRET not in text and SCIM_TOKEN not in text


def test_token_with_illegal_characters_is_refused_without_echo():
    config = ScimTargetConfig(base_url="http://lms.invalid/v2", token_env="LMS_TOKEN")
    with pytest.raises(ConnectorError) as info:
        ScimTarget(config, token="abc def\n")
    assert info.value.error_class is ErrorClass.auth
    assert "abc" not in str(info.value) and "$LMS_TOKEN" in str(info.value)


def test_creation_body_equals_the_scim2_models_serialisation():
    import itertools
    import json

    from rostersync.sync.connectors.scim_payload import creation_body, creation_body_reference
    from rostersync.sync.models import Account

    values = {
        "external_key": ["E1", None], "given_name": ["Ann", ""], "family_name": ["Lee", ""],
        "display_name": ["Ann Lee", ""], "email": ["ann@acme.example", None],
        "title": ["Lead", None], "department": ["Sales", None],
        "employee_number": ["42", None], "active": [True, False],
    }
    checked = 0
    for combo in itertools.product(*values.values()):
        account = Account(user_name="ann@acme.example", **dict(zip(values, combo, strict=True)))
        for manager in ("L7", None):
            fast = json.dumps(creation_body(account, manager), sort_keys=True)
            reference = json.dumps(creation_body_reference(account, manager), sort_keys=True)
            assert fast == reference, account
            checked += 1
    assert checked == 2 ** 10


def test_a_throttled_read_is_retried_after_retry_after(scim_server):
    calls = {"n": 0}

    def once(method, path):
        if method == "GET" and path.endswith("/Users"):
            calls["n"] += 1
            if calls["n"] == 1:
                return 429, {"Retry-After": "3"}, b""
        return None

    scim_server.fault = once
    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    async def go() -> list:
        config = ScimTargetConfig(base_url=scim_server.base_url)
        async with ScimTarget(config, token=SCIM_TOKEN, sleep=record) as target:
            return [a async for a in target.list_accounts()]

    assert asyncio.run(go()) == []
    assert slept == [3.0] and calls["n"] == 2
