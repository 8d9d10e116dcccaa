"""Desired vs actual -> drift rows and operation intents, for one person (pure).

No IO here: the engine gathers the person, the mapped desired account, the actual
account and any unlinked candidates, and this module decides what differs and what
should be done about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from rostersync.sync.lifecycle import Lifecycle
from rostersync.sync.mapping import Mapped
from rostersync.sync.models import MANAGED_FIELDS, Account, DriftKind, OpKind, Status

# Compared without regard to case: SCIM userName and e-mail addresses are case-insensitive.
_CASELESS = {"user_name", "email"}


@dataclass(frozen=True)
class DriftItem:
    kind: DriftKind
    detail: dict[str, Any] = field(default_factory=dict)
    lms_id: str | None = None


@dataclass(frozen=True)
class Intent:
    kind: OpKind
    payload: dict[str, Any]
    reason: str
    lms_id: str | None = None
    not_before: datetime | None = None


@dataclass(frozen=True)
class Vanished:
    missing_since: datetime
    missing_pulls: int


@dataclass(frozen=True)
class MatchChoice:
    """An operator's decision on this person's disputed or unlinked match (storage/
    match_decisions.py), as data: ``link`` to ``lms_id``, ``create`` a new account, or
    ``ignore`` the match (with ``reason``). ``account`` is the chosen account as last read
    (None when the LMS no longer has it); only ``link`` needs it."""

    decision: str
    lms_id: str | None = None
    reason: str | None = None
    by: str | None = None
    at: str | None = None
    account: Account | None = None

    def detail(self) -> dict[str, Any]:
        return {"decision": self.decision, "lms_id": self.lms_id, "reason": self.reason,
                "by": self.by, "at": self.at}


@dataclass
class Subject:
    """Everything known about one employee_id for this evaluation."""

    employee_id: str
    state: Lifecycle | None = None  # None when no valid record was ever seen
    mapped: Mapped | None = None
    actual: Account | None = None  # the account linked by external key
    candidates: list[Account] = field(default_factory=list)  # same email/userName
    problems: list[str] = field(default_factory=list)  # validation problems (invalid)
    locator: str | None = None
    vanished: Vanished | None = None
    hr_status: str | None = None
    choice: MatchChoice | None = None  # the operator's decision on a disputed match


@dataclass
class Decision:
    drift: list[DriftItem] = field(default_factory=list)
    intents: list[Intent] = field(default_factory=list)


@dataclass(frozen=True)
class Policy:
    vanished_grace: timedelta
    vanished_grace_pulls: int
    skip_create_statuses: frozenset[Status]


def _norm(name: str, value: Any) -> Any:
    if value == "":
        return None
    if name in _CASELESS and isinstance(value, str):
        return value.lower()
    return value


def _text(value: Any) -> Any:
    # A target may hand back a mapped number or truth value as text (or the reverse).
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if isinstance(value, int | float) else value


def changed_fields(desired: Account, actual: Account, unmanaged: frozenset[str],
                   when_empty: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Managed fields (not `active`) and mapped target attributes whose desired value
    differs from the LMS. A ``when_empty`` field is written only while the LMS holds no
    value for it: an LMS admin's edit stands."""
    out: dict[str, Any] = {}
    for name in MANAGED_FIELDS:
        if name == "active" or name in unmanaged:
            continue
        want, have = getattr(desired, name), getattr(actual, name)
        if want != have and _norm(name, want) != _norm(name, have):
            if when_empty and name in when_empty and _norm(name, have) is not None:
                continue
            out[name] = want
    if desired.attributes:
        held = actual.attributes
        for name, want in desired.attributes.items():
            if name in unmanaged:
                continue
            have = held.get(name)
            if want == have or _text(_norm(name, want)) == _text(_norm(name, have)):
                continue
            if name in when_empty and _norm(name, have) is not None:
                continue
            out[name] = want
    return out


def same_value(name: str, want: Any, have: Any) -> bool:
    """Whether the LMS holds the desired value as the diff compares them: empty is
    missing, logins and e-mails regardless of case, numbers and truths as their text."""
    return want == have or _text(_norm(name, want)) == _text(_norm(name, have))


def account_payload(account: Account) -> dict[str, Any]:
    """A create's payload: the managed fields, and the target attributes when mapped."""
    payload = account.managed()
    if account.attributes:
        payload["attributes"] = dict(account.attributes)
    return payload


