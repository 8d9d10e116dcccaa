"""The [mapping] section compiled once: one rule per target attribute (pure).

A rule holds the expression an admin sees (their own, or the built-in default) and what
computes it. The built-in defaults reproduce the account shape rostersync always had, and
run as plain Python: a default costs what the fixed mapping cost, and the tests hold each
native default equal to its expression. A configured expression that reads the same as
the default takes the same fast path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from rostersync.sync.expressions import (
    Expression,
    ExpressionError,
    UnknownValue,
    compile_expression,
)
from rostersync.sync.models import Person

# The Account fields an expression may set, in the order they are compared and shown.
BUILT_IN = ("given_name", "family_name", "display_name", "email", "title", "department",
            "employee_number")
# Built-in account fields that hold a name ("" when empty) rather than an optional value.
_NAME_FIELDS = frozenset(("given_name", "family_name", "display_name"))
# The HR field (and lookup table) behind each value-mapped built-in attribute.
_VALUE_MAPPED = {"title": "job_title", "department": "department"}
_PERSON_FIELDS = frozenset(Person.model_fields) - {"attributes"}

Native = Callable[[Person], Any]


@dataclass(frozen=True)
class Rule:
    target: str
    text: str  # the expression as shown (configured, or the built-in default)
    apply: str  # always | create | when_empty | never
    expression: Expression | None  # None: ``native`` computes it
    native: Native | None = None
    default: bool = False  # the built-in default, not configured
    native_inputs: tuple[str, ...] = ()  # what ``native`` reads, when not by target

    @property
    def inputs(self) -> tuple[str, ...]:
        if self.expression is not None:
            return tuple(sorted(self.expression.inputs))
        return self.native_inputs or _NATIVE_INPUTS.get(self.target, ())


@dataclass(frozen=True)
class CompiledMapping:
    rules: tuple[Rule, ...]  # every attribute but the login
    login: tuple[Rule, ...]  # the login's candidates, in order
    generated_login: bool
    lowercase_login: bool
    tables: Mapping[str, Mapping[str, str]]
    create_only: frozenset[str]  # compared never: written when the account is made
    when_empty: frozenset[str]  # written only while the LMS holds no value
    never: frozenset[str]  # neither written nor compared
    custom: tuple[str, ...]  # target attributes beyond the built-in account fields
    needs_today: bool  # some expression reads the date


def _value_mapped(person_field: str, table: Mapping[str, str] | None, strict: bool) -> Native:
    def native(person: Person) -> str | None:
        value = getattr(person, person_field)
        if value is None:
            return None
        if table is not None and value in table:
            return table[value]
        if strict:
            raise UnknownValue(person_field, value)
        return value
    return native


def _given(person: Person) -> str:
    return person.preferred_name or person.first_name


_NATIVE: dict[str, Native] = {
    "given_name": _given,
    "family_name": lambda p: p.last_name,
    "display_name": lambda p: f"{p.preferred_name or p.first_name} {p.last_name}".strip(),
    "email": lambda p: p.email,
    "employee_number": lambda p: p.employee_number,
}
_NATIVE_INPUTS = {
    "given_name": ("first_name", "preferred_name"), "family_name": ("last_name",),
    "display_name": ("first_name", "last_name", "preferred_name"), "email": ("email",),
    "employee_number": ("employee_number",), "title": ("job_title",),
    "department": ("department",),
}
_DEFAULT_TEXT = {
    "given_name": "coalesce(preferred_name, first_name)",
    "family_name": "last_name",
    "display_name": 'join(" ", coalesce(preferred_name, first_name), last_name)',
    "email": "email",
    "employee_number": "employee_number",
}


def default_text(target: str, mapping: Any) -> str:
    """The expression the built-in default of ``target`` amounts to under this mapping."""
    source = _VALUE_MAPPED.get(target)
    if source is None:
        return _DEFAULT_TEXT[target]
    if source in mapping.strict:
        return f'lookup_strict("{source}", {source})'
    if source in mapping.values:
        return f'lookup("{source}", {source})'
    return source


def default_login_text(mapping: Any) -> str:
    field = mapping.user_name
    text = field if field == "employee_id" else f"coalesce({field}, employee_id)"
    return f"lower({text})" if mapping.lowercase_user_name else text


def _normal(text: str) -> str:
    """The text without the spaces outside its quoted texts (which it reads the same)."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for ch in text:
        if quote is not None:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
            out.append(ch)
        elif not ch.isspace():
            out.append(ch)
    return "".join(out)


def _compile(text: str, where: str, tables: Mapping[str, Any]) -> Expression:
    return compile_expression(text, name=where, tables=tuple(tables))


