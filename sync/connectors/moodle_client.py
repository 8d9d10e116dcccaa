"""Moodle's REST transport (docs/moodle.md §6.1): one web service call, bounded, retried
and classified, shared by the target and its collaborators (batches, cohorts, doctor).

Every call is ``POST {wwwroot}/webservice/rest/server.php`` with ``wsfunction``,
``moodlewsrestformat=json`` and ``wstoken``, its parameters PHP-bracket encoded. Moodle
reports failures inside HTTP 200 answers, as an exception object or a ``warnings`` list,
so no answer counts as success before its body has been read.

The token is held by this object only; every message built from a server or network
text is redacted before it is quoted, so the token never reaches a log or a report.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from rostersync.sync.config import secret_from_env
from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.http_limits import (
    AnswerLimits,
    AnswerRefused,
    DeadlinePassed,
    send_within_async,
)
from rostersync.sync.connectors.lms_http import pooled_client
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.moodle_wire import (
    encode_params,
    fault_error,
    fault_of,
    http_error,
    one_line,
)
from rostersync.sync.models import ErrorClass

log = logging.getLogger(__name__)

ENDPOINT = "/webservice/rest/server.php"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_TOKEN = re.compile(r"[A-Za-z0-9]+")  # Moodle reads wstoken as PARAM_ALPHANUM


class MoodleClient:
    """The site's web service endpoint, as one authenticated caller."""

    def __init__(self, config: MoodleTargetConfig, *, client: httpx.AsyncClient | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.config = config
        self._sleep = sleep
        self._jitter = jitter
        where = f"${config.token_env}" if config.token_env else "lms.token_env"
        token = (secret_from_env(config.token_env, "lms.token_env") or "").strip()
        if not token:
            raise ConnectorError("Moodle needs a web service token: name the environment "
                                 "variable that holds it in lms.token_env", ErrorClass.auth)
        if not _TOKEN.fullmatch(token):
            # Moodle would silently strip the other characters and answer invalidtoken.
            raise ConnectorError(f"the Moodle token in {where} has characters a Moodle "
                                 "token never has (letters and digits only)", ErrorClass.auth)
        self._token = token
        self._url = config.base_url + ENDPOINT
        self._owns_client = client is None
        self._client = client or pooled_client(config)
        self._limits = AnswerLimits.of(config, "lms")

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    def redact(self, text: str) -> str:
        return text.replace(self._token, "***")

    def listing_wait(self) -> float:
        """A listing is answered only once every user's details are built (5-10 ms a user
        on a 4.3 site on loopback: 5,300 users took over 30 s), so it may take up to the
        whole-request deadline rather than the per-read timeout."""
        return max(self.config.timeout_seconds, self.config.request_deadline_seconds)

    async def call(self, function: str, params: dict[str, Any], what: str, *,
                   wait: float | None = None) -> Any:
        """One web service call, retried (bounded) while Moodle throttles or stumbles.

        Writes are retried too: a repeated create meets "username already exists",
        which the executor resolves by looking the account up (a conflict), and every
        other write sets values, so repeating it is harmless.
        """
        pairs = encode_params(params)
        query = {"wsfunction": function, "moodlewsrestformat": "json"}
        if self.config.token_in == "query":
            query["wstoken"] = self._token
        else:
            pairs.insert(0, ("wstoken", self._token))
        body = urlencode(pairs).encode()
        label = f"Moodle {function} ({what})"
        for attempt in range(1, self.config.max_attempts + 1):
            try:
                return await self._exchange(query, body, label, wait)
            except ConnectorError as failure:
                if failure.error_class is not ErrorClass.transient \
                        or attempt == self.config.max_attempts:
                    raise
                wait = failure.retry_after
                if wait is None:
                    wait = self.config.backoff_base_seconds * 2 ** (attempt - 1) \
                        * (0.5 + self._jitter() / 2)
                if wait > self.config.max_retry_wait_seconds:
                    raise ConnectorError(f"{failure.message}; asked to wait {wait:g}s, more "
                                         f"than lms.max_retry_wait_seconds", failure.error_class,
                                         status=failure.status, retry_after=wait,
                                         code=failure.code) from None
                log.info("%s: attempt %d failed (%s); retrying in %.1fs", label, attempt,
                         failure.message, wait)
                await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    async def _exchange(self, query: dict[str, str], body: bytes, label: str,
                        wait: float | None = None) -> Any:
        try:
            # Within lms.max_answer_bytes and lms.request_deadline_seconds; a redirect is
            # refused, never followed (sync/connectors/http_limits.py).
            request = self._client.build_request(
                "POST", self._url, params=query, content=body, headers=FORM,
                timeout=httpx.Timeout(wait, pool=None) if wait else httpx.USE_CLIENT_DEFAULT)
            response = await send_within_async(self._client, request, self._limits,
                                               f"{label} failed")
        except AnswerRefused as exc:  # a setting must change (base_url, max_answer_bytes)
            raise ConnectorError(self.redact(str(exc)), ErrorClass.mapping) from None
        except DeadlinePassed as exc:
            raise ConnectorError(f"{label} failed: {exc}", ErrorClass.transient) from None
        except httpx.TimeoutException as exc:
            key = "lms.request_deadline_seconds" if wait else "lms.timeout_seconds"
            raise ConnectorError(f"{label} failed: no answer within "
                                 f"{wait or self.config.timeout_seconds:g}s "
                                 f"({type(exc).__name__}; {key})",
                                 ErrorClass.transient) from None
        except httpx.TransportError as exc:
            detail = self.redact(str(exc)) or "connection failed"
            raise ConnectorError(f"{label} failed: network error talking to "
                                 f"{self.config.base_url}: {type(exc).__name__}: {detail}",
                                 ErrorClass.transient) from None
        status = response.status_code
        if status != 200:
            raise http_error(label, status, response.text, response.headers.get("Retry-After"),
                             self.redact, self._url, self.config.token_env)
        try:
            data = json.loads(response.content)
        except ValueError:
            raise ConnectorError(f"{label} failed: the answer is not JSON (malformed or cut "
                                 f"short): {one_line(response.text, self.redact)!r}",
                                 ErrorClass.transient, status=status) from None
        fault = fault_of(data)
        if fault is not None:
            raise fault_error(fault, label, self.redact, self.config.token_env)
        return data
