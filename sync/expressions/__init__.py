"""Attribute-mapping expressions: a small, safe language for computing an LMS attribute
from a person's HR fields, e.g. ``lower(normalize_diacritics(first_name)) + "." +
lower(last_name)``. The language is described in docs/mapping.md.

Text is parsed and compiled once (to Python closures; never eval or exec), then evaluated
per person. Compiling fails with ExpressionError naming the attribute and the column;
evaluating fails only with EvaluationError (a value a function cannot use) or
UnknownValue (a strict lookup of a value its table does not list).

Limits: an expression is at most MAX_LENGTH characters and nests at most MAX_DEPTH
levels; a text value grows to at most MAX_TEXT characters.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date

from rostersync.sync.expressions.compiler import Run, compile_node
from rostersync.sync.expressions.errors import EvaluationError, ExpressionError, Fault, UnknownValue
from rostersync.sync.expressions.functions import FUNCTIONS, Function
from rostersync.sync.expressions.lexer import MAX_LENGTH
from rostersync.sync.expressions.parser import MAX_DEPTH, parse
from rostersync.sync.expressions.values import MAX_TEXT
from rostersync.sync.models import Person

__all__ = [
    "FUNCTIONS", "HR_FIELDS", "MAX_DEPTH", "MAX_LENGTH", "MAX_TEXT", "EvaluationError",
    "Expression", "ExpressionError", "Function", "UnknownValue", "Value",
    "compile_expression",
]

Value = str | int | float | bool | date | None

# The canonical HR fields an expression may name (besides attributes.<name>).
HR_FIELDS: frozenset[str] = frozenset(Person.model_fields) - {"attributes"}


class Expression:
    """A compiled expression. ``inputs``: the HR fields it reads; ``tables``: the lookup
    tables it uses (both known before any evaluation, for checks and explanations)."""

    __slots__ = ("_run", "inputs", "name", "tables", "text")

    def __init__(self, text: str, name: str, inputs: frozenset[str], tables: frozenset[str],
                 run: Run) -> None:
        self.text = text
        self.name = name
        self.inputs = inputs
        self.tables = tables
        self._run = run

    def evaluate(self, values: Mapping[str, object], *, today: date,
                 tables: Mapping[str, Mapping[str, str]] | None = None) -> Value:
        """The value for one person; ``values`` maps field names (as in ``inputs``) to
        values, a missing one is null."""
        try:
            return self._run(values, today, tables)
        except Fault as fault:
            raise EvaluationError(self.name, fault.function or "expression", fault.value,
                                  fault.reason) from None
        except UnknownValue as unknown:
            raise UnknownValue(unknown.table, unknown.value, self.name) from None

    def __repr__(self) -> str:
        return f"Expression({self.name!r}, {self.text!r})"


def compile_expression(text: str, *, name: str, attributes: Collection[str] | None = None,
                       tables: Collection[str] | None = None,
                       fields: Collection[str] = HR_FIELDS) -> Expression:
    """Parse and compile ``text`` for the attribute ``name``.

    ``attributes``: the extra columns attributes.<name> may name (None: any);
    ``tables``: the lookup tables the config defines (None: any, checked when run);
    ``fields``: the HR fields an expression may read.
    """
    if not isinstance(text, str):
        raise ExpressionError(name, 1, "the expression must be a text (write it in quotes)")
    parsed = parse(text, name=name, fields=fields, attributes=attributes, tables=tables)
    return Expression(text, name, parsed.inputs, parsed.tables, compile_node(parsed.root))
