"""Webhook signatures (pure): BambooHR's and the generic signed JSON event's.

BambooHR (../shared/connectors.md §1.8, docs/bamboohr.md): headers X-BambooHR-Signature
(hex) and X-BambooHR-Timestamp; the signature is HMAC-SHA256(privateKey, raw body bytes
followed by the timestamp string). The generic event signs ``timestamp + "." + body``
and sends ``X-Rostersync-Signature: sha256=<hex>`` with ``X-Rostersync-Timestamp``.
Both timestamps are Unix seconds; a request outside the allowed skew is refused, and a
signature seen before is refused by the store (a replay inside the window).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

BAMBOOHR_SIGNATURE = "x-bamboohr-signature"
BAMBOOHR_TIMESTAMP = "x-bamboohr-timestamp"
GENERIC_SIGNATURE = "x-rostersync-signature"
GENERIC_TIMESTAMP = "x-rostersync-timestamp"


class SignatureError(Exception):
    """Why a request is refused, in one sentence (never containing the secret)."""


def bamboohr_signature(key: bytes, body: bytes, timestamp: str) -> str:
    return hmac.new(key, body + timestamp.encode(), hashlib.sha256).hexdigest()


def generic_signature(key: bytes, body: bytes, timestamp: str) -> str:
    return "sha256=" + hmac.new(key, timestamp.encode() + b"." + body,
                                hashlib.sha256).hexdigest()


def _timestamp(value: str | None, now: datetime, max_skew: float) -> None:
    if not value:
        raise SignatureError("the request carries no timestamp header")
    try:
        when = datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        raise SignatureError(f"the timestamp header {value[:40]!r} is not Unix seconds") from None
    skew = abs((now - when).total_seconds())
    if skew > max_skew:
        raise SignatureError(f"the timestamp is {skew:.0f}s away from now (more than "
                             f"{max_skew:g}s): a stale or replayed request")


def verify_bamboohr(key: bytes, body: bytes, headers: dict[str, str], now: datetime,
                    max_skew: float) -> str:
    """Check a BambooHR webhook; returns the signature (for replay detection)."""
    return _verify(key, body, headers, now, max_skew, BAMBOOHR_SIGNATURE, BAMBOOHR_TIMESTAMP,
                   bamboohr_signature)


def verify_generic(key: bytes, body: bytes, headers: dict[str, str], now: datetime,
                   max_skew: float) -> str:
    """Check a generic signed event; returns the signature (for replay detection)."""
    return _verify(key, body, headers, now, max_skew, GENERIC_SIGNATURE, GENERIC_TIMESTAMP,
                   generic_signature)


def _verify(key: bytes, body: bytes, headers: dict[str, str], now: datetime, max_skew: float,
            signature_header: str, timestamp_header: str,
            sign: Callable[[bytes, bytes, str], str]) -> str:
    given = headers.get(signature_header, "").strip().lower()
    if not given:
        raise SignatureError(f"the request is not signed (no {_shown(signature_header)} "
                             "header)")
    stamp = headers.get(timestamp_header, "").strip()
    _timestamp(stamp, now, max_skew)
    # compare_digest: the time taken does not tell how much of a forgery was right.
    if not hmac.compare_digest(given, sign(key, body, stamp)):
        raise SignatureError(f"the {_shown(signature_header)} does not match the body and "
                             "timestamp")
    return given


def _shown(header: str) -> str:
    """A header name as people write it (the listener lowercases what it receives)."""
    return "-".join(part.capitalize() if part != "bamboohr" else "BambooHR"
                    for part in header.split("-"))


def signature_hash(signature: str) -> str:
    """What the store keeps to recognise a replay."""
    return hashlib.sha256(signature.encode()).hexdigest()
