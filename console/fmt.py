"""Pure formatting decisions (ages, severity colours, summaries): no IO, no widgets."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from storage.db import parse_ts
from sync.status import format_age

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


def short_time(text: str | None) -> str:
    """'2026-11-26T09:00:00.000000Z' -> '11-26 09:00:00' (a column, not a record)."""
    if not text:
        return "-"
    return text[5:10] + " " + text[11:19]


def detail_summary(detail: Any, width: int = 60) -> str:
    if isinstance(detail, str):
        try:
            detail = json.loads(detail)
        except ValueError:
            return detail[:width]
    if not isinstance(detail, dict) or not detail:
        return ""
    if "fields" in detail:
        return "fields: " + ", ".join(map(str, detail["fields"]))[:width]
    if "problems" in detail:
        return "; ".join(map(str, detail["problems"]))[:width]
    text = ", ".join(f"{k}={v}" for k, v in detail.items())
    return text[:width]


def one_line(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
