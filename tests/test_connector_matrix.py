"""Every HRIS source against every LMS target: one organisation, one engine, three runs.

Each combination of a source kit (CSV, BambooHR, Workday RaaS, SAP SuccessFactors) and a
target kit (SCIM 2.0, Moodle, Canvas) runs the same story on real loopback sandboxes:
a first full run creates one account per person and leaves no open drift; HR then
terminates one person (effective in the past) and retitles another, and the next full run
deactivates exactly that person and carries the title wherever the target can hold one;
a third full run plans nothing. The LMS is always read through its sandbox, never through
the engine or a connector.

A kit is a small class: ``start`` (sandbox up, people seeded, secrets in the
environment), ``section`` (its part of the config) and the connector it builds with
injected sleeps; a source kit can also ``terminate`` and ``retitle``, a target kit lists
its ``accounts`` and says whether it can hold a title and a manager.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from rostersync.sandbox import bamboohr, successfactors_data, workday_data
from rostersync.sandbox.bamboohr import BambooSandbox
from rostersync.sandbox.canvas import CanvasSandbox
from rostersync.sandbox.moodle import MoodleSandbox
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.sandbox.successfactors import SuccessFactorsSandbox
from rostersync.sandbox.workday import WorkdaySandbox
from rostersync.sandbox.world import COLUMNS, World
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, config_from_dict
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.canvas import CanvasTarget
from rostersync.sync.connectors.moodle import MoodleTarget
from rostersync.sync.connectors.scim import ScimTarget
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.engine import Engine
from rostersync.sync.status import build_status
from tests.support import ENTERPRISE, TOKEN_ENV, lms_users

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
LAST_DAY = date(2026, 11, 20)  # the leaver's last day: already behind us
PEOPLE = 12
NEW_TITLE = "Controller"
# Positions in each kit's key list. Every generator builds the same tree at the top:
# person 7 reports to person 2; persons 9 and 11 manage nobody.
REPORT, BOSS, MOVER, LEAVER = 6, 1, 8, 10


@dataclass
class Seen:
    """One LMS account as the target sandbox holds it."""

    key: str
    active: bool
    title: str | None = None
    manager: str | None = None  # the manager's HRIS key


class Recorder(list):
    """The sleeps injected into every connector: nothing in this story should wait."""

    def sync(self, seconds: float) -> None:
        self.append(seconds)

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def setenv(request: pytest.FixtureRequest, name: str, value: str) -> None:
    """A secret for the config to name; removed again after the test."""
    request.getfixturevalue("monkeypatch").setenv(name, value)


# -- sources ----------------------------------------------------------------------------


class CsvKit:
    mapping: dict[str, Any] = {}

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        self.world = World.generate(PEOPLE)
        self.path = self.world.write(request.getfixturevalue("tmp_path") / "employees.csv")
        self.keys = list(self.world.rows)

    def section(self) -> dict[str, Any]:
        return {"type": "csv", "path": str(self.path), "columns": COLUMNS}

    def source(self, config: Config, clock: FrozenClock, sleep: Recorder) -> None:
        return None  # nothing to inject: the engine builds it from the config

    def terminate(self, key: str) -> None:
        self.world.rows[key].update({"Status": "Terminated",
                                     "Termination Date": LAST_DAY.isoformat()})
        self.world.write(self.path)

    def retitle(self, key: str, title: str) -> None:
        self.world.rows[key]["Job Title"] = title
        self.world.write(self.path)

    def drop_department(self) -> tuple[str, str]:
        """HR renames the column; returns (the column, the config key naming it)."""
        text = self.path.read_text(encoding="utf-8")
        self.path.write_text(text.replace("Department", "Dept.", 1), encoding="utf-8")
        return "Department", "hris.columns.department"

    def share_email(self, key: str, holder: str) -> None:
        """HR gives ``key`` the work e-mail ``holder`` already has."""
        self.world.rows[key]["Work Email"] = self.world.rows[holder]["Work Email"]
        self.world.write(self.path)

    def set_first_name(self, key: str, value: str) -> None:
        self.world.rows[key]["First Name"] = value
        self.world.write(self.path)

    def set_manager(self, key: str, manager: str) -> None:
        self.world.rows[key]["Manager ID"] = manager
        self.world.write(self.path)

    def set_email(self, key: str, email: str) -> None:
        self.world.rows[key]["Work Email"] = email
        self.world.write(self.path)


class BambooKit:
    KEY, KEY_ENV = "matrix-bamboo-key", "ROSTERSYNC_TEST_MATRIX_BAMBOOHR_KEY"
    mapping = {"status_values": {"full-time": "active", "terminated": "terminated",
                                 "inactive": "terminated"}}

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        setenv(request, self.KEY_ENV, self.KEY)
        self.hris = stack.enter_context(BambooSandbox(api_key=self.KEY, clock=clock.now))
        people = bamboohr.generate(PEOPLE)
        for employee in people:
            self.hris.put(employee)
        self.keys = [e["id"] for e in people]

    def section(self) -> dict[str, Any]:
        return {"type": "bamboohr", "base_url": self.hris.base_url, "api_key_env": self.KEY_ENV}

    def source(self, config: Config, clock: FrozenClock, sleep: Recorder) -> BambooHRSource:
        return BambooHRSource(config.hris, now=clock.now, sleep=sleep.sync, jitter=lambda: 1.0)

    def terminate(self, key: str) -> None:
        self.hris.update(key, employmentHistoryStatus="Terminated", status="Inactive",
                         terminationDate=LAST_DAY.isoformat())

    def retitle(self, key: str, title: str) -> None:
        self.hris.update(key, jobTitle=title)

    def drop_department(self) -> tuple[str, str]:
        self.hris.forget_field("department")  # the report then leaves it out silently
        return "department", "hris.fields"

    def share_email(self, key: str, holder: str) -> None:
        self.hris.update(key, workEmail=self.hris.store.get(holder)["workEmail"])

    def set_first_name(self, key: str, value: str) -> None:
        self.hris.update(key, firstName=value)

    def set_manager(self, key: str, manager: str) -> None:
        self.hris.update(key, supervisorEId=manager, supervisorId=None)

    def set_email(self, key: str, email: str) -> None:
        self.hris.update(key, workEmail=email)


class WorkdayKit:
    USER, PASSWORD, PASSWORD_ENV = "isu_lms@acme", "matrix-pw", "ROSTERSYNC_TEST_MATRIX_WD_PW"
    mapping: dict[str, Any] = {}

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        setenv(request, self.PASSWORD_ENV, self.PASSWORD)
        self.hris = stack.enter_context(WorkdaySandbox(user=self.USER, password=self.PASSWORD,
                                                       clock=clock.now))
        workers = workday_data.generate(PEOPLE)
        for worker in workers:
            self.hris.put(worker)
        self.keys = [w["Worker_WID"] for w in workers]

    def section(self) -> dict[str, Any]:
        return {"type": "workday", "base_url": self.hris.base_url,
                "report_path": self.hris.report_path, "user": self.USER,
                "password_env": self.PASSWORD_ENV}

    def source(self, config: Config, clock: FrozenClock, sleep: Recorder) -> WorkdaySource:
        return WorkdaySource(config.hris, now=clock.now, sleep=sleep.sync, jitter=lambda: 1.0)

    def terminate(self, key: str) -> None:
        self.hris.update(key, Termination_Date=LAST_DAY.isoformat())

    def retitle(self, key: str, title: str) -> None:
        self.hris.update(key, Business_Title=title)

    def drop_department(self) -> tuple[str, str]:
        # The report's alias is renamed: rows and the report's schema (?xsds) change.
        self.hris.rename_column("Supervisory_Organization", "Sup_Org")
        return "Supervisory_Organization", "hris.columns.department"

    def share_email(self, key: str, holder: str) -> None:
        self.hris.update(key, Work_Email=self.hris.store.get(holder)["Work_Email"])

    def set_first_name(self, key: str, value: str) -> None:
        self.hris.update(key, Legal_First_Name=value)

    def set_manager(self, key: str, manager: str) -> None:
        self.hris.update(key, Manager_Employee_ID=manager)

    def set_email(self, key: str, email: str) -> None:
        self.hris.update(key, Work_Email=email)


class SuccessFactorsKit:
    PASSWORD, PASSWORD_ENV = "matrix-sf-pw", "ROSTERSYNC_TEST_MATRIX_SF_PW"
    mapping: dict[str, Any] = {}

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        setenv(request, self.PASSWORD_ENV, self.PASSWORD)
        self.clock = clock
        self.hris = stack.enter_context(SuccessFactorsSandbox(
            "ACME", username="api", password=self.PASSWORD, clock=clock.now))
        people = successfactors_data.organisation(PEOPLE)
        for record in people:
            self.hris.put(record)
        self.keys = [p["personIdExternal"] for p in people]

    def section(self) -> dict[str, Any]:
        return {"type": "successfactors", "base_url": self.hris.base_url,
                "company_id": "ACME", "username": "api", "password_env": self.PASSWORD_ENV}

    def source(self, config: Config, clock: FrozenClock,
               sleep: Recorder) -> SuccessFactorsSource:
        return SuccessFactorsSource(config.hris, now=clock.now, sleep=sleep.sync,
                                    jitter=lambda: 1.0)

    def terminate(self, key: str) -> None:
        self.hris.store.terminate(key, LAST_DAY)

    def retitle(self, key: str, title: str) -> None:
        self.hris.store.change_job(key, self.clock.now().date(), jobTitle=title)

    def drop_department(self) -> tuple[str, str]:
        self.hris.drop_property("employmentNav/jobInfoNav/departmentNav/name_localized")
        return "job.departmentNav.name_localized", "hris.fields.department"

    def share_email(self, key: str, holder: str) -> None:
        taken = self.hris.store.get(holder)["emailNav"][0]["emailAddress"]

        def change(record: dict[str, Any], now: datetime) -> None:
            record["emailNav"][0].update(emailAddress=taken, lastModifiedDateTime=now)
        self.hris.store.edit(key, change)

    def set_first_name(self, key: str, value: str) -> None:
        self.hris.store.rename(key, firstName=value)

    def set_manager(self, key: str, manager: str) -> None:
        self.hris.store.change_job(key, self.clock.now().date(), managerId=manager)

    def set_email(self, key: str, email: str) -> None:
        def change(record: dict[str, Any], now: datetime) -> None:
            record["emailNav"][0].update(emailAddress=email, lastModifiedDateTime=now)
        self.hris.store.edit(key, change)


# -- targets ----------------------------------------------------------------------------


class ScimKit:
    holds_title = holds_manager = True

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        # The suite's own fixtures: a fresh scim2-server, and its token in TOKEN_ENV.
        self.lms: ScimSandbox = request.getfixturevalue("scim_server")
        self.token: str = request.getfixturevalue("lms_token")

    def section(self) -> dict[str, Any]:
        return {"type": "scim", "base_url": self.lms.base_url, "token_env": TOKEN_ENV}

    def target(self, config: Config, sleep: Recorder) -> ScimTarget:
        return ScimTarget(config.lms, sleep=sleep)

    def accounts(self) -> list[Seen]:
        users = lms_users(self.lms.base_url, self.token)
        key_of = {u["id"]: u.get("externalId") for u in users}
        return [Seen(u.get("externalId"), u["active"], u.get("title"),
                     key_of.get(u.get(ENTERPRISE, {}).get("manager", {}).get("value")))
                for u in users]


class MoodleKit:
    TOKEN, TOKEN_ENV = "0123456789abcdef0123456789abcdef", "ROSTERSYNC_TEST_MATRIX_MOODLE"
    FIELDS = {"title": "profile_field_jobtitle", "manager_key": "profile_field_managerid",
              "employee_number": "profile_field_employeenumber"}
    holds_title = holds_manager = True  # both have a home in FIELDS

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        setenv(request, self.TOKEN_ENV, self.TOKEN)
        shortnames = tuple(home.removeprefix("profile_field_") for home in self.FIELDS.values())
        self.lms = stack.enter_context(MoodleSandbox(token=self.TOKEN, profile_fields=shortnames))

    def section(self) -> dict[str, Any]:
        return {"type": "moodle", "base_url": self.lms.base_url, "token_env": self.TOKEN_ENV,
                "auth": "oauth2", "fields": self.FIELDS}

    def target(self, config: Config, sleep: Recorder) -> MoodleTarget:
        return MoodleTarget(config.lms, sleep=sleep, jitter=lambda: 1.0)

    def accounts(self) -> list[Seen]:
        out = []
        for user in list(self.lms.site.users.values()):
            if user["deleted"] or not user["idnumber"]:
                continue  # guest and admin carry no idnumber
            custom = user["customfields"]
            out.append(Seen(user["idnumber"], not user["suspended"], custom.get("jobtitle"),
                            custom.get("managerid")))
        return out


class CanvasKit:
    TOKEN, TOKEN_ENV = "matrix-canvas-token", "ROSTERSYNC_TEST_MATRIX_CANVAS"
    holds_title = holds_manager = False  # Canvas has no field for either

    def start(self, stack: ExitStack, clock: FrozenClock, request: pytest.FixtureRequest) -> None:
        setenv(request, self.TOKEN_ENV, self.TOKEN)
        self.lms = stack.enter_context(CanvasSandbox(
            token=self.TOKEN, clock=lambda: clock.now().timestamp()))

    def section(self) -> dict[str, Any]:
        return {"type": "canvas", "base_url": self.lms.base_url, "token_env": self.TOKEN_ENV,
                "account_id": self.lms.account_id}

    def target(self, config: Config, sleep: Recorder) -> CanvasTarget:
        return CanvasTarget(config.lms, sleep=sleep, jitter=lambda: 1.0)

    def accounts(self) -> list[Seen]:
        data = self.lms.data
        return [Seen(u["sis_user_id"], data.login_state(u["id"]) == "active")
                for u in data.list_users()]


SOURCES = {"csv": CsvKit, "bamboohr": BambooKit, "workday": WorkdayKit,
           "successfactors": SuccessFactorsKit}
TARGETS = {"scim": ScimKit, "moodle": MoodleKit, "canvas": CanvasKit}
# Known defects by (source, target), each marked xfail(strict): what is wrong, and where.
KNOWN_BUGS: dict[tuple[str, str], str] = {}


def _started(hr: Any, lms: Any, stack: ExitStack, clock: FrozenClock, slept: Recorder,
             tmp_path: Path, request: pytest.FixtureRequest,
             guards: dict[str, Any] | None = None) -> tuple[Config, Engine]:
    """Both kits' servers started (stopped by ``stack``), a config joining them, and an
    engine over a fresh database, its sleeps recorded in ``slept``."""
    hr.start(stack, clock, request)
    lms.start(stack, clock, request)
    config = config_from_dict({
        "database": {"path": str(tmp_path / "rostersync.db")},
        "hris": hr.section(), "lms": lms.section(), "mapping": hr.mapping,
        "guards": guards or {}})
    engine = Engine(config, Store(config.database.path), clock=clock,
                    source=hr.source(config, clock, slept),
                    target_factory=lambda: lms.target(config, slept))
    return config, engine


def combinations() -> list[Any]:
    out = []
    for source in SOURCES:
        for target in TARGETS:
            reason = KNOWN_BUGS.get((source, target))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(source, target, id=f"{source}-{target}", marks=marks))
    return out


# -- the story ---------------------------------------------------------------------------


@pytest.mark.parametrize(("source_name", "target_name"), combinations())
def test_hire_terminate_retitle_and_converge(source_name, target_name, tmp_path, request):
    clock, slept = FrozenClock(NOW), Recorder()
    hr, lms = SOURCES[source_name](), TARGETS[target_name]()
    with ExitStack() as stack:
        config, engine = _started(hr, lms, stack, clock, slept, tmp_path, request)

        def full_run() -> dict[str, Any]:
            clock.advance(hours=1)  # HR's edits lie behind every pull
            report = asyncio.run(engine.sync("full"))
            assert report.status == "succeeded", report.message
            status = build_status(engine.store, config, clock.now())
            assert status["drift_total"] == 0, status["drift"]
            return report.counts

        def accounts() -> dict[str, Seen]:
            seen = lms.accounts()
            assert sorted(a.key for a in seen) == sorted(hr.keys)  # one account per person
            return {a.key: a for a in seen}

        keys = hr.keys
        assert len(keys) == PEOPLE
        first = full_run()
        assert (first["rows"], first["planned"]) == (PEOPLE, {"create": PEOPLE})
        before = accounts()
        assert all(a.active for a in before.values())
        if lms.holds_manager:
            assert before[keys[REPORT]].manager == keys[BOSS]

        hr.terminate(keys[LEAVER])
        hr.retitle(keys[MOVER], NEW_TITLE)
        second = full_run()
        assert second["changed"] == 2  # the leaver's and the mover's rows, nobody else's
        # Canvas has nowhere to put a title: the change must plan nothing there.
        assert second["planned"] == {"deactivate": 1, **({"update": 1} if lms.holds_title
                                                         else {})}
        after = accounts()
        assert [k for k, a in after.items() if not a.active] == [keys[LEAVER]]
        if lms.holds_title:
            assert after[keys[MOVER]].title == NEW_TITLE
            assert {a.title for k, a in after.items() if k != keys[MOVER]} == {"Specialist"}

        third = full_run()
        assert third["changed"] == 0 and not third.get("planned")
        assert accounts() == after
    assert slept == []


# -- schema drift: a configured column gone from the export --------------------------------

# Sources whose kit can take a configured column away.
DRIFTING = ("csv", "bamboohr", "workday", "successfactors")


@pytest.mark.parametrize("source_name", DRIFTING)
def test_a_configured_column_gone_rejects_the_feed_and_spares_the_lms(source_name, tmp_path,
                                                                      request):
    clock, slept = FrozenClock(NOW), Recorder()
    hr, lms = SOURCES[source_name](), ScimKit()
    with ExitStack() as stack:
        _config, engine = _started(hr, lms, stack, clock, slept, tmp_path, request)
        clock.advance(hours=1)
        assert asyncio.run(engine.sync("full")).status == "succeeded"
        before = sorted(lms.accounts(), key=lambda a: a.key)

        hr.terminate(hr.keys[LEAVER])
        column, key = hr.drop_department()
        clock.advance(hours=1)
        report = asyncio.run(engine.sync("full"))
        assert report.status == "rejected", report.message
        assert f"{column!r} (named by {key})" in report.message
        assert sorted(lms.accounts(), key=lambda a: a.key) == before  # nobody deactivated
    assert slept == []


# -- uniqueness: two people in the feed share an e-mail ---------------------------------

# Sources whose kit can give one person another's e-mail.
SHARING = ("csv", "bamboohr", "workday", "successfactors")
HOLDER = 3  # keeps the address; MOVER is given it (and a new title)
LOGIN_FIELDS = ("email", "user_name")


@pytest.mark.parametrize("source_name", SHARING)
def test_a_shared_email_is_hr_drift_naming_both_and_no_login_is_written(source_name, tmp_path,
                                                                        request):
    clock, slept = FrozenClock(NOW), Recorder()
    hr, lms = SOURCES[source_name](), ScimKit()
    with ExitStack() as stack:
        config, engine = _started(hr, lms, stack, clock, slept, tmp_path, request)

        def full_run() -> dict[str, Any]:
            clock.advance(hours=1)
            report = asyncio.run(engine.sync("full"))
            assert report.status == "succeeded", report.message
            return report.counts

        def users() -> dict[str, dict[str, Any]]:
            return {u["externalId"]: u for u in lms_users(lms.lms.base_url, lms.token)}

        def conflicts() -> dict[str, dict[str, Any]]:
            return {r["subject"]: {**r, "detail": json.loads(r["detail"])}
                    for r in engine.store.rows("SELECT * FROM drift WHERE resolved_at IS NULL"
                                               " AND kind = 'conflict'")}

        full_run()
        before = users()
        holder, taker = hr.keys[HOLDER], hr.keys[MOVER]
        hr.share_email(taker, holder)
        hr.retitle(taker, NEW_TITLE)  # a field beside the conflict: it still syncs
        second = full_run()
        assert second["planned"] == {"update": 1}  # the title, nothing else

        drift = conflicts()
        assert set(drift) == {holder, taker}
        assert all(d["owner"] == "HR" for d in drift.values())
        assert drift[taker]["detail"]["with"] == [holder]
        assert drift[holder]["detail"]["with"] == [taker]
        assert "email" in drift[taker]["detail"]["fields"]
        ops = engine.store.rows("SELECT employee_id, status, payload FROM ops")
        assert not [op for op in ops if op["employee_id"] in (holder, taker)
                    and set(json.loads(op["payload"] or "{}").get("changes", {}))
                    & set(LOGIN_FIELDS)]
        assert not [op for op in ops if op["status"] != "succeeded"]  # no 409, no retry
        after = users()
        for key in (holder, taker):
            assert (after[key]["userName"], after[key]["emails"]) == \
                (before[key]["userName"], before[key]["emails"])
        assert after[taker]["title"] == NEW_TITLE
        status = build_status(engine.store, config, clock.now())
        assert status["drift"]["conflict"] == status["drift_total"] == 2

        # Until HR fixes the address, later runs plan nothing and retry nothing.
        third = full_run()
        assert not third.get("planned") and set(conflicts()) == {holder, taker}
        assert len(engine.store.rows("SELECT id FROM ops")) == len(ops)
    assert slept == []


# -- the HR data cases on every source, against scim2-server ----------------------------


@dataclass
class Rig:
    """One source kit and scim2-server joined by an engine on a frozen clock."""

    hr: Any
    lms: ScimKit
    clock: FrozenClock
    engine: Engine

    def run(self, **advance: float) -> Any:
        """A full run after the clock moved (an hour unless said otherwise)."""
        self.clock.advance(**(advance or {"hours": 1}))
        return asyncio.run(self.engine.sync("full"))

    def full_run(self) -> None:
        report = self.run()
        assert report.status == "succeeded", report.message

    def users(self) -> dict[str, dict[str, Any]]:
        return {u["externalId"]: u for u in lms_users(self.lms.lms.base_url, self.lms.token)}


@contextlib.contextmanager
def rig(source_name: str, tmp_path: Path, request: pytest.FixtureRequest,
        guards: dict[str, Any] | None = None) -> Iterator[Rig]:
    clock, slept = FrozenClock(NOW), Recorder()
    hr, lms = SOURCES[source_name](), ScimKit()
    with ExitStack() as stack:
        _config, engine = _started(hr, lms, stack, clock, slept, tmp_path, request, guards)
        yield Rig(hr, lms, clock, engine)
    assert slept == []


# -- values no LMS should receive: a control character in a name --------------------------

HOSTILE_NAME = "Ann\x1b[31m"  # an escape sequence, as pasted from a terminal


@pytest.mark.parametrize("source_name", SHARING)
def test_a_control_character_in_a_name_is_invalid_and_nothing_is_sent(source_name, tmp_path,
                                                                      request):
    with rig(source_name, tmp_path, request) as r:
        r.full_run()
        before = r.users()
        mover = r.hr.keys[MOVER]
        r.hr.set_first_name(mover, HOSTILE_NAME)
        r.hr.retitle(mover, NEW_TITLE)  # the whole record waits: its last good state stands
        r.full_run()
        [invalid] = r.engine.store.rows("SELECT subject, detail FROM drift WHERE kind = "
                                        "'invalid' AND resolved_at IS NULL")
        assert invalid["subject"] == mover and "first_name" in invalid["detail"]
        assert r.engine.store.rows("SELECT id FROM ops WHERE employee_id = ? AND kind = "
                                   "'update'", (mover,)) == []
        assert r.users()[mover] == before[mover]  # nothing was sent for that person


# -- manager links: a manager id nobody in the feed has ---------------------------------


@pytest.mark.parametrize("source_name", SHARING)
def test_an_unknown_manager_is_hr_drift_and_the_lms_manager_stays(source_name, tmp_path,
                                                                   request):
    with rig(source_name, tmp_path, request) as r:
        r.full_run()
        report_key = r.hr.keys[REPORT]
        before = {a.key: a.manager for a in r.lms.accounts()}
        assert before[report_key] == r.hr.keys[BOSS]
        r.hr.set_manager(report_key, "99999")  # HR typed a number no worker has
        r.full_run()
        drift = r.engine.store.rows("SELECT subject, owner, detail FROM drift WHERE "
                                    "kind = 'manager_unknown' AND resolved_at IS NULL")
        assert [(d["subject"], d["owner"]) for d in drift] == [(report_key, "HR")]
        assert json.loads(drift[0]["detail"])["chain"][0] == report_key
        assert {a.key: a.manager for a in r.lms.accounts()} == before  # nothing written


# -- a slow bleed: terminations under the per-run limit, run after run --------------------


@pytest.mark.parametrize("source_name", SHARING)
def test_back_to_back_runs_under_the_limit_are_held_once_the_window_is_crossed(
        source_name, tmp_path, request):
    guards = {"mass_deactivation_min": 5, "mass_deactivation_percent": 0,
              "mass_window_minutes": 60}
    with rig(source_name, tmp_path, request, guards) as r:
        assert r.run(minutes=10).status == "succeeded"  # back to back, well inside the hour
        leavers = [k for i, k in enumerate(r.hr.keys) if i not in (BOSS, REPORT)][-6:]
        statuses = []
        for pair in (leavers[0:2], leavers[2:4], leavers[4:6]):
            for key in pair:
                r.hr.terminate(key)
            statuses.append(r.run(minutes=10).status)
        # 2, then 4 in the window: under the limit of 5; the third pair makes 6.
        assert statuses == ["succeeded", "succeeded", "held"]
        inactive = {a.key for a in r.lms.accounts() if not a.active}
        assert inactive == set(leavers[:4])
        held = r.engine.store.rows("SELECT employee_id FROM ops WHERE status = 'held'")
        assert {h["employee_id"] for h in held} == set(leavers[4:])


# -- a spliced export rewriting many logins --------------------------------------------------


@pytest.mark.parametrize("source_name", SHARING)
def test_a_run_rewriting_many_logins_is_held(source_name, tmp_path, request):
    guards = {"mass_identity_change_min": 2, "mass_identity_change_percent": 0}
    with rig(source_name, tmp_path, request, guards) as r:
        assert r.run().status == "succeeded"
        before = {k: u["userName"] for k, u in r.users().items()}
        renamed = r.hr.keys[2:5]  # three logins where the limit is two
        for key in renamed:
            r.hr.set_email(key, f"spliced.{key.lower()}@acme.example")
        report = r.run()
        assert report.status == "held", report.message
        assert any(x.startswith("mass identity change") for x in report.reasons), report.reasons
        assert {k: u["userName"] for k, u in r.users().items()} == before  # until approved
