"""Pure formatting decisions (ages, severity colours, summaries): no IO, no widgets."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rich.text import Text

from rostersync.storage.db import parse_ts
from rostersync.sync.status import format_age

age = format_age


def age_since(text: str | None, now: datetime) -> str:
    moment = parse_ts(text)
    return "-" if moment is None else age((now - moment).total_seconds())


def staleness_state(seconds: float | None, warn_hours: float, crit_hours: float) -> str:
    """The same thresholds as sync.status, recomputed as the clock ticks."""
    if seconds is None:
        return "never"
    if seconds > crit_hours * 3600:
        return "critical"
    if seconds > warn_hours * 3600:
        return "warning"
    return "ok"


STATE_STYLE = {"ok": "green", "warning": "yellow", "critical": "bold red", "never": "red",
               "OK": "green", "WARNING": "yellow", "CRITICAL": "bold red"}

STATUS_STYLE = {"failed": "yellow", "dead": "bold red", "held": "magenta",
                "suppressed": "dim", "succeeded": "green", "pending": "cyan",
                "running": "bold cyan", "superseded": "dim", "partial": "yellow",
                "quarantined": "bold red", "rejected": "bold red"}


def _moment(text: str | None) -> datetime | None:
    """A stored UTC timestamp, or any ISO 8601 text with an offset (a payload's)."""
    if not text:
        return None
    try:
        return parse_ts(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def short_time(text: str | None) -> str:
    """'2026-11-26T09:00:00.000000Z' -> '2026-11-26 09:00:00 UTC': a reader at 3 a.m.
    must not have to guess the year or the zone."""
    moment = _moment(text)
    if moment is None:
        return text or "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def compact_time(text: str | None) -> str:
    """short_time without seconds, for narrow table columns: '2026-11-26 09:00 UTC'."""
    moment = _moment(text)
    if moment is None:
        return text or "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def zone(name: str | None) -> ZoneInfo | None:
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zoned_time(text: str | None, zone_name: str | None) -> str:
    """A moment in a person's own zone, with UTC beside it:
    '2026-12-06 00:00 Europe/Berlin (2026-12-05 23:00 UTC)'. UTC alone when the person's
    zone is UTC or unknown (then there is nothing to convert)."""
    moment = _moment(text)
    if moment is None:
        return text or "-"
    utc = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    local = zone(zone_name)
    if local is None or zone_name in ("UTC", "Etc/UTC"):
        return utc
    return f"{moment.astimezone(local):%Y-%m-%d %H:%M} {zone_name} ({utc})"


# -- drift details and run counts, as lines a person reads -------------------------------

def _scalar(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _label(key: Any) -> str:
    return str(key).replace("_", " ")


def _candidate(c: dict[str, Any]) -> str:
    name = c.get("user_name") or c.get("lms_id") or "?"
    key = c.get("external_key")
    return f"{name} ({'key ' + str(key) if key else 'no key'})"


def _value(key: str, value: Any) -> str:
    if key == "candidates" and isinstance(value, list):
        return ", ".join(_candidate(c) if isinstance(c, dict) else _scalar(c) for c in value)
    if isinstance(value, dict):
        return ", ".join(f"{_label(k)} {_value(str(k), v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(_value(key, v) for v in value) or "—"
    if isinstance(value, str) and key.endswith(("_at", "since", "until")) and _moment(value):
        return short_time(value)  # payloads carry ISO text; the operator reads it in UTC
    return _scalar(value)


def detail_lines(detail: Any) -> list[str]:
    """A drift detail as 'key: value' lines ('candidates: legacy-8 (no key), ...'), never
    a Python repr: the operator reads these during an incident."""
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return [detail] if detail else []
    if not isinstance(detail, dict):
        return [] if detail in (None, "") else [_scalar(detail)]
    return [f"{_label(k)}: {_value(str(k), v)}" for k, v in detail.items()]


def detail_summary(detail: Any, width: int = 60) -> str:
    """detail_lines on one line, for a list column."""
    return one_line("; ".join(detail_lines(detail)), width)


def count_rows(counts: dict[str, Any]) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    """A run's counts split into figures (label, number) and breakdowns (label,
    'invalid 1 · mismatch 1'), each sorted by label."""
    figures, breakdowns = [], []
    for key in sorted(counts):
        value = counts[key]
        if isinstance(value, dict):
            parts = [f"{_label(k)} {_value(str(k), v)}" for k, v in sorted(value.items())]
            breakdowns.append((_label(key), " · ".join(parts) or "none"))
        else:
            figures.append((_label(key), value))
    return figures, breakdowns


def one_line(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def spans(*parts: str | Text | tuple[str, str] | None, sep: str = " ") -> Text:
    """Styled pieces joined by an unstyled separator of their own, so that no piece
    relies on the next one's leading space (a wrapped or restyled line then glues them:
    "succeeded1/6 tries"). None and empty pieces are left out."""
    out = Text()
    for part in parts:
        if isinstance(part, tuple):
            part = Text(part[0], style=part[1])
        elif isinstance(part, str):
            part = Text(part)
        if not part:
            continue
        if out:
            out.append(sep)
        out.append_text(part)
    return out
