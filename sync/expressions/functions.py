"""The function table: what each function takes, what it does, and the plain ones'
implementations (pure). Functions that choose which arguments to evaluate (if, coalesce,
switch, ...) or need the run's context (today, lookup) are built in sync.expressions.compiler.

Every function gives null for a null text argument (so a missing field stays missing
instead of becoming the text "None"); positions count from 1, as in spreadsheets.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from rostersync.sync.expressions.errors import Fault
from rostersync.sync.expressions.values import (
    MAX_TEXT,
    checked_text,
    date_of,
    equal,
    int_of,
    is_missing,
    number_of,
    text_of,
)


@dataclass(frozen=True)
class Function:
    name: str
    min_args: int
    max_args: int | None  # None: any number from min_args on
    signature: str
    summary: str
    group: str
    impl: Callable[..., Any] | None = None  # None: built by sync.expressions.compiler

    @property
    def arity(self) -> str:
        if self.max_args == self.min_args:
            return str(self.min_args)
        if self.max_args is None:
            return f"{self.min_args}+"
        return f"{self.min_args}-{self.max_args}"

    def accepts(self, count: int) -> bool:
        return count >= self.min_args and (self.max_args is None or count <= self.max_args)


# --- text -------------------------------------------------------------------------

def _lower(s: Any) -> str | None:
    return s.lower() if type(s) is str else _text_or_none(s, str.lower)


def _upper(s: Any) -> str | None:
    return s.upper() if type(s) is str else _text_or_none(s, str.upper)


def _trim(s: Any) -> str | None:
    return s.strip() if type(s) is str else _text_or_none(s, str.strip)


def _text_or_none(value: Any, op: Callable[[str], str]) -> str | None:
    text = text_of(value)
    return None if text is None else op(text)


# Letters that Unicode does not decompose into a base letter plus marks.
_LETTERS = str.maketrans({
    "ß": "ss", "ẞ": "SS", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D",
    "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
    "\u0131": "i", "ħ": "h", "Ħ": "H", "ŀ": "l", "Ŀ": "L", "ŧ": "t", "Ŧ": "T", "ĸ": "k",
})


def _normalize_diacritics(s: Any) -> str | None:
    text = text_of(s)
    if text is None or text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _replace(s: Any, old: Any, new: Any) -> str | None:
    text, old_text, new_text = text_of(s), text_of(old), text_of(new) or ""
    if text is None or not old_text:
        return text  # replacing "" would insert between every character
    grows = len(new_text) - len(old_text)
    if grows > 0 and len(text) + text.count(old_text) * grows > MAX_TEXT:
        raise Fault(s, f"would make a text longer than {MAX_TEXT} characters")
    return text.replace(old_text, new_text)


def _count(n: Any, what: str) -> int | None:
    count = int_of(n)
    if count is not None and count < 0:
        raise Fault(n, f"is negative (the {what} must be 0 or more)")
    return count


def _left(s: Any, n: Any) -> str | None:
    text, count = text_of(s), _count(n, "number of characters")
    return None if text is None or count is None else text[:count]


def _right(s: Any, n: Any) -> str | None:
    text, count = text_of(s), _count(n, "number of characters")
    if text is None or count is None:
        return None
    return text[len(text) - count:] if count < len(text) else text


def _mid(s: Any, start: Any, length: Any) -> str | None:
    text, first, count = text_of(s), int_of(start), _count(length, "length")
    if text is None or first is None or count is None:
        return None
    if first < 1:
        raise Fault(start, "is not a position (positions start at 1)")
    return text[first - 1:first - 1 + count]


def _split(s: Any, sep: Any, index: Any) -> str | None:
    text, separator, position = text_of(s), text_of(sep), int_of(index)
    if text is None or position is None:
        return None
    if not separator:
        raise Fault(sep, "is not a separator (it must not be empty)")
    if position == 0:
        raise Fault(index, "is not a position (1 is the first part, -1 the last)")
    parts = text.split(separator)
    if abs(position) > len(parts):
        return None
    return parts[position - 1] if position > 0 else parts[position]


def _join(sep: Any, *parts: Any) -> str:
    separator = text_of(sep) or ""
    kept = [t for t in map(text_of, parts) if t]
    if kept and sum(map(len, kept)) + len(separator) * (len(kept) - 1) > MAX_TEXT:
        raise Fault(kept[0], f"would make a text longer than {MAX_TEXT} characters")
    return separator.join(kept)


def _length(s: Any) -> int | None:
    text = text_of(s)
    return None if text is None else len(text)


def _contains(s: Any, part: Any) -> bool:
    text, wanted = text_of(s), text_of(part)
    return text is not None and wanted is not None and wanted in text


def _starts_with(s: Any, prefix: Any) -> bool:
    text, wanted = text_of(s), text_of(prefix)
    return text is not None and wanted is not None and text.startswith(wanted)


def _ends_with(s: Any, suffix: Any) -> bool:
    text, wanted = text_of(s), text_of(suffix)
    return text is not None and wanted is not None and text.endswith(wanted)


# --- values -------------------------------------------------------------------------

def _is_empty(value: Any) -> bool:
    return is_missing(value) or (isinstance(value, str) and not value.strip())


def _one_of(value: Any, *options: Any) -> bool:
    return any(equal(value, option) for option in options)


def _number(value: Any) -> int | float | None:
    return number_of(value)


def _text(value: Any) -> str | None:
    return text_of(value)


# --- dates --------------------------------------------------------------------------

def _format(fmt: Any) -> str:
    pattern = text_of(fmt)
    if not pattern:
        raise Fault(fmt, "is not a date format (e.g. \"%Y-%m-%d\")")
    return pattern


def _format_date(d: Any, fmt: Any) -> str | None:
    day, pattern = date_of(d), _format(fmt)
    if day is None:
        return None
    try:
        return checked_text(day.strftime(pattern))
    except ValueError as exc:
        raise Fault(fmt, f"is not a date format ({exc})") from None


def _parse_date(s: Any, fmt: Any = "%Y-%m-%d") -> date | None:
    if isinstance(s, date):
        return date_of(s)
    text, pattern = text_of(s), _format(fmt)
    if is_missing(text):
        return None
    try:
        return datetime.strptime(text.strip(), pattern).date()  # type: ignore[union-attr]
    except ValueError:
        raise Fault(s, f"is not a date in the format {pattern!r}") from None


def _add_days(d: Any, n: Any) -> date | None:
    day, days = date_of(d), int_of(n)
    if day is None or days is None:
        return None
    try:
        return day + timedelta(days=days)
    except OverflowError:
        raise Fault(n, f"days from {day.isoformat()} is past the calendar's end") from None


def days_since(today: date, d: Any) -> int | None:
    """Whole days from the date to today (negative for a date still to come)."""
    day = date_of(d)
    return None if day is None else (today - day).days


_FUNCTIONS: list[tuple[str, int, int | None, str, str, str, Callable[..., Any] | None]] = [
    # name, min, max, signature, summary, group, impl
    ("lower", 1, 1, "lower(s)", "s in lower case", "text", _lower),
    ("upper", 1, 1, "upper(s)", "s in upper case", "text", _upper),
    ("trim", 1, 1, "trim(s)", "s without leading and trailing spaces", "text", _trim),
    ("normalize_diacritics", 1, 1, "normalize_diacritics(s)",
     "s with accents removed and letters such as ß, ø, ł spelled in ASCII", "text",
     _normalize_diacritics),
    ("replace", 3, 3, "replace(s, old, new)", "s with every old replaced by new (plain text)",
     "text", _replace),
    ("left", 2, 2, "left(s, n)", "the first n characters of s", "text", _left),
    ("right", 2, 2, "right(s, n)", "the last n characters of s", "text", _right),
    ("mid", 3, 3, "mid(s, start, length)",
     "length characters of s from position start (1 is the first)", "text", _mid),
    ("split", 3, 3, "split(s, sep, index)",
     "part number index of s cut at sep (1 first, -1 last; null when absent)", "text",
     _split),
    ("join", 2, None, "join(sep, a, b, ...)", "the non-empty values joined with sep", "text",
     _join),
    ("length", 1, 1, "length(s)", "the number of characters in s", "text", _length),
    ("contains", 2, 2, "contains(s, part)", "true when s contains part", "text", _contains),
    ("starts_with", 2, 2, "starts_with(s, prefix)", "true when s starts with prefix", "text",
     _starts_with),
    ("ends_with", 2, 2, "ends_with(s, suffix)", "true when s ends with suffix", "text",
     _ends_with),
    ("coalesce", 1, None, "coalesce(a, b, ...)", "the first value that is not null or empty",
     "choice", None),
    ("default", 2, 2, "default(a, fallback)", "a, or fallback when a is null or empty",
     "choice", None),
    ("is_empty", 1, 1, "is_empty(a)", "true when a is null, empty or only spaces", "choice",
     _is_empty),
    ("if", 2, 3, "if(cond, then, else)", "then when cond is true, else (or null) otherwise",
     "choice", None),
    ("switch", 4, None, "switch(value, key1, result1, ..., default)",
     "the result after the first key equal to value, or the default", "choice", None),
    ("one_of", 2, None, "one_of(value, a, b, ...)", "true when value equals one of the options",
     "choice", _one_of),
    ("equals", 2, 2, "equals(a, b)", "the same as a == b", "choice", equal),
    ("and", 1, None, "and(a, b, ...)", "true when every condition is true (same as a and b)",
     "choice", None),
    ("or", 1, None, "or(a, b, ...)", "true when any condition is true (same as a or b)",
     "choice", None),
    ("not", 1, 1, "not(a)", "true when a is false or null", "choice", None),
    ("lookup", 2, 3, "lookup(\"table\", value, fallback)",
     "value translated by a table from the config; unknown values give fallback, or value "
     "itself when there is no fallback", "lookup", None),
    ("lookup_strict", 2, 2, "lookup_strict(\"table\", value)",
     "value translated by a table; an unknown value is reported as unmapped, never guessed",
     "lookup", None),
    ("number", 1, 1, "number(s)", "s as a number (\"12\" -> 12, \"1.5\" -> 1.5)", "convert",
     _number),
    ("text", 1, 1, "text(a)", "a as text (dates as YYYY-MM-DD, true/false)", "convert",
     _text),
    ("today", 0, 0, "today()", "the date of the run", "date", None),
    ("parse_date", 1, 2, "parse_date(s, format)",
     "the date written in s in format (default \"%Y-%m-%d\")", "date", _parse_date),
    ("format_date", 2, 2, "format_date(d, format)",
     "date d written in format, e.g. \"%d.%m.%Y\" or \"%Y-%m\"", "date", _format_date),
    ("days_since", 1, 1, "days_since(d)", "whole days from date d to today", "date", None),
    ("add_days", 2, 2, "add_days(d, n)", "date d plus n days (n may be negative)", "date",
     _add_days),
]

FUNCTIONS: dict[str, Function] = {
    name: Function(name, low, high, signature, summary, group, impl)
    for name, low, high, signature, summary, group, impl in _FUNCTIONS
}
