"""Source rigs: for each HRIS kind, its real server on 127.0.0.1 (or its file), the HR
actions the contract needs (seed people, change one, terminate one, add a field nobody
configured, a tenant of nobody) and the connector built from its config section.

Each test gets a fresh tenant: the HR data is what a source test is about, and a sandbox
starts in a few milliseconds. A rule that cannot apply to a source by design is a
documented skip in ``skips`` (rule name -> why).
"""

from __future__ import annotations

from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any, ClassVar

from rostersync.sandbox import bamboohr, successfactors_data, workday_data
from rostersync.sandbox.bamboohr import BambooSandbox
from rostersync.sandbox.successfactors import SuccessFactorsSandbox
from rostersync.sandbox.workday import WorkdaySandbox
from rostersync.sandbox.world import COLUMNS, World
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import BambooHRSourceConfig, CsvSourceConfig
from rostersync.sync.connectors.bamboohr import BambooHRSource
from rostersync.sync.connectors.base import HrisSource
from rostersync.sync.connectors.csv_source import CsvSource
from rostersync.sync.connectors.factory import make_source
from rostersync.sync.connectors.successfactors import SuccessFactorsSource
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday import WorkdaySource
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig

# The canonical fields every rig can say it sent, compared with what the source reads.
COMPARED = ("employee_id", "first_name", "last_name", "email", "department", "job_title")
CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing listens there


