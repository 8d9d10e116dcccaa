"""What an event may change at once (pure): the mode's operation kinds. (Its deactivations
count in the mass-deactivation window with every other run's: sync.plan.apply_mass_hold.)"""

from __future__ import annotations

from rostersync.sync.evaluate import ChangeSet


def keep_kinds(changes: ChangeSet, kinds: frozenset[str],
               open_kinds: dict[int, str]) -> None:
    """Drop planned ops of kinds the event may not apply, and never supersede an open op
    of such a kind: the scheduled run plans and applies those (the drift stays open and
    the snapshot is not advanced, so the next delta or full run sees the change)."""
    changes.new_ops = [op for op in changes.new_ops if str(op.kind) in kinds]
    changes.superseded = [i for i in changes.superseded if open_kinds.get(i) in kinds]
