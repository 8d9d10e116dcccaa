"""Hostile answers: every connector (BambooHR, Workday, SuccessFactors, Canvas, Moodle)
against a server that answers in its real wire shape with one thing made hostile.

- huge bodies: refused once past ``max_answer_bytes``, streamed (never read whole);
- slow drips: a byte at a time never trips a per-chunk read timeout; the request's
  ``request_deadline_seconds`` ends it;
- redirects to another host: never followed (no request, no credentials reach it); the
  answer is one sentence naming the Location;
- endless pagination: a listing past ``max_pages`` is refused naming the endpoint;
- wrong types: an id that is a JSON object or list is never read as the text of it, and
  an answer of another shape altogether is one sentence;
- wrong ids (tests/reliability/test_hostile_ids.py): an LMS answer naming another person
  than asked is never taken as theirs.

The connectors' rigs are in tests/reliability/hostile_rigs.py; SCIM is tried too for the
attacks on the exchange itself.

Every refusal is one sentence (FeedError for a source, ConnectorError for a target), never
a traceback. The drip sleeps in the hostile server's thread; the connector's deadline is
what is tested, with small configured limits.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from rostersync.sandbox import bamboohr
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import ScimTargetConfig, config_from_dict
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.http_limits import (
    AnswerLimits,
    AnswerRefused,
    DeadlinePassed,
    redirect_refusal,
    send_within,
    too_many_pages,
)
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.engine import Engine
from tests import test_canvas
from tests.reliability import figures
from tests.reliability.hostile_rigs import (
    CONNECTORS,
    ERRORS,
    MIB,
    NOW,
    PEOPLE,
    RIGS,
    SECRET,
    SECRET_ENV,
    TRANSPORTS,
    Rig,
    no_wait,
    read_target,
    refused,
)
from tests.reliability.hostile_server import (
    Exchange,
    Hostile,
    HostileServer,
    drip,
    endless,
    relay,
)
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, lms_users

# -- huge bodies -----------------------------------------------------------------------


@pytest.mark.parametrize("connector", sorted(TRANSPORTS))
def test_a_huge_answer_is_refused_at_the_cap_without_reading_it_whole(connector):
    size = figures.scale(48, 1024) * MIB  # a full run sends a GiB (refused all the same)
    with TRANSPORTS[connector]() as rig, \
            HostileServer(endless(b'{"employees": [', size, declare=False)) as server:
        message = refused(lambda: rig.read(server.base_url + rig.path,
                                            max_answer_bytes=MIB))
        assert "max_answer_bytes" in message and str(MIB) in message, message
        # Streamed and dropped: far less than the body was ever taken from the server.
        assert server.sent < size // 2, server.sent
        assert len(server.requests) == 1  # the same answer again would be refused again
    figures.add("hostile: huge answers refused at the cap")


# -- slow drips ------------------------------------------------------------------------


@pytest.mark.parametrize("connector", sorted(TRANSPORTS))
def test_a_drip_that_beats_the_read_timeout_ends_at_the_deadline(connector):
    body = b'{"employees": [], "users": []}' + b" " * 400
    with TRANSPORTS[connector]() as rig, HostileServer(drip(body, every=0.02)) as server:
        # Each byte arrives well within the 5 s read timeout; the whole would take 8 s.
        message = refused(lambda: rig.read(server.base_url + rig.path,
                                            request_deadline_seconds=0.15, attempts=2))
        assert "request_deadline_seconds" in message and "0.15s" in message, message
        if connector in ("bamboohr", "workday", "successfactors"):
            assert "still failing after 2 tries" in message, message  # retried as a timeout
    figures.add("hostile: drips ended at the deadline")


# -- redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("connector", sorted(TRANSPORTS))
def test_a_redirect_to_another_host_is_named_and_never_followed(connector):
    with TRANSPORTS[connector]() as rig, HostileServer(Hostile(200)) as elsewhere:
        away = f"{elsewhere.base_url}/collect?from=rostersync"
        with HostileServer(Hostile(302, {"Location": away})) as server:
            message = refused(lambda: rig.read(server.base_url + rig.path))
        assert away in message and "redirect" in message, message
        assert elsewhere.requests == []  # nothing, and so no credentials, went there
    figures.add("hostile: redirects refused")


# -- endless pagination ----------------------------------------------------------------


def _endless_next(rig: Rig, pages: int, own: str) -> Callable[[Exchange], Exchange]:
    """The listing's first page again and again, each time with a next link that is new,
    ``pages`` times, after which the listing ends (the old code then finished; it never
    refused). The made-up links are answered here, with the first page."""
    served, first = [0], {}

    def change(exchange: Exchange) -> Exchange:
        method, path, status, headers, body = exchange
        if not rig.key_answer(path):
            return exchange
        base = path.split("&page=p")[0].split("&$skiptoken=t")[0]
        if base == path:
            first[base] = status, headers, body
        else:  # a link made up here: the sandbox does not know it
            status, headers, body = first[base]
        if status != 200 or served[0] >= pages:
            return method, path, status, headers, body
        served[0] += 1
        if rig.name == "canvas":
            link = f'<{own}{base}&page=p{served[0]}>; rel="next"'
            return method, path, status, {**headers, "link": link}, body
        data = json.loads(body)
        data["d"]["__next"] = f"{own}{base}&$skiptoken=t{served[0]}"
        return method, path, status, headers, json.dumps(data).encode()

    return change


@pytest.mark.parametrize("connector", ["canvas", "successfactors"])
def test_a_listing_that_never_ends_is_refused_after_max_pages(connector):
    with RIGS[connector]() as rig:
        if connector == "canvas":
            rig.key_answer = lambda path: path.startswith("/api/v1/accounts/1/users")
        with HostileServer(Hostile(503)) as server:
            server.answer = relay(rig.upstream, _endless_next(rig, 60, server.base_url))
            message = refused(lambda: rig.read(server.base_url + rig.path, max_pages=5))
        assert "max_pages" in message and "after 5" in message, message
    figures.add("hostile: endless listings refused")


@pytest.mark.parametrize("connector", ["canvas", "successfactors"])
@pytest.mark.parametrize("max_pages, accepted", [(PEOPLE + 1, True), (PEOPLE, True),
                                                 (PEOPLE - 1, False)])
def test_max_pages_at_its_edge(connector, max_pages, accepted):
    """One person per page: PEOPLE pages is exactly the listing (accepted at PEOPLE),
    one page fewer allowed is refused."""
    with RIGS[connector]() as rig:
        page = {"canvas": {"per_page": 1}, "successfactors": {"page_size": 1}}[connector]
        if accepted:
            assert len(rig.read(rig.upstream, max_pages=max_pages, **page).keys) == PEOPLE
        else:
            message = refused(lambda: rig.read(rig.upstream, max_pages=max_pages, **page))
            assert f"after {max_pages} " in message, message


# -- wrong types -----------------------------------------------------------------------


def _set_first_key(rig: Rig, value: Any) -> Callable[[Exchange], Exchange]:
    def change(exchange: Exchange) -> Exchange:
        method, path, status, headers, body = exchange
        if status != 200 or not rig.key_answer(path):
            return exchange
        return (method, path, status, headers,
                json.dumps(rig.set_key(json.loads(body), value)).encode())
    return change


@pytest.mark.parametrize("value", [{"a": 1}, [7, 8]], ids=["object", "list"])
@pytest.mark.parametrize("connector", CONNECTORS)
def test_an_id_of_the_wrong_type_is_never_read_as_its_text(connector, value):
    with RIGS[connector]() as rig, \
            HostileServer(relay(rig.upstream, _set_first_key(rig, value))) as server:
        try:
            outcome = rig.read(server.base_url + rig.path)
        except ERRORS as exc:
            said = [str(exc)]
        else:
            assert str(value) not in outcome.keys, outcome
            said = outcome.quarantined
        # One sentence, naming the field (quarantining the record or refusing the answer).
        assert len(said) == 1 and rig.key_field in said[0], said
    figures.add("hostile: ids of the wrong type refused")


# -- the limits at their edges (the shared reader, against a real server) ---------------


def _body(size: int, declare: bool) -> Hostile:
    return Hostile(200, {"Content-Type": "application/json"},
                   lambda: iter((b"x" * size,)), 0.0, size if declare else None)


@pytest.mark.parametrize("declare", [True, False], ids=["declared", "chunked"])
@pytest.mark.parametrize("cap, accepted", [(999, False), (1000, True), (1001, True)])
def test_the_byte_cap_at_its_edge(cap, accepted, declare):
    limits = AnswerLimits(cap, 10.0, "hris")
    with HostileServer(_body(1000, declare)) as server, httpx.Client() as client:
        request = client.build_request("GET", server.base_url + "/report")
        if accepted:
            assert send_within(client, request, limits, "GET /report").content == b"x" * 1000
        else:
            with pytest.raises(AnswerRefused, match=r"GET /report: .* larger than 999 bytes"):
                send_within(client, request, limits, "GET /report")


@pytest.mark.parametrize("elapsed, accepted", [(4.999, True), (5.0, True), (5.001, False)])
def test_the_deadline_at_its_edge(elapsed, accepted):
    """The clock reads 0 when the request is sent and ``elapsed`` at every chunk after."""
    readings = iter([0.0])
    limits = AnswerLimits(MIB, 5.0, "lms")
    with HostileServer(_body(100, True)) as server, httpx.Client() as client:
        request = client.build_request("GET", server.base_url + "/users")

        def clock() -> float:
            return next(readings, elapsed)

        if accepted:
            assert len(send_within(client, request, limits, "GET /users", clock).content) == 100
        else:
            with pytest.raises(DeadlinePassed, match=r"within 5s \(lms.request_deadline"):
                send_within(client, request, limits, "GET /users", clock)


@pytest.mark.parametrize("status, location, refused", [
    (302, "https://elsewhere.example/x", True), (301, "/same-host/path", True),
    (307, "https://elsewhere.example/x", True), (304, None, False), (302, None, True)])
def test_which_answers_are_redirects(status, location, refused):
    headers = {"Location": location} if location else {}
    response = httpx.Response(status, headers=headers,
                              request=httpx.Request("GET", "https://hr.example/report"))
    said = redirect_refusal(response, "GET /report", "hris")
    assert (said is not None) == refused
    if refused:
        assert (location or "(no Location)") in said and "hris.base_url" in said


@pytest.mark.parametrize("pages, refused", [(99, False), (100, False), (101, True)])
def test_max_pages_rule_at_its_edge(pages, refused):
    said = too_many_pages(pages, 100, "lms")
    assert (said is not None) == refused
    if refused:
        assert "after 100 (lms.max_pages)" in said


# -- SCIM: startIndex paging that never ends -------------------------------------------


def test_a_scim_listing_that_never_ends_is_refused_after_max_pages():
    """Every page has users never seen before and no totalResults: before max_pages
    there was no end to it."""
    served = [0]

    def page(method: str, path: str, headers: dict[str, str], body: bytes) -> Hostile:
        served[0] += 1
        n = served[0]
        if n > 60:  # the old code would read to here and accept the lot
            document: dict[str, Any] = {"Resources": []}
        else:
            document = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                        "Resources": [{"id": f"u{n}", "userName": f"p{n}@acme.example",
                                       "externalId": f"E{n}", "active": True}]}
        data = json.dumps(document).encode()
        return Hostile(200, {"Content-Type": "application/scim+json"},
                       lambda: iter((data,)), 0.0, len(data))

    os.environ[test_canvas.TOKEN_ENV] = test_canvas.TOKEN
    with HostileServer(page) as server:
        config = ScimTargetConfig(base_url=server.base_url, token_env=test_canvas.TOKEN_ENV,
                                  max_pages=5)
        target = ScimTarget(config, sleep=no_wait)
        message = refused(lambda: read_target(target))
    assert "after 5 (lms.max_pages)" in message and "startIndex 6" in message, message
    figures.add("hostile: endless listings refused")


@pytest.mark.parametrize("deadline, accepted", [(599.0, False), (600.0, True), (601.0, True)])
def test_a_workday_deadline_shorter_than_the_report_timeout_isrefused(deadline, accepted):
    settings = {"base_url": "https://wd.example", "report_path": "ccx/service/customreport2/a/b",
                "auth": "bearer", "token_env": SECRET_ENV, "report_timeout_seconds": 600.0,
                "request_deadline_seconds": deadline}
    if accepted:
        assert WorkdaySourceConfig.model_validate(settings).request_deadline_seconds == deadline
    else:
        with pytest.raises(ValueError, match="shorter than report_timeout_seconds"):
            WorkdaySourceConfig.model_validate(settings)


# -- through the engine: the last good snapshot stays in force ---------------------------


def test_a_huge_hris_answer_rejects_the_run_and_leaves_the_lms_and_snapshot_alone(
        tmp_path, scim_server):
    """BambooHR into SCIM: a good run, then the report grows past the cap; the run fails
    with the sentence, nothing in the LMS changes, and the next good answer is a clean
    run with nothing to do."""
    os.environ[TOKEN_ENV], os.environ[SECRET_ENV] = SCIM_TOKEN, SECRET
    with bamboohr.BambooSandbox(api_key=SECRET, clock=lambda: NOW) as server:
        for employee in bamboohr.generate(PEOPLE):
            server.put(employee)
        config = config_from_dict({
            "database": {"path": str(tmp_path / "rostersync.db")},
            "hris": {"type": "bamboohr", "base_url": server.base_url,
                     "api_key_env": SECRET_ENV, "max_answer_bytes": 64 * 1024},
            "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
            "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                          "inactive": "terminated"}},
        })
        source = BambooHRSource(config.hris, now=lambda: NOW, sleep=lambda s: None,
                                jitter=lambda: 1.0)
        engine = Engine(config, Store(config.database.path), source=source,
                        clock=FrozenClock(NOW))
        assert asyncio.run(engine.sync("full")).status == "succeeded"
        before = lms_users(scim_server.base_url, SCIM_TOKEN)
        huge = (200, {"Content-Type": "application/json"},
                b'{"fields": [], "employees": [' + b" " * (128 * 1024) + b"]}")
        server.fault = lambda method, path: huge
        report = asyncio.run(engine.sync("full"))
        assert report.status != "succeeded" and report.exit_code != 0, report
        assert "hris.max_answer_bytes" in report.message and "65536" in report.message
        assert lms_users(scim_server.base_url, SCIM_TOKEN) == before
        server.fault = None
        again = asyncio.run(engine.sync("full"))
        assert again.status == "succeeded", again.message
        assert lms_users(scim_server.base_url, SCIM_TOKEN) == before


# -- answers of the wrong shape altogether -------------------------------------------------

SHAPES = {"null": None, "number": 7, "text": "ok", "list-of-numbers": [1, 2],
          "empty-object": {}, "object-of-objects": {"a": {"b": []}},
          "envelopes-of-lists": {"employees": [[1]], "Report_Entry": [[1]], "users": [[1]],
                                 "d": {"results": [[1]]}, "fields": [[1]]}}


# Every shape in the full run; one in the default run (all held before: regression cases).
SHAPES_TRIED = sorted(SHAPES) if figures.FULL else ["envelopes-of-lists"]


@pytest.mark.parametrize("shape", SHAPES_TRIED)
@pytest.mark.parametrize("connector", CONNECTORS)
def test_an_answer_of_the_wrong_shape_is_one_sentence(connector, shape):
    """The people listing (Canvas: a user's logins) replaced by JSON of another shape:
    refused, or read as nobody, never a traceback."""
    body = json.dumps(SHAPES[shape]).encode()
    with RIGS[connector]() as rig:
        def change(exchange: Exchange) -> Exchange:
            method, path, status, headers, _ = exchange
            return exchange if not rig.key_answer(path) else (method, path, status,
                                                              headers, body)

        with HostileServer(relay(rig.upstream, change)) as server:
            try:
                outcome = rig.read(server.base_url + rig.path)
            except ERRORS as exc:
                assert "\n" not in str(exc).strip(), exc
            else:
                assert all(k and "[" not in k and "{" not in k for k in outcome.keys), outcome
    figures.add("hostile: answers of the wrong shape held")
