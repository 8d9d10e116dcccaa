"""Tokens -> a checked syntax tree (pure). Every mistake is an ExpressionError naming the
column: unknown fields and functions (with a suggestion), wrong argument counts, tables
that the config does not define, nesting past MAX_DEPTH.

Grammar (lowest precedence first)::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := additive [("==" | "!=" | "<" | "<=" | ">" | ">=") additive]
    additive := unary (("+" | "-") unary)*
    unary    := "-" unary | primary
    primary  := NUMBER | STRING | "true" | "false" | "null" | "(" expr ")"
              | NAME "(" [expr ("," expr)*] ")"          (a function call)
              | NAME                                      (a field)
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rostersync.sync.expressions.errors import ExpressionError
from rostersync.sync.expressions.functions import FUNCTIONS
from rostersync.sync.expressions.lexer import KEYWORDS, LexError, Token, tokenize

# Brackets, calls, "not" and unary "-" nested deeper than this are refused: real
# mappings nest a handful of levels, and the bound keeps parsing and evaluation far
# from Python's recursion limit.
MAX_DEPTH = 32

COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


@dataclass(frozen=True, slots=True)
class Literal:
    value: Any
    column: int


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    args: tuple[Any, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Chain:  # a + b - c: evaluated left to right in one loop, however long
    first: Any
    rest: tuple[tuple[str, Any], ...]
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Any
    right: Any
    column: int


@dataclass(frozen=True, slots=True)
class Logic:  # and / or, also written as and(a, b, ...) / or(a, b, ...)
    op: str
    operands: tuple[Any, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    operand: Any
    column: int


@dataclass(frozen=True, slots=True)
class Negate:
    operand: Any
    column: int


@dataclass
class Parsed:
    root: Any
    inputs: frozenset[str]
    tables: frozenset[str]


def parse(text: str, *, name: str, fields: Collection[str],
          attributes: Collection[str] | None = None,
          tables: Collection[str] | None = None) -> Parsed:
    """``fields``: the HR field names an expression may read; ``attributes``: the
    attributes.<name> extras (None: any); ``tables``: lookup table names (None: any)."""
    try:
        tokens = tokenize(text)
    except LexError as exc:
        raise ExpressionError(name, exc.column, exc.message) from None
    parser = _Parser(tokens, name, fields, attributes, tables)
    root = parser.parse()
    return Parsed(root, frozenset(parser.inputs), frozenset(parser.tables))


def _closest(word: str, choices: Collection[str]) -> str | None:
    lowered = {c.lower(): c for c in choices}
    if word.lower() in lowered:
        return lowered[word.lower()]
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return close[0] if close else None


def _suggestion(word: str, choices: Collection[str], prefix: str = "") -> str:
    close = _closest(word, choices)
    return f"; did you mean {prefix + close!r}?" if close else ""


class _Parser:
    def __init__(self, tokens: list[Token], name: str, fields: Collection[str],
                 attributes: Collection[str] | None, tables: Collection[str] | None) -> None:
        self.tokens = tokens
        self.i = 0
        self.name = name
        self.fields = fields
        self.attributes = attributes
        self.known_tables = tables
        self.depth = 0
        self.inputs: set[str] = set()
        self.tables: set[str] = set()

    # --- helpers ------------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, column: int, message: str) -> ExpressionError:
        return ExpressionError(self.name, column, message)

    def expected(self, what: str) -> ExpressionError:
        return self.error(self.tok.column, f"expected {what} but found {self.tok.shown()}")

    def at_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def at_word(self, word: str) -> bool:
        return self.tok.kind == "name" and self.tok.value == word

    def enter(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(column, f"the expression nests deeper than {MAX_DEPTH} levels")

    # --- grammar ------------------------------------------------------------------

    def parse(self) -> Any:
        if self.tok.kind == "end":
            raise self.error(1, "the expression is empty")
        root = self.expr()
        if self.tok.kind != "end":
            raise self.expected("an operator or the end of the expression")
        return root

    def expr(self) -> Any:
        return self.logic("or", self.and_)

    def and_(self) -> Any:
        return self.logic("and", self.not_)

    def logic(self, word: str, operand: Any) -> Any:
        column = self.tok.column
        parts = [operand()]
        while self.at_word(word):
            self.take()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else Logic(word, tuple(parts), column)

    def not_(self) -> Any:
        if not self.at_word("not"):
            return self.compare()
        column = self.take().column
        self.enter(column)
        operand = self.not_()
        self.depth -= 1
        return Not(operand, column)

    def compare(self) -> Any:
        left = self.additive()
        if not self.at_op(*COMPARISONS):
            return left
        op_token = self.take()
        right = self.additive()
        if self.at_op(*COMPARISONS):
            raise self.error(self.tok.column, "comparisons cannot be chained; combine them "
                             "with 'and'")
        return Compare(op_token.value, left, right, op_token.column)

    def additive(self) -> Any:
        column = self.tok.column
        first = self.unary()
        rest: list[tuple[str, Any]] = []
        while self.at_op("+", "-"):
            op = self.take().value
            rest.append((op, self.unary()))
        return Chain(first, tuple(rest), column) if rest else first

    def unary(self) -> Any:
        if not self.at_op("-"):
            return self.primary()
        column = self.take().column
        self.enter(column)
        operand = self.unary()
        self.depth -= 1
        if isinstance(operand, Literal) and type(operand.value) in (int, float):
            return Literal(-operand.value, column)
        return Negate(operand, column)

    def primary(self) -> Any:
        tok = self.tok
        if tok.kind in ("number", "string"):
            self.take()
            return Literal(tok.value, tok.column)
        if self.at_op("("):
            self.take()
            self.enter(tok.column)
            inner = self.expr()
            self.depth -= 1
            if not self.at_op(")"):
                raise self.expected("')' to close the '(' at column " + str(tok.column))
            self.take()
            return inner
        if tok.kind != "name":
            raise self.expected("a value, a field or a function")
        word = tok.value
        if word in ("true", "false", "null"):
            self.take()
            return Literal({"true": True, "false": False, "null": None}[word], tok.column)
        if word == "not":
            return self.not_()
        self.take()
        if self.at_op("("):
            return self.call(tok)
        if word in KEYWORDS:
            raise self.error(tok.column, f"expected a value but found {word!r}")
        return self.field(tok)

    def call(self, tok: Token) -> Any:
        name = tok.value
        function = FUNCTIONS.get(name)
        if function is None:
            if name in self.fields or name.startswith("attributes."):
                raise self.error(tok.column, f"{name!r} is a field, not a function")
            raise self.error(tok.column, f"unknown function {name!r}"
                             + _suggestion(name, FUNCTIONS))
        self.enter(tok.column)
        self.take()  # (
        args: list[Any] = []
        if name.startswith("lookup") and self.tok.kind == "name" and not (
                self.tokens[self.i + 1].kind == "op" and self.tokens[self.i + 1].value == "("):
            raise self.error(self.tok.column, f"the table of {name} must be a name in "
                             f"quotes, e.g. {name}(\"{self.tok.value}\", ...)")
        if not self.at_op(")"):
            args.append(self.expr())
            while self.at_op(","):
                self.take()
                args.append(self.expr())
        if not self.at_op(")"):
            raise self.expected(f"',' or ')' in the arguments of {name}")
        self.take()
        self.depth -= 1
        self.check_call(tok, function.name, args)
        if name in ("and", "or"):
            return Logic(name, tuple(args), tok.column)  # a condition even with one
        if name == "not":
            return Not(args[0], tok.column)
        return Call(name, tuple(args), tok.column)

    def check_call(self, tok: Token, name: str, args: list[Any]) -> None:
        function = FUNCTIONS[name]
        if not function.accepts(len(args)):
            count = {0: "no arguments", 1: "1 argument"}.get(len(args), f"{len(args)} "
                                                              "arguments")
            raise self.error(tok.column, f"{name} takes {function.arity} argument"
                             f"{'' if function.arity == '1' else 's'} "
                             f"({function.signature}), not {count}")
        if name == "switch" and len(args) % 2:
            raise self.error(tok.column, "switch needs a default as its last argument "
                             "(switch(value, key1, result1, ..., default))")
        if name in ("lookup", "lookup_strict"):
            table = args[0]
            if not (isinstance(table, Literal) and isinstance(table.value, str)):
                raise self.error(getattr(table, "column", tok.column),
                                 f"the table of {name} must be a name in quotes, e.g. "
                                 f"{name}(\"department\", department)")
            known = self.known_tables
            if known is not None and table.value not in known:
                listed = ", ".join(sorted(known)) or "none are configured"
                hint = _suggestion(table.value, known) or f" (tables: {listed})"
                raise self.error(table.column, f"unknown table {table.value!r}{hint}")
            self.tables.add(table.value)

    def field(self, tok: Token) -> Field:
        name = tok.value
        if name.startswith("attributes."):
            extra = name.split(".", 1)[1]
            if "." in extra:
                raise self.error(tok.column, f"unknown field {name!r}; extra columns are "
                                 "attributes.<name>")
            if self.attributes is not None and extra not in self.attributes:
                listed = ", ".join(sorted(self.attributes)) or "none are configured"
                hint = _suggestion(extra, self.attributes, "attributes.")
                raise self.error(tok.column, f"unknown field {name!r}"
                                 + (hint or f" (extra columns: {listed})"))
        elif name not in self.fields:
            if name in FUNCTIONS:
                raise self.error(tok.column, f"{name} is a function: write "
                                 f"{FUNCTIONS[name].signature}")
            hint = _suggestion(name, self.fields) or (
                " (fields: " + ", ".join(sorted(self.fields)) + " and attributes.<name>)")
            raise self.error(tok.column, f"unknown field {name!r}{hint}")
        self.inputs.add(name)
        return Field(name, tok.column)
