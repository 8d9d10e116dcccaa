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

from sync.diff import Intent
from sync.models import OpKind, OpStatus, canonical_json


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
    return max(minimum, int(active_accounts * percent / 100.0))


def apply_mass_hold(new_ops: list[NewOp], active_accounts: int, minimum: int,
                    percent: float) -> str | None:
    """Hold every new deactivation of the run when there are more than the limit.

    Returns the hold reason when the hold tripped. The rest of the run proceeds.
    """
    deactivations = [op for op in new_ops if op.kind in (OpKind.deactivate, OpKind.delete)
                     and op.status == OpStatus.pending]
    limit = mass_deactivation_limit(active_accounts, minimum, percent)
    if len(deactivations) <= limit:
        return None
    reason = (f"mass deactivation: {len(deactivations)} deactivations in one run exceed "
              f"the limit of {limit} (max({minimum}, {percent:g}% of {active_accounts} "
              "active accounts))")
    for op in deactivations:
        op.status = OpStatus.held
        op.hold_reason = reason
    return reason


def manager_depths(creates: dict[str, str | None], has_account: set[str]) -> dict[str, int]:
    """Depth of each person to be created in the manager tree of this plan's creates.

    ``creates`` maps employee_id -> manager_id. A manager that already has an account (or
    is not being created) is depth 0 territory; cycles are cut rather than followed.
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
        base = depths.get(node, -1) if node is not None and node in depths else -1
        for person in reversed(chain):
            base += 1
            depths[person] = base
    return depths
