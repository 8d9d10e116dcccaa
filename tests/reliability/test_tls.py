"""TLS: every HTTP connector against a real HTTPS server on 127.0.0.1 whose certificate is
self-signed. By default each refuses it during the handshake, with a message naming the
endpoint and the certificate problem, before a single request (so before any credential)
reaches the server; with that endpoint's ``verify_tls = false`` the same server is read.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from rostersync.sandbox import bamboohr, successfactors, workday
from rostersync.sandbox.canvas import CanvasSandbox
from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sandbox.successfactors_data import organisation
from rostersync.sandbox.workday_data import generate as workday_people
from rostersync.sync.config import BambooHRSourceConfig, ScimTargetConfig
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import ConnectorError, FeedError
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.moodle import MoodleTarget
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from tests.reliability import figures
from tests.reliability.tls_server import certificate, over_tls

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SECRET = "tlsSecret5d0e7a"  # letters and digits: a valid Moodle token too
SECRET_ENV = "ROSTERSYNC_REL_TLS_SECRET"
PEOPLE = 3


async def _no_wait(_seconds: float) -> None:
    return None


def _hris_read(make: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], int]:
    def read(settings: dict[str, Any]) -> int:
        source = make(settings)
        try:
            return len(list(source.scan_full()))
        finally:
            source.close()
    return read


def _lms_read(make: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], int]:
    def read(settings: dict[str, Any]) -> int:
        async def go() -> int:
            async with make(settings) as target:
                return len([a async for a in target.list_accounts()])
        return asyncio.run(go())
    return read


def bamboo() -> tuple[Any, Callable[[Any], Callable[[dict[str, Any]], int]]]:
    server = bamboohr.BambooSandbox(api_key=SECRET, clock=lambda: NOW)
    for employee in bamboohr.generate(PEOPLE):
        server.put(employee)
    return server, lambda s: _hris_read(lambda extra: BambooHRSource(
        BambooHRSourceConfig(base_url=s.base_url, api_key_env=SECRET_ENV, **extra),
        now=lambda: NOW, sleep=lambda _: None))


def workday_() -> tuple[Any, Callable[[Any], Callable[[dict[str, Any]], int]]]:
    server = workday.WorkdaySandbox(user="isu@acme", password="unused", token=SECRET,
                                    clock=lambda: NOW)
    for worker in workday_people(PEOPLE):
        server.put(worker)
    return server, lambda s: _hris_read(lambda extra: WorkdaySource(
        WorkdaySourceConfig.model_validate({
            "base_url": s.base_url, "report_path": s.report_path, "auth": "bearer",
            "token_env": SECRET_ENV, **extra}), now=lambda: NOW, sleep=lambda _: None))


def successfactors_() -> tuple[Any, Callable[[Any], Callable[[dict[str, Any]], int]]]:
    server = successfactors.SuccessFactorsSandbox("ACME", username="api", password="unused",
                                                  token=SECRET, clock=lambda: NOW)
    for record in organisation(PEOPLE):
        server.put(record)
    return server, lambda s: _hris_read(lambda extra: SuccessFactorsSource(
        SuccessFactorsSourceConfig(base_url=s.base_url, company_id="ACME", auth="bearer",
                                   token_env=SECRET_ENV, **extra),
        now=lambda: NOW, sleep=lambda _: None))


def scim() -> tuple[Any, Callable[[Any], Callable[[dict[str, Any]], int]]]:
    return ScimSandbox(token=SECRET), lambda s: _lms_read(lambda extra: ScimTarget(
        ScimTargetConfig(base_url=s.base_url, token_env=SECRET_ENV, **extra),
        sleep=_no_wait))


def moodle() -> tuple[Any, Callable[[Any], Callable[[dict[str, Any]], int]]]:
    return MoodleSandbox(token=SECRET), lambda s: _lms_read(lambda extra: MoodleTarget(
        MoodleTargetConfig(base_url=s.base_url, token_env=SECRET_ENV, **extra),
        sleep=_no_wait))


def canvas() -> tuple[Any, Callable[[Any], Callable[[dict[str, Any]], int]]]:
    return CanvasSandbox(token=SECRET), lambda s: _lms_read(lambda extra: CanvasTarget(
        CanvasTargetConfig(base_url=s.base_url, token_env=SECRET_ENV,
                           account_id=s.account_id, **extra), sleep=_no_wait))


CONNECTORS = {"bamboohr": bamboo, "workday": workday_, "successfactors": successfactors_,
              "scim": scim, "moodle": moodle, "canvas": canvas}
HRIS = {"bamboohr", "workday", "successfactors"}
# What each holds: the HRIS their people; the LMSs their built-in accounts.
EXPECTED = {"bamboohr": PEOPLE, "workday": PEOPLE, "successfactors": PEOPLE, "scim": 0,
            "moodle": 2, "canvas": 0}


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory) -> tuple[Path, Path]:
    return certificate(tmp_path_factory.mktemp("tls"))


@pytest.mark.parametrize("connector", sorted(CONNECTORS))
def test_a_self_signed_server_is_refused_unless_that_endpoint_turns_verification_off(
        connector, self_signed):
    os.environ[SECRET_ENV] = SECRET
    sandbox, reader = CONNECTORS[connector]()
    with over_tls(sandbox, self_signed) as (server, counted):
        assert server.base_url.startswith("https://127.0.0.1:")
        read = reader(server)
        with pytest.raises((FeedError, ConnectorError)) as refused:
            read({})  # verify_tls defaults to true
        message = str(refused.value)
        port = urlsplit(server.base_url).port
        assert f"127.0.0.1:{port}" in message or connector in message.lower(), message
        assert "CERTIFICATE_VERIFY_FAILED" in message or "certificate" in message.lower(), \
            message
        assert SECRET not in message and "\n" not in message and "Traceback" not in message
        if connector in HRIS:
            assert "hris.verify_tls = false" in message, message
        # Refused in the handshake: no request, so no credential, reached the server.
        assert counted.requests == 0
        figures.add("tls: self-signed servers refused by default")

        found = read({"verify_tls": False})
        assert counted.requests > 0
        assert found == EXPECTED[connector], found
        figures.add("tls: accepted with the endpoint's verify_tls=false")
