"""Values inside expressions and how they convert (pure).

An expression works on five kinds of value: text, whole or decimal numbers, true/false,
dates and null. HR data mostly arrives as text, so functions convert what they are
given: a date function accepts a date or an ISO text ("2024-05-01"), a number argument
accepts "12". Empty text counts as missing wherever "missing" matters (coalesce, default,
dates, comparisons with null), because HR exports write an empty cell for both.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from rostersync.sync.expressions.errors import Fault, shown

# A text result longer than this is refused: without a bound, nested replace() calls
# could grow a value exponentially (no LMS attribute holds anything near this).
MAX_TEXT = 65_536

_INT = re.compile(r"[+-]?\d{1,18}")
_DECIMAL = re.compile(r"[+-]?\d{1,18}(?:\.\d{1,18})?")


def text_of(value: Any) -> str | None:
    """The text form of a value: dates as YYYY-MM-DD, true/false in lower case."""
    kind = type(value)
    if kind is str or value is None:
        return value
    if kind is bool:
        return "true" if value else "false"
    if isinstance(value, str):  # a StrEnum (status) counts as its value
        return str.__str__(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def is_missing(value: Any) -> bool:
    return value is None or value == ""


def checked_text(value: str) -> str:
    if len(value) > MAX_TEXT:
        raise Fault(value, f"would make a text longer than {MAX_TEXT} characters")
    return value


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def number_of(value: Any) -> int | float | None:
    """A number from a number or a numeric text; None stays None."""
    if is_number(value):
        return value
    if is_missing(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if _INT.fullmatch(text):
            return int(text)
        if _DECIMAL.fullmatch(text):
            return float(text)
    raise Fault(value, "is not a number")


def int_of(value: Any) -> int | None:
    """A whole number (a count, an index, a number of days); None stays None."""
    number = number_of(value)
    if number is None or type(number) is int:
        return number
    if isinstance(number, float) and number.is_integer() and abs(number) < 1e18:
        return int(number)
    if isinstance(number, int):  # an int subclass
        return int(number)
    raise Fault(value, "is not a whole number")


def date_of(value: Any) -> date | None:
    """A date from a date, a datetime or an ISO text; empty text is a missing date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if is_missing(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) > 10 and text[10] in "T ":
                return datetime.fromisoformat(text).date()
            return date.fromisoformat(text)
        except ValueError:
            pass
        raise Fault(value, "is not a date (expected YYYY-MM-DD)")
    raise Fault(value, "is not a date")


def truth(value: Any) -> bool:
    """A condition: true/false, the texts "true"/"false", or null/empty (false)."""
    if value is True or value is False:
        return value
    if is_missing(value):
        return False
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded == "true":
            return True
        if folded == "false":
            return False
    raise Fault(value, "is not true or false")


def plus(left: Any, right: Any) -> Any:
    """`+`: adds two numbers; otherwise joins the text forms. Null on either side gives
    null, so a login is never built from half a name (join() skips missing parts)."""
    if type(left) is str and type(right) is str:
        return checked_text(left + right)
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        return left + right
    if (isinstance(left, date) and is_number(right)) or (
            is_number(left) and isinstance(right, date)):
        raise Fault(right if is_number(right) else left,
                    "cannot be added to a date with '+'; use add_days")
    return checked_text(text_of(left) + text_of(right))  # type: ignore[operator]


def minus(left: Any, right: Any) -> Any:
    """`-`: subtracts numbers (numeric texts convert); null on either side gives null."""
    a, b = number_of(left), number_of(right)
    if a is None or b is None:
        return None
    return a - b


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Both sides in one kind (numbers, dates, texts); None when they cannot be."""
    if is_number(left) or is_number(right):
        try:
            return number_of(left), number_of(right)
        except Fault:
            return None
    if isinstance(left, date) or isinstance(right, date):
        try:
            return date_of(left), date_of(right)
        except Fault:
            return None
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    return text_of(left), text_of(right)


def equal(left: Any, right: Any) -> bool:
    """`==`: numbers compare as numbers ("12" == 12), dates as dates (an ISO text equals
    its date), texts exactly; null and empty text are equal to each other only."""
    if type(left) is str and type(right) is str:
        return left == right
    if is_missing(left) or is_missing(right):
        return is_missing(left) and is_missing(right)
    pair = _comparable(left, right)
    if pair is None:
        return text_of(left) == text_of(right)
    return pair[0] == pair[1]


_SAME_KIND_ORDERS = frozenset({int, float, date, str})


def order(op: str, left: Any, right: Any) -> bool:
    """`<`, `<=`, `>`, `>=`: false when either side is missing."""
    kind = type(left)
    if kind is type(right) and kind in _SAME_KIND_ORDERS and left != "":
        a, b = left, right  # the usual case: no conversion needed
    else:
        if is_missing(left) or is_missing(right):
            return False
        pair = _comparable(left, right)
        if pair is None:
            raise Fault(right, f"cannot be compared with {shown(left)}", op)
        a, b = pair
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b
