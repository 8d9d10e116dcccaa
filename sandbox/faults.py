"""Faults for the sandbox LMS: throttling, outages, a revoked token and records the LMS
refuses. The demo switches them on and off as its story goes; tests use them to get
error shapes from a real server instead of a mock.

A FaultPlan is the `fault` hook of sandbox.scim_server.ScimSandbox: it sees each
request's method and path and answers instead of the SCIM server, or lets it through.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

Answer = tuple[int, dict[str, str], bytes]

# Hook answers that are not a response: drop the connection (TCP reset) before the LMS sees
# the request, or after it has acted on it but before the client hears back, the case
# that makes a retried create dangerous.
RESET_BEFORE = "reset-before"
RESET_AFTER = "reset-after"

_SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_error(status: int, detail: str, scim_type: str | None = None) -> Answer:
    body = {"schemas": [_SCIM_ERROR], "status": str(status), "detail": detail}
    if scim_type:
        body["scimType"] = scim_type
    return status, {"Content-Type": "application/scim+json"}, json.dumps(body).encode()


class FaultPlan:
    """Thread-safe switches; time comes from ``now`` (monotonic seconds by default)."""

    wants_body = True  # it refuses chosen userNames on create, which are in the body

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._lock = threading.Lock()
        self.throttle_until = 0.0
        self.outage_until = 0.0
        self.revoked = False
        self.refused_ids: dict[str, Answer] = {}  # LMS id -> the answer to PATCHes of it
        self.refused_names: dict[str, Answer] = {}  # userName -> the answer to its POST
        self.slow_until = 0.0
        self.slow_seconds = 0.0
        self.resets: list[tuple[str | None, str]] = []  # (method or None, when) per reset
        self.requests = 0
        self.faults_served = 0

    # -- switches ----------------------------------------------------------------------

    def throttle(self, seconds: float) -> None:
        with self._lock:
            self.throttle_until = self._now() + seconds

    def outage(self, seconds: float) -> None:
        with self._lock:
            self.outage_until = self._now() + seconds

    def revoke_token(self, revoked: bool = True) -> None:
        with self._lock:
            self.revoked = revoked

    def clear(self) -> None:
        with self._lock:
            self.throttle_until = self.outage_until = 0.0
            self.revoked = False
            self.refused_ids.clear()
            self.refused_names.clear()
            self.slow_until = 0.0
            self.resets.clear()

    def slow(self, delay: float, for_seconds: float) -> None:
        with self._lock:
            self.slow_seconds = delay
            self.slow_until = self._now() + for_seconds

    def reset_connections(self, count: int = 1, *, method: str | None = None,
                          after: bool = False) -> None:
        """Reset the connection of the next ``count`` requests (of ``method``, if given):
        before the LMS sees them, or ``after`` it has acted and before it answers."""
        with self._lock:
            self.resets.extend([(method, RESET_AFTER if after else RESET_BEFORE)] * count)

    def refuse_create_of(self, user_name: str) -> None:
        """The LMS says the userName is taken (409 uniqueness) when it is created."""
        with self._lock:
            self.refused_names[user_name.lower()] = scim_error(
                409, "One or more of the attribute values are already in use",
                "uniqueness")

    def allow_create_of(self, user_name: str) -> None:
        """The legacy account holding the userName is gone: its create succeeds now."""
        with self._lock:
            self.refused_names.pop(user_name.lower(), None)

    def refuse_updates_of(self, lms_id: str, detail: str = "value rejected by the LMS") -> None:
        with self._lock:
            self.refused_ids[lms_id] = scim_error(400, detail, "invalidValue")

    def refusal(self, method: str, path: str, body: bytes) -> Answer | None:
        """The answer to one operation inside a /Bulk request: the LMS refuses the same
        records there as in single requests (a refused login, a refused update), while
        throttles, outages and resets concern the whole request."""
        with self._lock:
            answer = self._refusal(method, path, body)
            if answer is not None:
                self.faults_served += 1
            return answer

    def _refusal(self, method: str, path: str, body: bytes) -> Answer | None:
        if method == "PATCH":
            refused = self.refused_ids.get(path.rstrip("/").rsplit("/", 1)[-1])
            if refused is not None:
                return refused
        if method == "POST" and self.refused_names and path.endswith("/Users"):
            try:
                user_name = str(json.loads(body).get("userName", "")).lower()
            except (ValueError, AttributeError):
                user_name = ""
            if user_name in self.refused_names:
                return self.refused_names[user_name]
        return None

    # -- the hook --------------------------------------------------------------------------

    def __call__(self, method: str, path: str, body: bytes = b"") -> Answer | float | str | None:
        with self._lock:
            self.requests += 1
            answer = self._answer(method, path, body)
            if answer is not None:
                self.faults_served += 1
            return answer

    def _answer(self, method: str, path: str, body: bytes) -> Answer | float | str | None:
        if path.endswith("/ServiceProviderConfig"):
            return None
        now = self._now()
        if self.revoked:
            return scim_error(401, "the bearer token was revoked")
        if now < self.outage_until:
            return 503, {"Content-Type": "text/plain"}, b"LMS under maintenance"
        if now < self.throttle_until:
            retry = max(1, round(self.throttle_until - now))
            status, headers, body = scim_error(429, "too many requests")
            return status, {**headers, "Retry-After": str(retry)}, body
        refused = self._refusal(method, path, body)
        if refused is not None:
            return refused
        # After the refusals: a refused create must not use up a reset meant for one the
        # LMS would carry out.
        for i, (only, when) in enumerate(self.resets):
            if only is None or only == method:
                del self.resets[i]
                return when
        if now < self.slow_until:
            return self.slow_seconds
        return None
