"""Pytest fixtures: a BambooHR sandbox of seven people on 127.0.0.1, on a frozen clock.

Import them where needed (``from tests.bamboo_fixtures import KEY_ENV, clock, hris``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from rostersync.sandbox.bamboohr import BambooSandbox, generate
from rostersync.sync.clock import FrozenClock

KEY = "sandbox-key"
KEY_ENV = "ROSTERSYNC_TEST_BAMBOOHR_KEY"
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def hris(clock) -> Iterator[BambooSandbox]:
    os.environ[KEY_ENV] = KEY
    with BambooSandbox(api_key=KEY, clock=clock.now) as server:
        for employee in generate(7):
            server.put(employee)
        yield server
