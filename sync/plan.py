"""Intents -> operations: idempotency keys, supersession and the guards (pure).

An operation's idempotency key is person + kind + payload digest, so planning the same
change twice finds the open operation instead of adding another, and a changed intent
supersedes the open operation it replaces.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rostersync.sync.diff import Intent
from rostersync.sync.models import OpKind, OpStatus, canonical_json


def payload_json(payload: dict[str, Any]) -> str:
    """The canonical text of a payload: stored with the op and hashed into its key."""
    return canonical_json(payload)


def idem_key(employee_id: str, intent: Intent, payload_text: str | None = None) -> str:
    text = payload_text if payload_text is not None else payload_json(intent.payload)
    blob = f"{employee_id}\x1f{intent.kind}\x1f{text}"
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class OpenOp:
    id: int
    employee_id: str
    kind: str
    idem_key: str
    status: str


@dataclass
class NewOp:
    employee_id: str
    kind: OpKind
    payload: dict[str, Any]
    idem_key: str
    reason: str
    lms_id: str | None
    not_before: datetime | None
    status: OpStatus = OpStatus.pending
    payload_text: str = ""  # payload_json(payload), computed once
    hold_reason: str | None = None
    suppressed_reason: str | None = None
    suppressed_until: datetime | None = None
    suppressed_by: str | None = None
    depth: int = 0


@dataclass
class PersonPlan:
    new: list[NewOp] = field(default_factory=list)
    keep: list[OpenOp] = field(default_factory=list)
    supersede: list[OpenOp] = field(default_factory=list)


def reconcile(employee_id: str, intents: list[Intent], open_ops: list[OpenOp]) -> PersonPlan:
    plan = PersonPlan()
    by_key = {op.idem_key: op for op in open_ops}
    wanted: set[str] = set()
    for intent in intents:
        text = payload_json(intent.payload)
        key = idem_key(employee_id, intent, text)
        wanted.add(key)
        if key in by_key:
            plan.keep.append(by_key[key])
            continue
        plan.new.append(NewOp(employee_id, intent.kind, intent.payload, key, intent.reason,
                              intent.lms_id, intent.not_before, payload_text=text))
    for op in open_ops:
        # A running op belongs to the executor; it finishes and the next run re-plans.
        if op.idem_key not in wanted and op.status != OpStatus.running:
            plan.supersede.append(op)
    return plan


@dataclass(frozen=True)
class Suppression:
    employee_id: str
    reason: str
    until: datetime | None
    by: str

    def active(self, now: datetime) -> bool:
        return self.until is None or self.until > now


def apply_suppression(op: NewOp, suppression: Suppression | None, now: datetime) -> None:
    if suppression is not None and suppression.active(now):
        op.status = OpStatus.suppressed
        op.suppressed_reason = suppression.reason
        op.suppressed_until = suppression.until
        op.suppressed_by = suppression.by


def mass_deactivation_limit(active_accounts: int, minimum: int, percent: float) -> int:
    """max(minimum, percent of the active accounts): the limit of every mass-change hold."""
    return max(minimum, int(active_accounts * percent / 100.0))


def apply_mass_hold(new_ops: list[NewOp], active_accounts: int, minimum: int,
                    percent: float, *, earlier: int = 0,
                    window_minutes: float = 0.0) -> str | None:
    """Hold every new deactivation of the run when, with the ``earlier`` ones other runs
    planned within the sliding window, there are more than the limit.

    A slow bleed (runs of just under the limit, back to back) is the same bad-data risk as
    one run with all of them, so batch, resync and real-time runs count together; the run
    that crosses the limit is held. Returns the hold reason when the hold tripped. The rest
    of the run proceeds.
    """
    deactivations = [op for op in new_ops if op.kind in (OpKind.deactivate, OpKind.delete)
                     and op.status == OpStatus.pending]
    limit = mass_deactivation_limit(active_accounts, minimum, percent)
    total = earlier + len(deactivations)
    if not deactivations or total <= limit:
        return None
    basis = f"max({minimum}, {percent:g}% of {active_accounts} active accounts)"
    if earlier:
        reason = (f"mass deactivation: {total} deactivations within {window_minutes:g} "
                  f"minutes exceed the limit of {limit} ({earlier} earlier in the window, "
                  f"{len(deactivations)} in this run; {basis})")
    else:
        reason = (f"mass deactivation: {total} deactivations in one run exceed the limit of "
                  f"{limit} ({basis})")
    for op in deactivations:
        op.status = OpStatus.held
        op.hold_reason = reason
    return reason


# The fields that are an account's identity in the LMS: its login and where mail goes.
IDENTITY_FIELDS = ("user_name", "email")


def identity_changes(op: NewOp) -> tuple[str, ...]:
    """The identity fields an update (or a reactivation's updates) would rewrite."""
    if op.kind not in (OpKind.update, OpKind.reactivate):
        return ()
    changes = op.payload.get("changes") or {}
    return tuple(name for name in IDENTITY_FIELDS if name in changes)


def apply_identity_hold(new_ops: list[NewOp], active_accounts: int, minimum: int,
                        percent: float) -> str | None:
    """Hold every new login or email change of the run when more accounts than the limit
    would get one: an export spliced from two versions, or a broken email column, rewrites
    identities wholesale, and a wrong login locks people out. Other changes proceed.

    Returns the hold reason when the hold tripped.
    """
    renaming = [op for op in new_ops if op.status == OpStatus.pending and identity_changes(op)]
    limit = mass_deactivation_limit(active_accounts, minimum, percent)
    if len(renaming) <= limit:
        return None
    logins = sum("user_name" in identity_changes(op) for op in renaming)
    emails = sum("email" in identity_changes(op) for op in renaming)
    reason = (f"mass identity change: {len(renaming)} logins/emails in one run exceed the "
              f"limit of {limit} ({logins} logins, {emails} emails; max({minimum}, "
              f"{percent:g}% of {active_accounts} active accounts))")
    for op in renaming:
        op.status = OpStatus.held
        op.hold_reason = reason
    return reason


def attribute_changes(op: NewOp) -> tuple[str, ...]:
    """The attributes an update would rewrite, beyond the identity fields (which have a
    hold of their own): what a changed mapping rewrites wholesale."""
    if op.kind != OpKind.update:
        return ()
    changes = op.payload.get("changes") or {}
    return tuple(name for name in changes if name not in IDENTITY_FIELDS and name != "active")


def apply_attribute_hold(new_ops: list[NewOp], active_accounts: int, minimum: int,
                         percent: float) -> str | None:
    """Hold every new update that rewrites an attribute more accounts than the limit
    would get in one run: a changed mapping expression (or a broken HR column behind it)
    rewrites that attribute for everyone, and is previewed and approved, not applied.
    Updates of the other attributes proceed. Returns the hold reason when it tripped."""
    counts: dict[str, int] = {}
    pending = [op for op in new_ops if op.status == OpStatus.pending and attribute_changes(op)]
    for op in pending:
        for name in attribute_changes(op):
            counts[name] = counts.get(name, 0) + 1
    limit = mass_deactivation_limit(active_accounts, minimum, percent)
    over = sorted(name for name, n in counts.items() if n > limit)
    if not over:
        return None
    listed = ", ".join(f"{name} on {counts[name]} accounts" for name in over)
    reason = (f"mass attribute change: {listed} in one run exceed the limit of {limit} "
              f"(max({minimum}, {percent:g}% of {active_accounts} active accounts)); a "
              "changed mapping is approved before it rewrites accounts")
    tripped = set(over)
    for op in pending:
        if tripped.intersection(attribute_changes(op)):
            op.status = OpStatus.held
            op.hold_reason = reason
    return reason


def manager_depths(creates: dict[str, str | None], has_account: set[str],
                   loops: set[str] | None = None) -> dict[str, int]:
    """Depth of each person to be created in the manager tree of this plan's creates.

    ``creates`` maps employee_id -> manager_id. A manager that already has an account (or
    is not being created) is depth 0 territory; cycles are cut rather than followed, and
    the people found on one are added to ``loops`` when given (the manager_cycle drift
    names them; this only has to terminate).
    """
    depths: dict[str, int] = {}
    for start in creates:
        chain: list[str] = []
        node: str | None = start
        seen: set[str] = set()
        while node is not None and node in creates and node not in depths and node not in seen:
            seen.add(node)
            chain.append(node)
            manager = creates[node]
            node = manager if manager not in has_account else None
        if loops is not None and node is not None and node in seen:
            loops.update(chain[chain.index(node):])
        base = depths.get(node, -1) if node is not None and node in depths else -1
        for person in reversed(chain):
            base += 1
            depths[person] = base
    return depths
