"""Removals from compliance audiences wait for the additions they follow.

On a transfer the person joins the new compliance audience and leaves the old one in the
same run, additions first. When the addition fails, the removal must not run: the
person would end up in neither audience and drop out of compliance training. So before
a removal from a compliance audience is applied, the person must already be in every
other compliance audience the rules want them in. Until then the removal is not sent:

- while the addition is still being retried, the removal waits (stays pending, due
  again when the addition is next tried), saying what it waits for;
- when the addition will not land by itself (dead, held, suppressed, none planned), the
  removal is held with that reason. It is released when the addition lands
  (storage.memberships.applied), or an operator approves it (`rostersync ops approve`)
  and it runs regardless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage import memberships as membership_store
from rostersync.storage.db import Store, parse_ts

RETRYING = ("pending", "running", "failed")


@dataclass(frozen=True)
class Wait:
    reason: str
    until: datetime | None  # None: held until the addition lands or an approval


def removal_wait(leaving: Any, missing: dict[str, dict[str, Any] | None], employee_id: str,
                 now: datetime, recheck_seconds: float) -> Wait | None:
    """Whether removing ``employee_id`` from the audience ``leaving`` must wait (pure).

    ``missing``: the compliance audiences the person should be in but is not, each with
    its latest addition op (None: none planned)."""
    if not leaving.compliance or not missing:
        return None
    retrying = any(row and row["status"] in RETRYING for row in missing.values())
    states = []
    for audience, row in sorted(missing.items()):
        if row is None:
            states.append(f"{audience!r} (no addition planned)")
            continue
        error = f": {row['last_error']}" if row["last_error"] else ""
        states.append(f"{audience!r} (addition {row['status']}{error})")
    why = (f"{employee_id} is not yet in compliance audience {', '.join(states)}; removing "
           f"them from {leaving.id!r} first would leave them in neither")
    if not retrying:
        return Wait(f"{membership_store.WAITS_FOR_ADDITION} {why}; approve to remove them "
                    "anyway (released by itself when the addition lands)", None)
    retry_at = [t for row in missing.values() if row and row["status"] in RETRYING
                and (t := parse_ts(row["next_attempt_at"])) is not None and t > now]
    until = min(retry_at, default=now + timedelta(seconds=recheck_seconds))
    return Wait(f"waits until the addition is retried: {why}", until)


def check_removal(store: Store, config: Any, op: Mapping[str, Any], now: datetime
                  ) -> Wait | None:
    """The wait for one member_remove op about to be applied, or None to go ahead."""
    if op.get("approved_by"):
        return None
    audiences = {a.id: a for a in config.audiences}
    leaving = audiences.get(op["payload"].get("audience"))
    if leaving is None or not leaving.compliance:
        return None
    key = op["employee_id"]
    others = [a.id for a in config.audiences if a.compliance and a.id != leaving.id]
    missing = membership_store.missing_from(store, key, others)
    if not missing:
        return None
    additions = membership_store.latest_additions(store, key)
    return removal_wait(leaving, {a: additions.get(a) for a in missing}, key, now,
                        config.guards.retry_base_seconds or 60.0)
