"""The audience rule language: parse once at config load, evaluate per person (pure).

A rule is a condition on Person fields, for example::

    department == "Sales" and job_title in ["Account Executive", "Sales Manager"]
    hire_date within 30 days
    manager_chain contains "E00002" and not location == "Remote"
    attributes.worker_type != "Contractor"

Grammar (keywords are lower case; strings use double or single quotes)::

    rule  := or
    or    := and ("or" and)*
    and   := unary ("and" unary)*
    unary := "not" unary | "(" rule ")" | test
    test  := FIELD ("==" | "!=") STRING
           | FIELD ["not"] "in" "[" STRING ("," STRING)* "]"
           | FIELD "startswith" STRING
           | "manager_chain" "contains" STRING
           | "hire_date" "within" NUMBER "days"

String comparisons ignore case and surrounding spaces: HR systems are not consistent
about either, and an audience must not silently lose people over "sales" vs "Sales".
An empty field equals nothing and is in no list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, overload

# Person fields a rule can test, besides attributes.<name> (custom mapped fields).
TEXT_FIELDS = ("department", "job_title", "location", "cost_center", "status",
               "employee_number", "manager_id", "timezone")
FIELDS = (*TEXT_FIELDS, "hire_date", "manager_chain")


class RuleError(ValueError):
    """A rule that cannot be parsed: names the column and what was expected."""


@overload
def fold(value: str) -> str: ...
@overload
def fold(value: str | None) -> str | None: ...


def fold(value: str | None) -> str | None:
    return None if value is None else value.strip().casefold()


@dataclass(frozen=True)
class Facts:
    """What a rule is evaluated against for one person."""

    values: dict[str, str | None]  # text fields and attributes.<name>, as HR sent them
    hire_date: date | None
    today: date  # in the person's own time zone
    manager_chain: tuple[str, ...] = ()


class Node:
    def holds(self, facts: Facts) -> bool:
        raise NotImplementedError

    def because(self, facts: Facts) -> list[str]:
        """The tests that made the rule hold (only meaningful when it holds)."""
        raise NotImplementedError

    def tests(self) -> list[Test]:
        raise NotImplementedError


@dataclass(frozen=True)
class Test(Node):
    field: str
    op: str  # == != in not_in startswith contains within
    values: tuple[str, ...] = ()
    days: int = 0
    text: str = ""

    def holds(self, facts: Facts) -> bool:
        if self.op == "within":
            if facts.hire_date is None:
                return False
            age = (facts.today - facts.hire_date).days
            return 0 <= age < self.days
        if self.op == "contains":
            wanted = fold(self.values[0])
            return any(fold(m) == wanted for m in facts.manager_chain)
        value = fold(facts.values.get(self.field))
        if self.op == "!=":
            return value != fold(self.values[0])
        if value is None:
            return self.op == "not_in"
        if self.op == "==":
            return value == fold(self.values[0])
        if self.op == "in":
            return value in {fold(v) for v in self.values}
        if self.op == "not_in":
            return value not in {fold(v) for v in self.values}
        if self.op == "startswith":
            return value.startswith(fold(self.values[0]) or "")
        raise AssertionError(self.op)

    def because(self, facts: Facts) -> list[str]:
        return [self.text]

    def tests(self) -> list[Test]:
        return [self]

    def boundaries(self, hire_date: date | None) -> list[date]:
        """Days on which this test can change its answer by time alone."""
        if self.op != "within" or hire_date is None:
            return []
        return [hire_date, hire_date + timedelta(days=self.days)]


@dataclass(frozen=True)
class Not(Node):
    inner: Node

    def holds(self, facts: Facts) -> bool:
        return not self.inner.holds(facts)

    def because(self, facts: Facts) -> list[str]:
        return [f"not ({t})" for t in self.inner.because(facts)] or ["not (...)"]

    def tests(self) -> list[Test]:
        return self.inner.tests()


@dataclass(frozen=True)
class All(Node):
    parts: tuple[Node, ...]

    def holds(self, facts: Facts) -> bool:
        return all(p.holds(facts) for p in self.parts)

    def because(self, facts: Facts) -> list[str]:
        return [t for p in self.parts for t in p.because(facts)]

    def tests(self) -> list[Test]:
        return [t for p in self.parts for t in p.tests()]


@dataclass(frozen=True)
class Any_(Node):
    parts: tuple[Node, ...]

    def holds(self, facts: Facts) -> bool:
        return any(p.holds(facts) for p in self.parts)

    def because(self, facts: Facts) -> list[str]:
        for p in self.parts:  # the first branch that holds is the reason
            if p.holds(facts):
                return p.because(facts)
        return []

    def tests(self) -> list[Test]:
        return [t for p in self.parts for t in p.tests()]


@dataclass(frozen=True)
class Rule:
    text: str
    root: Node
    fields: frozenset[str] = field(default_factory=frozenset)

    def holds(self, facts: Facts) -> bool:
        return self.root.holds(facts)

    def because(self, facts: Facts) -> list[str]:
        return self.root.because(facts)

    def literals(self) -> dict[str, set[str]]:
        """field -> values the rule names (what counts as a known value)."""
        out: dict[str, set[str]] = {}
        for t in self.root.tests():
            if t.op in ("==", "!=", "in", "not_in"):
                out.setdefault(t.field, set()).update(t.values)
        return out

    def boundaries(self, hire_date: date | None) -> list[date]:
        return [d for t in self.root.tests() for d in t.boundaries(hire_date)]


_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<number>\d+)
  | (?P<op>==|!=|\(|\)|\[|\]|,)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)?)
""", re.VERBOSE)

