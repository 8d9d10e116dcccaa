"""One RaaS report cell as one value (pure; docs/workday.md §2.1, "Value encoding").

A multi-instance column arrives as a JSON list; in the report's other formats its values
are joined with ``;`` (§2.1). A person has one key, one manager and one status, so a cell
holding several is refused as a record error naming the alias and the values (the engine
files it as ``invalid`` drift): taking the first would silently pick a manager or a
status for somebody. The same values repeated count as one.
"""

from __future__ import annotations

import re
from typing import Any

from rostersync.sync.connectors.base import RecordError

# A date with a zone suffix, as XML output writes it (2025-07-31-07:00, §2.1).
_ZONED_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:Z|[+-]\d{2}:\d{2})")


def cell(row: dict[str, Any], alias: str, locator: str,
         separator: str | None = None) -> str | None:
    """A cell as a stripped string; None for absent, null, blank and an empty list.

    With ``separator``, a text value that it splits into several values is refused like
    a list of several (used for the key, manager, status and flag columns).
    """
    value = row.get(alias)
    if isinstance(value, list):
        if any(isinstance(v, dict | list) for v in value):
            raise RecordError(locator, alias, None, f"holds {len(value)} values (a "
                              "multi-instance column); the report must give one value")
        values = _distinct(_scalar(v) for v in value)
        if len(values) > 1:
            raise RecordError(locator, alias, "; ".join(values),
                              f"holds {len(values)} values (a multi-instance column); the "
                              "report must give one value")
        return values[0] if values else None
    if isinstance(value, dict):
        raise RecordError(locator, alias, None, "holds an object, not a value; the report "
                          "column must be plain text")
    text = _scalar(value)
    if text is not None and separator and separator in text:
        values = _distinct(part.strip() for part in text.split(separator))
        if len(values) > 1:
            raise RecordError(locator, alias, text,
                              f"holds {len(values)} values joined by {separator!r} (a "
                              "multi-instance column); the report must give one value")
        return values[0] if values else None
    return text


def flag_cell(row: dict[str, Any], alias: str, locator: str, separator: str | None,
              true_values: list[str], false_values: list[str]) -> bool | None:
    """A flag column as a bool (None when empty); RecordError naming the alias when it
    holds several values or a spelling that is neither true nor false."""
    raw = row.get(alias)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)  # JSON numbers 1/0 (§2.1: encodings differ by field type)
    text = cell(row, alias, locator, separator)
    try:
        return flag(text, true_values, false_values)
    except ValueError:
        raise RecordError(locator, alias, text, "is not a yes/no flag; add the spelling "
                          "to hris.true_values or hris.false_values") from None


def flag(value: Any, true_values: list[str], false_values: list[str]) -> bool | None:
    """A flag cell as a bool; None when empty or absent; ValueError when unreadable."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if not text:
        return None
    if text in true_values:
        return True
    if text in false_values:
        return False
    raise ValueError(text)


def scalar(value: Any) -> str | None:
    return _scalar(value)


def plain_date(value: str) -> str:
    match = _ZONED_DATE.fullmatch(value)
    return match.group(1) if match else value


def _scalar(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    text = str(value).strip()
    return text or None


def _distinct(values: Any) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))
