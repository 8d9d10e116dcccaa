"""The mass-change guards of a run, once its batches are planned: deactivations within
the sliding window (every run's count, sync.plan.apply_mass_hold) and login or e-mail
changes (sync.plan.apply_identity_hold); and updates rewriting one attribute on many
accounts (sync.plan.apply_attribute_hold), once the batches have written them. The decisions are pure; this reads the counts
they need from storage, and only when the run's own changes could trip them."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from rostersync.storage import accounts as account_store
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.storage.people import chunks
from rostersync.sync.config import GuardsConfig
from rostersync.sync.models import OpKind, OpStatus
from rostersync.sync.plan import (
    NewOp,
    apply_attribute_hold,
    apply_identity_hold,
    apply_mass_hold,
    attribute_changes,
    identity_changes,
)


def hold_mass_changes(store: Store, g: GuardsConfig, now: datetime, run_id: int | None,
                      held_back: list[NewOp]) -> None:
    """Marks the ops of ``held_back`` (the run's deactivations, removals and identity
    changes, kept back from the batches) that a mass-change guard holds."""
    # The limit is never below the minimum: under it, no need to count the accounts
    # (a count over a million of them is a tenth of a reconcile that changed little).
    stopping = sum(op.kind in (OpKind.deactivate, OpKind.delete) for op in held_back)
    renaming = sum(bool(identity_changes(op)) for op in held_back)
    window = g.mass_window_minutes
    # Every run's deactivations in the sliding window count with this run's.
    earlier = (op_store.deactivations_since(store, now - timedelta(minutes=window),
                                            other_than_run=run_id)
               if stopping and window else 0)
    active = (account_store.count_active(store)
              if stopping + earlier > g.mass_deactivation_min
              or renaming > g.mass_identity_change_min else 0)
    apply_mass_hold(held_back, active, g.mass_deactivation_min,
                    g.mass_deactivation_percent, earlier=earlier, window_minutes=window)
    apply_identity_hold(held_back, active, g.mass_identity_change_min,
                        g.mass_identity_change_percent)


def hold_mass_rewrites(store: Store, g: GuardsConfig, now: datetime, updates: list[NewOp],
                       *, written: bool, fingerprint: str) -> tuple[int, str | None]:
    """Marks held the ``updates`` (already ``written`` by the run's batches, unless a dry
    run) that rewrite an attribute on more accounts than the limit, when the config's
    ``fingerprint`` differs from the one the last accepted feed was evaluated with: only a
    changed config (its mapping) rewrites wholesale by itself; HR changing many titles at
    once (a reorganisation) is HR's data, guarded by the feed gate. Returns how many were
    held and why."""
    most = max(Counter(a for op in updates for a in attribute_changes(op)).values(),
               default=0)
    if most <= g.mass_attribute_change_min:  # the limit is never below the minimum
        return 0, None
    previous = run_store.last_accepted_snapshot(store)
    if previous is None or previous["fingerprint"] == fingerprint:
        return 0, None
    reason = apply_attribute_hold(updates, account_store.count_active(store),
                                  g.mass_attribute_change_min, g.mass_attribute_change_percent)
    held = [op.idem_key for op in updates if op.status == OpStatus.held]
    if reason is None or not held:
        return 0, None
    if written:
        with store.tx() as conn:
            ids = [row[0] for part in chunks(held) for row in conn.execute(
                f"SELECT id FROM ops WHERE status = 'pending' AND idem_key IN "
                f"({','.join('?' * len(part))})", part)]
            op_store.set_status(conn, now, ids, str(OpStatus.held), hold_reason=reason)
    return len(held), reason
