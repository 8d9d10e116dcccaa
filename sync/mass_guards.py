"""The mass-change guards of a run, once its batches are planned: deactivations within
the sliding window (every run's count, sync.plan.apply_mass_hold) and login or e-mail
changes (sync.plan.apply_identity_hold). The decisions are pure; this reads the counts
they need from storage, and only when the run's own changes could trip them."""

from __future__ import annotations

from datetime import datetime, timedelta

from storage import accounts as account_store
from storage import ops as op_store
from storage.db import Store
from sync.config import GuardsConfig
from sync.models import OpKind
from sync.plan import NewOp, apply_identity_hold, apply_mass_hold, identity_changes


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