class Sleeps(list):
    """The sleeps injected into a source: recorded, never waited."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class SourceRig:
    kind: ClassVar[str]
    source_class: ClassVar[type[HrisSource]]
    config_class: ClassVar[type]
    # The config option that sets how many records one page holds (None: no pages).
    page_option: ClassVar[dict[str, Any] | None] = None
    skips: ClassVar[dict[str, str]] = {}
    # Whether a delta needs the watermark of an earlier full pull.
    needs_watermark: ClassVar[bool] = True
    secret_env: ClassVar[str | None] = None
    secret: ClassVar[str] = ""

    def __init__(self, clock: FrozenClock, folder: Path, stack: ExitStack) -> None:
        self.clock, self.folder, self.stack = clock, folder, stack
        self.slept = Sleeps()

    def seed(self, n: int) -> list[str]:
        """``n`` people in a new tenant (none: an empty export); their keys."""
        raise NotImplementedError

    def sent(self, key: str) -> dict[str, str | None]:
        """What the tenant holds for ``key``, as the COMPARED canonical fields."""
        raise NotImplementedError

    def retitle(self, key: str, title: str) -> None:
        raise NotImplementedError

    def terminate(self, key: str, last_day: date) -> None:
        raise NotImplementedError

    def add_unknown_field(self, key: str) -> None:
        """HR adds a field to one person that no config names."""
        raise NotImplementedError

    def break_record(self, key: str) -> None:
        """HR leaves one record structurally broken (the rest stay readable)."""
        raise NotImplementedError

    def retitle_from(self, key: str, title: str, day: date) -> None:
        """HR enters a new title in advance, effective on ``day``."""
        raise NotImplementedError

    def section(self, **options: Any) -> dict[str, Any]:
        raise NotImplementedError

    def unreachable(self) -> dict[str, Any]:
        """Section options that point the source at something that cannot be read."""
        return {"base_url": CLOSED_PORT_URL}

    def wrong_secret(self) -> dict[str, Any] | None:
        """Section options with credentials the tenant refuses (None: none needed)."""
        return None

    def config(self, **options: Any) -> Any:
        return self.config_class(**self.section(**options))

    def source(self, **options: Any) -> HrisSource:
        """The connector, on the frozen clock, with recorded sleeps."""
        return self.source_class(self.config(**options), now=self.clock.now, sleep=self.slept,
                                 jitter=lambda: 1.0)

    def built_by_factory(self) -> HrisSource:
        return make_source(self.config())


class CsvRig(SourceRig):
    kind = "csv"
    source_class = CsvSource
    config_class = CsvSourceConfig
    skips = {"paging": "a CSV export is one file; its read-chunk boundaries are held by "
                       "tests/test_csv_source.py at chunk sizes 1..4096",
             "future-dated": "a CSV export holds only today's values, no dated records"}
    needs_watermark = False  # a CSV delta is whatever changed-rows file was dropped

    def seed(self, n: int) -> list[str]:
        self.world = World.generate(n)
        self.path = self.folder / "employees.csv"
        self.extra: dict[str, dict[str, str]] = {}
        self._write()
        return list(self.world.rows)

    def _write(self, rows: dict[str, dict[str, str]] | None = None,
               path: Path | None = None) -> None:
        rows = self.world.rows if rows is None else rows
        header = list(next(iter(World.generate(1).rows.values())))  # even for nobody
        extra = sorted({c for cols in self.extra.values() for c in cols})
        lines = [",".join(header + extra)]
        for key, row in rows.items():
            cells = [row[c] for c in header] + [self.extra.get(key, {}).get(c, "") for c in extra]
            lines.append(",".join(f'"{c}"' if "," in c else c for c in cells))
        (path or self.path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    def sent(self, key: str) -> dict[str, str | None]:
        row = self.world.rows[key]
        return {f: row[COLUMNS[f]] or None for f in COMPARED}

    def retitle(self, key: str, title: str) -> None:
        self.world.rows[key]["Job Title"] = title
        self._write()
        # A CSV delta is the changed-rows file HR drops beside the export.
        self._write(rows={key: self.world.rows[key]}, path=self.folder / "changes.csv")

    def terminate(self, key: str, last_day: date) -> None:
        self.world.rows[key].update({"Status": "Terminated",
                                     "Termination Date": last_day.isoformat()})
        self._write()

    def add_unknown_field(self, key: str) -> None:
        self.extra[key] = {"Badge Colour": "Blue"}
        self._write()

    def break_record(self, key: str) -> None:
        self.world.rows[key]["Location"] = "Berlin,Mitte"  # unquoted: one cell too many
        self._write()
        text = self.path.read_text(encoding="utf-8").replace('"Berlin,Mitte"', "Berlin,Mitte")
        self.path.write_text(text, encoding="utf-8")

    def section(self, **options: Any) -> dict[str, Any]:
        return {"type": "csv", "path": str(self.path), "columns": COLUMNS,
                "delta_path": str(self.folder / "changes.csv"), **options}

    def unreachable(self) -> dict[str, Any]:
        return {"path": str(self.folder / "missing.csv")}  # a file source's unreachable

    def source(self, **options: Any) -> HrisSource:
        return CsvSource(self.config(**options))  # nothing to inject: a file, no clock


class BambooRig(SourceRig):
    kind = "bamboohr"
    source_class = BambooHRSource
    config_class = BambooHRSourceConfig
    page_option = {"read_via": "dataset", "dataset_page_size": 2}
    skips = {"broken record": "BambooHR sends each field as one scalar and "
                              "bamboohr_wire.text reads any other value as empty, so no "
                              "BambooHR record is structurally broken (an empty required "
                              "field is the validator's to report)"}
    secret_env, secret = "ROSTERSYNC_CONTRACT_BAMBOOHR_KEY", "contract-bamboo-key"

    def seed(self, n: int) -> list[str]:
        self.hris = self.stack.enter_context(BambooSandbox(api_key=self.secret,
                                                           clock=self.clock.now))
        people = bamboohr.generate(n)
        for employee in people:
            self.hris.put(employee)
        return [e["id"] for e in people]

    def sent(self, key: str) -> dict[str, str | None]:
        e = self.hris.store.get(key) or {}
        return {"employee_id": key, "first_name": e["firstName"], "last_name": e["lastName"],
                "email": e["workEmail"], "department": e["department"],
                "job_title": e["jobTitle"]}

    def retitle(self, key: str, title: str) -> None:
        self.hris.update(key, jobTitle=title)

    def terminate(self, key: str, last_day: date) -> None:
        self.hris.update(key, employmentHistoryStatus="Terminated", status="Inactive",
                         terminationDate=last_day.isoformat())

    def add_unknown_field(self, key: str) -> None:
        self.hris.update(key, customBadgeColour="Blue")

    def retitle_from(self, key: str, title: str, day: date) -> None:
        self.hris.schedule(key, "jobInfo", day.isoformat(), jobTitle=title)

    def section(self, **options: Any) -> dict[str, Any]:
        return {"type": "bamboohr", "base_url": self.hris.base_url,
                "api_key_env": self.secret_env, **options}

    def wrong_secret(self) -> dict[str, Any]:
        return {"api_key_env": "ROSTERSYNC_CONTRACT_WRONG_SECRET"}


class WorkdayRig(SourceRig):
    kind = "workday"
    source_class = WorkdaySource
    config_class = WorkdaySourceConfig
    secret_env, secret = "ROSTERSYNC_CONTRACT_WORKDAY_PW", "contract-workday-pw"
    USER = "isu_lms@acme"
    skips = {"paging": "a Workday RaaS report answers all its rows in one document (§2.1)",
             "delta": "a Workday RaaS report has no change feed: every pull is full (§2.1)",
             "future-dated": "the report answers today's values; what is entered in "
                             "advance shows on its day, in that day's full pull"}

    def seed(self, n: int) -> list[str]:
        self.hris = self.stack.enter_context(WorkdaySandbox(
            user=self.USER, password=self.secret, clock=self.clock.now))
        workers = workday_data.generate(n)
        for worker in workers:
            self.hris.put(worker)
        return [w["Worker_WID"] for w in workers]

    def sent(self, key: str) -> dict[str, str | None]:
        w = self.hris.store.get(key) or {}
        return {"employee_id": key, "first_name": w["Legal_First_Name"],
                "last_name": w["Legal_Last_Name"], "email": w["Work_Email"],
                "department": w["Supervisory_Organization"], "job_title": w["Business_Title"]}

    def retitle(self, key: str, title: str) -> None:
        self.hris.update(key, Business_Title=title)

    def terminate(self, key: str, last_day: date) -> None:
        self.hris.update(key, Termination_Date=last_day.isoformat())

    def add_unknown_field(self, key: str) -> None:
        self.hris.update(key, Badge_Colour="Blue")

    def break_record(self, key: str) -> None:
        self.hris.update(key, Manager_Employee_ID="21001;21002")  # one person, two managers

    def section(self, **options: Any) -> dict[str, Any]:
        return {"type": "workday", "base_url": self.hris.base_url,
                "report_path": self.hris.report_path, "user": self.USER,
                "password_env": self.secret_env, **options}

    def wrong_secret(self) -> dict[str, Any]:
        return {"password_env": "ROSTERSYNC_CONTRACT_WRONG_SECRET"}


class SuccessFactorsRig(SourceRig):
    kind = "successfactors"
    source_class = SuccessFactorsSource
    config_class = SuccessFactorsSourceConfig
    page_option = {"page_size": 2}
    secret_env, secret = "ROSTERSYNC_CONTRACT_SF_PW", "contract-sf-pw"

    def seed(self, n: int) -> list[str]:
        self.hris = self.stack.enter_context(SuccessFactorsSandbox(
            "ACME", username="api", password=self.secret, clock=self.clock.now))
        people = successfactors_data.organisation(n)
        for record in people:
            self.hris.put(record)
        return [p["personIdExternal"] for p in people]

    def sent(self, key: str) -> dict[str, str | None]:
        p = self.hris.store.get(key) or {}
        job = p["employmentNav"][0]["jobInfoNav"][-1]
        return {"employee_id": key, "first_name": p["personalInfoNav"][0]["firstName"],
                "last_name": p["personalInfoNav"][0]["lastName"],
                "email": p["emailNav"][0]["emailAddress"],
                "department": job["departmentNav"]["name_localized"],
                "job_title": job["jobTitle"]}

    def retitle(self, key: str, title: str) -> None:
        self.hris.store.change_job(key, self.clock.now().date(), jobTitle=title)

    def terminate(self, key: str, last_day: date) -> None:
        self.hris.store.terminate(key, last_day)

    def retitle_from(self, key: str, title: str, day: date) -> None:
        self.hris.store.change_job(key, day, jobTitle=title)

    def add_unknown_field(self, key: str) -> None:
        def change(record: dict[str, Any], now: Any) -> None:
            record["customString99"] = "Blue"
            record["personalInfoNav"][0]["customString98"] = "Blue"
        self.hris.store.edit(key, change)

    def break_record(self, key: str) -> None:
        # A PerPerson without its key beside the person (an upstream export bug).
        record = self.hris.store.get(key) or {}
        self.hris.put({**record, "personIdExternal": ""})

    def section(self, **options: Any) -> dict[str, Any]:
        return {"type": "successfactors", "base_url": self.hris.base_url, "company_id": "ACME",
                "username": "api", "password_env": self.secret_env, **options}

    def wrong_secret(self) -> dict[str, Any]:
        return {"password_env": "ROSTERSYNC_CONTRACT_WRONG_SECRET"}


SOURCE_RIGS: tuple[type[SourceRig], ...] = (CsvRig, BambooRig, WorkdayRig, SuccessFactorsRig)
