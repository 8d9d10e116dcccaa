"""Workday report calls on a large tenant: no paging (§2.1), so the whole report is
computed before its answer comes; the report call reads for report_timeout_seconds while
the schema and token calls keep the short timeout_seconds. A slow network is put in
front of the sandbox by the reliability suite's fault proxy."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from rostersync.sandbox.workday import WorkdaySandbox
from rostersync.sandbox.workday_data import generate
from rostersync.sync.connectors.base import SourceUnavailable
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from tests.reliability.fault_proxy import FaultProxy
from tests.test_workday import NOW, PASSWORD, PASSWORD_ENV, USER

SLOW = 0.3  # seconds the proxy holds back each chunk of an answer


@pytest.fixture
def slow_hris():
    os.environ[PASSWORD_ENV] = PASSWORD
    with WorkdaySandbox(user=USER, password=PASSWORD, clock=lambda: NOW) as server, \
            FaultProxy(urlsplit(server.base_url).port) as proxy:
        for worker in generate(7):
            server.put(worker)
        proxy.delay = SLOW
        yield server, f"http://127.0.0.1:{proxy.port}"


def slow_source(server, url, slept, **settings) -> WorkdaySource:
    config = WorkdaySourceConfig.model_validate({
        "base_url": url, "report_path": server.report_path, "user": USER,
        "password_env": PASSWORD_ENV, **settings})
    return WorkdaySource(config, now=lambda: NOW, sleep=slept.append, jitter=lambda: 1.0)


def test_the_report_call_waits_longer_than_the_other_calls(slow_hris):
    server, url = slow_hris
    slept: list[float] = []
    src = slow_source(server, url, slept, timeout_seconds=SLOW / 3,
                      report_timeout_seconds=SLOW * 10)
    assert len(list(src.scan_full())) == 7  # the slow report was waited for
    assert slept == []
    # The schema call kept the short timeout: it timed out, was noted, did not fail.
    assert src.schema_note is not None and "ReadTimeout" in src.schema_note


def test_a_report_slower_than_its_timeout_fails_after_bounded_tries(slow_hris):
    server, url = slow_hris
    slept: list[float] = []
    src = slow_source(server, url, slept, timeout_seconds=SLOW * 10,
                      report_timeout_seconds=SLOW / 3, max_attempts=2)
    with pytest.raises(SourceUnavailable) as err:
        list(src.scan_full())
    assert "ReadTimeout" in str(err.value) and "still failing after 2 tries" in str(err.value)
    assert slept == [2.0]  # one backoff between the two tries


def test_the_defaults_fit_a_report_computed_for_minutes():
    config = WorkdaySourceConfig.model_validate({
        "base_url": "https://wd.example", "report_path": "ccx/r", "user": USER,
        "password_env": PASSWORD_ENV})
    assert config.report_timeout_seconds == 600.0 and config.timeout_seconds == 120.0
