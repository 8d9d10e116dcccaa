"""The SCIM connector's transport: one shared httpx.AsyncClient, the bearer token, bounded
answers, retried reads and error classification.

The bearer token is only ever held by the client's default headers: no message built
here contains it, and server/exception text is redacted before it is quoted. Shared by
``scim.ScimTarget`` (single requests) and ``scim_bulk.ScimBulkWriter`` (/Bulk).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from rostersync.sync.config import ScimTargetConfig, secret_from_env
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.http_limits import (
    AnswerLimits,
    AnswerRefused,
    DeadlinePassed,
    send_within_async,
)
from rostersync.sync.connectors.lms_http import pooled_client
from rostersync.sync.connectors.scim_errors import answer_error, parse_retry_after
from rostersync.sync.models import ErrorClass

# Reads retry a throttled or unavailable LMS a few times, never waiting longer than this
# at once; a longer Retry-After ends the read with the error, for the run to report.
READ_ATTEMPTS = 4
READ_RETRY_MAX_SECONDS = 15.0

SCIM_JSON = "application/scim+json"


class ScimClient:
    def __init__(self, config: ScimTargetConfig, token: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.config = config
        self._sleep = sleep
        if token is None:
            token = secret_from_env(config.token_env, "lms.token_env")
        headers = {"Accept": SCIM_JSON}
        self._token = None
        if token is not None:
            token = token.strip()  # a trailing newline from `export X=$(cat file)` is common
            # httpx/h11 quote an illegal header value in their exception: refuse it here.
            if not token or any(not 0x21 <= ord(ch) <= 0x7E for ch in token):
                where = f" from ${config.token_env}" if config.token_env else ""
                raise ConnectorError(f"the SCIM bearer token{where} is empty or contains "
                                     "spaces or non-ASCII characters", ErrorClass.auth)
            self._token = token
            headers["Authorization"] = f"Bearer {token}"
        self.http = pooled_client(config, base_url=config.base_url, headers=headers,
                                  transport=transport)
        self._limits = AnswerLimits.of(config, "lms")

    async def aclose(self) -> None:
        await self.http.aclose()

    async def read(self, url: str, what: str,
                   params: dict[str, Any] | None = None) -> httpx.Response:
        """A GET, retried when the LMS throttles or stumbles: a read is safe to repeat, and
        one 429 in the middle of listing every account should not fail the whole run.
        Writes are not retried here: the executor owns their retries and records each."""
        for attempt in range(1, READ_ATTEMPTS + 1):
            try:
                response = await self.send("GET", url, what, params=params)
            except ConnectorError as exc:
                if attempt == READ_ATTEMPTS or exc.error_class is not ErrorClass.transient:
                    raise
                await self._sleep(min(READ_RETRY_MAX_SECONDS, 2.0 ** attempt))
                continue
            if response.status_code not in (429, 502, 503, 504) or attempt == READ_ATTEMPTS:
                return response
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > READ_RETRY_MAX_SECONDS:
                return response  # longer than a run should stall: report it instead
            await self._sleep(wait if wait is not None else 2.0 ** attempt)
        raise AssertionError("unreachable")

    def redact(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    async def send(self, method: str, url: str, what: str, *,
                   body: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
                   headers: dict[str, str] | None = None) -> httpx.Response:
        """One HTTP exchange; network failures become transient ConnectorErrors."""
        if body is not None:
            headers = {**(headers or {}), "Content-Type": SCIM_JSON}
        content = None if body is None else json.dumps(body, ensure_ascii=False).encode()
        try:
            # Within lms.max_answer_bytes and lms.request_deadline_seconds; a redirect is
            # refused, never followed (sync/connectors/http_limits.py).
            request = self.http.build_request(method, url, content=content, params=params,
                                              headers=headers)
            return await send_within_async(self.http, request, self._limits,
                                           f"SCIM {what} failed")
        except AnswerRefused as exc:  # a setting must change (base_url, max_answer_bytes)
            raise ConnectorError(self.redact(str(exc)), ErrorClass.mapping) from None
        except DeadlinePassed as exc:
            raise ConnectorError(f"SCIM {what} failed: {exc}", ErrorClass.transient) from exc
        except httpx.TimeoutException as exc:
            raise ConnectorError(f"SCIM {what} failed: no answer from {self.config.base_url} "
                                 f"within {self.config.timeout_seconds:g}s "
                                 f"({type(exc).__name__})", ErrorClass.transient) from exc
        except httpx.TransportError as exc:
            detail = self.redact(str(exc)) or "connection failed"
            raise ConnectorError(f"SCIM {what} failed: network error talking to "
                                 f"{self.config.base_url}: {type(exc).__name__}: {detail}",
                                 ErrorClass.transient) from exc

    def error(self, response: httpx.Response, what: str) -> ConnectorError:
        return answer_error(response, what, self.redact, self.config.token_env)

    @staticmethod
    def json_object(response: httpx.Response, what: str) -> dict[str, Any]:
        """The answer's JSON object; anything else is a transient failure."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ConnectorError(f"SCIM {what} failed: {response.status_code} answer is not a "
                                 "JSON object", ErrorClass.transient, status=response.status_code)
        return data
