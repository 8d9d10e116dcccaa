"""Desired audience membership for one person, and what differs from the LMS (pure).

A person's audiences follow from the rules; a value the rules and mappings do not know
(a new department, a renamed job family) is never guessed: it is reported as
`unmapped` and every audience whose rules read that field stays as it is for the
person (a removal is planned, but held for approval, so nobody silently drops out of
compliance training because HR renamed something).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rostersync.sync.audiences.chain import loop_note
from rostersync.sync.audiences.rules import Rule, facts_for, fold, parse_rule
from rostersync.sync.diff import Decision, DriftItem, Intent
from rostersync.sync.models import DriftKind, OpKind, Person

if TYPE_CHECKING:
    from rostersync.sync.config import Config


@dataclass(frozen=True)
class Audience:
    id: str
    title: str
    group: str
    rules: tuple[Rule, ...]
    fields: frozenset[str]
    compliance: bool
    mass_removal_min: int
    mass_removal_percent: float
    stray_members: str = "report"  # "report" | "remove"


@dataclass(frozen=True)
class AudienceSet:
    audiences: tuple[Audience, ...]
    # Fields whose values must be known (field -> folded known values).
    checked: dict[str, frozenset[str]]
    uses_manager_chain: bool

    def by_id(self) -> dict[str, Audience]:
        return {a.id: a for a in self.audiences}


_COMPILED: dict[int, tuple[object, AudienceSet]] = {}


def compile_audiences(config: Config) -> AudienceSet:
    """The config's audiences, parsed once per Config object."""
    cached = _COMPILED.get(id(config))
    if cached is not None and cached[0] is config:
        return cached[1]
    attributes = frozenset(getattr(config.hris, "attributes", {}) or {})
    audiences = []
    literals: dict[str, set[str]] = {}
    declared: dict[str, set[str]] = {}
    for a in config.audiences:
        rules = tuple(parse_rule(t, attributes) for t in a.rule_texts)
        fields = frozenset().union(*(r.fields for r in rules))
        minimum, percent = a.removal_limits(config.guards)
        audiences.append(Audience(a.id, a.title, a.group, rules, fields, a.compliance,
                                  minimum, percent, a.stray_members))
        for r in rules:
            for name, values in r.literals().items():
                literals.setdefault(name, set()).update(values)
        for name, listed in a.known_values.items():
            declared.setdefault(name, set()).update(listed)
    used = frozenset().union(*(a.fields for a in audiences)) if audiences else frozenset()
    checked_fields = set(declared) | (set(config.mapping.strict) & used)
    checked = {}
    for name in checked_fields:
        known = literals.get(name, set()) | declared.get(name, set()) \
            | set(config.mapping.values.get(name, {}))
        checked[name] = frozenset(fold(v) for v in known)
    result = AudienceSet(tuple(audiences), checked, "manager_chain" in used)
    _COMPILED.clear()  # one live config at a time; a reload replaces it
    _COMPILED[id(config)] = (config, result)
    return result


@dataclass
class Placement:
    """Where one person belongs, and why."""

    desired: dict[str, dict] = field(default_factory=dict)  # id -> {"rule", "because"}
    frozen: dict[str, str] = field(default_factory=dict)  # id -> why it is left alone
    unmapped: dict[str, str] = field(default_factory=dict)  # field -> value
    # id -> what the answer rests on beyond the rule (a manager chain that loops)
    notes: dict[str, str] = field(default_factory=dict)
    due_at: datetime | None = None  # when time alone changes the answer (onboarding)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def place(person: Person, audiences: AudienceSet, now: datetime,
          chain: tuple[str, ...] = (), loop: tuple[str, ...] = ()) -> Placement:
    """``chain``: the managers above the person; ``loop``: the cycle that walk ran into
    (its answer for `manager_chain` rules stops there, and the placement says so)."""
    zone = _zone(person.timezone)
    today = now.astimezone(zone).date()
    facts = facts_for(person, today, chain)
    out = Placement()
    for name, known in audiences.checked.items():
        value = facts.values.get(name)
        if value is not None and fold(value) not in known:
            out.unmapped[name] = value
    upcoming: list[date] = []
    for audience in audiences.audiences:
        if loop and "manager_chain" in audience.fields:
            out.notes[audience.id] = loop_note(loop)
        blocked = sorted(audience.fields & set(out.unmapped))
        if blocked:
            out.frozen[audience.id] = "; ".join(
                f"{n} {out.unmapped[n]!r} matches no audience rule or known value"
                for n in blocked)
            continue
        for rule in audience.rules:
            upcoming += [d for d in rule.boundaries(person.hire_date) if d > today]
        for rule in audience.rules:
            if rule.holds(facts):
                out.desired[audience.id] = {"rule": rule.text, "because": rule.because(facts)}
                break
    if upcoming:
        out.due_at = datetime.combine(min(upcoming), time(0), zone)
    return out


def membership(decision: Decision, placement: Placement | None, actual: set[str],
               audiences: AudienceSet, lms_id: str | None, can_add: bool) -> None:
    """Add membership drift and add/remove intents to a person's decision.

    ``placement`` None means the person belongs nowhere (terminated, out of scope).
    ``actual``: the configured audiences the LMS has the person in."""
    titles = {a.id: a.title for a in audiences.audiences}
    desired = placement.desired if placement else {}
    frozen = placement.frozen if placement else {}
    missing = sorted(a for a in desired if a not in actual)
    if missing and can_add:
        decision.drift.append(DriftItem(DriftKind.member_missing, {
            "audiences": {a: desired[a]["rule"] for a in missing}}, lms_id))
        for a in missing:
            decision.intents.append(Intent(OpKind.member_add, {"audience": a},
                                           f"into {titles[a]}: {desired[a]['rule']}", lms_id))
    extra = sorted(a for a in actual if a not in desired and a in titles)
    if extra:
        decision.drift.append(DriftItem(DriftKind.member_extra, {
            "audiences": extra, "held": sorted(a for a in extra if a in frozen)}, lms_id))
        for a in extra:
            payload: dict = {"audience": a}
            reason = (f"out of {titles[a]}: no rule holds" if placement
                      else f"out of {titles[a]}: no longer in any audience's population")
            if a in frozen:
                payload["unmapped"] = frozen[a]  # the guard holds it for approval
                reason = f"out of {titles[a]}? {frozen[a]}"
            decision.intents.append(Intent(OpKind.member_remove, payload, reason, lms_id))
    if placement and placement.unmapped:
        _merge_unmapped(decision, placement, lms_id)


def _merge_unmapped(decision: Decision, placement: Placement, lms_id: str | None) -> None:
    """One `unmapped` row per person: the account mapping's and the audiences' together."""
    for i, item in enumerate(decision.drift):
        if item.kind == DriftKind.unmapped:
            detail = dict(item.detail)
            detail["fields"] = {**placement.unmapped, **detail.get("fields", {})}
            detail["audiences"] = sorted(placement.frozen)
            decision.drift[i] = DriftItem(item.kind, detail, item.lms_id)
            return
    decision.drift.append(DriftItem(DriftKind.unmapped, {
        "fields": dict(placement.unmapped), "audiences": sorted(placement.frozen)}, lms_id))
