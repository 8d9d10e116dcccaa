"""BambooHR as an HRIS source (docs/bamboohr.md §1), over its REST API with sync httpx.

The engine calls sources from a worker thread, so this uses ``httpx.Client``.

- Full pull: ONE custom report (``POST /v1/reports/custom?format=JSON&onlyCurrent=false``)
  because it includes every employee regardless of status, and ``onlyCurrent=false``
  shows future-dated values such as a scheduled ``terminationDate`` (§1.2 B, §1.5). The
  directory endpoint is not used: it may omit inactive people (§1.2 A).
- Delta: ``GET /v1/employees/changed?since=`` for the ids, then one report filtered by
  ``employeeIds`` for their data; ``latest`` is the next watermark (§1.3).
- One person: ``GET /v1/employees/{id}?fields=...&onlyCurrent=false`` (§1.2 C).

Raw records are the employee objects as BambooHR sent them; ``fields()`` maps them to
canonical fields and resolves the manager reference (see ``_manager``).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from sync.config import BambooHRSourceConfig, secret_from_env
from sync.connectors.base import FeedError, RawRecord, RecordError
from sync.connectors.http_retry import (
    HttpSource,
    RetryPolicy,
    answer_error,
    read_with_retries,
)
from sync.models import digest_of
from sync.schema_check import describe, missing_columns

NO_DATE = "0000-00-00"  # how BambooHR may spell an empty date, besides null (§1.4)
MAX_ATTEMPTS = 4  # per call, when throttled or cut off
MAX_WAIT_SECONDS = 60.0  # the longest Retry-After honoured; beyond it the pull fails
BACKOFF_BASE_SECONDS = 1.0


class BambooHRSource(HttpSource):
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
        self._configured = _configured_fields(config)
        self._report_fields: list[str] | None = None  # the last full report's field ids
        self._ids: set[str] = set()  # every employee id known from the last full scan
        self._id_by_number: dict[str, str] = {}  # employeeNumber -> id, same scope
        self._directory_fresh = False  # maps refreshed during the current scan
        self._watermark: str | None = None

    # -- HrisSource ------------------------------------------------------------------

    def scan_full(self) -> Iterator[RawRecord]:
        started = self._now()
        employees = self._report({})
        self._ids, self._id_by_number = _directory(employees)
        self._directory_fresh = True
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
        ids = sorted(str(k) for k, v in changes.items()
                     if not (isinstance(v, dict) and v.get("action") == "Deleted"))
        self._directory_fresh = False
        if ids:
            employees = self._report({"employeeIds": ids})
            ids_now, numbers_now = _directory(employees)
            self._ids |= ids_now
            self._id_by_number.update(numbers_now)
            yield from map(self._record, employees)
        latest = body.get("latest")
        self._watermark = str(latest) if latest else started.isoformat()

    def supports_delta(self) -> bool:
        return True

    def fetch_one(self, employee_id: str) -> RawRecord | None:
        endpoint = "/v1/employees/{id}"
        fields = quote(",".join(self._fields), safe=",")
        path = f"/v1/employees/{quote(employee_id, safe='')}?fields={fields}&onlyCurrent=false"
        employee = self._call("GET", path, endpoint, missing_ok=True)
        if employee is None:
            return None
        if not isinstance(employee, dict):
            raise FeedError(f"BambooHR GET {endpoint}: the answer is not an employee object")
        employee.setdefault("id", employee_id)
        self._directory_fresh = False
        return self._record(employee)

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
                out[canonical] = _text(raw, field) or _text(raw, self.config.FALLBACKS.get(field))
        for name, field in self.config.attributes.items():
            out[f"attributes.{name}"] = _text(raw, field)
        return out

    def columns_present(self) -> set[str] | None:
        return None  # a report leaves unknown fields out silently: not knowable

    def source_columns(self) -> list[str] | None:
        return self._report_fields

    def watermark(self) -> str | None:
        return self._watermark

    def describe(self) -> str:
        return f"BambooHR {self.config.base_url}"

    # -- records ---------------------------------------------------------------------

    def _record(self, employee: Any) -> RawRecord:
        if not isinstance(employee, dict) or not str(employee.get("id") or "").strip():
            raise FeedError("BambooHR: an employee in the answer has no 'id'")
        key = str(employee["id"]).strip()
        return RawRecord(key, digest_of(employee), f"bamboohr:employee {key}", employee)

    def _manager(self, raw: dict[str, Any]) -> str | None:
        """The manager's BambooHR id (the engine's employee_id).

        Third-party docs disagree on which of supervisorEId/supervisorId is the id and
        which the employee number (§1.4), so each value is tried as an id first, then as
        an employee number. A value that matches neither is passed on unchanged: it is
        not any current employee's id, and the engine leaves an unknown manager alone.
        """
        values = [v for v in (_text(raw, "supervisorEId"), _text(raw, "supervisorId")) if v]
        if not values:
            return None
        for refreshed in (False, True):
            if refreshed:
                if self._directory_fresh:
                    break
                # After a delta or fetch_one the maps may lack the manager: one cheap
                # report of ids and numbers for the whole company fills them in.
                self._ids, self._id_by_number = _directory(
                    self._report({}, fields=["id", "employeeNumber"]))
                self._directory_fresh = True
            for value in values:
                if value in self._ids:
                    return value
                if value in self._id_by_number:
                    return self._id_by_number[value]
        return values[0]

    # -- HTTP ------------------------------------------------------------------------

    def _report(self, filters: dict[str, Any], fields: list[str] | None = None) -> list[Any]:
        endpoint = "/v1/reports/custom"
        body = {"title": "rostersync", "fields": fields or self._fields}
        if filters:
            body["filters"] = filters
        answer = self._call("POST", f"{endpoint}?format=JSON&onlyCurrent=false", endpoint,
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

    def _open_client(self) -> httpx.Client:
        # Read at connect time; the key is the Basic user name, the password is
        # anything (conventionally "x") (§1.1). It never appears in messages.
        key = secret_from_env(self.config.api_key_env, "hris.api_key_env")
        return httpx.Client(
            auth=httpx.BasicAuth(key or "", "x"),
            headers={"Accept": "application/json"},
            timeout=self.config.timeout_seconds, verify=self.config.verify_tls)

    def _call(self, method: str, path: str, endpoint: str, *, content: bytes | None = None,
              missing_ok: bool = False) -> Any:
        """One API call, retried while throttled or cut off; FeedError when it cannot
        succeed."""
        url = self.config.base_url + path
        # Exactly "application/json": any variant is parsed as XML -> 400 (§1.2 B).
        headers = {"Content-Type": "application/json"} if content is not None else None
        what = f"BambooHR {method} {endpoint}"
        # Every call here reads (the custom report is a POST, but only a query), so a
        # reset or a timeout is tried again like a throttle (sync/connectors/http_retry.py).
        answer = read_with_retries(
            lambda: self._http().request(method, url, content=content, headers=headers),
            self._retry, what=what, sleep=self._sleep, now=self._now, jitter=self._jitter,
            tls_setting="hris.verify_tls")
        response = answer.response
        status = response.status_code
        if status == 200:
            try:
                return response.json()
            except ValueError:
                raise FeedError(f"{what}: the answer is not JSON") from None
        if status == 404 and missing_ok:
            return None
        detail = _error_message(response)
        if status in self._retry.statuses:
            # 503 is BambooHR's documented throttle; 429 officially means the employee
            # limit, but some integrators see it as a throttle (§1.6): both were retried.
            why = answer.gave_up_because(self._retry, "still throttled")
            raise answer_error(f"{what}: {status} ({detail or 'throttled'}); {why}", status)
        if status in (401, 403):
            verdict = "unauthorised" if status == 401 else "forbidden"
            raise answer_error(f"{what}: {status} {verdict} ({detail or 'no reason given'}); "
                               "check the API key in the environment variable named by "
                               f"hris.api_key_env ({self.config.api_key_env})", status)
        raise answer_error(f"{what}: HTTP {status}" + (f" ({detail})" if detail else ""),
                           status)


def _error_message(response: httpx.Response) -> str:
    # httpx headers are case-insensitive; accept the historical three-s typo too (§1.7).
    headers = response.headers
    return (headers.get("X-BambooHR-Error-Message")
            or headers.get("X-BambooHR-Error-Messsage") or "").strip()


def _configured_fields(config: BambooHRSourceConfig) -> list[tuple[str, str]]:
    """(config key, field id) for every field the config asks for by name (the implicit
    fallbacks are only a second source, never required)."""
    return ([("hris.fields", field) for field in config.fields]
            + [(f"hris.attributes.{name}", field) for name, field in config.attributes.items()])


def _directory(employees: list[Any]) -> tuple[set[str], dict[str, str]]:
    ids: set[str] = set()
    numbers: dict[str, str] = {}
    for employee in employees:
        if isinstance(employee, dict) and employee.get("id") is not None:
            emp_id = str(employee["id"]).strip()
            ids.add(emp_id)
            number = employee.get("employeeNumber")
            if number not in (None, ""):
                numbers[str(number).strip()] = emp_id
    return ids, numbers


def _text(raw: dict[str, Any], field: str | None) -> str | None:
    """A field as a stripped string; None for absent, null, blank and empty dates."""
    if field is None:
        return None
    value = raw.get(field)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    if not text or text == NO_DATE:
        return None
    return text
