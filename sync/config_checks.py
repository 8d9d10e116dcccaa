"""Checks for config values that would otherwise fail only later, at every row or at
`serve`: date formats, time zones, cron expressions and the file's own encoding.

Each check raises ValueError with the reason in words; the config loader turns it into one
sentence naming the file and the key.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# Day 23 of month 11: a format that loses the day, or swaps day and month into an
# impossible date, cannot give this date back.
_PROBE = date(2024, 11, 23)


def check_date_format(fmt: str) -> str:
    """A strptime format that reads a whole date (year, month and day) back as written."""
    try:
        back = datetime.strptime(_PROBE.strftime(fmt), fmt).date()
    except ValueError as exc:  # "'Q' is a bad directive", "stray % in format"
        raise ValueError(f"{fmt!r} is not a usable date format ({exc}); use strftime "
                         "directives such as %Y-%m-%d") from None
    if back != _PROBE:
        raise ValueError(f"{fmt!r} does not read a whole date (it needs the year, month and "
                         "day, e.g. %Y-%m-%d or %d.%m.%Y)")
    return fmt


def check_date_formats(formats: list[str]) -> list[str]:
    if not formats:
        raise ValueError("must list at least one date format, e.g. [\"%Y-%m-%d\"]")
    for fmt in formats:
        check_date_format(fmt)
    return formats


def check_zone(name: str) -> str:
    """An IANA time zone name this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError("not a known IANA time zone; use a name such as UTC or "
                         "Europe/Berlin") from None
    return name


def check_cron(expr: str) -> str:
    """A five-field crontab expression the scheduler accepts (minute hour day month dow)."""
    from apscheduler.triggers.cron import CronTrigger  # only configs with a cron pay for it

    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"not a valid cron expression ({exc}); it takes five fields, minute "
                         "hour day-of-month month day-of-week, e.g. \"0 2 * * *\"") from None
    return expr


def undecodable(data: bytes, exc: UnicodeDecodeError) -> str:
    """Where in a file the first byte that is not UTF-8 is, for a person to find it."""
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return f"byte 0x{data[exc.start]:02x} at line {line}, column {column}"
