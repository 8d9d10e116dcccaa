"""A checked syntax tree -> one Python closure per node, built once (pure).

Evaluating an expression is then a chain of plain function calls: no tree walk, no
dispatch on node types, no eval. Every closure takes (values, today, tables).
Functions that decide which arguments to evaluate (if, coalesce, default, switch,
and/or/not) and those needing the run's context (today, days_since, lookup) are built
here; the rest come from the table in sync.expressions.functions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rostersync.sync.expressions.errors import Fault, UnknownValue
from rostersync.sync.expressions.functions import FUNCTIONS, days_since
from rostersync.sync.expressions.parser import (
    Call,
    Chain,
    Compare,
    Field,
    Literal,
    Logic,
    Negate,
    Not,
)
from rostersync.sync.expressions.values import equal, is_missing, minus, order, plus, text_of, truth

Run = Callable[[Any, Any, Any], Any]

# Mistakes a function's own checks did not foresee still end as one sentence.
_UNFORESEEN = (TypeError, ValueError, OverflowError, ArithmeticError, IndexError,
               UnicodeError, KeyError)


def compile_node(node: Any) -> Run:
    if isinstance(node, Literal):
        return _constant(node.value)
    if isinstance(node, Field):
        return _field(node.name)
    if isinstance(node, Chain):
        return _chain(node)
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, Logic):
        return _logic(node.op, [compile_node(n) for n in node.operands])
    if isinstance(node, Not):
        return _not(compile_node(node.operand))
    if isinstance(node, Negate):
        return _negate(compile_node(node.operand))
    if isinstance(node, Call):
        form = _FORMS.get(node.name)
        if form is not None:
            return form(node)
        return _call(node.name, FUNCTIONS[node.name].impl, [compile_node(a) for a in node.args])
    raise AssertionError(f"unknown node {node!r}")


def _named(fault: Fault, function: str) -> Fault:
    if fault.function is None:
        fault.function = function
    return fault


def _constant(value: Any) -> Run:
    def run(v: Any, t: Any, b: Any) -> Any:
        return value
    return run


def _field(name: str) -> Run:
    def run(v: Any, t: Any, b: Any) -> Any:
        return v.get(name)
    return run


def _call(name: str, impl: Any, args: list[Run]) -> Run:
    # Arities 1-3 are spelled out: a star-call per evaluation costs a list and a tuple.
    if len(args) == 1:
        (a,) = args

        def run1(v: Any, t: Any, b: Any) -> Any:
            x = a(v, t, b)
            try:
                return impl(x)
            except Fault as fault:
                raise _named(fault, name) from None
            except _UNFORESEEN as exc:
                raise Fault(x, f"cannot be used ({exc})", name) from None
        return run1
    if len(args) == 2:
        a, c = args

        def run2(v: Any, t: Any, b: Any) -> Any:
            x, y = a(v, t, b), c(v, t, b)
            try:
                return impl(x, y)
            except Fault as fault:
                raise _named(fault, name) from None
            except _UNFORESEEN as exc:
                raise Fault(x, f"cannot be used ({exc})", name) from None
        return run2

    def run(v: Any, t: Any, b: Any) -> Any:
        xs = [arg(v, t, b) for arg in args]
        try:
            return impl(*xs)
        except Fault as fault:
            raise _named(fault, name) from None
        except _UNFORESEEN as exc:
            raise Fault(xs[0] if xs else None, f"cannot be used ({exc})", name) from None
    return run


def _chain(node: Chain) -> Run:
    first = compile_node(node.first)
    rest = tuple((plus if op == "+" else minus, op, compile_node(n)) for op, n in node.rest)

    def run(v: Any, t: Any, b: Any) -> Any:
        value = first(v, t, b)
        for combine, op, part in rest:
            other = part(v, t, b)
            try:
                value = combine(value, other)
            except Fault as fault:
                raise _named(fault, op) from None
        return value
    return run


def _compare(node: Compare) -> Run:
    left, right, op = compile_node(node.left), compile_node(node.right), node.op

    def run(v: Any, t: Any, b: Any) -> Any:
        x, y = left(v, t, b), right(v, t, b)
        if op == "==":
            return equal(x, y)
        if op == "!=":
            return not equal(x, y)
        try:
            return order(op, x, y)
        except Fault as fault:
            raise _named(fault, op) from None
    return run


def _condition(run: Run, function: str, v: Any, t: Any, b: Any) -> bool:
    value = run(v, t, b)
    try:
        return truth(value)
    except Fault as fault:
        raise _named(fault, function) from None


def _logic(op: str, parts: list[Run]) -> Run:
    wanted = op == "or"  # the answer that ends the evaluation early

    def run(v: Any, t: Any, b: Any) -> bool:
        for part in parts:
            if _condition(part, op, v, t, b) is wanted:
                return wanted
        return not wanted
    return run


def _not(operand: Run) -> Run:
    def run(v: Any, t: Any, b: Any) -> bool:
        return not _condition(operand, "not", v, t, b)
    return run


def _negate(operand: Run) -> Run:
    def run(v: Any, t: Any, b: Any) -> Any:
        value = operand(v, t, b)
        try:
            return minus(0, value)
        except Fault as fault:
            raise _named(fault, "-") from None
    return run


# --- forms: functions that choose what to evaluate, or read the run's context ------

def _if(node: Call) -> Run:
    cond, then = compile_node(node.args[0]), compile_node(node.args[1])
    other = compile_node(node.args[2]) if len(node.args) > 2 else _constant(None)

    def run(v: Any, t: Any, b: Any) -> Any:
        return then(v, t, b) if _condition(cond, "if", v, t, b) else other(v, t, b)
    return run


def _coalesce(node: Call) -> Run:
    parts = [compile_node(a) for a in node.args]

    def run(v: Any, t: Any, b: Any) -> Any:
        for part in parts:
            value = part(v, t, b)
            if not is_missing(value):
                return value
        return None
    return run


def _switch(node: Call) -> Run:
    subject = compile_node(node.args[0])
    keys = node.args[1:-1:2]
    results = [compile_node(n) for n in node.args[2:-1:2]]
    fallback = compile_node(node.args[-1])
    key_runs = [compile_node(k) for k in keys]
    # Keys written as texts: one dictionary probe for a text value (the usual case).
    table: dict[str, Run] | None = None
    if all(isinstance(k, Literal) and type(k.value) is str and k.value for k in keys):
        table = {}
        for key, result in zip(keys, results, strict=True):
            table.setdefault(key.value, result)

    def run(v: Any, t: Any, b: Any) -> Any:
        value = subject(v, t, b)
        if table is not None and type(value) is str and value:
            hit = table.get(value)
            return (hit or fallback)(v, t, b)
        for key, result in zip(key_runs, results, strict=True):
            if equal(value, key(v, t, b)):
                return result(v, t, b)
        return fallback(v, t, b)
    return run


def _table(name: str, function: str, tables: Any) -> Any:
    table = None if tables is None else tables.get(name)
    if table is None:
        raise Fault(name, "is not a table the config defines", function)
    return table


def _lookup(node: Call) -> Run:
    name = node.args[0].value
    subject = compile_node(node.args[1])
    fallback = compile_node(node.args[2]) if len(node.args) > 2 else None

    def run(v: Any, t: Any, b: Any) -> Any:
        table = _table(name, "lookup", b)
        value = subject(v, t, b)
        key = text_of(value)
        if key is None:
            return None
        hit = table.get(key)
        if hit is not None:
            return hit
        return value if fallback is None else fallback(v, t, b)
    return run


def _lookup_strict(node: Call) -> Run:
    name = node.args[0].value
    subject = compile_node(node.args[1])

    def run(v: Any, t: Any, b: Any) -> Any:
        table = _table(name, "lookup_strict", b)
        value = subject(v, t, b)
        if is_missing(value):
            return None  # nothing to translate
        key = text_of(value)
        hit = table.get(key)
        if hit is None:
            raise UnknownValue(name, key)  # type: ignore[arg-type]
        return hit
    return run


def _today(node: Call) -> Run:
    def run(v: Any, t: Any, b: Any) -> Any:
        return t
    return run


def _days_since(node: Call) -> Run:
    subject = compile_node(node.args[0])

    def run(v: Any, t: Any, b: Any) -> Any:
        value = subject(v, t, b)
        try:
            return days_since(t, value)
        except Fault as fault:
            raise _named(fault, "days_since") from None
    return run


_FORMS: dict[str, Callable[[Call], Run]] = {
    "if": _if, "coalesce": _coalesce, "default": _coalesce, "switch": _switch,
    "lookup": _lookup, "lookup_strict": _lookup_strict, "today": _today,
    "days_since": _days_since,
}
