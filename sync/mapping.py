"""Person -> desired Account: field maps, value maps and the scoping filter (pure).

A value that a strict map does not know is never guessed: the field is left out of the
desired state (the LMS keeps what it has) and the problem is reported as `unmapped`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sync.config import Config
from sync.lifecycle import Lifecycle
from sync.models import Account, Person, Status


@dataclass(frozen=True)
class Unmapped:
    field: str
    value: str

    def __str__(self) -> str:
        return f"field {self.field}: value {self.value!r} has no mapping"


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


# The account fields each optional HR field feeds. When the export lacks a configured
# column (marked optional, so the feed was accepted), the field is unknown, not empty:
# its account fields are left unmanaged rather than cleared for everyone.
ACCOUNT_FIELDS_FROM = {
    "job_title": ("title",), "department": ("department",), "manager_id": ("manager_key",),
    "employee_number": ("employee_number",), "preferred_name": ("given_name", "display_name"),
}


def absent_account_fields(configured: Iterable[str], present: set[str] | None) -> frozenset[str]:
    """Account fields left unmanaged because their configured HR column is absent from
    this export (``present``: the canonical fields the export offers; None: unknowable)."""
    if present is None:
        return frozenset()
    return frozenset(a for f in configured if f not in present
                     for a in ACCOUNT_FIELDS_FROM.get(f, ()))


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


def _map_value(config: Config, name: str, value: str | None,
               unmapped: list[Unmapped]) -> tuple[str | None, bool]:
    """Returns (value, managed)."""
    if value is None:
        return None, True
    table = config.mapping.values.get(name)
    if table is not None and value in table:
        return table[value], True
    if name in config.mapping.strict:
        unmapped.append(Unmapped(name, value))
        return None, False
    return value, True


# Account field -> the Person field it comes from (for strict maps keyed by either name).
_SOURCE_FIELD = {"department": "department", "title": "job_title"}


def login_of(person: Person, config: Config) -> str:
    """The LMS login (userName) the person's record yields."""
    source = config.mapping.user_name
    user_name = (person.email if source == "email" else
                 person.employee_number if source == "employee_number" else
                 person.employee_id) or person.employee_id
    return user_name.lower() if config.mapping.lowercase_user_name else user_name


def map_person(person: Person, state: Lifecycle, config: Config) -> Mapped:
    ok, reason = in_scope(person, config)
    if not ok:
        return Mapped(False, None, scope_reason=reason)
    unmapped: list[Unmapped] = []
    unmanaged: set[str] = set()
    mapped_values: dict[str, str | None] = {}
    for account_field, person_field in _SOURCE_FIELD.items():
        value, managed = _map_value(config, person_field, _value_of(person, person_field),
                                    unmapped)
        mapped_values[account_field] = value
        if not managed:
            unmanaged.add(account_field)
    user_name = login_of(person, config)
    active = state.state == Status.active or (
        state.state == Status.leave and config.guards.leave_policy == "keep")
    given = person.preferred_name or person.first_name
    desired = Account(
        external_key=person.employee_id,
        user_name=user_name,
        given_name=given,
        family_name=person.last_name,
        display_name=f"{given} {person.last_name}".strip(),
        email=person.email,
        title=mapped_values["title"],
        department=mapped_values["department"],
        employee_number=person.employee_number,
        manager_key=person.manager_id,
        active=active,
    )
    # Fields the target has no place for (Canvas has no title; a Moodle site may lack one)
    # are never compared, so they cannot become drift that no write clears.
    unmanaged |= getattr(config.lms, "unmanaged_fields", frozenset())
    return Mapped(True, desired, unmapped, frozenset(unmanaged))
