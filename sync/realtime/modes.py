"""What an event may change at once (pure): the mode's operation kinds, and the
mass-deactivation limit counted over a window of real-time runs."""

from __future__ import annotations

from sync.evaluate import ChangeSet
from sync.models import OpKind, OpStatus
from sync.plan import NewOp, mass_deactivation_limit


def keep_kinds(changes: ChangeSet, kinds: frozenset[str],
               open_kinds: dict[int, str]) -> None:
    """Drop planned ops of kinds the event may not apply, and never supersede an open op
    of such a kind: the scheduled run plans and applies those (the drift stays open and
    the snapshot is not advanced, so the next delta or full run sees the change)."""
    changes.new_ops = [op for op in changes.new_ops if str(op.kind) in kinds]
    changes.superseded = [i for i in changes.superseded if open_kinds.get(i) in kinds]


def hold_in_window(deactivations: list[NewOp], earlier: int, active_accounts: int,
                   minimum: int, percent: float, window_minutes: float) -> str | None:
    """Hold this run's new deactivations when, with the ``earlier`` ones real-time runs
    planned within the window, they exceed the mass-deactivation limit: a burst of
    termination events is the same bad-data risk as one run with many of them."""
    pending = [op for op in deactivations if op.kind in (OpKind.deactivate, OpKind.delete)
               and op.status == OpStatus.pending]
    limit = mass_deactivation_limit(active_accounts, minimum, percent)
    if not pending or earlier + len(pending) <= limit:
        return None
    reason = (f"mass deactivation: {earlier + len(pending)} real-time deactivations within "
              f"{window_minutes:g} minutes exceed the limit of {limit} (max({minimum}, "
              f"{percent:g}% of {active_accounts} active accounts))")
    for op in pending:
        op.status = OpStatus.held
        op.hold_reason = reason
    return reason
