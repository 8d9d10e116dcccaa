"""What a SCIM LMS's refusal means (RFC 7644 §3.12): its error class, its wait, and the
one sentence that names it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import ValidationError
from scim2_models import Error

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.connectors.http_retry import retry_after_seconds
from rostersync.sync.connectors.scim_payload import TOLERANT
from rostersync.sync.models import ErrorClass


def classify(status: int, scim_type: str | None) -> ErrorClass:
    if status == 429 or (status >= 500 and status != 501):
        return ErrorClass.transient
    if status in (401, 403):
        return ErrorClass.auth
    if status in (409, 412) or scim_type == "uniqueness":
        return ErrorClass.conflict
    if status == 404:
        return ErrorClass.not_found
    if status in (405, 501):
        # RFC 7644 §3.12: 501 = "operation not supported". Retrying cannot help; it is
        # a setup matter, like LmsTarget.delete on a target that cannot delete.
        return ErrorClass.mapping
    # Other 4xx (400 invalidValue, invalidSyntax, invalidPath, noTarget, mutability...):
    # the request carried values the LMS refuses; HR data is the usual cause.
    return ErrorClass.data


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP-date (RFC 9110 §10.2.3), in seconds."""
    return retry_after_seconds(value)


def answer_error(response: httpx.Response, what: str, redact: Callable[[str], str],
                 token_env: str | None) -> ConnectorError:
    """A ConnectorError from an error response, reading the SCIM Error body if any."""
    status, scim_type, detail = response.status_code, None, ""
    try:
        error = Error.model_validate(response.json(), scim_policy=TOLERANT)
        scim_type, detail = error.scim_type, error.detail or ""
    except (ValueError, ValidationError):  # not JSON, or not a SCIM Error
        pass
    # Without a SCIM detail, quote the start of the body (an HTML proxy page, say).
    # One line; redact before cutting, or a cut could leave a prefix of the token.
    detail = " ".join(redact(detail or response.text).split())[:300]
    detail = detail or response.reason_phrase
    error_class = classify(status, scim_type)
    hint = ""
    if error_class is ErrorClass.auth and token_env:
        hint = f" (check the token in ${token_env})"
    head = f"{status} {scim_type}" if scim_type else str(status)
    return ConnectorError(
        f"SCIM {what} failed: {head}: {detail}{hint}", error_class, status=status,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
        code=scim_type)


def refused_before_sending(exc: ValidationError, what: str) -> ConnectorError:
    """scim2-models refused to build a request: the values break the User schema."""
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"])
    scim_type = first["type"].removeprefix("scim_") if first["type"].startswith(
        "scim_") else None
    return ConnectorError(f"SCIM {what} failed before sending: {first['msg']}"
                          + (f" ({field})" if field else ""), ErrorClass.data,
                          code=scim_type)
