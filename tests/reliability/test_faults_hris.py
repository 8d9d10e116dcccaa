"""Faults: every HRIS connector against its sandbox, with every fault the issue names.

Each (connector, fault) pair ends in one of two correct states, decided in advance:
- recovers: a passing fault (one 429 with Retry-After, one 503 without, a slow answer
  within the timeout, one connection reset) is retried and the full feed arrives;
- explained: a lasting fault (a 5xx storm, a body cut short or not JSON at all, a slow
  answer past the timeout, an expired token, connections reset again and again) is one
  FeedError naming the endpoint, and the secret appears nowhere in it.
Retry waits go to an injected sleep; no test waits for a Retry-After or a backoff.

The engine-level test shows what an operator sees: a failing HRIS pull rejects the run
with the reason, changes nothing in the LMS, and the next run after recovery is clean.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest

from rostersync.sandbox import bamboohr, successfactors, workday
from rostersync.sandbox.successfactors_data import organisation
from rostersync.sandbox.workday_data import generate as workday_people
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import BambooHRSourceConfig, config_from_dict
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.engine import Engine
from tests.reliability import figures
from tests.reliability.fault_proxy import FaultProxy
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, lms_users

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PEOPLE = 7
SECRET = "planted-hris-secret-5f2c"  # the credential every connector is given here
SECRET_ENV = "ROSTERSYNC_REL_HRIS_SECRET"
JSON = {"Content-Type": "application/json"}

# A read is safe to repeat: one reset (or one read timeout) costs a backoff, not the pull.
RECOVERS = {"429-retry-after", "503-no-retry-after", "slow-within-timeout", "reset-once"}
EXPLAINED = {"5xx-storm", "truncated-body", "malformed-body", "slow-past-timeout",
             "expired-token", "reset-storm"}
FAULTS = sorted(RECOVERS | EXPLAINED)


@dataclass
class Rig:
    """One HRIS sandbox behind a fault proxy, and how to fault it and read from it."""

    server: Any
    proxy: FaultProxy
    base_url: str  # through the proxy
    answer: Callable[[list[Any] | Callable[[], Any]], None]  # install HTTP-level faults
    source: Callable[..., Any]  # (sleep, timeout) -> a source reading through the proxy
    shapes: dict[str, Any]  # connector-specific fault answers


def _through(url: str, proxy: FaultProxy) -> str:
    port = urlsplit(url).port
    return url.replace(f":{port}", f":{proxy.port}", 1)


def _queue(answers: list[Any] | Callable[[], Any]) -> Callable[[], Any]:
    if callable(answers):
        return answers
    pending = list(answers)
    return lambda: pending.pop(0) if pending else None


@contextmanager
def bamboo_rig() -> Iterator[Rig]:
    os.environ[SECRET_ENV] = SECRET
    with bamboohr.BambooSandbox(api_key=SECRET, clock=lambda: NOW) as server, \
            FaultProxy(urlsplit(server.base_url).port) as proxy:
        for employee in bamboohr.generate(PEOPLE):
            server.put(employee)

        def answer(answers) -> None:
            next_answer = _queue(answers)
            server.fault = lambda method, path: next_answer()

        def source(sleep, timeout=5.0):
            config = BambooHRSourceConfig(base_url=_through(server.base_url, proxy),
                                         api_key_env=SECRET_ENV, timeout_seconds=timeout)
            return BambooHRSource(config, now=lambda: NOW, sleep=sleep, jitter=lambda: 1.0)

        yield Rig(server, proxy, _through(server.base_url, proxy), answer, source, {
            "429": (429, {"Retry-After": "2"}, b""), "503": (503, {}, b""),
            "500": (500, {}, b"internal error"),
            "truncated": (200, JSON, b'{"fields": [], "employees": [{"id": "1", "firs'),
            "malformed": (200, {"Content-Type": "text/html"}, b"<html>Sign in</html>")})


@contextmanager
def workday_rig() -> Iterator[Rig]:
    os.environ[SECRET_ENV] = SECRET
    with workday.WorkdaySandbox(user="isu@acme", password="unused", token=SECRET,
                                clock=lambda: NOW) as server, \
            FaultProxy(urlsplit(server.base_url).port) as proxy:
        for worker in workday_people(PEOPLE):
            server.put(worker)

        def answer(answers) -> None:
            server.faults.clear()
            if callable(answers):
                server.faults.push(*[answers() for _ in range(40)])
            else:
                server.faults.push(*answers)

        def source(sleep, timeout=5.0):
            config = WorkdaySourceConfig.model_validate({
                "base_url": _through(server.base_url, proxy), "report_path": server.report_path,
                "auth": "bearer", "token_env": SECRET_ENV, "timeout_seconds": timeout,
                "report_timeout_seconds": timeout})
            return WorkdaySource(config, now=lambda: NOW, sleep=sleep, jitter=lambda: 1.0)

        yield Rig(server, proxy, _through(server.base_url, proxy), answer, source, {
            "429": workday.throttled(429, "2"), "503": workday.throttled(503),
            "500": workday.soap_fault(500, "Server", "Report execution failed"),
            "truncated": workday.Truncated(0.5), "malformed": workday.malformed()})


@contextmanager
def successfactors_rig() -> Iterator[Rig]:
    os.environ[SECRET_ENV] = SECRET
    with successfactors.SuccessFactorsSandbox("ACME", username="api", password="unused",
                                              token=SECRET, clock=lambda: NOW) as server, \
            FaultProxy(urlsplit(server.base_url).port) as proxy:
        for record in organisation(PEOPLE):
            server.put(record)

        def answer(answers) -> None:
            next_answer = _queue(answers)
            server.app.fault = lambda method, path, query: next_answer()

        def source(sleep, timeout=5.0):
            config = SuccessFactorsSourceConfig(
                base_url=_through(server.base_url, proxy), company_id="ACME",
                auth="bearer", token_env=SECRET_ENV, timeout_seconds=timeout)
            return SuccessFactorsSource(config, now=lambda: NOW, sleep=sleep,
                                        jitter=lambda: 1.0)

        yield Rig(server, proxy, _through(server.base_url, proxy), answer, source, {
            "429": successfactors.odata_error(429, "TooManyRequests", "slow down",
                                              {"Retry-After": "2"}),
            "503": successfactors.odata_error(503, "ServiceUnavailable", "maintenance"),
            "500": successfactors.odata_error(500, "InternalError", "backend failed"),
            "truncated": successfactors.Truncated(),
            "malformed": (200, JSON, b"<html>Sign in</html>")})


RIGS = {"bamboohr": bamboo_rig, "workday": workday_rig, "successfactors": successfactors_rig}


def _install(rig: Rig, fault: str) -> float:
    """Switch the fault on; returns the read timeout the source should use."""
    shapes = rig.shapes
    if fault == "429-retry-after":
        rig.answer([shapes["429"]])
    elif fault == "503-no-retry-after":
        rig.answer([shapes["503"]])
    elif fault == "5xx-storm":
        rig.answer(lambda: shapes["500"])
    elif fault == "truncated-body":
        rig.answer(lambda: shapes["truncated"])
    elif fault == "malformed-body":
        rig.answer(lambda: shapes["malformed"])
    elif fault == "reset-once":
        rig.proxy.reset_next(1)
    elif fault == "reset-storm":
        rig.proxy.reset_next(50)
    elif fault == "slow-within-timeout":
        rig.proxy.delay = 0.05
    elif fault == "slow-past-timeout":
        rig.proxy.delay = 1.0
        return 0.2
    elif fault == "expired-token":
        os.environ[SECRET_ENV] = "an-expired-token-value"
    return 5.0


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("connector", sorted(RIGS))
def test_every_hris_fault_ends_recovered_or_explained(connector, fault):
    slept: list[float] = []
    with RIGS[connector]() as rig:
        timeout = _install(rig, fault)
        src = rig.source(slept.append, timeout)
        try:
            records = list(src.scan_full())
        except FeedError as exc:
            message = str(exc)
            assert fault in EXPLAINED, f"{connector} did not recover from {fault}: {message}"
            assert f":{rig.proxy.port}" in message or connector in message.lower(), message
            assert SECRET not in message and "an-expired-token-value" not in message
            assert "Traceback" not in message and "\n" not in message.strip()
            figures.add("faults: HRIS (connector, fault) pairs explained")
        else:
            assert fault in RECOVERS, f"{connector} accepted a feed under {fault}"
            assert len(records) == PEOPLE
            figures.add("faults: HRIS (connector, fault) pairs recovered")
        if fault == "429-retry-after":
            assert 2.0 in slept, slept  # Retry-After honoured, through the injected sleep
        if fault == "reset-once":
            assert rig.proxy.resets == 1 and len(slept) == 1, slept  # one backoff, no more
        if fault in ("reset-storm", "slow-past-timeout"):
            # Cut off every time: tried to the limit, each wait the jittered backoff.
            assert len(slept) == 3 and slept == sorted(slept), slept
            assert "still failing after 4 tries" in message, message
        # Bounded: a lasting fault never retries forever.
        assert len(slept) <= 8, slept


def test_a_failing_hris_pull_fails_the_run_and_the_lms_is_untouched(tmp_path, scim_server):
    """Engine level, BambooHR into SCIM: a 5xx storm during the pull is a source failure
    (exit 1, not a rejected feed) whose message says why; nothing is planned or applied;
    after recovery the run is clean."""
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with bamboo_rig() as rig:
        config = config_from_dict({
            "database": {"path": str(tmp_path / "rostersync.db")},
            "hris": {"type": "bamboohr", "base_url": rig.base_url, "api_key_env": SECRET_ENV},
            "lms": {"type": "scim", "base_url": scim_server.base_url, "token_env": TOKEN_ENV},
            "mapping": {"status_values": {"full-time": "active", "terminated": "terminated",
                                          "inactive": "terminated"}},
        })
        source = BambooHRSource(config.hris, now=lambda: NOW, sleep=lambda s: None,
                                jitter=lambda: 1.0)
        engine = Engine(config, Store(config.database.path), source=source,
                        clock=FrozenClock(NOW))
        rig.answer(lambda: rig.shapes["500"])
        report = asyncio.run(engine.sync("full"))
        assert (report.status, report.exit_code, report.error_class) == (
            "failed", 1, "source_unreachable")
        assert "500" in report.message and SECRET not in report.message
        assert lms_users(scim_server.base_url, SCIM_TOKEN) == []
        rig.answer([])
        recovered = asyncio.run(engine.sync("full"))
        assert recovered.status == "succeeded", recovered.message
        assert len(lms_users(scim_server.base_url, SCIM_TOKEN)) == PEOPLE
