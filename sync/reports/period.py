"""A report's period: `--since 90d` (or an ISO date/time) up to `--until` (default now).

An explicit --until makes a report reproducible: everything recorded after it is left
out, so the same command over the same database prints the same document.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class PeriodError(ValueError):
    """One sentence naming the option and the value."""


@dataclass(frozen=True)
class Period:
    since: datetime
    until: datetime

    @property
    def days(self) -> float:
        return (self.until - self.since).total_seconds() / 86400

    def as_dict(self) -> dict[str, str]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat()}


def _moment(option: str, text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PeriodError(f"{option} {text!r}: expected a duration such as 30d, 12h, 2w or "
                          "an ISO date/time such as 2026-09-01 or 2026-09-01T08:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_period(since: str, until: str | None, now: datetime) -> Period:
    """`since`: 30m / 12h / 90d / 2w back from `until`, or an ISO date/time (UTC unless
    it says otherwise). `until`: an ISO date/time, default now."""
    end = now if until is None else _moment("--until", until)
    if end > now:
        raise PeriodError(f"--until {until!r} is in the future: a report covers only "
                          "recorded history")
    match = _RELATIVE.match(since.strip())
    if match:
        start = end - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    else:
        start = _moment("--since", since)
    if start >= end:
        raise PeriodError(f"--since {since!r} is not before the end of the period "
                          f"({end.isoformat()})")
    return Period(start.astimezone(UTC), end.astimezone(UTC))
