"""BambooHR over HTTP: the client, one retried call, and small readers of its answers.

Shared by the source's report, employee, table and dataset reads (docs/bamboohr.md §1).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from rostersync.sync.config import BambooHRSourceConfig, secret_from_env
from rostersync.sync.connectors.base import FeedError
from rostersync.sync.connectors.http_retry import (
    HttpSource,
    RetryPolicy,
    answer_error,
    read_with_retries,
)

NO_DATE = "0000-00-00"  # how BambooHR may spell an empty date, besides null (§1.4)


class BambooHRHttp(HttpSource):
    """The HTTP half of the BambooHR source; the subclass sets these in __init__."""

    config: BambooHRSourceConfig
    _retry: RetryPolicy
    _sleep: Callable[[float], None]
    _now: Callable[[], datetime]
    _jitter: Callable[[], float]

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
            lambda: self._send(method, url, what, content=content, headers=headers),
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
    found = (headers.get("X-BambooHR-Error-Message")
             or headers.get("X-BambooHR-Error-Messsage") or "").strip()
    if not found and "problem+json" in headers.get("Content-Type", ""):
        # The datasets API explains errors in an RFC 7807 body (§1.2 E).
        try:
            body = response.json()
        except ValueError:
            return ""
        detail = body.get("detail") if isinstance(body, dict) else None
        return str(detail).strip()[:300] if detail else ""
    return found


def configured_fields(config: BambooHRSourceConfig) -> list[tuple[str, str]]:
    """(config key, field id) for every field the config asks for by name (the implicit
    fallbacks are only a second source, never required)."""
    return ([("hris.fields", field) for field in config.fields]
            + [(f"hris.attributes.{name}", field) for name, field in config.attributes.items()])


def directory(employees: list[Any]) -> tuple[set[str], dict[str, str]]:
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


def text(raw: dict[str, Any], field: str | None) -> str | None:
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
