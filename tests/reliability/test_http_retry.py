"""The shared HRIS retry decisions (sync/connectors/http_retry.py): the waits, the wording
when a call gives up, and which transport failures count as passing, the last checked
against real sockets on loopback (a refused port, a proxy that resets)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import pytest

from rostersync.sandbox.bamboohr import BambooSandbox
from rostersync.sync.connectors.http_retry import (
    Answer,
    RetryPolicy,
    backoff_seconds,
    passing,
    retry_after_seconds,
    transport_message,
    untrusted_certificate,
)
from tests.reliability.fault_proxy import FaultProxy

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy(frozenset({429, 503}), 4, 60.0, 1.0)


def test_backoff_doubles_and_jitter_keeps_it_between_half_and_all():
    assert [backoff_seconds(2.0, n, 1.0) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]
    assert [backoff_seconds(2.0, n, 0.0) for n in (1, 2, 3)] == [1.0, 2.0, 4.0]


def test_retry_after_in_seconds_or_as_an_http_date():
    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds(" -3 ", NOW) == 0.0
    assert retry_after_seconds("Thu, 26 Nov 2026 09:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("soon", NOW) is None
    assert retry_after_seconds(None, NOW) is None


def test_giving_up_says_why():
    response = httpx.Response(503)
    assert Answer(response, 4, 2.0).gave_up_because(POLICY, "still throttled") == \
        "still throttled after 4 tries"
    assert Answer(response, 1, 3600.0).gave_up_because(
        POLICY, "still failing", "hris.max_wait_seconds") == \
        "asked to wait 3600s, more than 60s (hris.max_wait_seconds)"


def _failure(url: str) -> httpx.HTTPError:
    with httpx.Client(timeout=2.0) as client, pytest.raises(httpx.HTTPError) as caught:
        client.get(url)
    return caught.value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_reset_is_passing_a_refusal_is_not():
    with BambooSandbox(api_key="k") as server, \
            FaultProxy(urlsplit(server.base_url).port) as proxy:
        proxy.reset_next(1)
        reset = _failure(f"http://127.0.0.1:{proxy.port}/")
    refused = _failure(f"http://127.0.0.1:{_free_port()}/")
    assert passing(reset), repr(reset)
    assert not passing(refused) and not untrusted_certificate(refused)
    assert passing(httpx.ReadTimeout("timed out"))
    message = transport_message("BambooHR GET /x", refused, 1, "hris.verify_tls")
    assert message.startswith("BambooHR GET /x: ConnectError: ")
    assert "tries" not in message and "verify_tls" not in message
    assert transport_message("W", reset, 4, "s").endswith("; still failing after 4 tries")
