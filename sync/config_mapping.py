"""The [mapping] section: how an HR record becomes an LMS account.

``[mapping.attributes]`` maps target attributes to expressions (sync/expressions). What
is not configured keeps its built-in default (docs/mapping.md), so a config written
before attributes were mappable reads exactly as it did. Expressions are compiled when
the config is loaded: a syntax error names the attribute and the column, and the last
good config stays in force.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from rostersync.sync.config_base import Strict
from rostersync.sync.config_checks import check_zone
from rostersync.sync.mapping_rules import CompiledMapping, check_mapping, compile_mapping
from rostersync.sync.models import Status

# How a mapped attribute is kept: written and compared on every run; written when the
# account is created and never compared after; written only while the LMS holds no value
# (LMS admins may then edit it); or neither written nor compared (unmanaged).
ApplyMode = Literal["always", "create", "when_empty", "never"]

# The legacy logins: a field name, with the employee id when that field is empty.
LOGIN_FIELDS = ("email", "employee_id", "employee_number")

# Account fields rostersync sets itself, never from an expression: the link to HR, the
# lifecycle's verdict and the manager reference (an employee id the connectors translate).
NOT_MAPPABLE = {
    "external_key": "it is the employee id, the link between the HR record and the account",
    "active": "it follows the person's HR status (lifecycle and guards)",
    "manager_key": "it is the manager's employee id, translated to the LMS's own reference",
    "user_name": "the login is set by mapping.user_name (a field, an expression or a list "
                 "of candidate expressions)",
}


class AttributeRule(Strict):
    """One ``[mapping.attributes]`` entry in its table form."""

    # None: the attribute's built-in default expression (built-in attributes only).
    expr: str | None = None
    apply: ApplyMode = "always"


class MappingConfig(Strict):
    # The LMS login (userName): "email", "employee_id" or "employee_number" (that field,
    # else the employee id), or an expression, or a list of candidate expressions tried
    # in order until one is free (a generated login: set once, never regenerated).
    user_name: str | list[str] = "email"
    lowercase_user_name: bool = True
    # Raw HR status value -> canonical status. Matching ignores case and surrounding space.
    status_values: dict[str, Status] = Field(default_factory=lambda: {
        "active": Status.active, "leave": Status.leave, "on leave": Status.leave,
        "leave of absence": Status.leave, "pre_hire": Status.pre_hire,
        "pre-hire": Status.pre_hire, "terminated": Status.terminated,
        "inactive": Status.terminated,
    })
    # Field -> {HR value -> LMS value}: the lookup table named after the field, used by
    # the default department and title mappings (and by lookup() in any expression).
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Fields whose values must appear in `values` (else `unmapped` drift, never a guess).
    strict: list[str] = Field(default_factory=list)
    # Lookup tables for expressions: name -> {value -> result}.
    tables: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Target attribute -> expression, or {expr, apply}. Unlisted built-in attributes keep
    # their defaults; other target attributes are unmanaged unless listed.
    attributes: dict[str, str | AttributeRule] = Field(default_factory=dict)
    default_timezone: str = "UTC"
    # Longest value accepted for a name (first, last, preferred) and for any other field;
    # a longer one is `invalid` drift and nothing is sent for that person.
    max_name_length: int = Field(256, ge=1)
    max_field_length: int = Field(1024, ge=1)
    _compiled: Any = PrivateAttr(default=None)

    # A bad default would make every row without a zone of its own invalid.
    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("status_values")
    @classmethod
    def _fold(cls, value: dict[str, Status]) -> dict[str, Status]:
        return {k.strip().lower(): v for k, v in value.items()}

    @field_validator("user_name")
    @classmethod
    def _some_login(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list) and not value:
            raise ValueError("needs at least one candidate expression")
        return value

    @model_validator(mode="after")
    def _rules_are_sound(self) -> MappingConfig:
        for target in self.attributes:
            if target in NOT_MAPPABLE:
                raise ValueError(f"key 'mapping.attributes.{target}': cannot be mapped: "
                                 f"{NOT_MAPPABLE[target]}")
            if not target.strip():
                raise ValueError("key 'mapping.attributes': an attribute name is empty")
        clash = sorted(set(self.tables) & set(self.values))
        if clash:
            raise ValueError(f"key 'mapping.tables.{clash[0]}': a table of that name is "
                             f"already given by mapping.values.{clash[0]}; keep one of them")
        # Compiled here, so that a broken expression is refused at load.
        self._compiled = check_mapping(self)
        return self

    def fingerprint_data(self) -> dict[str, Any]:
        """What the config's fingerprint holds of this section. The sections added with
        expressions are left out while empty, so that upgrading does not re-evaluate
        everyone for a mapping that did not change."""
        return self.model_dump(mode="json", exclude={
            name for name in ("tables", "attributes") if not getattr(self, name)})

    def compiled(self) -> CompiledMapping:
        if self._compiled is None:
            self._compiled = compile_mapping(self)
        return self._compiled

    @property
    def generated_login(self) -> bool:
        """True when the login is computed by expressions (set once, kept unique), not
        copied from one of the legacy login fields."""
        return not (isinstance(self.user_name, str) and self.user_name in LOGIN_FIELDS)

    def login_candidates(self) -> list[str]:
        return [self.user_name] if isinstance(self.user_name, str) else list(self.user_name)

    def rule(self, target: str) -> AttributeRule | None:
        found = self.attributes.get(target)
        if found is None or isinstance(found, AttributeRule):
            return found
        return AttributeRule(expr=found)

    def all_tables(self) -> dict[str, dict[str, str]]:
        """Every lookup table: [mapping.tables] and the [mapping.values] maps; a strict
        field without a map has an empty one (every value of it is unmapped)."""
        return {**{name: {} for name in self.strict}, **self.values, **self.tables}