def decide(subject: Subject, now: datetime, policy: Policy) -> Decision:
    out = Decision()
    actual = subject.actual
    if subject.problems:
        out.drift.append(DriftItem(DriftKind.invalid, {
            "problems": subject.problems, "locator": subject.locator}))
    if subject.vanished is not None:
        _vanished(subject, now, policy, out)
        return out
    if subject.state is None or subject.mapped is None:
        return out  # never valid: nothing to act on, the invalid drift says why
    mapped, state = subject.mapped, subject.state
    live = actual is not None and actual.active

    if not mapped.in_scope:
        if live and actual is not None:
            out.drift.append(DriftItem(DriftKind.orphan, {
                "reason": "out_of_scope", "scope": mapped.scope_reason}, actual.lms_id))
            out.intents.append(Intent(OpKind.deactivate, {}, "out of scope", actual.lms_id))
        return out

    if state.state == Status.terminated:
        if live and actual is not None:
            since = state.effective_since
            out.drift.append(DriftItem(DriftKind.pending_termination, {
                "hr_status": subject.hr_status,
                "effective_at": since.isoformat() if since else None}, actual.lms_id))
            # Same payload as the scheduled deactivation planned before the date came, so
            # the open op is kept (not superseded and planned, or held, a second time).
            payload = {"effective_at": since.isoformat()} if since else {}
            out.intents.append(Intent(OpKind.deactivate, payload, "terminated in HR",
                                      actual.lms_id))
        return out

    desired = mapped.desired
    if desired is None or state.state == Status.pre_hire:
        return out  # no account wanted yet

    if mapped.unmapped:
        out.drift.append(DriftItem(DriftKind.unmapped, {
            "fields": {u.field: u.value for u in mapped.unmapped}},
            actual.lms_id if actual else None))

    if actual is None:
        if mapped.blocked is None:  # a login another person claims: the conflict says so
            _absent(subject, desired, mapped, state, policy, out)
        return out

    changes = changed_fields(desired, actual, mapped.unmanaged, mapped.when_empty)
    if desired.active and not actual.active:
        out.drift.append(DriftItem(DriftKind.reactivation, {"changes": changes}, actual.lms_id))
        out.intents.append(Intent(OpKind.reactivate, {"changes": changes}, "active in HR",
                                  actual.lms_id))
        changes = {}
    elif actual.active and not desired.active:
        out.drift.append(DriftItem(DriftKind.mismatch, {
            "fields": ["active"], "hris": {"active": False}, "lms": {"active": True}},
            actual.lms_id))
        out.intents.append(Intent(OpKind.deactivate, {}, "on leave", actual.lms_id))
    if changes:
        out.drift.append(DriftItem(DriftKind.mismatch, {
            "fields": sorted(changes),
            "hris": changes,
            "lms": {k: actual.value(k) for k in changes}}, actual.lms_id))
        out.intents.append(Intent(OpKind.update, {"changes": changes}, "differs from HR",
                                  actual.lms_id))
    if state.next_state == Status.terminated and state.next_change_at is not None:
        out.intents.append(Intent(
            OpKind.deactivate, {"effective_at": state.next_change_at.isoformat()},
            "termination scheduled", actual.lms_id, not_before=state.next_change_at))
    return out


def _absent(subject: Subject, desired: Account, mapped: Mapped, state: Lifecycle,
            policy: Policy, out: Decision) -> None:
    unlinked = [a for a in subject.candidates if not a.external_key]
    claimed = [a for a in subject.candidates if a.external_key
               and a.external_key != subject.employee_id]
    choice = subject.choice
    if choice is not None and (subject.candidates or choice.decision == "link"):
        _decided(subject, choice, desired, mapped, state, policy, out,
                 DriftKind.disputed if claimed or len(unlinked) != 1 else DriftKind.unlinked)
        return
    if claimed or len(unlinked) > 1:
        out.drift.append(DriftItem(DriftKind.disputed, _disputed(subject, desired)))
        return
    if unlinked:
        account = unlinked[0]
        changes = changed_fields(desired, account, mapped.unmanaged, mapped.when_empty)
        out.drift.append(DriftItem(DriftKind.unlinked, {
            "user_name": account.user_name, "changes": sorted(changes)}, account.lms_id))
        out.intents.append(Intent(OpKind.link, {
            "changes": changes, "active": desired.active}, "matched by email", account.lms_id))
        return
    if _create(desired, state, policy, out, {"account": account_payload(desired)}, "new in HR"):
        out.drift.append(DriftItem(DriftKind.missing, {"user_name": desired.user_name}))


