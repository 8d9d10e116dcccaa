"""SuccessFactors: one PerPerson reduced to what is in force on a day (pure; §3.2, §3.6).

The connector (sync.connectors.successfactors) fetches; this module decides which
employment, job segment and personal segment count, the canonical status and the
termination date, and reads configured paths out of the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Literal, overload

from rostersync.sync.connectors.odata import (
    ODataFormatError,
    current_index,
    dated_segments,
    results_of,
    segment_span,
    value_text,
)
from rostersync.sync.connectors.successfactors_config import NAVIGATIONS, SuccessFactorsSourceConfig
from rostersync.sync.models import Status


class ViewError(Exception):
    def __init__(self, field: str | None, value: str | None, message: str) -> None:
        super().__init__(message)
        self.field, self.value, self.message = field, value, message


@dataclass(slots=True)
class PersonView:
    """A PerPerson reduced to what is in force today: one employment, its user and
    current job segment, the current personal segment, the primary email."""

    person: dict[str, Any]
    personal: dict[str, Any] | None
    email: dict[str, Any] | None
    employment: dict[str, Any] | None
    user: dict[str, Any] | None
    job: dict[str, Any] | None
    termination: dict[str, Any] | None
    status: str
    termination_date: str | None

    @classmethod
    def build(cls, raw: dict[str, Any], today: date,
              config: SuccessFactorsSourceConfig) -> PersonView:
        try:
            personal = dated_segments(raw.get("personalInfoNav"))
            at = current_index(personal, today)
            if at is None:  # a future hire: the names they will start with
                at = next((i for i, s in enumerate(personal) if segment_span(s)[0] > today),
                          None)
            emails = [e for e in results_of(raw.get("emailNav")) or [] if isinstance(e, dict)]
            primary = next((e for e in emails if e.get("isPrimary") in (True, "true")), None)
            employment, jobs, now_at = _choose_employment(raw, today, config)
        except ODataFormatError as exc:
            raise ViewError("startDate/endDate", None, str(exc)) from None
        job = jobs[now_at] if now_at is not None else None
        if job is None or now_at is None:
            status, ended = Status.pre_hire.value, None  # only future segments: not started
        else:
            status = _status_of(job, config, strict=True)
            ended = _termination_date(jobs, now_at, config)
            if ended is None and status == Status.terminated:
                ended = _date_at(employment, "endDate", "employmentNav/endDate")
        user = employment.get("userNav")
        info = raw.get("personEmpTerminationInfoNav")
        return cls(raw, personal[at] if at is not None else None,
                   primary or (emails[0] if emails else None), employment,
                   user if isinstance(user, dict) else None, job,
                   info if isinstance(info, dict) else None, status, ended)


def _choose_employment(raw: dict[str, Any], today: date, config: SuccessFactorsSourceConfig
                       ) -> tuple[dict[str, Any], list[dict[str, Any]], int | None]:
    """The employment that counts (§3.6): one whose current segment is active or leave
    (a standard one before a global assignment, then the latest); else the latest with
    a current segment; else the earliest starting in the future (a pre-hire)."""
    candidates = []
    for employment in results_of(raw.get("employmentNav")) or []:
        if isinstance(employment, dict):
            jobs = dated_segments(employment.get("jobInfoNav"))
            if jobs:
                candidates.append((employment, jobs, current_index(jobs, today)))
    if not candidates:
        raise ViewError("employmentNav/jobInfoNav", None,
                        "has no employment with a job segment from fromDate on")

    def start(item: tuple[dict[str, Any], list[dict[str, Any]], int | None]) -> date:
        jobs, at = item[1], item[2]
        return segment_span(jobs[at if at is not None else 0])[0]

    working = [c for c in candidates if c[2] is not None and _status_of(
        c[1][c[2]], config, strict=False) in (Status.active, Status.leave)]
    if working:
        return max(working, key=lambda c: (c[0].get("assignmentClass") != "GA", start(c)))
    current = [c for c in candidates if c[2] is not None]
    if current:
        return max(current, key=start)
    return min(candidates, key=start)


@overload
def _status_of(job: dict[str, Any], config: SuccessFactorsSourceConfig,
               strict: Literal[True]) -> str: ...
@overload
def _status_of(job: dict[str, Any], config: SuccessFactorsSourceConfig,
               strict: bool) -> str | None: ...


def _status_of(job: dict[str, Any], config: SuccessFactorsSourceConfig,
               strict: bool) -> str | None:
    """emplStatusNav.externalCode mapped by hris.status_codes. Option ids (emplStatus)
    differ per tenant and are never interpreted (§3.2)."""
    nav = job.get("emplStatusNav")
    code = text_of(nav.get("externalCode")) if isinstance(nav, dict) else None
    if code is None:
        if not strict:
            return None
        raise ViewError("jobInfoNav/emplStatusNav/externalCode", text_of(job.get("emplStatus")),
                        "is missing, so the employment status is unknown")
    mapped = config.status_codes.get(code)
    if mapped is not None:
        return mapped.value
    if config.unknown_status_code != "report":
        return Status(config.unknown_status_code).value
    if not strict:
        return None
    raise ViewError("jobInfoNav/emplStatusNav/externalCode", code,
                    "is not a known status code; add it to hris.status_codes")


def _termination_date(jobs: list[dict[str, Any]], now_at: int,
                      config: SuccessFactorsSourceConfig) -> str | None:
    """The day before the terminated segment starts (§3.6): the current one or the
    first future one. Consecutive terminated segments count from the first seen."""
    terminated = [_status_of(j, config, strict=False) == Status.terminated for j in jobs]
    hit = next((i for i in range(now_at, len(jobs)) if terminated[i]), None)
    if hit is None:
        return None
    while hit > 0 and terminated[hit - 1]:
        hit -= 1
    return (segment_span(jobs[hit])[0] - timedelta(days=1)).isoformat()


def read_path(view: PersonView, path: str, *, as_date: bool) -> str | None:
    """The text at a configured path ("a|b": the first non-empty alternative)."""
    for alternative in path.split("|"):
        head, _, rest = alternative.partition(".")
        value: Any = getattr(view, head) if head in NAVIGATIONS else view.person
        for part in (rest if head in NAVIGATIONS else alternative).split("."):
            value = value.get(part) if isinstance(value, dict) else None
        try:
            text = value_text(value, as_date=as_date)
        except ODataFormatError as exc:
            raise ViewError(alternative, str(value), str(exc)) from None
        if text:
            return text
    return None


def _date_at(entity: dict[str, Any], name: str, field: str) -> str | None:
    try:
        return value_text(entity.get(name), as_date=True)
    except ODataFormatError as exc:
        raise ViewError(field, str(entity.get(name)), str(exc)) from None


def signature(row: dict[str, Any], today: date) -> list[Any]:
    """Which segments are in force today (part of a record's digest)."""
    try:
        navs = [row.get("personalInfoNav")] + [
            e.get("jobInfoNav") for e in results_of(row.get("employmentNav")) or []
            if isinstance(e, dict)]
        return [current_index(dated_segments(nav), today) for nav in navs]
    except ODataFormatError:
        return []  # fields() reports the bad date


def text_of(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None
