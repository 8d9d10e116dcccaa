"""BambooHR as an HRIS source (docs/bamboohr.md §1), over its REST API with sync httpx.

The engine calls sources from a worker thread, so this uses ``httpx.Client``.

- Current values: ONE custom report (``POST /v1/reports/custom?format=JSON&onlyCurrent=
  true``), which includes every employee regardless of status (§1.2 B); the directory
  endpoint is not used, it may omit inactive people (§1.2 A). With ``hris.read_via =
  "dataset"`` they come from Datasets v2 instead, the report's documented successor,
  with the report as the fallback (sync/connectors/bamboohr_dataset.py).
- Future-dated values: ``onlyCurrent=false`` shows tomorrow's value of EVERY history
  field, not only ``terminationDate`` (§1.2 B, "Correction"), so it is asked for
  separately, for those fields only; a future termination date is carried, other
  differences become scheduled changes dated from the employee's table rows and are
  never applied early (sync/connectors/bamboohr_schedule.py).
- Delta: ``GET /v1/employees/changed?since=`` for the ids, plus the people whose
  scheduled change has fallen due (a row taking effect edits nothing, so ``changed``
  does not report it), then the same reads filtered to those ids (§1.3).
- One person: ``GET /v1/employees/{id}?fields=...`` current, then future (§1.2 C).

Raw records are the employee objects as BambooHR sent them (current values);
``fields()`` maps them to canonical fields and resolves the manager reference.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote

import httpx

from rostersync.sync.config import BambooHRSourceConfig
from rostersync.sync.connectors import bamboohr_dataset as dataset
from rostersync.sync.connectors.bamboohr_schedule import (
    merge,
    next_due,
    pending_fields,
    probe_fields,
    scheduled_changes,
    tables_for,
)
from rostersync.sync.connectors.bamboohr_wire import (
    BambooHRHttp,
    configured_fields,
    directory,
    text,
)
from rostersync.sync.connectors.base import FeedError, RawRecord, RecordError
from rostersync.sync.connectors.http_retry import RetryPolicy
from rostersync.sync.connectors.wire_types import is_text_id, unfit_sentence
from rostersync.sync.models import digest_of
from rostersync.sync.schema_check import describe, missing_columns

MAX_ATTEMPTS = 4  # per call, when throttled or cut off
MAX_WAIT_SECONDS = 60.0  # the longest Retry-After honoured; beyond it the pull fails
BACKOFF_BASE_SECONDS = 1.0
log = logging.getLogger(__name__)


class BambooHRSource(BambooHRHttp):
    name = "bamboohr"

    def __init__(self, config: BambooHRSourceConfig, *, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 jitter: Callable[[], float] = random.random,
                 max_attempts: int = MAX_ATTEMPTS,
                 max_wait_seconds: float = MAX_WAIT_SECONDS) -> None:
        self.config = config
        self._client = client
        self._sleep = sleep
        self._now = now
        self._jitter = jitter
        self._retry = RetryPolicy(frozenset({429, 503}), max_attempts, max_wait_seconds,
                                  BACKOFF_BASE_SECONDS)
        # All fields the calls ask for: the configured ones, the attributes, and the
        # second manager/status fields used as fallbacks.
        wanted = [*config.fields, *config.attributes.values(), *config.FALLBACKS.values()]
        self._fields = list(dict.fromkeys(wanted))
        self._configured = configured_fields(config)
        self._probe = probe_fields(self._fields)  # what the future-dated read asks for
        self._names = dataset.dataset_names(self._fields, config.dataset_fields)
        self._asked = self._names  # those the dataset lists (set by _check_catalog)
        self._read_note = "nothing read yet"
        # id -> the earliest date of a scheduled change seen (None: date unknown). Kept
        # for the life of the source: a delta re-reads those whose date has come.
        self._pending: dict[str, date | None] = {}
        self._report_fields: list[str] | None = None  # the last full report's field ids
        self._ids: set[str] = set()  # every employee id known from the last full scan
        self._id_by_number: dict[str, str] = {}  # employeeNumber -> id, same scope
        self._directory_fresh = False  # maps refreshed during the current scan
        self._watermark: str | None = None

    # -- HrisSource ------------------------------------------------------------------

    def scan_full(self) -> Iterator[RawRecord]:
        started = self._now()
        employees = self._pull(None)
        self._ids, self._id_by_number = directory(employees)
        self._directory_fresh = True
        self._pending = {}
        yield from map(self._record, employees)
        # The moment before the report was asked for: a change during the pull is
        # picked up again by the next delta rather than lost.
        self._watermark = started.isoformat()

    def scan_delta(self, since: datetime | None) -> Iterator[RawRecord]:
        if since is None:
            raise FeedError("BambooHR delta: there is no watermark yet; run a full sync first")
        started = self._now()
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        # A "+" offset must be sent as %2B or it arrives as a space (§1.3).
        stamp = quote(since.isoformat(timespec="seconds"), safe="")
        body = self._call("GET", f"/v1/employees/changed?since={stamp}", "/v1/employees/changed")
        changes = body.get("employees") if isinstance(body, dict) else None
        if not isinstance(changes, dict):  # an object keyed by id, not a list (§1.3)
            raise FeedError("BambooHR GET /v1/employees/changed: the answer has no "
                            "'employees' object")
        # Deleted records are NOT terminations (terminating is an *Updated* change, §1.5):
        # they yield nothing and simply vanish. The engine notices vanished people only in
        # full pulls (where its vanished grace applies), so deletions wait for the next one.
        ids = {str(k) for k, v in changes.items()
               if not (isinstance(v, dict) and v.get("action") == "Deleted")}
        due = self._due()
        self._directory_fresh = False
        if ids or due:
            employees = self._pull(sorted(ids | due, key=lambda i: (len(i), i)))
            ids_now, numbers_now = directory(employees)
            self._ids |= ids_now
            self._id_by_number.update(numbers_now)
            for gone in due - ids_now:  # deleted meanwhile: nothing left to re-read
                self._pending.pop(gone, None)
            yield from map(self._record, employees)
        latest = body.get("latest")
        self._watermark = str(latest) if latest else started.isoformat()

    def supports_delta(self) -> bool:
        return True

    def fetch_one(self, employee_id: str) -> RawRecord | None:
        employee = self._one(employee_id, self._fields, only_current=True)
        if employee is None:
            return None
        # The answer has a key for every field the tenant knows, null when empty, and
        # leaves unknown ones out (§1.2 B, C): a configured field missing here was renamed
        # or deleted, and the resync is refused like a full pull would be.
        absent = missing_columns(self._configured, set(employee), self.config.optional_columns)
        if absent:
            raise FeedError("BambooHR GET /v1/employees/{id}: "
                            + describe(absent, "the employee's fields", "field"))
        future = self._one(employee_id, self._probe, only_current=False) if self._probe \
            else None
        self._directory_fresh = False
        return self._record(self._merge(employee, future))

    def fields(self, record: RawRecord) -> dict[str, str | None]:
        raw = record.raw
        if not isinstance(raw, dict):
            raise RecordError(record.locator, None, None, "is not an employee object")
        out: dict[str, str | None] = {}
        for canonical, field in self.config.columns.items():
            if canonical == "manager_id":
                out[canonical] = self._manager(raw)
            else:
                # status: employmentHistoryStatus is the account-customised CURRENT status
                # ("Terminated", "Leave of Absence"), preferred over status, which is only
                # Active/Inactive and stays Active until a termination date passes (§1.4, §1.5).
                out[canonical] = text(raw, field) or text(raw, self.config.FALLBACKS.get(field))
        for name, field in self.config.attributes.items():
            out[f"attributes.{name}"] = text(raw, field)
        return out

    def columns_present(self) -> set[str] | None:
        return None  # a report leaves unknown fields out silently: not knowable

    def revisit_on(self, record: RawRecord, today: date) -> date | None:
        """The day of the person's earliest scheduled change (undated: today, so every
        delta reads them until the change shows): the engine keeps it, so a separate
        `sync --delta` process re-reads them too, not only this one."""
        scheduled, day = next_due(record.raw)
        if not scheduled:
            return None
        return day or today

    def source_columns(self) -> list[str] | None:
        return self._report_fields

    def watermark(self) -> str | None:
        return self._watermark

    def describe(self) -> str:
        return f"BambooHR {self.config.base_url}"

    def notes(self) -> list[tuple[str, str]]:
        """What doctor shows besides the record count: how current values were read
        (a dataset fallback is a warning) and the scheduled changes waiting."""
        waiting = len(self._pending)
        return [("hris read", self._read_note),
                ("hris scheduled", f"{waiting} person(s) with a future-dated leave, transfer "
                                   "or status change, kept out until its date")]

    # -- records ---------------------------------------------------------------------

    def _record(self, employee: Any) -> RawRecord:
        if not isinstance(employee, dict) or not str(employee.get("id") or "").strip():
            raise FeedError("BambooHR: an employee in the answer has no 'id'")
        if not is_text_id(employee["id"]):
            # The text of an object or list would become a person nobody has.
            why = unfit_sentence("id", employee["id"])
            raise FeedError(f"BambooHR: the answer lists an employee whose {why}; the "
                            "whole answer was refused")
        key = str(employee["id"]).strip()
        scheduled, day = next_due(employee)
        if scheduled:
            self._pending[key] = day
        else:
            self._pending.pop(key, None)
        return RawRecord(key, digest_of(employee), f"bamboohr:employee {key}", employee)

    def _due(self) -> set[str]:
        """People whose scheduled change has come (by the UTC date; a tenant ahead of
        UTC is seen at the next delta after midnight UTC, one behind is re-read early,
        still shows the change as future and stays pending). Undated ones: always."""
        today = self._now().date()
        return {k for k, day in self._pending.items() if day is None or day <= today}

    def _manager(self, raw: dict[str, Any]) -> str | None:
        """The manager's BambooHR id (the engine's employee_id).

        Third-party docs disagree on which of supervisorEId/supervisorId is the id and
        which the employee number (§1.4), so each value is tried as an id first, then as
        an employee number. A value that matches neither is passed on unchanged: it is
        not any current employee's id, and the engine leaves an unknown manager alone.
        """
        values = [v for v in (text(raw, "supervisorEId"), text(raw, "supervisorId")) if v]
        if not values:
            return None
        for refreshed in (False, True):
            if refreshed:
                if self._directory_fresh:
                    break
                # After a delta or fetch_one the maps may lack the manager: one cheap
                # report of ids and numbers for the whole company fills them in.
                self._ids, self._id_by_number = directory(
                    self._report({}, fields=["id", "employeeNumber"]))
                self._directory_fresh = True
            for value in values:
                if value in self._ids:
                    return value
                if value in self._id_by_number:
                    return self._id_by_number[value]
        return values[0]

    # -- HTTP ------------------------------------------------------------------------

    def _pull(self, ids: list[str] | None) -> list[Any]:
        """Everyone (ids None) or these people: current values, merged with the
        future-dated ones read apart (sync/connectors/bamboohr_schedule.py)."""
        current = self._dataset_rows(ids) if self.config.read_via == "dataset" else None
        if current is None:
            current = self._report({} if ids is None else {"employeeIds": ids})
            if self.config.read_via == "report":
                self._read_note = "current values from the custom report (onlyCurrent=true)"
        else:
            self._read_note = (f"current values from the dataset {self.config.dataset_name!r}"
                               " (Datasets v2)")
        future: dict[str, Any] = {}
        if self._probe:
            rows = self._report({} if ids is None else {"employeeIds": ids},
                                fields=self._probe, only_current=False)
            future = {str(e.get("id")): e for e in rows if isinstance(e, dict)}
        return [self._merge(e, future.get(str(e.get("id")))) if isinstance(e, dict) else e
                for e in current]

    def _merge(self, current: dict[str, Any], future: dict[str, Any] | None) -> dict[str, Any]:
        pending = pending_fields(current, future)
        scheduled = None
        if pending:
            emp_id = quote(str(current.get("id")), safe="")
            rows = {table: self._call("GET", f"/v1/employees/{emp_id}/tables/{table}",
                                      "/v1/employees/{id}/tables/" + table, missing_ok=True)
                    for table in tables_for(pending)}
            scheduled = scheduled_changes(rows, self._now().date())
        return merge(current, future, pending, scheduled)

    def _one(self, employee_id: str, fields: list[str], *,
             only_current: bool) -> dict[str, Any] | None:
        endpoint = "/v1/employees/{id}"
        listed = quote(",".join(fields), safe=",")
        flag = "true" if only_current else "false"
        path = (f"/v1/employees/{quote(employee_id, safe='')}?fields={listed}"
                f"&onlyCurrent={flag}")
        employee = self._call("GET", path, endpoint, missing_ok=True)
        if employee is None:
            return None
        if not isinstance(employee, dict):
            raise FeedError(f"BambooHR GET {endpoint}: the answer is not an employee object")
        employee.setdefault("id", employee_id)
        return employee

    def _report(self, filters: dict[str, Any], fields: list[str] | None = None, *,
                only_current: bool = True) -> list[Any]:
        endpoint = "/v1/reports/custom"
        body: dict[str, Any] = {"title": "rostersync", "fields": fields or self._fields}
        if filters:
            body["filters"] = filters
        flag = "true" if only_current else "false"
        answer = self._call("POST", f"{endpoint}?format=JSON&onlyCurrent={flag}", endpoint,
                            content=json.dumps(body).encode())
        employees = answer.get("employees") if isinstance(answer, dict) else None
        if not isinstance(employees, list):
            raise FeedError(f"BambooHR POST {endpoint}: the answer has no 'employees' list")
        if fields is None:
            present = self._check_fields(answer.get("fields"), f"BambooHR POST {endpoint}")
            if not filters:
                self._report_fields = present
        return employees

    def _check_fields(self, listed: Any, what: str) -> list[str] | None:
        """BambooHR silently leaves out fields it does not know (§1.2 B): a field renamed
        or deleted in the tenant would read as empty for everyone. The report's field
        list says which it kept; a configured one it dropped rejects the feed."""
        if not isinstance(listed, list):
            return None  # no field list in the answer: nothing to compare against
        present = [str(f.get("id")) for f in listed if isinstance(f, dict)]
        absent = missing_columns(self._configured, set(present), self.config.optional_columns)
        if absent:
            raise FeedError(f"{what}: " + describe(absent, "the report's fields", "field"))
        return present

    def _dataset_rows(self, ids: list[str] | None) -> list[Any] | None:
        """Current values from Datasets v2; None when the dataset is not there (404),
        so that the custom report answers instead."""
        name = self.config.dataset_name
        if not self._check_catalog(name):
            return None
        endpoint = f"/v2/datasets/{name}/data"
        what = f"BambooHR POST {endpoint}"
        filters = [dataset.EVERYONE] if ids is None else dataset.ids_filters(
            ids, self._names["id"])
        out: list[Any] = []
        for filter_ in filters:
            for page in range(1, self.config.max_pages + 1):
                body = dataset.data_request(self._asked, filter_, page,
                                            self.config.dataset_page_size)
                answer = self._call("POST", endpoint, endpoint, missing_ok=True,
                                    content=json.dumps(body).encode())
                if answer is None:
                    self._fallback(f"{what} answered 404")
                    return None
                parsed = dataset.data_page(answer, self._asked)
                if parsed is None:
                    raise FeedError(f"{what}: the answer has no 'data' list of rows with "
                                    "'fields'")
                rows, more = parsed
                out.extend(rows)
                if not more:
                    break
            else:
                raise FeedError(f"{what}: still more pages after {self.config.max_pages} "
                                "(hris.max_pages)")
        return out

    def _check_catalog(self, name: str) -> bool:
        """The dataset's field list against the configured fields (the dataset refuses
        unknown fields with an error, which would not say which config key to fix)."""
        endpoint = f"/v1_2/datasets/{name}/fields"
        catalog: set[str] = set()
        for page in range(1, self.config.max_pages + 1):
            answer = self._call("GET", f"{endpoint}?page={page}&page_size=1000", endpoint,
                                missing_ok=True)
            if answer is None:
                self._fallback(f"BambooHR GET {endpoint} answered 404")
                return False
            parsed = dataset.catalog_page(answer)
            if parsed is None:
                raise FeedError(f"BambooHR GET {endpoint}: the answer has no 'fields' list")
            names, more = parsed
            catalog |= names
            if not more:
                break
        absent = dataset.missing_in_catalog(self._configured, self._names, catalog,
                                            self.config.optional_columns)
        if absent:
            raise FeedError(f"BambooHR GET {endpoint}: "
                            + describe(absent, f"the dataset {name!r}", "field"))
        self._report_fields = [f for f in self._fields if self._names[f] in catalog]
        # Optional fields the dataset lacks are left out of the request: a dataset
        # refuses unknown fields rather than omitting them.
        self._asked = {f: n for f, n in self._names.items() if n in catalog}
        return True

    def _fallback(self, why: str) -> None:
        self._read_note = (f"the dataset {self.config.dataset_name!r} could not be read "
                           f"({why}); current values came from the custom report instead")
        log.warning("%s; reading BambooHR through the custom report instead "
                    "(hris.read_via = \"dataset\", docs/bamboohr.md §1.2 E)", why)
