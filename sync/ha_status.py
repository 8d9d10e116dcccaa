"""Who leads, for `status --json` and the metrics ([ha] enabled)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage import lease as lease_store
from rostersync.storage.db import Store
from rostersync.sync.leadership import LEADER


def leader_figures(store: Store, now: datetime) -> dict[str, Any] | None:
    """The leader (node, since, token, until), or None when no node holds the lease."""
    holder = lease_store.current(store, now, LEADER)
    if holder is None:
        return None
    return {"node": holder.node, "since": _iso(holder.acquired_at), "token": holder.token,
            "until": _iso(holder.expires_at)}


def no_leader_reason(store: Store) -> str:
    """The WARNING when nobody leads: nothing is applied until a node takes the lease."""
    last = lease_store.last(store, LEADER)
    if last is None:
        return ("[ha] is enabled but no node has led yet: nothing is applied until a "
                "`rostersync serve` node takes the leader lease")
    return (f"no node holds the leader lease (the last leader, node {last.node}, held it "
            f"until {_iso(last.expires_at)}): nothing is applied until a node takes it")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
