"""What one HTTP answer may cost a connector: bytes, time in all, redirects, and pages.

A hostile or broken server must not be able to hold a pull forever or exhaust memory:

- bytes: httpx reads a whole body into memory; here the body is streamed and refused as
  soon as it passes the connector's cap (a Content-Length beyond the cap is refused
  before anything is read). The cap counts decoded bytes, so a small gzip body that
  inflates past it is refused too;
- time: httpx's read timeout is per chunk, so a server sending one byte every few
  seconds never times out; each request here also has an overall deadline. The async
  exchange is cancelled at the deadline; the sync one checks it after every chunk, so it
  ends at most one read timeout later;
- redirects: no connector follows one (httpx's default, which is kept): the credentials
  would go along to wherever it points. A 3xx answer becomes one sentence naming its
  Location, so the operator can fix the base URL;
- pages: a listing is ended once it passes a configured number of pages (a server that
  keeps saying "next" with a new link each time would otherwise never end).

Refusals are sentences naming the endpoint, the limit and the setting; each connector
wraps them in its own error. A passed deadline is a ``DeadlinePassed``, which is an
``httpx.ReadTimeout``, so it is retried wherever a timeout is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

MIB = 1024 * 1024
# HRIS exports of 100k+ people run to tens of MB; an LMS page or single answer is far
# smaller (a whole-site Moodle listing is the largest LMS answer).
HRIS_MAX_ANSWER_BYTES = 512 * MIB
LMS_MAX_ANSWER_BYTES = 128 * MIB
HRIS_DEADLINE_SECONDS = 900.0
LMS_DEADLINE_SECONDS = 300.0
MAX_PAGES = 100_000  # pages of one listing; with 100 per page, 10 million rows
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_DROPPED_HEADERS = {"content-encoding", "transfer-encoding", "content-length"}


class AnswerRefused(Exception):
    """An answer refused for its size or because it redirects: one sentence, not worth
    another try (the server would answer the same)."""


class DeadlinePassed(httpx.ReadTimeout):
    """The answer was not complete within the request's overall deadline."""


@dataclass(frozen=True, slots=True)
class AnswerLimits:
    max_bytes: int
    deadline_seconds: float
    prefix: str  # where the settings live: "hris" or "lms"

    @classmethod
    def of(cls, section: Any, prefix: str) -> AnswerLimits:
        """The limits a connector's config section sets (``max_answer_bytes``,
        ``request_deadline_seconds``), named by where that section lives."""
        return cls(section.max_answer_bytes, section.request_deadline_seconds, prefix)

    def too_large(self, what: str, size: int | None = None) -> str:
        said = f" (it declared {size} bytes)" if size is not None else ""
        return (f"{what}: the answer is larger than {self.max_bytes} bytes{said}, the cap "
                f"set by {self.prefix}.max_answer_bytes; refused unread rather than held in "
                "memory (raise the cap if the export really is that large)")

    def too_slow(self) -> str:
        # Without the endpoint: connectors put it in front, as for any timeout.
        return (f"the answer was not complete within {self.deadline_seconds:g}s "
                f"({self.prefix}.request_deadline_seconds): the server sent it too slowly "
                "or not at all")


def redirect_refusal(response: httpx.Response, what: str, prefix: str) -> str | None:
    """One sentence for a redirect answer (never followed), else None."""
    if response.status_code not in REDIRECTS:  # 304 Not Modified is no redirect
        return None
    location = " ".join(response.headers.get("Location", "").split())[:200] or "(no Location)"
    return (f"{what}: the server answered {response.status_code} redirecting to "
            f"{location}; redirects are not followed (the credentials would go along), so "
            f"set {prefix}.base_url to the address that answers")


def declared_size(response: httpx.Response) -> int | None:
    try:
        return int(response.headers["Content-Length"])
    except (KeyError, ValueError):
        return None


def _whole(response: httpx.Response, body: bytes) -> httpx.Response:
    """The streamed answer as an ordinary read one (body already decoded)."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in _DROPPED_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=response.request, extensions=response.extensions)


def _over(limits: AnswerLimits, response: httpx.Response, what: str) -> None:
    refusal = redirect_refusal(response, what, limits.prefix)
    if refusal is not None:
        raise AnswerRefused(refusal)
    size = declared_size(response)
    if size is not None and size > limits.max_bytes \
            and "content-encoding" not in response.headers:
        raise AnswerRefused(limits.too_large(what, size))


def send_within(client: httpx.Client, request: httpx.Request, limits: AnswerLimits,
                what: str, clock: Callable[[], float] = time.monotonic,
                auth: Any = httpx.USE_CLIENT_DEFAULT) -> httpx.Response:
    """Send and read one answer within the limits (AnswerRefused, DeadlinePassed).
    ``auth``: the client's (the default), or None for a request that carries its own
    credentials (a token grant, sent from inside the client's auth flow)."""
    deadline = clock() + limits.deadline_seconds
    response = client.send(request, stream=True, auth=auth)
    try:
        _over(limits, response, what)
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > limits.max_bytes:
                raise AnswerRefused(limits.too_large(what))
            if clock() > deadline:
                raise DeadlinePassed(limits.too_slow(), request=request)
    finally:
        response.close()
    return _whole(response, bytes(body))


async def send_within_async(client: httpx.AsyncClient, request: httpx.Request,
                            limits: AnswerLimits, what: str) -> httpx.Response:
    """The async twin of send_within; the whole exchange, headers included, is
    cancelled at the deadline."""
    try:
        async with asyncio.timeout(limits.deadline_seconds):
            response = await client.send(request, stream=True)
            try:
                _over(limits, response, what)
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > limits.max_bytes:
                        raise AnswerRefused(limits.too_large(what))
            finally:
                await response.aclose()
    except TimeoutError:
        raise DeadlinePassed(limits.too_slow(), request=request) from None
    return _whole(response, bytes(body))


def too_many_pages(pages: int, max_pages: int, prefix: str) -> str | None:
    """Why reading page ``pages`` (1-based) is refused, or None within the maximum
    (the connector puts the endpoint in front)."""
    if pages <= max_pages:
        return None
    return (f"still more pages after {max_pages} ({prefix}.max_pages); the listing was "
            "stopped rather than followed without end")
