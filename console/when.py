"""Expiry parsing shared by `ops suppress --until` and the console's suppression form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([mhdw])$")


class WhenError(ValueError):
    pass


def parse_when(text: str, now: datetime) -> datetime:
    """An ISO date/time (UTC unless it says otherwise) or 30m / 12h / 7d / 2w."""
    match = _RELATIVE.match(text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match.group(2)]
        return now + timedelta(**{unit: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise WhenError(f"{text!r}: expected an ISO date/time such as 2026-12-31 or "
                        "2026-12-31T18:00, or a duration such as 12h, 7d, 2w") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment <= now:
        raise WhenError(f"{text!r} is in the past")
    return moment