def _built_in_rule(target: str, mapping: Any) -> Rule:
    configured = mapping.rule(target)
    apply = configured.apply if configured else "always"
    default = default_text(target, mapping)
    text = configured.expr if configured and configured.expr is not None else default
    if _normal(text) == _normal(default):
        if target in _VALUE_MAPPED:
            source = _VALUE_MAPPED[target]
            native = _value_mapped(source, mapping.values.get(source),
                                   source in mapping.strict)
        else:
            native = _NATIVE[target]
        return Rule(target, text, apply, None, native, default=configured is None)
    return Rule(target, text, apply,
                _compile(text, f"mapping.attributes.{target}", mapping.all_tables()))


def compile_mapping(mapping: Any) -> CompiledMapping:
    """Compile every rule of a MappingConfig; raises ExpressionError naming the key."""
    rules = [_built_in_rule(t, mapping) for t in BUILT_IN]
    custom = []
    for target in mapping.attributes:
        if target in BUILT_IN:
            continue
        rule = mapping.rule(target)
        if rule.expr is None:
            raise ExpressionError(f"mapping.attributes.{target}", 1,
                                  "needs an expression (expr): it has no built-in default")
        rules.append(Rule(target, rule.expr, rule.apply, _compile(
            rule.expr, f"mapping.attributes.{target}", mapping.all_tables())))
        custom.append(target)
    if mapping.generated_login:
        candidates = mapping.login_candidates()
        login = tuple(Rule("user_name", text, "create", _compile(
            text, "mapping.user_name" if len(candidates) == 1
            else f"mapping.user_name[{i}]", mapping.all_tables()))
            for i, text in enumerate(candidates))
    else:
        login = (Rule("user_name", default_login_text(mapping), "always", None,
                      _legacy_login(mapping), default=True,
                      native_inputs=tuple(sorted({mapping.user_name, "employee_id"}))),)
    create_only = {r.target for r in rules if r.apply == "create"}
    if mapping.generated_login:
        create_only.add("user_name")
    every = [r for r in rules + list(login) if r.expression is not None]
    return CompiledMapping(
        rules=tuple(rules), login=login, generated_login=mapping.generated_login,
        lowercase_login=mapping.lowercase_user_name, tables=mapping.all_tables(),
        create_only=frozenset(create_only),
        when_empty=frozenset(r.target for r in rules if r.apply == "when_empty"),
        never=frozenset(r.target for r in rules if r.apply == "never"),
        custom=tuple(custom), needs_today=bool(every))


def _legacy_login(mapping: Any) -> Native:
    source, lower = mapping.user_name, mapping.lowercase_user_name

    def native(person: Person) -> str:
        user_name = (person.email if source == "email" else
                     person.employee_number if source == "employee_number" else
                     person.employee_id) or person.employee_id
        return user_name.lower() if lower else user_name
    return native


def check_mapping(mapping: Any) -> CompiledMapping:
    """Compile at load: a broken expression becomes one sentence naming the key and the
    column (config_errors reports a ValueError raised in a validator as it is)."""
    try:
        return compile_mapping(mapping)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None


def person_values(person: Person, inputs: frozenset[str] | tuple[str, ...]
                  ) -> dict[str, Any]:
    """What an expression reads of a person: the HR fields it names, with the extras as
    ``attributes.NAME`` (a missing extra reads as empty)."""
    out: dict[str, Any] = {}
    for name in inputs:
        if name.startswith("attributes."):
            out[name] = person.attributes.get(name.split(".", 1)[1])
        elif name in _PERSON_FIELDS:
            value = getattr(person, name)
            out[name] = value.value if hasattr(value, "value") else value
        else:
            out[name] = None
    return out


def account_value(target: str, value: Any) -> Any:
    """An expression's result as the account holds it: built-in fields are text (names
    "" when empty, the rest None); a custom attribute keeps a number or a truth value.
    A date is written in ISO form either way."""
    if isinstance(value, date):
        value = value.isoformat()
    if target in BUILT_IN:
        if value is None or value == "":
            return "" if target in _NAME_FIELDS else None
        if isinstance(value, bool):
            return "true" if value else "false"
        return value if isinstance(value, str) else str(value)
    if value == "":
        return None
    return value


def evaluate_rule(rule: Rule, person: Person, today: date,
                  tables: Mapping[str, Mapping[str, str]]) -> Any:
    """The rule's value for a person. Raises UnknownValue (a strict lookup missed) or
    EvaluationError (the expression cannot be computed for this person)."""
    if rule.native is not None:
        return rule.native(person)
    assert rule.expression is not None
    raw = rule.expression.evaluate(person_values(person, rule.expression.inputs),
                                   today=today, tables=tables)
    return account_value(rule.target, raw)
