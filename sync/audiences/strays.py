"""Stray members: accounts in an audience's LMS group that no person is linked to (made
by hand in the LMS, or holding a key HR never sent).

No rule can want them, so each is `member_extra` drift, filed under ``lms:<lms id>``
(there is no employee id to file it under). An audience with
``stray_members = "remove"`` also plans their removal; those removals join the run's
other removals in the membership mass-change guard, so a listing full of unknown
accounts cannot empty an audience unasked.

Only a full listing of the groups finds strays, so the engine runs this after one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage import memberships as membership_store
from rostersync.storage.db import Store
from rostersync.sync.audiences.membership import AudienceSet, compile_audiences
from rostersync.sync.diff import Intent
from rostersync.sync.evaluate import ChangeSet
from rostersync.sync.models import DRIFT_OWNER, DriftKind, OpKind
from rostersync.sync.plan import OpenOp, reconcile


def stray_subject(lms_id: str) -> str:
    return membership_store.STRAY_PREFIX + lms_id


def is_stray(subject: str) -> bool:
    """A stray's subject: planned here, never evaluated as a person."""
    return subject.startswith(membership_store.STRAY_PREFIX)


def stray_decision(lms_id: str, audience_ids: set[str], audiences: AudienceSet
                   ) -> tuple[dict[str, Any], list[Intent]]:
    """(drift detail, intents) for one stray member (pure)."""
    by_id = audiences.by_id()
    listed = sorted(a for a in audience_ids if a in by_id)
    removing = [a for a in listed if by_id[a].stray_members == "remove"]
    detail = {"audiences": listed, "stray": True, "removing": removing,
              "why": "no person is linked to this LMS account"}
    intents = [Intent(OpKind.member_remove, {"audience": a},
                      f"out of {by_id[a].title}: no person is linked to LMS account {lms_id}",
                      lms_id) for a in removing]
    return detail, intents


def plan_strays(store: Store, config: Any, now: datetime,
                linking: set[str] | frozenset[str] = frozenset()) -> ChangeSet:
    """Drift and removals for every stray member; ``linking``: accounts this run plans
    to link to a person (they are about to stop being strays)."""
    out = ChangeSet()
    if not config.audiences:
        return out
    audiences = compile_audiences(config)
    configured = set(audiences.by_id())
    skip = set(linking) | membership_store.linking_lms_ids(store)
    current = {lms_id: ids & configured
               for lms_id, ids in membership_store.strays(store).items()
               if lms_id not in skip and ids & configured}
    open_drift, open_ops = membership_store.open_stray_rows(store)
    owner = DRIFT_OWNER.get(DriftKind.member_extra)
    seen: set[str] = set()
    for lms_id in sorted(current):
        subject = stray_subject(lms_id)
        seen.add(subject)
        detail, intents = stray_decision(lms_id, current[lms_id], audiences)
        out.drift_counts[str(DriftKind.member_extra)] += 1
        if subject in open_drift:
            out.drift_refreshed.append((open_drift[subject], lms_id, detail))
        else:
            out.drift_opened.append((subject, str(DriftKind.member_extra), lms_id, detail,
                                     owner))
        _plan(out, subject, intents, open_ops.get(subject, []))
    out.drift_resolved += [i for subject, i in open_drift.items() if subject not in seen]
    for subject, rows in open_ops.items():
        if subject not in seen:  # linked to a person since, or gone from the group
            _plan(out, subject, [], rows)
    return out


def _plan(out: ChangeSet, subject: str, intents: list[Intent],
          rows: list[dict[str, Any]]) -> None:
    open_ops = [OpenOp(r["id"], subject, r["kind"], r["idem_key"], r["status"]) for r in rows]
    plan = reconcile(subject, intents, open_ops)
    out.new_ops.extend(plan.new)
    out.superseded.extend(op.id for op in plan.supersede)