KEYWORDS = {"and", "or", "not", "in", "startswith", "contains", "within", "days"}


@dataclass(frozen=True)
class Token:
    kind: str  # string number op word end
    text: str
    column: int  # 1-based

    def shown(self) -> str:
        return "the end of the rule" if self.kind == "end" else repr(self.text)


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            if text[pos] in "\"'":
                raise RuleError(f"column {pos + 1}: a string is not closed")
            raise RuleError(f"column {pos + 1}: unexpected character {text[pos]!r}")
        kind = m.lastgroup or ""
        if kind != "space":
            value = m.group()
            if kind == "string":
                value = re.sub(r"\\(.)", r"\1", value[1:-1])
            out.append(Token(kind, value, pos + 1))
        pos = m.end()
    out.append(Token("end", "", len(text) + 1))
    return out


class _Parser:
    def __init__(self, text: str, attributes: frozenset[str] | None) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.attributes = attributes  # None: any attributes.<name> accepted
        self.fields: set[str] = set()

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, expected: str) -> RuleError:
        return RuleError(f"column {self.tok.column}: expected {expected}, "
                         f"found {self.tok.shown()}")

    def word(self, *words: str) -> bool:
        if self.tok.kind == "word" and self.tok.text in words:
            self.i += 1
            return True
        return False

    def parse(self) -> Node:
        if self.tok.kind == "end":
            raise RuleError("the rule is empty")
        node = self.or_()
        if self.tok.kind != "end":
            raise self.fail("'and', 'or' or the end of the rule")
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.word("or"):
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else Any_(tuple(parts))

    def and_(self) -> Node:
        parts = [self.unary()]
        while self.word("and"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def unary(self) -> Node:
        if self.word("not"):
            return Not(self.unary())
        if self.tok.kind == "op" and self.tok.text == "(":
            self.take()
            node = self.or_()
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                raise self.fail("')'")
            self.take()
            return node
        return self.test()

    def string(self) -> str:
        if self.tok.kind != "string":
            raise self.fail("a quoted value")
        return self.take().text

    def field_name(self) -> tuple[str, int]:
        tok = self.tok
        if tok.kind != "word" or tok.text in KEYWORDS:
            raise self.fail("a field name (" + ", ".join(FIELDS) + " or attributes.<name>)")
        name = tok.text
        if name.startswith("attributes."):
            attr = name.split(".", 1)[1]
            if self.attributes is not None and attr not in self.attributes:
                known = ", ".join(sorted(self.attributes)) or "none are configured"
                raise RuleError(f"column {tok.column}: unknown custom field {name!r}; "
                                f"hris.attributes names the custom fields ({known})")
        elif name not in FIELDS:
            raise RuleError(f"column {tok.column}: unknown field {name!r}; known fields are "
                            + ", ".join(FIELDS) + " and attributes.<name>")
        self.take()
        self.fields.add(name)
        return name, tok.column

    def test(self) -> Node:
        name, start = self.field_name()
        if name == "hire_date":
            if not self.word("within"):
                raise self.fail("'within N days' after hire_date")
            if self.tok.kind != "number":
                raise self.fail("a number of days")
            days = int(self.take().text)
            if days < 1:
                raise RuleError(f"column {self.tokens[self.i - 1].column}: the window must "
                                "be at least 1 day")
            if not self.word("days", "day"):
                raise self.fail("'days'")
            return self.made(Test(name, "within", days=days), start)
        if name == "manager_chain":
            if not self.word("contains"):
                raise self.fail("'contains \"EMPLOYEE_ID\"' after manager_chain")
            return self.made(Test(name, "contains", (self.string(),)), start)
        if self.tok.kind == "op" and self.tok.text in ("==", "!="):
            op = self.take().text
            return self.made(Test(name, op, (self.string(),)), start)
        if self.word("startswith"):
            return self.made(Test(name, "startswith", (self.string(),)), start)
        negated = self.word("not")
        if self.word("in"):
            return self.made(Test(name, "not_in" if negated else "in", self.list_()), start)
        raise self.fail("'==', '!=', 'in', 'not in' or 'startswith'")

    def list_(self) -> tuple[str, ...]:
        if not (self.tok.kind == "op" and self.tok.text == "["):
            raise self.fail("'[' to open a list of values")
        self.take()
        values = [self.string()]
        while self.tok.kind == "op" and self.tok.text == ",":
            self.take()
            values.append(self.string())
        if not (self.tok.kind == "op" and self.tok.text == "]"):
            raise self.fail("',' or ']'")
        self.take()
        return tuple(values)

    def made(self, test: Test, start: int) -> Test:
        end = self.tokens[self.i - 1]
        stop = end.column - 1 + len(end.text) + (2 if end.kind == "string" else 0)
        text = " ".join(self.text[start - 1:stop].split())
        return Test(test.field, test.op, test.values, test.days, text)


def parse_rule(text: str, attributes: frozenset[str] | None = None) -> Rule:
    """Parse a rule; raises RuleError naming the column. ``attributes``: the custom
    fields the HRIS config maps (None accepts any, for checks without a full config)."""
    parser = _Parser(text, attributes)
    root = parser.parse()
    return Rule(text, root, frozenset(parser.fields))


def facts_for(person: Any, today: date, manager_chain: tuple[str, ...] = ()) -> Facts:
    values: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        value = getattr(person, name, None)
        values[name] = None if value in (None, "") else str(value)
    for name, value in person.attributes.items():
        values[f"attributes.{name}"] = value or None
    return Facts(values, person.hire_date, today, manager_chain)
