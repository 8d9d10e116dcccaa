"""The connectors as the hostile-answer tests read them: each one's sandbox, how to read
from a base URL with given limits, and where its wire shape holds the people's key.

A rig's ``read(base_url, **settings)`` builds the source or target against that URL (the
sandbox itself, a relay in front of it, or a hostile server) and reads everyone: a source's
records through ``fields()`` (RecordError quarantines one), a target's ``list_accounts``.
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

from rostersync.sandbox import bamboohr, successfactors, workday
from rostersync.sandbox.canvas import CanvasSandbox
from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sandbox.successfactors_data import organisation
from rostersync.sandbox.workday_data import generate as workday_people
from rostersync.sync.config import BambooHRSourceConfig, ScimTargetConfig
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import ConnectorError, FeedError, RecordError
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.moodle import MoodleTarget
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from tests import test_canvas, test_moodle
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
SECRET = "planted-hostile-secret-41d7"
SECRET_ENV = "ROSTERSYNC_REL_HOSTILE_SECRET"
PEOPLE = 3
MIB = 1024 * 1024
ERRORS = (FeedError, ConnectorError)


async def no_wait(_seconds: float) -> None:
    return None


@dataclass
class Outcome:
    keys: list[str]  # the HRIS keys or LMS external keys read
    quarantined: list[str]  # records refused one by one (RecordError sentences)


@dataclass
class Rig:
    """One connector: its sandbox, how to read from a base URL, and its wire shape."""

    name: str
    upstream: str  # the sandbox's base URL
    path: str  # the base URL's path (BambooHR's company gateway)
    read: Callable[..., Outcome]  # (base_url, **settings) -> what was read
    key_answer: Callable[[str], bool]  # does this request's answer list the people?
    set_key: Callable[[Any, Any], Any]  # put a value in the first person's key field
    key_field: str  # that field's name on the wire
    sandbox: Any = None


def _settings(name: str, settings: dict[str, Any]) -> dict[str, Any]:
    """Uniform test settings -> this connector's keys (tries are named differently)."""
    out = dict(settings)
    tries = out.pop("attempts", 2)
    if name in ("workday", "canvas", "moodle"):
        out["max_attempts"] = tries
    elif name == "successfactors":
        out["retry_max_attempts"] = tries
    if name == "workday":
        # The report's read timeout may not exceed the request's deadline.
        out.setdefault("report_timeout_seconds", min(out.get("timeout_seconds", 5.0),
                                                     out.get("request_deadline_seconds", 5.0)))
    out.setdefault("timeout_seconds", 5.0)
    return out


def read_source(source: Any) -> Outcome:
    keys, quarantined = [], []
    for record in source.scan_full():
        try:
            source.fields(record)
        except RecordError as exc:
            quarantined.append(str(exc))
            continue
        keys.append(record.key)
    return Outcome(keys, quarantined)


def read_target(target: Any) -> Outcome:
    async def go() -> list[str]:
        async with target:
            return [a.external_key or "" async for a in target.list_accounts()]
    return Outcome(asyncio.run(go()), [])


@contextmanager
def bamboo_rig() -> Iterator[Rig]:
    os.environ[SECRET_ENV] = SECRET
    with bamboohr.BambooSandbox(api_key=SECRET, clock=lambda: NOW) as server:
        for employee in bamboohr.generate(PEOPLE):
            server.put(employee)

        def read(base_url: str, **settings: Any) -> Outcome:
            tries = settings.pop("attempts", 2)
            config = BambooHRSourceConfig.model_validate({
                "base_url": base_url, "api_key_env": SECRET_ENV,
                **_settings("bamboohr", settings)})
            return read_source(BambooHRSource(config, now=lambda: NOW, sleep=lambda s: None,
                                               jitter=lambda: 1.0, max_attempts=tries))

        def set_key(data: Any, value: Any) -> Any:
            data["employees"][0]["id"] = value
            return data

        yield Rig("bamboohr", server.base_url, urlsplit(server.base_url).path, read,
                  lambda path: "/reports/custom" in path, set_key, "id")


@contextmanager
def workday_rig() -> Iterator[Rig]:
    os.environ[SECRET_ENV] = SECRET
    with workday.WorkdaySandbox(user="isu@acme", password="unused", token=SECRET,
                                clock=lambda: NOW) as server:
        for worker in workday_people(PEOPLE):
            server.put(worker)

        def read(base_url: str, **settings: Any) -> Outcome:
            config = WorkdaySourceConfig.model_validate({
                "base_url": base_url, "report_path": server.report_path, "auth": "bearer",
                "token_env": SECRET_ENV, **_settings("workday", settings)})
            return read_source(WorkdaySource(config, now=lambda: NOW, sleep=lambda s: None,
                                              jitter=lambda: 1.0))

        def set_key(data: Any, value: Any) -> Any:
            data["Report_Entry"][0]["Worker_WID"] = value
            return data

        yield Rig("workday", server.base_url, "", read,
                  lambda path: "format=json" in path, set_key, "Worker_WID")


