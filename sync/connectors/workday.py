"""Workday as an HRIS source (docs/workday.md §2.1), over report-as-a-service with sync httpx.

The engine calls sources from a worker thread, so this uses ``httpx.Client``.

- Full pull: ONE ``GET {report}?format=json`` plus the configured prompts (their
  {today}-style placeholders resolved with the injected clock), then the report's XML
  Schema (``?xsds``) to check that every configured alias is still a column. RaaS has no
  paging and no delta (§2.1), so ``supports_delta()`` is False and every pull is whole.
- One person: the same report narrowed by ``fetch_prompt`` when the config names one
  (every row returned must be that worker), else the whole report, picked over.
- The answer is ``{"Report_Entry": [row, ...]}``; rows are keyed by the report's XML
  aliases, which ``columns`` maps to canonical fields (the alias contract).

Raw records are the rows as Workday sent them; ``fields()`` maps one to canonical field
strings, decides the status from the configured flags (see ``_status``) and resolves the
manager reference (see ``_manager``).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx

from rostersync.sync.connectors.base import FeedError, RawRecord, RecordError, SourceUnavailable
from rostersync.sync.connectors.http_retry import (
    HttpSource,
    RetryPolicy,
    answer_error,
    read_with_retries,
)
from rostersync.sync.connectors.oauth_tokens import RefreshingBearer, TokenRefused
from rostersync.sync.connectors.workday_answers import ENTRIES, error_text, parse_report
from rostersync.sync.connectors.workday_auth import credentials_hint, describe_auth, open_client
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.connectors.workday_prompts import is_dynamic, resolve_all
from rostersync.sync.connectors.workday_schema import SchemaUnreadable, report_columns
from rostersync.sync.connectors.workday_values import cell as _cell
from rostersync.sync.connectors.workday_values import flag_cell, plain_date
from rostersync.sync.connectors.workday_values import scalar as _scalar
from rostersync.sync.models import digest_of
from rostersync.sync.schema_check import describe as describe_missing
from rostersync.sync.schema_check import missing_columns

log = logging.getLogger(__name__)



class WorkdaySource(HttpSource):
    name = "workday"

    def __init__(self, config: WorkdaySourceConfig, *, client: httpx.Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._client = client
        self._sleep = sleep
        self._now = now
        self._jitter = jitter
        self._retry = RetryPolicy(frozenset(config.retry_statuses), config.max_attempts,
                                  config.max_wait_seconds, config.backoff_base_seconds)
        self._key_alias = config.columns["employee_id"]
        self._number_alias = config.columns.get("employee_number")
        # Rows are digested together with the settings that interpret them, so that a
        # change to the status rules re-reads every row (the config fingerprint does not
        # cover them).
        self._interpretation = config.interpretation()
        self._key_by_number: dict[str, str] = {}  # employee number -> key, last full pull
        self._bearer: RefreshingBearer | None = None  # auth = "oauth" only
        self._columns: list[str] | None = None  # the report schema's aliases, last full pull
        self.schema_note: str | None = None  # why the last full pull's schema went unchecked

    # -- HrisSource ------------------------------------------------------------------

    def scan_full(self) -> Iterator[RawRecord]:
        rows = self._report({})
        self._key_by_number = self._directory(rows)
        self._check_schema(rows)
        yield from (self._record(i, row) for i, row in enumerate(rows))

    def supports_delta(self) -> bool:
        return False  # RaaS has no delta; prompts could narrow a report, not diff it (§2.1)

    def fetch_one(self, employee_id: str) -> RawRecord | None:
        prompt = self.config.fetch_prompt
        rows = self._report({prompt: employee_id} if prompt else {})
        if prompt is None:
            self._key_by_number = self._directory(rows)
        records = [self._record(i, row) for i, row in enumerate(rows)]
        found = [r for r in records if r.key == employee_id]
        if prompt is not None and len(found) != len(records):
            # The prompt was ignored or means something else: trusting the first row
            # would resync somebody else.
            others = sorted({r.key or "(no key)" for r in records} - {employee_id})
            raise FeedError(f"Workday GET {self._where({prompt: employee_id})}: prompt "
                            f"{prompt}={employee_id!r} returned other workers too "
                            f"({', '.join(others[:3])}); check hris.fetch_prompt")
        if len(found) > 1:
            raise FeedError(f"Workday GET {self._where({})}: worker {employee_id!r} appears "
                            f"{len(found)} times in the report")
        if not found:
            return None
        if prompt is not None:
            self._learn_manager(found[0].raw)
        return found[0]

    def fields(self, record: RawRecord) -> dict[str, str | None]:
        raw = record.raw
        if not isinstance(raw, dict):
            raise RecordError(record.locator, None, None,
                              f"is a JSON {type(raw).__name__}, not an object")
        split = self.config.multi_value_separator or None
        if not _cell(raw, self._key_alias, record.locator, split):
            raise RecordError(record.locator, self._key_alias, None,
                              "has no value for the key alias (columns.employee_id), so "
                              "the row cannot be matched to a worker")
        out: dict[str, str | None] = {}
        for canonical, alias in self.config.columns.items():
            if canonical == "status":
                continue
            # One person has one key and one manager: several values are refused.
            one = split if canonical in ("employee_id", "manager_id") else None
            value = _cell(raw, alias, record.locator, one)
            if canonical in ("hire_date", "termination_date") and value:
                value = plain_date(value)
            out[canonical] = value
        out["status"] = self._status(raw, record.locator, out.get("hire_date"))
        if "manager_id" in out:
            out["manager_id"] = self._manager(out["manager_id"])
        for name, alias in self.config.attributes.items():
            out[f"attributes.{name}"] = _cell(raw, alias, record.locator)
        return out

    def columns_present(self) -> set[str] | None:
        return None  # rows leave empty cells out (inferred); the schema is checked instead

    def source_columns(self) -> list[str] | None:
        """The aliases the report's schema listed at the last full pull, in report order
        (None when the schema was not read)."""
        return list(self._columns) if self._columns is not None else None

    def describe(self) -> str:
        return f"Workday report {self.config.report_url}"

    def effective_prompts(self) -> dict[str, str]:
        """The prompts a pull now would send, placeholders resolved."""
        return resolve_all(self.config.prompts, self._now())

    def notes(self) -> list[tuple[str, str]]:
        """What doctor shows besides the record count: the authentication in use, the
        prompts as sent, and whether the report's columns were checked."""
        config = self.config
        out = [("hris auth", describe_auth(config, self._bearer))]
        if config.prompts:
            shown = []
            for name, value in self.effective_prompts().items():
                template = config.prompts[name]
                shown.append(f"{name}={value}" + (f" (from {template!r})"
                                                   if is_dynamic(template) else ""))
            out.append(("hris prompts", "sent as " + ", ".join(shown)))
        if self.schema_note is not None:
            out.append(("hris schema", self.schema_note))
        elif self._columns is not None:
            out.append(("hris schema", f"the report's schema lists {len(self._columns)} "
                        "columns; every configured alias is among them"))
        return out

    # -- records ---------------------------------------------------------------------

    def _record(self, index: int, row: Any) -> RawRecord:
        # A row without a usable key is kept, not dropped: fields() reports it.
        try:
            key = (_cell(row, self._key_alias, "") if isinstance(row, dict) else None) or ""
        except RecordError:
            key = ""
        where = f"workday:{ENTRIES}[{index}]"
        locator = f"workday:worker {key} ({ENTRIES}[{index}])" if key else where
        return RawRecord(key, digest_of([self._interpretation, row]), locator, row)

    def _directory(self, rows: list[Any]) -> dict[str, str]:
        if not self._number_alias:
            return {}
        out: dict[str, str] = {}
        for row in rows:
            if isinstance(row, dict):
                number = _scalar(row.get(self._number_alias))
                key = _scalar(row.get(self._key_alias))
                if number and key:
                    out[number] = key
        return out

    def _manager(self, value: str | None) -> str | None:
        """The manager's key, from a reference that holds their employee number.

        A number that no worker in the report carries is passed on unchanged: it is not
        any current worker's key, and the engine leaves an unknown manager alone.
        """
        if value is None or self.config.manager_reference == "employee_id":
            return value
        return self._key_by_number.get(value, value)

    def _learn_manager(self, row: Any) -> None:
        """After a prompted fetch_one the directory may lack the worker's manager: one
        whole report fills it in here, so that fields() itself never calls Workday."""
        alias = self.config.columns.get("manager_id")
        if alias is None or self.config.manager_reference == "employee_id":
            return
        value = _scalar(row.get(alias)) if isinstance(row, dict) else None
        if value and value not in self._key_by_number:
            self._key_by_number = self._directory(self._report({}))

    def _status(self, raw: dict[str, Any], locator: str, hire_date: str | None) -> str | None:
        """Canonical status words from the flags, else the text status (see
        WorkdayStatusRules). Flag values are checked, never guessed."""
        rules = self.config.status
        split = self.config.multi_value_separator or None

        def flag(alias: str | None) -> bool | None:
            if alias is None:
                return None
            return flag_cell(raw, alias, locator, split, self.config.true_values,
                             self.config.false_values)

        terminated, active, leave = (flag(rules.terminated_flag), flag(rules.active_flag),
                                     flag(rules.leave_flag))
        if terminated:
            return "terminated"
        if active is False:
            if rules.future_hire_is_pre_hire and self._after_today(hire_date):
                return "pre_hire"
            return rules.inactive_status
        if leave:
            return "leave"
        text_alias = self.config.columns.get("status")
        text = _cell(raw, text_alias, locator, split) if text_alias else None
        if text:
            return text
        return "active" if (terminated, active, leave) != (None, None, None) else None

    def _after_today(self, value: str | None) -> bool:
        if not value:
            return False
        for fmt in self.config.date_formats:
            try:
                return datetime.strptime(value, fmt).date() > self._today()
            except ValueError:
                continue
        return False  # unreadable: validation reports the hire date itself

    def _today(self) -> date:
        return self._now().date()

    # -- HTTP ------------------------------------------------------------------------

    def _report(self, extra_prompts: dict[str, str]) -> list[Any]:
        prompts = {**self.effective_prompts(), **extra_prompts}
        where = self._where(prompts)
        response = self._get(prompts, where)
        return parse_report(response.content, response.headers.get("content-type", ""),
                            where)

    def _where(self, prompts: dict[str, str]) -> str:
        query = httpx.QueryParams({"format": "json", **prompts})
        return f"{self.config.report_url}?{query}"

    def _open_client(self) -> httpx.Client:
        # The token renewer runs on the same clock as everything else (tests advance it).
        client, self._bearer = open_client(self.config, lambda: self._now().timestamp())
        return client

    def _get(self, prompts: dict[str, str], where: str) -> httpx.Response:
        """One report call, retried while throttled, failing transiently or cut off."""
        config = self.config
        what = f"Workday GET {where}"
        try:
            answer = read_with_retries(
                lambda: self._send("GET", config.report_url, what,
                                   params={"format": "json", **prompts},
                                   timeout=self._report_timeout()),
                self._retry, what=what, sleep=self._sleep, now=self._now,
                jitter=self._jitter, tls_setting="hris.verify_tls")
        except TokenRefused as exc:
            # The stored client credentials or refresh token were refused: like a 401,
            # the source could not be read (not a verdict on the data).
            raise SourceUnavailable(str(exc), SourceUnavailable.AUTH) from None
        response = answer.response
        status = response.status_code
        if status == 200:
            return response
        detail = error_text(response.content)
        if status in self._retry.statuses:
            why = answer.gave_up_because(self._retry, "still failing", "hris.max_wait_seconds")
            raise answer_error(f"{what}: HTTP {status} ({detail or 'no reason given'}); {why}",
                               status)
        if status in (401, 403):
            verdict = "unauthorised" if status == 401 else "forbidden"
            raise answer_error(f"{what}: {status} {verdict} ({detail or 'no reason given'}); "
                               f"check {credentials_hint(config)}", status)
        raise answer_error(f"{what}: HTTP {status}" + (f" ({detail})" if detail else ""),
                           status)

    def _report_timeout(self) -> httpx.Timeout:
        """The report is computed whole per call (no paging, §2.1): its answer may take
        minutes to start on a large tenant, so reading waits report_timeout_seconds."""
        config = self.config
        return httpx.Timeout(config.timeout_seconds, read=config.report_timeout_seconds)

    def _check_schema(self, rows: list[Any]) -> None:
        """Refuse a report that lost a configured alias (a renamed column would read as
        empty for everyone). The schema is one more request; when it cannot be had, the
        pull goes on unchecked and says so once."""
        config = self.config
        self._columns, self.schema_note = None, None
        if not config.schema_check:
            self.schema_note = "not checked (hris.schema_check = false)"
            return
        where = f"{config.report_url}?{config.schema_query}"
        try:
            columns = self._schema(where)
        except SchemaUnreadable as exc:
            self.schema_note = (f"Workday GET {where}: could not read the report's schema "
                                f"({exc}), so renamed columns were not checked this time; "
                                "set hris.schema_check = false if the tenant serves none")
            log.warning("%s", self.schema_note)
            return
        # Rows are consulted too: one integration notes that the schema can leave out a
        # column that is empty in every row (singer-io/tap-workday-raas
        # discover.enrich_schema_from_data); a column any row carries is not missing.
        present = set(columns).union(*(r for r in rows if isinstance(r, dict)))
        absent = missing_columns(config.configured_columns(), present,
                                 config.optional_columns)
        if absent:
            raise FeedError(f"Workday GET {where}: "
                            + describe_missing(absent, "the report's schema"))
        self._columns = columns

    def _schema(self, where: str) -> list[str]:
        """The report schema's aliases; SchemaUnreadable for any failure (one try: a
        missing check is noted, not worth waiting for)."""
        try:
            response = self._send("GET", where, f"Workday GET {where}",
                                  headers={"Accept": "application/xml"})
        except httpx.HTTPError as exc:
            raise SchemaUnreadable(f"{type(exc).__name__}: {exc or 'no detail'}") from None
        except FeedError as exc:  # too large, or a redirect
            raise SchemaUnreadable(str(exc)) from None
        except TokenRefused as exc:
            raise SchemaUnreadable(str(exc)) from None
        if response.status_code != 200:
            detail = error_text(response.content)
            raise SchemaUnreadable(f"HTTP {response.status_code}"
                                   + (f": {detail}" if detail else ""))
        return report_columns(response.content)
