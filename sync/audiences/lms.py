"""The engine's audience IO: read each audience's members from the LMS into the cache,
and guard a run's removals against the audiences' current sizes."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from rostersync.storage import accounts as account_store
from rostersync.storage import memberships as membership_store
from rostersync.storage import people as people_store
from rostersync.storage.db import Store
from rostersync.sync.audiences.guard import hold_removals
from rostersync.sync.audiences.membership import compile_audiences
from rostersync.sync.connectors.base import LmsTarget
from rostersync.sync.plan import NewOp

log = logging.getLogger(__name__)


async def read_memberships(store: Store, target: LmsTarget, config: Any,
                           now: datetime) -> int:
    """List every configured audience's members; people whose membership differs from
    the cache are marked dirty so the run re-evaluates them. Returns the members read."""
    if not config.audiences:
        return 0
    total = 0
    touched: set[str] = set()
    for audience in config.audiences:
        listed = await target.audience_members(audience)
        total += len(listed)
        keys = account_store.keys_for_lms_ids(store, sorted(listed)) if listed else {}
        rows = {lms_id: keys.get(lms_id) for lms_id in listed}
        before = membership_store.members(store, audience.id)
        if before == rows:
            continue
        changed = set(before.items()) ^ set(rows.items())
        touched |= {key for _lms, key in changed if key}
        with store.tx() as conn:
            membership_store.replace_members(conn, now, audience.id, rows)
    if touched:
        with store.tx() as conn:
            people_store.mark_dirty(conn, touched)
    return total


def guard_removals(store: Store, config: Any, ops: list[NewOp]) -> list[str]:
    """Hold a run's membership removals that need approval (see sync.audiences.guard)."""
    if not config.audiences:
        return []
    return hold_removals(ops, compile_audiences(config), membership_store.actual_sizes(store))
