"""When a person's employment state takes effect, in their own time zone (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rostersync.sync.models import Person, Status


@dataclass(frozen=True)
class Lifecycle:
    state: Status  # the state in force now
    # When the state changes next by itself (a scheduled termination or a start date).
    next_change_at: datetime | None = None
    next_state: Status | None = None
    # When a termination in force took effect (None when HR gave no date).
    effective_since: datetime | None = None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_midnight(day: date, zone: str) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=_zone(zone)).astimezone(UTC)


def termination_instant(day: date, zone: str, cutoff: str) -> datetime:
    """A termination date is the last working day: with "end_of_day" access ends when
    the next local day begins; with "start_of_day" it ends as the day begins."""
    if cutoff == "start_of_day":
        return local_midnight(day, zone)
    return local_midnight(day + timedelta(days=1), zone)


def lifecycle(person: Person, now: datetime, cutoff: str = "end_of_day") -> Lifecycle:
    term = person.termination_date
    # A rehire keeps the old termination date in many HR systems: a hire date after it
    # means the termination is history.
    if term is not None and person.hire_date is not None and person.hire_date > term:
        term = None
    if term is not None:
        effective = termination_instant(term, person.timezone, cutoff)
        if now >= effective:
            return Lifecycle(Status.terminated, effective_since=effective)
        base = person.status if person.status != Status.terminated else Status.active
        return Lifecycle(base, effective, Status.terminated)
    if person.status == Status.terminated:
        return Lifecycle(Status.terminated)
    if person.hire_date is not None and person.status in (Status.active, Status.pre_hire):
        start = local_midnight(person.hire_date, person.timezone)
        if now < start:
            return Lifecycle(Status.pre_hire, start, Status.active)
        if person.status == Status.pre_hire:
            return Lifecycle(Status.active)
    return Lifecycle(person.status)
