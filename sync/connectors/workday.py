"""Workday as an HRIS source (docs/workday.md §2.1), over report-as-a-service with sync httpx.

The engine calls sources from a worker thread, so this uses ``httpx.Client``.

- Full pull: ONE ``GET {report}?format=json`` plus the configured prompts. RaaS has no
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

import html
import json
import random
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any

import httpx

from sync.config import secret_from_env
from sync.connectors.base import FeedError, RawRecord, RecordError
from sync.connectors.http_retry import (
    HttpSource,
    RetryPolicy,
    answer_error,
    read_with_retries,
)
from sync.connectors.workday_config import WorkdaySourceConfig
from sync.models import digest_of

ENTRIES = "Report_Entry"
# A date with a zone suffix, as XML output writes it (2025-07-31-07:00, §2.1).
_ZONED_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})")
_FAULT_TEXT = re.compile(r"<(?:[\w.-]+:)?(faultstring|Message)\b[^>]*>(.*?)</", re.S)


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

    # -- HrisSource ------------------------------------------------------------------

    def scan_full(self) -> Iterator[RawRecord]:
        rows = self._report({})
        self._key_by_number = self._directory(rows)
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
        if not _cell(raw, self._key_alias, record.locator):
            raise RecordError(record.locator, self._key_alias, None,
                              "has no value for the key alias (columns.employee_id), so "
                              "the row cannot be matched to a worker")
        out: dict[str, str | None] = {}
        for canonical, alias in self.config.columns.items():
            if canonical == "status":
                continue
            value = _cell(raw, alias, record.locator)
            if canonical in ("hire_date", "termination_date") and value:
                value = _plain_date(value)
            out[canonical] = value
        out["status"] = self._status(raw, record.locator, out.get("hire_date"))
        if "manager_id" in out:
            out["manager_id"] = self._manager(out["manager_id"])
        for name, alias in self.config.attributes.items():
            out[f"attributes.{name}"] = _cell(raw, alias, record.locator)
        return out

    def columns_present(self) -> set[str] | None:
        return None  # rows leave empty cells out (inferred), so absence proves nothing

    def describe(self) -> str:
        return f"Workday report {self.config.report_url}"

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

        def flag(alias: str | None) -> bool | None:
            if alias is None:
                return None
            try:
                return _flag(raw.get(alias), self.config.true_values, self.config.false_values)
            except ValueError:
                raise RecordError(locator, alias, str(raw.get(alias)),
                                  "is not a yes/no flag; add the spelling to "
                                  "hris.true_values or hris.false_values") from None

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
        text = _cell(raw, text_alias, locator) if text_alias else None
        if text:
            return text
        return "active" if (terminated, active, leave) != (None, None, None) else None

    def _after_today(self, value: str | None) -> bool:
        for fmt in self.config.date_formats if value else ():
            try:
                return datetime.strptime(value, fmt).date() > self._today()
            except ValueError:
                continue
        return False  # unreadable: validation reports the hire date itself

    def _today(self) -> date:
        return self._now().date()

    # -- HTTP ------------------------------------------------------------------------

    def _report(self, extra_prompts: dict[str, str]) -> list[Any]:
        prompts = {**self.config.prompts, **extra_prompts}
        where = self._where(prompts)
        response = self._get(prompts, where)
        return parse_report(response.content, response.headers.get("content-type", ""),
                            where)

    def _where(self, prompts: dict[str, str]) -> str:
        query = httpx.QueryParams({"format": "json", **prompts})
        return f"{self.config.report_url}?{query}"

    def _open_client(self) -> httpx.Client:
        config = self.config
        headers = {"Accept": "application/json"}
        auth = None
        if config.auth == "basic":
            password = secret_from_env(config.password_env, "hris.password_env") or ""
            auth = httpx.BasicAuth(config.user or "", password)
        else:
            token = secret_from_env(config.token_env, "hris.token_env") or ""
            headers["Authorization"] = "Bearer " + token
        return httpx.Client(auth=auth, headers=headers, timeout=config.timeout_seconds,
                            verify=config.verify_tls)

    def _get(self, prompts: dict[str, str], where: str) -> httpx.Response:
        """One report call, retried while throttled, failing transiently or cut off."""
        config = self.config
        what = f"Workday GET {where}"
        answer = read_with_retries(
            lambda: self._http().get(config.report_url, params={"format": "json", **prompts}),
            self._retry, what=what, sleep=self._sleep, now=self._now, jitter=self._jitter,
            tls_setting="hris.verify_tls")
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
                               f"check {self._credentials()}", status)
        raise answer_error(f"{what}: HTTP {status}" + (f" ({detail})" if detail else ""),
                           status)

    def _credentials(self) -> str:
        config = self.config
        if config.auth == "basic":
            return (f"hris.user ({config.user}) and the password in the environment "
                    f"variable named by hris.password_env ({config.password_env})")
        return (f"the token in the environment variable named by hris.token_env "
                f"({config.token_env}); it may have expired")


# -- pure helpers -------------------------------------------------------------------


def parse_report(body: bytes, content_type: str, where: str) -> list[Any]:
    """The rows of a RaaS JSON answer; FeedError naming the URL and what is wrong."""
    what = f"Workday GET {where}"
    if not body.strip():
        raise FeedError(f"{what}: the answer is empty")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FeedError(f"{what}: the answer is not UTF-8 (byte {exc.start})") from None
    try:
        answer = json.loads(text)
    except json.JSONDecodeError as exc:
        size = len(body)
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):
            raise FeedError(f"{what}: the JSON answer ends early after {size} bytes "
                            f"(truncated: {exc.msg})") from None
        kind = content_type.split(";")[0].strip() or "no Content-Type"
        raise FeedError(f"{what}: the answer is not valid JSON ({kind}, {size} bytes): "
                        f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(answer, dict):
        raise FeedError(f"{what}: the answer is a JSON {type(answer).__name__}, not an "
                        f"object with {ENTRIES}")
    if ENTRIES not in answer:
        if "error" in answer or "errors" in answer:
            raise FeedError(f"{what}: Workday reported an error: {error_text(body)}")
        if answer:
            raise FeedError(f"{what}: the answer has no {ENTRIES} (keys: "
                            f"{', '.join(sorted(answer)[:5])})")
        return []  # an empty object: a report with no rows (inferred)
    rows = answer[ENTRIES]
    if isinstance(rows, dict):
        return [rows]  # one row written as an object, not a list (inferred)
    if not isinstance(rows, list):
        raise FeedError(f"{what}: {ENTRIES} is a JSON {type(rows).__name__}, not a list")
    return rows


def error_text(body: bytes) -> str:
    """The reason in a Workday error body: a SOAP Fault's faultstring (or a wd:Message),
    or the JSON error/errors shape (inferred); short, one line."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    found: str | None = None
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict):
            parts = [str(data["error"])] if data.get("error") else []
            for item in data.get("errors") or []:
                if isinstance(item, dict) and item.get("error"):
                    parts.append(str(item["error"]))
            found = "; ".join(dict.fromkeys(parts)) or None
    elif text.startswith("<"):
        match = _FAULT_TEXT.search(text)
        found = html.unescape(match.group(2)) if match else None
    found = " ".join((found or "").split())
    return found[:300]


def _flag(value: Any, true_values: list[str], false_values: list[str]) -> bool | None:
    """A flag cell as a bool; None when empty or absent; ValueError when unreadable."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if not text:
        return None
    if text in true_values:
        return True
    if text in false_values:
        return False
    raise ValueError(text)


def _cell(row: dict[str, Any], alias: str, locator: str) -> str | None:
    """A cell as a stripped string; None for absent, null and blank.

    A multi-instance column arrives as a list (§2.1): one plain value is taken, an empty
    list is no value, anything else cannot be one field and is reported.
    """
    value = row.get(alias)
    if isinstance(value, list):
        if not value:
            return None
        if len(value) == 1 and not isinstance(value[0], dict | list):
            value = value[0]
        else:
            raise RecordError(locator, alias, None, f"holds {len(value)} values (a "
                              "multi-instance column); the report must give one value")
    if isinstance(value, dict):
        raise RecordError(locator, alias, None, "holds an object, not a value; the report "
                          "column must be plain text")
    return _scalar(value)


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value).strip()
    return text or None


def _plain_date(value: str) -> str:
    match = _ZONED_DATE.fullmatch(value)
    return match.group(1) if match else value
