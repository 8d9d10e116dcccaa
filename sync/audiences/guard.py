"""Guards on a run's membership removals (pure), applied where the run's deactivations
meet the mass-deactivation hold: once, with every batch's removals in hand.

- A removal whose person has an unmapped value in a field the audience's rules read is
  held: nobody leaves an audience because HR renamed something the rules do not know.
- More removals from one audience than max(mass_removal_min, mass_removal_percent of
  its size) in one run are all held: a renamed department must not empty an audience.
"""

from __future__ import annotations

from collections import Counter

from rostersync.sync.audiences.membership import AudienceSet
from rostersync.sync.models import OpKind, OpStatus
from rostersync.sync.plan import NewOp


def removal_limit(size: int, minimum: int, percent: float) -> int:
    return max(minimum, int(size * percent / 100.0))


def hold_removals(ops: list[NewOp], audiences: AudienceSet, sizes: dict[str, int]) -> list[str]:
    """Hold what must wait for approval; returns the reasons (one per tripped guard)."""
    removals = [op for op in ops if op.kind == OpKind.member_remove
                and op.status == OpStatus.pending]
    reasons: list[str] = []
    for op in removals:
        unmapped = op.payload.get("unmapped")
        if unmapped:
            op.status = OpStatus.held
            # No employee id in the reason: the held review groups one run's holds by
            # their reason, and these are one event per value and audience.
            op.hold_reason = (f"unmapped value: {unmapped}; approve to remove them from "
                              f"audience {op.payload['audience']!r}")
    by_id = audiences.by_id()
    counts = Counter(audience_id for op in removals
                     if op.status == OpStatus.pending
                     and (audience_id := op.payload.get("audience")) is not None)
    for audience_id, count in sorted(counts.items()):
        audience = by_id.get(audience_id)
        if audience is None:
            continue
        size = sizes.get(audience_id, 0)
        limit = removal_limit(size, audience.mass_removal_min, audience.mass_removal_percent)
        if count <= limit:
            continue
        reason = (f"mass membership change: {count} removals from audience "
                  f"{audience_id!r} in one run exceed the limit of {limit} "
                  f"(max({audience.mass_removal_min}, {audience.mass_removal_percent:g}% of "
                  f"{size} members))")
        reasons.append(reason)
        for op in removals:
            if op.payload.get("audience") == audience_id and op.status == OpStatus.pending:
                op.status = OpStatus.held
                op.hold_reason = reason
    if any(op.payload.get("unmapped") for op in removals):
        reasons.insert(0, "membership removals held: values with no audience rule or mapping")
    return reasons