def _disputed(subject: Subject, desired: Account) -> dict[str, Any]:
    return {"user_name": desired.user_name, "email": desired.email,
            "candidates": [{"lms_id": a.lms_id, "user_name": a.user_name,
                            "external_key": a.external_key} for a in subject.candidates]}


def _create(desired: Account, state: Lifecycle, policy: Policy, out: Decision,
            payload: dict[str, Any], reason: str) -> bool:
    """Plan a create (and a scheduled termination) unless this person gets no account
    yet; returns whether it did."""
    if state.state in policy.skip_create_statuses or not desired.active:
        return False
    out.intents.append(Intent(OpKind.create, payload, reason))
    if state.next_state == Status.terminated and state.next_change_at is not None:
        out.intents.append(Intent(
            OpKind.deactivate, {"effective_at": state.next_change_at.isoformat()},
            "termination scheduled", None, not_before=state.next_change_at))
    return True


def _decided(subject: Subject, choice: MatchChoice, desired: Account, mapped: Mapped,
             state: Lifecycle, policy: Policy, out: Decision, kind: DriftKind) -> None:
    """The operator decided this match: the drift stays (kind as found, the decision in
    its detail) and exactly what was decided is planned. A link whose account is gone, or
    now another person's, is not followed: the match goes back to ``disputed``, saying
    why, until the operator decides again."""
    found = None  # the one unlinked candidate of an unlinked match
    if kind == DriftKind.disputed:
        detail = _disputed(subject, desired)
    else:
        found = subject.candidates[0].lms_id
        detail = {"user_name": subject.candidates[0].user_name}
    detail["decision"] = choice.detail()
    if choice.decision == "ignore":
        detail["ignored"] = choice.reason or "no reason given"
        out.drift.append(DriftItem(kind, detail, found))
        return
    if choice.decision == "create":
        out.drift.append(DriftItem(kind, detail, found))
        # new_account: the executor must not link an unlinked account with the same
        # userName instead (the operator chose a new account over the candidates).
        _create(desired, state, policy, out, {"account": account_payload(desired),
                                              "new_account": True},
                "new account by operator decision")
        return
    account = choice.account
    stale = None
    if account is None:
        stale = f"LMS account {choice.lms_id} no longer exists"
    elif account.external_key and account.external_key != subject.employee_id:
        stale = (f"LMS account {choice.lms_id} now belongs to {account.external_key} "
                 f"(externalId)")
    if stale is not None:
        detail = _disputed(subject, desired)
        detail["decision"] = choice.detail()
        detail["decision_stale"] = (f"the decision to link to LMS account {choice.lms_id} "
                                    f"is not followed: {stale}; decide again")
        out.drift.append(DriftItem(DriftKind.disputed, detail))
        return
    assert account is not None
    changes = changed_fields(desired, account, mapped.unmanaged, mapped.when_empty)
    detail["changes"] = sorted(changes)
    out.drift.append(DriftItem(kind, detail, account.lms_id))
    # The chosen account is in the payload (so in the idempotency key): a decision for
    # another account supersedes an open link to the first.
    out.intents.append(Intent(OpKind.link, {
        "changes": changes, "active": desired.active, "lms_id": account.lms_id},
        "linked by operator decision", account.lms_id))


def _vanished(subject: Subject, now: datetime, policy: Policy, out: Decision) -> None:
    actual = subject.actual
    if actual is None or not actual.active:
        return
    gone = subject.vanished
    assert gone is not None
    out.drift.append(DriftItem(DriftKind.orphan, {
        "reason": "vanished", "missing_since": gone.missing_since.isoformat(),
        "missing_pulls": gone.missing_pulls}, actual.lms_id))
    # Both brakes must release: the time since it vanished and, when configured, the
    # number of consecutive full pulls it has been missing from.
    by_time = now - gone.missing_since >= policy.vanished_grace
    by_pulls = gone.missing_pulls >= policy.vanished_grace_pulls
    if by_time and by_pulls:
        out.intents.append(Intent(OpKind.deactivate, {}, "vanished from feed", actual.lms_id))
