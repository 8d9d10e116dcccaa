"""Person -> desired Account: the [mapping] rules and the scoping filter (pure).

A value that a strict map does not know is never guessed: the field is left out of the
desired state (the LMS keeps what it has) and the problem is reported as `unmapped`; so
is an expression that cannot be computed for the person.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from rostersync.sync.config import Config
from rostersync.sync.expressions import EvaluationError, UnknownValue
from rostersync.sync.expressions.values import text_of
from rostersync.sync.lifecycle import Lifecycle
from rostersync.sync.mapping_rules import CompiledMapping, Rule, evaluate_rule
from rostersync.sync.models import Account, Person, Status


@dataclass(frozen=True)
class Unmapped:
    field: str  # the lookup table (the HR field, for the value maps) or the attribute
    value: str
    reason: str | None = None  # an expression that cannot be computed for this person

    def __str__(self) -> str:
        return self.reason or f"field {self.field}: value {self.value!r} has no mapping"


@dataclass
class Mapped:
    in_scope: bool
    desired: Account | None  # None: out of scope, or no account wanted (pre-hire)
    unmapped: list[Unmapped] = field(default_factory=list)
    # Fields left unmanaged for this person (unmapped values): not compared, not written.
    unmanaged: frozenset[str] = frozenset()
    scope_reason: str | None = None
    # Why no account may be created for this person now (a login another person in the
    # feed also claims): the create would only be refused by the LMS.
    blocked: str | None = None
    # Fields written only while the LMS holds no value for them (apply = "when_empty").
    when_empty: frozenset[str] = frozenset()
    # A generated login's candidates, in order (sync.mapping_logins picks the free one).
    login_candidates: tuple[str, ...] = ()
    # Every candidate taken: candidate -> who holds it (sync.mapping_logins).
    login_taken: dict[str, list[str]] | None = None


# The account fields each optional HR field feeds. When the export lacks a configured
# column (marked optional, so the feed was accepted), the field is unknown, not empty:
# its account fields are left unmanaged rather than cleared for everyone.
ACCOUNT_FIELDS_FROM = {
    "job_title": ("title",), "department": ("department",), "manager_id": ("manager_key",),
    "employee_number": ("employee_number",), "preferred_name": ("given_name", "display_name"),
}


def absent_account_fields(configured: Iterable[str], present: set[str] | None,
                          compiled: CompiledMapping | None = None) -> frozenset[str]:
    """Account fields left unmanaged because their configured HR column is absent from
    this export (``present``: the canonical fields the export offers; None: unknowable).
    A configured expression is left alone when any HR field it reads is absent."""
    if present is None:
        return frozenset()
    configured = list(configured)
    out = {a for f in configured if f not in present for a in ACCOUNT_FIELDS_FROM.get(f, ())}
    gone = {f for f in configured if f not in present}
    if compiled is not None and gone:
        out |= {r.target for r in compiled.rules
                if r.expression is not None and gone.intersection(r.inputs)}
    return frozenset(out)


def _value_of(person: Person, name: str) -> str | None:
    if name.startswith("attributes."):
        return person.attributes.get(name.split(".", 1)[1])
    value = getattr(person, name, None)
    return None if value is None else str(value)


def in_scope(person: Person, config: Config) -> tuple[bool, str | None]:
    for name, allowed in config.scope.include.items():
        value = _value_of(person, name)
        if value not in allowed:
            return False, f"{name} {value!r} is not in the included values"
    for name, excluded in config.scope.exclude.items():
        value = _value_of(person, name)
        if value in excluded:
            return False, f"{name} {value!r} is excluded"
    return True, None


def compiled_mapping(config: Config) -> CompiledMapping:
    """The config's mapping rules, compiled once per loaded config."""
    return config.mapping.compiled()


def _run(rule: Rule, person: Person, today: date, tables: Mapping[str, Mapping[str, str]],
         unmapped: list[Unmapped],
         unmanaged: set[str]) -> Any:
    try:
        return evaluate_rule(rule, person, today, tables)
    except UnknownValue as exc:  # strict: never a guess; the LMS keeps what it has
        unmapped.append(Unmapped(exc.table, exc.value))
    except EvaluationError as exc:
        unmapped.append(Unmapped(rule.target, text_of(exc.value) or "", str(exc)))
    unmanaged.add(rule.target)
    return None


def login_candidates(person: Person, config: Config, today: date | None = None
                     ) -> tuple[str, ...]:
    """The logins the person's record yields, in the order they are tried (one for the
    legacy login fields; a generated login's candidates that give a value)."""
    compiled = compiled_mapping(config)
    if not compiled.generated_login:
        return (compiled.login[0].native(person),)  # type: ignore[misc]
    out: list[str] = []
    day = today or date.today()
    for rule in compiled.login:
        try:
            value = evaluate_rule(rule, person, day, compiled.tables)
        except (UnknownValue, EvaluationError):
            continue
        value = text_of(value)
        if value:
            value = value.lower() if compiled.lowercase_login else value
            if value not in out:
                out.append(value)
    return tuple(out)


def login_of(person: Person, config: Config) -> str:
    """The LMS login (userName) the person's record yields (a generated login: its first
    candidate; the one assigned is settled against the others, sync.mapping_logins)."""
    found = login_candidates(person, config)
    return found[0] if found else ""


def map_person(person: Person, state: Lifecycle, config: Config, *,
               today: date | None = None) -> Mapped:
    ok, reason = in_scope(person, config)
    if not ok:
        return Mapped(False, None, scope_reason=reason)
    compiled = compiled_mapping(config)
    day = today or date.today()
    tables = compiled.tables
    unmapped: list[Unmapped] = []
    failed: set[str] = set()  # no value for this person: left alone, even on create
    values: dict[str, Any] = {}
    for rule in compiled.rules:
        if rule.apply != "never":
            values[rule.target] = _run(rule, person, day, tables, unmapped, failed)
    candidates = login_candidates(person, config, day)
    active = state.state == Status.active or (
        state.state == Status.leave and config.guards.leave_policy == "keep")
    desired = Account(
        external_key=person.employee_id,
        user_name=candidates[0] if candidates else "",
        given_name=values.get("given_name") or "",
        family_name=values.get("family_name") or "",
        display_name=values.get("display_name") or "",
        email=values.get("email"),
        title=values.get("title"),
        department=values.get("department"),
        employee_number=values.get("employee_number"),
        manager_key=person.manager_id,
        active=active,
    )
    if compiled.custom:
        desired.attributes = {t: values[t] for t in compiled.custom
                              if t in values and t not in failed}
    # Written on create only, or never: not compared with what the LMS holds.
    unmanaged = failed | compiled.never | compiled.create_only
    # Fields the target has no place for (Canvas has no title; a Moodle site may lack one)
    # are never compared, so they cannot become drift that no write clears.
    unmanaged |= getattr(config.lms, "unmanaged_fields", frozenset())
    mapped = Mapped(True, desired, unmapped, frozenset(unmanaged),
                    when_empty=compiled.when_empty)
    if compiled.generated_login:
        mapped.login_candidates = candidates
        if not candidates:
            mapped.blocked = "no login candidate gives a value for this person"
    return mapped
