"""What goes wrong with an expression, as one sentence each.

ExpressionError: the text cannot be compiled (raised at config load, names the column).
EvaluationError: a compiled expression met a value it cannot work with (per person).
UnknownValue: a strict lookup met a value its table does not know; the caller turns it
into `unmapped` drift instead of guessing.
"""

from __future__ import annotations

from typing import Any


class ExpressionError(ValueError):
    """An expression that cannot be compiled: names the attribute and the column."""

    def __init__(self, name: str, column: int, message: str) -> None:
        self.name = name
        self.column = column
        self.message = message
        super().__init__(f"{name}: column {column}: {message}")


class EvaluationError(ValueError):
    """A runtime problem: names the expression, the function and the value."""

    def __init__(self, name: str, function: str, value: Any, reason: str) -> None:
        self.name = name
        self.function = function
        self.value = value
        self.reason = reason
        super().__init__(f"{name}: {function}: {shown(value)} {reason}")


class UnknownValue(LookupError):
    """A strict lookup of a value its table does not list (never guessed)."""

    def __init__(self, table: str, value: str, name: str = "") -> None:
        self.table = table
        self.value = value
        self.name = name
        where = f"{name}: " if name else ""
        super().__init__(f"{where}lookup_strict: value {value!r} is not in the table "
                         f"{table!r}")

    def __str__(self) -> str:  # LookupError would otherwise show the args tuple
        return str(self.args[0])


class Fault(Exception):
    """Raised inside evaluation without the expression's name; Expression.evaluate turns
    it into EvaluationError (the function is filled in by the call that raised it)."""

    def __init__(self, value: Any, reason: str, function: str | None = None) -> None:
        super().__init__(reason)
        self.value = value
        self.reason = reason
        self.function = function


def shown(value: Any, limit: int = 60) -> str:
    """A value as it appears in an error sentence: quoted, and cut when long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = repr(value) if isinstance(value, str) else repr(str(value))
    return text if len(text) <= limit else text[:limit - 4] + "...'"
