"""The Canvas REST transport (docs/canvas.md §7.1), shared by the user half
(sync.connectors.canvas) and the audience half (sync.connectors.canvas_groups) of the
Canvas target: the HTTP session and its bearer token, paging by Link headers, pacing by
the rate-limit bucket, bounded retries, and error answers turned into ConnectorErrors.

It knows nothing of users or groups; what it answers is JSON checked only for shape. The
bearer token lives only in the request headers and is redacted from every message built
here.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httpx

from rostersync.sync.config import secret_from_env
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.canvas_wire import (
    bearer_token,
    failure,
    failure_hint,
    is_permission_refusal,
    is_throttled,
    next_page,
    remaining_units,
)
from rostersync.sync.connectors.http_limits import (
    AnswerLimits,
    AnswerRefused,
    DeadlinePassed,
    send_within_async,
    too_many_pages,
)
from rostersync.sync.connectors.http_retry import retry_after_seconds
from rostersync.sync.connectors.lms_http import pooled_client
from rostersync.sync.models import ErrorClass

# Answers to a read worth asking again: the server stumbled (a write is not repeated on
# these: it may have landed, and the executor owns its retries).
_RETRY_READ = frozenset({429, 500, 502, 503, 504})


class Answer(NamedTuple):
    """A response and its parsed JSON (None when the status was not 2xx)."""

    response: httpx.Response
    data: Any


class CanvasClient:
    """One Canvas instance's API, as configured by a CanvasTargetConfig.

    Paths given to the calls are relative to ``/api/v1``; ``account_path`` is the
    configured account's (``/accounts/<id>``).
    """

    def __init__(self, config: CanvasTargetConfig, *, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._sleep = sleep
        self._jitter = jitter
        self.api = f"{config.base_url}/api/v1"
        self.account_path = f"/accounts/{quote(config.account_id, safe=':')}"
        self._headers = {"Accept": "application/json"}
        self._token = bearer_token(secret_from_env(config.token_env, "lms.token_env"),
                                   config.token_env)
        if self._token:
            self._headers["Authorization"] = f"Bearer {self._token}"
        self._owns_client = client is None
        self._client = client or pooled_client(config)
        self._pause = 0.0  # seconds the next request waits for the bucket to drain
        self._limits = AnswerLimits.of(config, "lms")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    # -- pacing and retries --------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _backoff(self, attempt: int) -> float:
        # Exponential with jitter between half and all of the step (§0: no Retry-After).
        step = self.config.backoff_base_seconds * 2 ** (attempt - 1)
        return min(self.config.max_wait_seconds, step * (0.5 + self._jitter() / 2))

    def _note_remaining(self, response: httpx.Response) -> float | None:
        left = remaining_units(response.headers.get("X-Rate-Limit-Remaining"))
        low = self.config.low_water_remaining
        if left is not None and left < low:
            self._pause = max(self._pause, (low - left) / self.config.leak_units_per_second)
        return left

    async def call(self, method: str, path: str, what: str, *,
                   form: dict[str, str] | None = None,
                   params: dict[str, Any] | None = None) -> Answer:
        """One call to ``/api/v1`` + ``path``; see ``call_url``."""
        return await self.call_url(method, self.api + path, what, form=form, params=params)

    async def call_url(self, method: str, url: str, what: str, *,
                       form: dict[str, str] | None = None,
                       params: dict[str, Any] | None = None) -> Answer:
        """One call with bounded retries; returns 2xx answers and error statuses alike.

        A throttled 403 is retried whatever the method: Canvas refused it before doing
        anything (§7.1). Network errors, 5xx and unreadable 2xx bodies are retried for
        reads only.
        """
        read = method == "GET"
        attempts = self.config.max_attempts
        for attempt in range(1, attempts + 1):
            if self._pause > 0:
                pause, self._pause = min(self._pause, self.config.max_wait_seconds), 0.0
                await self._sleep(pause)
            try:
                request = self._client.build_request(method, url, headers=self._headers,
                                                     data=form, params=params)
                # Within lms.max_answer_bytes and lms.request_deadline_seconds; a redirect
                # is refused, never followed (sync/connectors/http_limits.py).
                response = await send_within_async(self._client, request, self._limits,
                                                   f"Canvas {what} failed")
            except AnswerRefused as exc:  # a setting must change: not worth another try
                raise ConnectorError(self._redact(str(exc)), ErrorClass.mapping) from None
            except httpx.HTTPError as exc:
                if read and attempt < attempts:
                    await self._sleep(self._backoff(attempt))
                    continue
                raise self._network_error(exc, what) from None
            left = self._note_remaining(response)
            status = response.status_code
            throttled = status == 403 and is_throttled(status, response.text,
                                                       self.config.rate_limit_text)
            if throttled or (read and status in _RETRY_READ):
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is None:
                    wait = self._backoff(attempt)
                    if throttled and left is not None:
                        # Back off until the bucket has drained to the low-water mark.
                        wait = min(self.config.max_wait_seconds, max(wait, self._pause))
                self._pause = 0.0  # this wait covers the drain
                if attempt == attempts or wait > self.config.max_wait_seconds:
                    raise self.error(response, what, attempts=attempt, wait=wait)
                await self._sleep(wait)
                continue
            if not 200 <= status < 300:
                return Answer(response, None)
            try:
                return Answer(response, response.json())
            except ValueError:
                if read and attempt < attempts:
                    await self._sleep(self._backoff(attempt))
                    continue
                raise ConnectorError(
                    f"Canvas {what} failed: the {status} answer is not JSON (malformed or "
                    f"cut short: {' '.join(response.text[:80].split())!r})"
                    + ("" if read else "; the change may or may not have been made"),
                    ErrorClass.transient, status=status) from None
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # -- errors --------------------------------------------------------------------------

    def _network_error(self, exc: httpx.HTTPError, what: str) -> ConnectorError:
        if isinstance(exc, DeadlinePassed):
            why = str(exc)
        elif isinstance(exc, httpx.TimeoutException):
            why = f"no answer within {self.config.timeout_seconds:g}s"
        else:
            why = f"network error: {self._redact(str(exc)) or 'connection failed'}"
        return ConnectorError(f"Canvas {what} failed: {why} ({type(exc).__name__}, "
                              f"{self.config.base_url})", ErrorClass.transient)

    def error(self, response: httpx.Response, what: str, *, attempts: int = 1,
              wait: float | None = None) -> ConnectorError:
        """The ConnectorError for an error answer: classified, one line, token redacted."""
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        error_class, text, code = failure(status, response.text, body,
                                          self.config.rate_limit_text)
        # One line; redact before cutting, or a cut could leave a prefix of the token.
        detail = " ".join(self._redact(text or response.reason_phrase).split())[:300]
        hint = failure_hint(status, error_class, attempts=attempts, wait=wait,
                            max_wait=self.config.max_wait_seconds, token_env=self.config.token_env,
                            refused=is_permission_refusal(status, body))
        return ConnectorError(f"Canvas {what} failed: {status} {detail}{hint}", error_class,
                              status=status, code=code,
                              retry_after=retry_after_seconds(response.headers.get("Retry-After")))

    # -- shapes --------------------------------------------------------------------------

    async def pages(self, path: str, what: str,
                    params: dict[str, Any] | None = None) -> AsyncIterator[list[Any]]:
        """The pages of a list endpoint, following Link rel="next" as opaque URLs (§7.1)."""
        url: str | None = self.api + path
        query: dict[str, Any] | None = {**(params or {}), "per_page": self.config.per_page}
        seen: set[str] = set()
        page = 1
        while url is not None:
            page_what = f"{what} (GET {urlsplit(url).path}, page {page})"
            answer = await self.call_url("GET", url, page_what, params=query)
            if answer.data is None:
                raise self.error(answer.response, page_what)
            if not isinstance(answer.data, list):
                raise ConnectorError(f"Canvas {page_what} failed: the answer is not a JSON "
                                     "list", ErrorClass.transient)
            yield answer.data
            url = next_page(answer.response.headers.get("Link"), str(answer.response.url),
                            self.api, seen, page_what)
            endless = url and too_many_pages(page + 1, self.config.max_pages, "lms")
            if endless:
                raise ConnectorError(f"Canvas {page_what} failed: {endless}",
                                     ErrorClass.transient)
            query, page = None, page + 1

    async def listing(self, path: str, what: str,
                      params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every object of a list endpoint, all pages (entries that are not objects are
        left out)."""
        out: list[dict[str, Any]] = []
        async for page in self.pages(path, what, params):
            out += [item for item in page if isinstance(item, dict)]
        return out

    async def write(self, method: str, path: str, what: str,
                    form: dict[str, str]) -> dict[str, Any]:
        """A write whose answer must be a JSON object; an error answer raises."""
        answer = await self.call(method, path, what, form=form)
        if answer.data is None:
            raise self.error(answer.response, what)
        if not isinstance(answer.data, dict):
            raise ConnectorError(f"Canvas {what}: the {answer.response.status_code} answer is "
                                 "not a JSON object; the change may or may not have been made",
                                 ErrorClass.transient)
        return answer.data