@contextmanager
def successfactors_rig() -> Iterator[Rig]:
    os.environ[SECRET_ENV] = SECRET
    with successfactors.SuccessFactorsSandbox("ACME", username="api", password="unused",
                                              token=SECRET, clock=lambda: NOW) as server:
        for record in organisation(PEOPLE):
            server.put(record)

        def read(base_url: str, **settings: Any) -> Outcome:
            config = SuccessFactorsSourceConfig.model_validate({
                "base_url": base_url, "company_id": "ACME", "auth": "bearer",
                "token_env": SECRET_ENV, **_settings("successfactors", settings)})
            return read_source(SuccessFactorsSource(config, now=lambda: NOW,
                                                     sleep=lambda s: None,
                                                     jitter=lambda: 1.0))

        def set_key(data: Any, value: Any) -> Any:
            data["d"]["results"][0]["personIdExternal"] = value
            return data

        yield Rig("successfactors", server.base_url, "", read,
                  lambda path: path.startswith("/odata/v2/PerPerson?"), set_key,
                  "personIdExternal")


@contextmanager
def canvas_rig() -> Iterator[Rig]:
    os.environ[test_canvas.TOKEN_ENV] = test_canvas.TOKEN
    with CanvasSandbox(token=test_canvas.TOKEN) as server:
        test_canvas.seed(server, PEOPLE)

        def read(base_url: str, **settings: Any) -> Outcome:
            config = CanvasTargetConfig.model_validate({
                "base_url": base_url, "token_env": test_canvas.TOKEN_ENV,
                "account_id": server.account_id, **_settings("canvas", settings)})
            return read_target(CanvasTarget(config, sleep=no_wait, jitter=lambda: 1.0))

        def set_key(data: Any, value: Any) -> Any:
            data[0]["sis_user_id"] = value
            return data

        yield Rig("canvas", server.base_url, "", read,
                  lambda path: "/logins" in path, set_key, "sis_user_id")


@contextmanager
def moodle_rig() -> Iterator[Rig]:
    os.environ[test_moodle.TOKEN_ENV] = test_moodle.TOKEN
    with MoodleSandbox(token=test_moodle.TOKEN, profile_fields=test_moodle.PROFILE) as server:
        target = moodle_target(server.base_url)

        async def seed() -> None:
            async with target:
                for i in range(PEOPLE):
                    await target.create(test_moodle.ada(f"E{i}", user_name=f"p{i}@acme.example",
                                                        email=f"p{i}@acme.example"), None)
        asyncio.run(seed())

        def read(base_url: str, **settings: Any) -> Outcome:
            return read_target(moodle_target(base_url, **_settings("moodle", settings)))

        def set_key(data: Any, value: Any) -> Any:
            data["users"][0]["idnumber"] = value
            return data

        yield Rig("moodle", server.base_url, "", read,
                  lambda path: "wsfunction=core_user_get_users&" in path, set_key,
                  "idnumber", server)


def moodle_target(base_url: str, **settings: Any) -> MoodleTarget:
    config = MoodleTargetConfig.model_validate({
        "base_url": base_url, "token_env": test_moodle.TOKEN_ENV,
        "fields": test_moodle.FIELDS, **settings})
    return MoodleTarget(config, sleep=no_wait, jitter=lambda: 1.0)


@contextmanager
def scim_rig() -> Iterator[Rig]:
    """SCIM for the transport attacks only: its reads go through the same limits."""
    os.environ[TOKEN_ENV] = SCIM_TOKEN
    with ScimSandbox(token=SCIM_TOKEN) as server:
        def read(base_url: str, **settings: Any) -> Outcome:
            settings.pop("attempts", None)  # SCIM reads are tried a fixed number of times
            config = ScimTargetConfig.model_validate({
                "base_url": base_url, "token_env": TOKEN_ENV, "bulk": "off",
                "timeout_seconds": 5.0, **settings})
            return read_target(ScimTarget(config, sleep=no_wait))

        yield Rig("scim", server.base_url, "", read, lambda path: False,
                  lambda data, value: data, "externalId", server)


RIGS = {"bamboohr": bamboo_rig, "workday": workday_rig, "successfactors": successfactors_rig,
        "canvas": canvas_rig, "moodle": moodle_rig}
CONNECTORS = sorted(RIGS)
TRANSPORTS = {**RIGS, "scim": scim_rig}  # the attacks on the exchange itself


def refused(read: Callable[[], Outcome]) -> str:
    """The one sentence a read ended with (a failure if it ended any other way)."""
    try:
        outcome = read()
    except ERRORS as exc:
        message = str(exc)
        assert "\n" not in message.strip() and "Traceback" not in message, message
        assert SECRET not in message and test_canvas.TOKEN not in message, message
        return message
    raise AssertionError(f"the hostile answer was accepted: {outcome}")
