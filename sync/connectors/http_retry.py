"""Retrying one HRIS read over HTTP: what the BambooHR, Workday and SuccessFactors
sources share (docs/connectors.md, "Throttling"; docs/reliability.md, "Faults").

A read changes nothing, so it is safe to send again. Two kinds of failure get another
try, with one bounded, jittered backoff:

- an answer the source names as passing (429 and 503, say): ``Retry-After`` is waited
  for when given (seconds or an HTTP date) up to a limit, else the wait doubles per try
  with jitter, since many servers send no ``Retry-After``;
- a transport failure of a server that is there: the connection reset (as it opened or
  mid-answer) or closed before the answer was complete, or no answer within the timeout.
  One reset in the middle of a pull should not throw the whole pull away.

A connection refused, an unknown host or a TLS certificate the client does not trust is
not retried: the next try would meet the same refusal, so the run reports it at once. The decisions are pure
functions; ``read_with_retries`` is the loop, with the sending, the sleeping, the clock
and the jitter handed in (tests inject all four).
"""

from __future__ import annotations

import email.utils
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from rostersync.sync.connectors.base import FeedError, HrisSource, SourceUnavailable
from rostersync.sync.connectors.http_limits import AnswerLimits, AnswerRefused, send_within

# Failures inside an exchange that a second try can get past (see the module docstring).
PASSING_TRANSPORT_FAILURES = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ConnectTimeout,
                              httpx.ReadError, httpx.WriteError, httpx.CloseError,
                              httpx.RemoteProtocolError)


class HttpSource(HrisSource):
    """An HRIS source over HTTP: one httpx client, opened on first use (secrets are read
    at connect time, never before) and released by close()."""

    _client: httpx.Client | None = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = self._open_client()
        return self._client

    def _open_client(self) -> httpx.Client:
        raise NotImplementedError

    def _send(self, method: str, url: str, what: str, **request: Any) -> httpx.Response:
        """One request, its answer read within hris.max_answer_bytes and
        hris.request_deadline_seconds (sync/connectors/http_limits.py): a larger answer or
        a redirect is a FeedError naming ``what``; a passed deadline is a read timeout."""
        config = self.config  # type: ignore[attr-defined]  # every HTTP source config has them
        limits = AnswerLimits.of(config, "hris")
        client = self._http()
        try:
            return send_within(client, client.build_request(method, url, **request), limits,
                               what)
        except AnswerRefused as exc:
            raise FeedError(str(exc)) from None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    statuses: frozenset[int]  # answers worth another try
    max_attempts: int  # tries per call, the first included
    max_wait_seconds: float  # the longest Retry-After honoured; a longer one ends the call
    backoff_base_seconds: float  # the first wait when no Retry-After is given


@dataclass(frozen=True, slots=True)
class Answer:
    """The last answer of a call, and how it got there."""

    response: httpx.Response
    attempts: int
    wait: float  # the wait the last answer asked for (0 unless it is a retry status)

    def gave_up_because(self, policy: RetryPolicy, still: str, limit_note: str = "") -> str:
        """Why a retry status was not tried again: a wait beyond the limit, or no tries
        left (``still`` is the source's wording: "still throttled", "still failing")."""
        if self.wait > policy.max_wait_seconds:
            note = f" ({limit_note})" if limit_note else ""
            return (f"asked to wait {self.wait:g}s, more than "
                    f"{policy.max_wait_seconds:g}s{note}")
        return f"{still} after {self.attempts} tries"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as delay-seconds or an HTTP date (RFC 9110 §10.2.3), in seconds from
    ``now`` (default: the current time); None when missing or unreadable. Every connector
    reads it here."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None  # unreadable: back off as if it were missing


def backoff_seconds(base: float, attempt: int, jitter: float) -> float:
    """base, 2*base, 4*base... after tries 1, 2, 3..., each scaled into [50%, 100%] by
    ``jitter`` in [0, 1] so that clients failed together do not return together."""
    return base * 2 ** (attempt - 1) * (0.5 + jitter / 2)


def passing(exc: httpx.HTTPError) -> bool:
    """A transport failure that another try can get past: one inside the exchange, or a
    connection the server accepted and then reset (httpx reports that as a ConnectError
    too, but unlike a refusal it says the server is there)."""
    if isinstance(exc, PASSING_TRANSPORT_FAILURES):
        return True
    return isinstance(exc, httpx.ConnectError) and any(
        isinstance(cause, ConnectionResetError | ConnectionAbortedError)
        for cause in _causes(exc))


def untrusted_certificate(exc: BaseException) -> bool:
    """The server's TLS certificate failed verification (anywhere in the cause chain)."""
    return any(isinstance(cause, ssl.SSLCertVerificationError) for cause in _causes(exc))


def _causes(exc: BaseException) -> list[BaseException]:
    """The exception and what it was raised from (httpx wraps httpcore wraps OSError)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def transport_message(what: str, exc: httpx.HTTPError, attempts: int,
                      tls_setting: str) -> str:
    """One sentence for a call the transport ended: the endpoint, the failure, how many
    tries, and for an untrusted certificate which setting would loosen verification."""
    text = f"{what}: {type(exc).__name__}: {str(exc) or 'no detail'}"
    if untrusted_certificate(exc):
        text += (f"; the server's TLS certificate is not trusted (if this endpoint "
                 f"really uses a private or self-signed certificate, set {tls_setting} "
                 "= false for it)")
    if attempts > 1:
        text += f"; still failing after {attempts} tries"
    return text


def read_with_retries(send: Callable[[], httpx.Response], policy: RetryPolicy, *,
                      what: str, sleep: Callable[[float], None],
                      now: Callable[[], datetime], jitter: Callable[[], float],
                      tls_setting: str) -> Answer:
    """Send one read until it gets an answer that is not a retry status, the tries run
    out, or a Retry-After asks for more than the policy allows; the caller turns the
    answer into records or an error. A transport failure that is not passing, or that
    outlasts the tries, is a SourceUnavailable naming ``what``: the HRIS was not read."""
    for attempt in range(1, policy.max_attempts + 1):
        last = attempt == policy.max_attempts
        try:
            response = send()
        except httpx.HTTPError as exc:
            if passing(exc) and not last:
                sleep(backoff_seconds(policy.backoff_base_seconds, attempt, jitter()))
                continue
            raise SourceUnavailable(transport_message(what, exc, attempt, tls_setting)
                                    ) from None
        if response.status_code not in policy.statuses:
            return Answer(response, attempt, 0.0)
        given = retry_after_seconds(response.headers.get("Retry-After"), now())
        wait = (given if given is not None
                else backoff_seconds(policy.backoff_base_seconds, attempt, jitter()))
        if last or wait > policy.max_wait_seconds:
            return Answer(response, attempt, wait)
        sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def answer_error(message: str, status: int) -> FeedError:
    """The error for an HRIS answer that is not a success, by what it says about the
    source: 401/403 refused our credentials; a server error (5xx) or a throttle (429)
    that outlasted the retries means the source could not be read; any other answer
    (400, 404...) came from a server that is there and read our request, so it is
    the feed's (or the configuration's) problem, rejected like a broken export."""
    if status in (401, 403):
        return SourceUnavailable(message, SourceUnavailable.AUTH)
    if status >= 500 or status == 429:
        return SourceUnavailable(message, SourceUnavailable.UNREACHABLE)
    return FeedError(message)
