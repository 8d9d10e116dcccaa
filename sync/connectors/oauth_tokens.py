"""Short-lived OAuth access tokens for HRIS connectors: obtained from a grant, reused until
shortly before they expire, and obtained again once when the server answers 401.

Real tenants issue access tokens that last minutes to hours (Workday's refresh-token
grant at ``/ccx/oauth2/{tenant}/token``, SAP's SAML-bearer grant at ``/oauth/token``); a
fixed bearer read once from the environment fails every pull after it expires. The grant
itself differs per vendor, so a connector passes a small function that builds the token
request. The token request travels through the same ``httpx.Client`` as the data
requests, so it shares the client's TLS settings, timeouts and transport, and its answer
is read within the same limits as data answers (``grant_sender``): a hostile or broken
token endpoint cannot send an endless answer, drip one forever, or redirect the client's
credentials elsewhere.

Kept by hand rather than taken from an OAuth client library: the flow is a dozen lines
over httpx, and SAP's SAML-bearer grant is not covered by the common libraries anyway.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

import httpx

from rostersync.sync.connectors.base import FeedError, SourceUnavailable
from rostersync.sync.connectors.http_limits import AnswerLimits, AnswerRefused, send_within

# Refresh this long before the stated expiry: a pull that starts with a token about to
# expire would otherwise fail half-way through a multi-page read.
EXPIRY_MARGIN_SECONDS = 60.0
# When the grant's answer states no lifetime (expires_in is optional in RFC 6749 §5.1).
DEFAULT_LIFETIME_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class AccessToken:
    value: str
    expires_at: float  # on the clock given to RefreshingBearer (monotonic by default)


class TokenRefused(FeedError):
    """The token endpoint refused the stored credentials: every pull will fail until
    someone renews them, so this is reported, not retried."""


class TokenUnavailable(SourceUnavailable):
    """The token endpoint failed or throttled (5xx, 429): nothing is wrong with the
    credentials, the HRIS is only unreachable for now; the next run tries again."""


def read_token_answer(response: httpx.Response, now: float, what: str) -> AccessToken:
    """An RFC 6749 §5.1 answer (``access_token``, optional ``expires_in``) as a token; a
    refusal (§5.2) as one sentence naming the endpoint and the server's error code, never
    the credentials; a server failure as unreachable, not as a refusal."""
    if response.status_code == 429 or response.status_code >= 500:
        raise TokenUnavailable(f"{what} failed with HTTP {response.status_code} while "
                               "obtaining an access token; the next run tries again")
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("error") if isinstance(body, dict) else None
        detail = body.get("error_description") if isinstance(body, dict) else None
        said = f": {code}" + (f" ({detail})" if detail else "") if code else ""
        raise TokenRefused(f"{what} refused the token request with HTTP "
                           f"{response.status_code}{said}; renew the stored credentials")
    try:
        body = response.json()
        value = body["access_token"]
        lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME_SECONDS)
    except (ValueError, KeyError, TypeError):
        raise TokenRefused(f"{what} answered 200 without an access_token") from None
    if not isinstance(value, str) or not value:
        raise TokenRefused(f"{what} answered 200 without an access_token")
    return AccessToken(value, now + lifetime)


def grant_sender(client: httpx.Client, hris: Any,
                 what: str) -> Callable[[httpx.Request], httpx.Response]:
    """How RefreshingBearer sends a grant: through ``client`` without its auth (the grant
    carries its own credentials), the answer read within the ``hris`` section's limits, as
    data answers are; a refused answer (too large, a redirect) is one sentence; a passed
    deadline is a timeout, retried as one."""
    limits = AnswerLimits.of(hris, "hris")

    def send(request: httpx.Request) -> httpx.Response:
        try:
            return send_within(client, request, limits, what, auth=None)
        except AnswerRefused as exc:
            raise TokenRefused(str(exc)) from None

    return send


class RefreshingBearer(httpx.Auth):
    """``Authorization: Bearer`` from a grant, renewed before expiry and once on a 401.

    ``token_request`` builds the grant's request (reading its secrets at call time);
    ``what`` names the endpoint in messages. A second 401 right after a fresh token is
    the data endpoint's verdict and is passed on for the connector to report.
    """

    # The data answer is the caller's to read (within its limits); the token answer is
    # read by ``send``, within the same limits as data (size, deadline, no redirect).
    requires_response_body = False

    def __init__(self, token_request: Callable[[], httpx.Request], what: str, *,
                 send: Callable[[httpx.Request], httpx.Response],
                 now: Callable[[], float] = time.monotonic,
                 margin: float = EXPIRY_MARGIN_SECONDS,
                 renew_on: frozenset[int] = frozenset({401})) -> None:
        self._token_request = token_request
        self._send = send
        self._what = what
        self._now = now
        self._margin = margin
        self._renew_on = renew_on  # answers that may mean "this token is no longer good"
        self._token: AccessToken | None = None
        self._lock = threading.Lock()
        self.grants = 0  # tokens obtained so far (doctor and tests read it)

    def _fresh(self) -> AccessToken | None:
        with self._lock:
            token = self._token
        if token is None or self._now() >= token.expires_at - self._margin:
            return None
        return token

    def _store(self, response: httpx.Response) -> AccessToken:
        token = read_token_answer(response, self._now(), self._what)
        with self._lock:
            self._token = token
            self.grants += 1
        return token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response,
                                                              None]:
        token = self._fresh()
        if token is None:
            token = self._store(self._send(self._token_request()))
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code in self._renew_on:
            # Revoked or expired early (clock skew, a rotated key): one new token, one replay.
            response.read()  # a refusal's short body; frees its connection for the grant
            token = self._store(self._send(self._token_request()))
            request.headers["Authorization"] = f"Bearer {token.value}"
            yield request
