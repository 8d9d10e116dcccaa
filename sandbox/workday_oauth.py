"""The Workday sandbox's OAuth token endpoint: a refresh-token grant issuing short-lived
access tokens, and the check of those tokens on the report URL.

    POST /ccx/oauth2/{tenant}/token
    Authorization: Basic base64(client_id:client_secret)   (or both in the form)
    grant_type=refresh_token&refresh_token=...

Behaviour and its sources:
- The path and the grant: faros-ai/airbyte-connectors
  ``sources/workday-source/src/workday.ts`` (getAccessToken posts grant_type,
  refresh_token, client_id, client_secret as a form to /ccx/oauth2/{tenant}/token);
  singer-io/tap-workday-raas ``client.py`` (the client id and secret as HTTP Basic).
- Access tokens expire (``expires_in``), and a call with an expired one is refused with
  401: tap-workday-raas refreshes 60 s before ``expires_in`` runs out and once on a 401.
  The lifetime here is configurable so that tests can cross it with the injected clock.
- Answers follow RFC 6749: §5.1 ``{"access_token", "token_type", "expires_in"}``; §5.2
  ``{"error": "invalid_grant" | "invalid_client" | "unsupported_grant_type"}`` with 400
  (401 for a client that failed to authenticate). Workday's exact error body is
  inferred.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import threading
from collections.abc import Callable
from datetime import datetime
from urllib.parse import parse_qs

Reply = tuple[int, dict[str, str], bytes]


class TokenIssuer:
    """Issues and checks access tokens for one API client; safe from any thread."""

    def __init__(self, client_id: str, client_secret: str, refresh_token: str, *,
                 lifetime_seconds: float, clock: Callable[[], datetime]) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}  # access token -> expiry (clock timestamp)
        self.issued = 0
        self.refused = 0
        # An outage of the token endpoint itself (a 503 from the tenant's gateway): the
        # credentials are fine, the answer says nothing about them.
        self.failing_with: int | None = None

    def grant(self, body: bytes, authorization: str) -> Reply:
        if self.failing_with is not None:
            return self.failing_with, {"Content-Type": "text/html"}, b"<html>Unavailable</html>"
        form = {k: v[-1] for k, v in parse_qs(body.decode("latin-1")).items()}
        client_id, client_secret = _client(authorization, form)
        if not (hmac.compare_digest(client_id.encode(), self.client_id.encode())
                and hmac.compare_digest(client_secret.encode(), self.client_secret.encode())):
            return self._refuse(401, "invalid_client", "Invalid client credentials")
        if form.get("grant_type") != "refresh_token":
            return self._refuse(400, "unsupported_grant_type",
                                f"grant_type {form.get('grant_type')!r} is not supported")
        if not hmac.compare_digest(form.get("refresh_token", "").encode(),
                                   self.refresh_token.encode()):
            return self._refuse(400, "invalid_grant", "Invalid refresh token")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._expiry[token] = self.clock().timestamp() + self.lifetime_seconds
            self.issued += 1
        body_out = {"access_token": token, "token_type": "Bearer",
                    "expires_in": int(self.lifetime_seconds)}
        return 200, {"Content-Type": "application/json"}, json.dumps(body_out).encode()

    def valid(self, token: str) -> bool:
        """Issued here and not yet expired (by the sandbox's clock)."""
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and self.clock().timestamp() < expiry

    def revoke_all(self) -> None:
        """Every access token stops working at once (a rotated key, say)."""
        with self._lock:
            self._expiry.clear()

    def _refuse(self, status: int, code: str, description: str) -> Reply:
        with self._lock:
            self.refused += 1
        body = {"error": code, "error_description": description}
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _client(authorization: str, form: dict[str, str]) -> tuple[str, str]:
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(credential, validate=True).decode() \
                .partition(":")
            return user, password
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
    return form.get("client_id", ""), form.get("client_secret", "")
