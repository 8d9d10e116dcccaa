"""The [[audiences]] config: LMS groups and cohorts defined by rules on HR fields.

Each ``[[audiences]]`` table is one LMS audience (a SCIM Group, a Moodle cohort, a
Canvas group): who belongs is decided by its rules, parsed here at load time so that a
typo is one sentence naming the audience, the rule and the column, never a surprise
during a run. See docs/audiences.md.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from rostersync.sync.audiences.rules import FIELDS, Rule, RuleError, parse_rule
from rostersync.sync.config_base import Strict

if TYPE_CHECKING:
    from rostersync.sync.config import Config

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class AudienceConfig(Strict):
    # rostersync's own name for the audience (ops, drift, CLI): letters, digits, - _ .
    id: str
    # What people see; for a SCIM target also the Group's displayName when created.
    name: str | None = None
    description: str | None = None
    # One rule, or several: a person belongs when any of them holds (explain names which).
    rule: str | None = None
    rules: list[str] = Field(default_factory=list)
    # The audience in the LMS: SCIM Group displayName, Moodle cohort idnumber, Canvas
    # group name (in the category lms.groups.category). Default: the id.
    lms_group: str | None = None
    # Create the group/cohort when the LMS does not have it yet.
    create_missing: bool = True
    # Compliance audiences are the reason removals wait for additions (docs/audiences.md).
    compliance: bool = False
    # Field -> values that are known but match no rule: with them listed, any other value
    # of that field is `unmapped` drift (owned by L&D) instead of a silent removal.
    known_values: dict[str, list[str]] = Field(default_factory=dict)
    # Membership mass-change guard: more removals from this audience in one run than
    # max(mass_removal_min, mass_removal_percent of its size) are held for approval.
    # Unset: [guards] audience_mass_removal_min / audience_mass_removal_percent.
    mass_removal_min: int | None = Field(None, ge=0)
    mass_removal_percent: float | None = Field(None, ge=0, le=100)
    # Members of the LMS group no person is linked to (a hand-made account, a leaver's
    # unlinked account): always `member_extra` drift; "remove" also plans their removal,
    # through the same mass-change guard.
    stray_members: Literal["report", "remove"] = "report"

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _ID.fullmatch(value):
            raise ValueError("must be 1-64 letters, digits, '-', '_' or '.', starting with "
                             "a letter or digit")
        return value

    @field_validator("known_values")
    @classmethod
    def _known_fields(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name in value:
            if name not in FIELDS and not name.startswith("attributes."):
                raise ValueError(f"unknown field {name!r}; known fields are "
                                 + ", ".join(FIELDS) + " and attributes.<name>")
        return value

    @model_validator(mode="after")
    def _parse_rules(self) -> AudienceConfig:
        texts = self.rule_texts
        if not texts:
            raise ValueError(f"audience {self.id!r} has no rule: set rule = \"...\" "
                             "(or rules = [...])")
        for text in texts:
            try:
                parse_rule(text)
            except RuleError as exc:
                raise ValueError(f"audience {self.id!r}: rule {text!r}: {exc}") from None
        return self

    @property
    def rule_texts(self) -> list[str]:
        return ([self.rule] if self.rule else []) + list(self.rules)

    @property
    def group(self) -> str:
        return self.lms_group or self.id

    @property
    def title(self) -> str:
        return self.name or self.id

    def compiled(self, attributes: frozenset[str] | None = None) -> list[Rule]:
        return [parse_rule(t, attributes) for t in self.rule_texts]

    def removal_limits(self, guards: Any) -> tuple[int, float]:
        """(minimum, percent) of the mass-change guard: this audience's own settings,
        else the [guards] defaults."""
        minimum = self.mass_removal_min
        percent = self.mass_removal_percent
        return (guards.audience_mass_removal_min if minimum is None else minimum,
                guards.audience_mass_removal_percent if percent is None else percent)


# LMS types whose connector can hold audiences.
SUPPORTED_TARGETS = ("scim", "moodle", "canvas")


def check_audiences(config: Config) -> None:
    """Rules across sections: ids unique, custom fields configured, a target that holds
    audiences, and no Moodle cohort claimed both by lms.cohorts and by an audience.
    Raises ValueError with one sentence naming the audience and key."""
    audiences = config.audiences
    if not audiences:
        return
    seen: dict[str, int] = {}
    groups: dict[str, str] = {}
    for i, audience in enumerate(audiences):
        if audience.id in seen:
            raise ValueError(f"audiences[{i}]: id {audience.id!r} is already used by "
                             f"audiences[{seen[audience.id]}]")
        seen[audience.id] = i
        if audience.group in groups:
            raise ValueError(f"audiences[{i}] ({audience.id!r}): lms_group "
                             f"{audience.group!r} is already the group of audience "
                             f"{groups[audience.group]!r}")
        groups[audience.group] = audience.id
    if config.lms.type not in SUPPORTED_TARGETS:
        raise ValueError(f"audiences are configured, but lms.type {config.lms.type!r} cannot "
                         "hold them yet (supported: " + ", ".join(SUPPORTED_TARGETS) + ")")
    attributes = frozenset(getattr(config.hris, "attributes", {}) or {})
    for i, audience in enumerate(audiences):
        for text in audience.rule_texts:
            try:
                parse_rule(text, attributes)
            except RuleError as exc:
                raise ValueError(f"audiences[{i}] ({audience.id!r}): rule {text!r}: "
                                 f"{exc}") from None
        for name in audience.known_values:
            if name.startswith("attributes.") and name.split(".", 1)[1] not in attributes:
                raise ValueError(f"audiences[{i}] ({audience.id!r}): known_values names "
                                 f"{name!r}, which hris.attributes does not map")
    cohorts = getattr(config.lms, "cohorts", None)
    if cohorts is not None:
        from rostersync.sync.connectors.moodle_wire import is_managed_cohort

        for i, audience in enumerate(audiences):
            if is_managed_cohort(audience.group, cohorts):
                raise ValueError(f"audiences[{i}] ({audience.id!r}): cohort "
                                 f"{audience.group!r} is also managed by lms.cohorts (it "
                                 "would be emptied by one and filled by the other); give "
                                 "the audience another lms_group")


def audiences_fingerprint(config: Config) -> list[dict[str, Any]] | None:
    """What in the audiences changes evaluation results (None when there are none, so
    that a config without audiences keeps its old fingerprint)."""
    if not config.audiences:
        return None
    return [a.model_dump(mode="json") for a in config.audiences]
