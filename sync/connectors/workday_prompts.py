"""Report prompts whose values follow the clock (pure; docs/workday.md, "Prompts").

A prompt fixed in the config, such as an as-of date, freezes the report at that date:
every later pull reads the same past, and terminations after it are never seen. So a
prompt value may hold placeholders resolved at pull time from the injected clock:

    {today}        the pull's date, YYYY-MM-DD
    {today-7d}     seven days before it (also +Nd, and w for weeks)
    {now}          the pull's instant, ISO 8601 with milliseconds and offset
    {now-2h}       two hours before it (also m, d, w)

Anything else in braces is refused when the config is loaded, so a typo never reaches
Workday as a literal. ``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PLACEHOLDER = re.compile(r"(today|now)(?:([+-])(\d{1,5})([mhdw]))?")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def check_template(value: str) -> str:
    """``value`` unchanged if every placeholder in it is understood, else ValueError
    naming the first that is not."""
    for match in _TOKEN.finditer(value):
        text = match.group(0)
        if text in ("{{", "}}"):
            continue
        inner = match.group(1)
        found = _PLACEHOLDER.fullmatch(inner) if inner is not None else None
        if found is None:
            raise ValueError(f"{text!r} in {value!r} is not a placeholder; use {{today}}, "
                             "{today-7d}, {now} or {now-2h} (write {{ and }} for literal "
                             "braces)")
        if found.group(1) == "today" and found.group(4) in ("m", "h"):
            raise ValueError(f"{text!r} in {value!r}: {{today}} moves by days or weeks "
                             "only; use {now-...} for hours and minutes")
    return value


def resolve(value: str, now: datetime) -> str:
    """The value with its placeholders replaced as of ``now`` (checked at load)."""

    def one(match: re.Match[str]) -> str:
        text = match.group(0)
        if text in ("{{", "}}"):
            return text[0]
        found = _PLACEHOLDER.fullmatch(match.group(1) or "")
        if found is None:  # unreachable after check_template; kept literal, never guessed
            return text
        base, sign, amount, unit = found.groups()
        moment = now
        if amount:
            delta = timedelta(**{_UNITS[unit]: int(amount)})
            moment = now - delta if sign == "-" else now + delta
        if base == "today":
            return moment.date().isoformat()
        return moment.isoformat(timespec="milliseconds")

    return _TOKEN.sub(one, value)


def resolve_all(prompts: dict[str, str], now: datetime) -> dict[str, str]:
    return {name: resolve(value, now) for name, value in prompts.items()}


def is_dynamic(value: str) -> bool:
    return any(m.group(1) is not None for m in _TOKEN.finditer(value))
