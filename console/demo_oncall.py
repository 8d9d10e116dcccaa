"""The demo's on-call operator: a scripted person who answers the demo's incidents the
way a real one would, through the same functions as `rostersync resume` and `rostersync
ops approve` (console.actions), so every step is in the audit log under their name.

They resume a quarantined job a few ticks after the LMS token works again (they wait for
IT's word, not for the first good request), and they review a mass-deactivation hold
after a while and approve it, with a reason. Without them the demo only gets worse: a
quarantined job applies nothing and held leavers keep their access past the SLA.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from rostersync.console import actions
from rostersync.storage import ops as op_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store

if TYPE_CHECKING:
    from rostersync.sandbox.demo import DemoWorld

ACTOR = "demo on-call"
RESUME_REASON = "IT rotated the LMS token back in; checked with a test request"
APPROVE_REASON = "reviewed with HR: the site closure is real, these people have left"
RETRY_REASON = "IT retired the legacy account that held the login"


class DemoOnCall:
    """Counts, tick by tick, how long each trouble has been seen, and acts when it has
    been seen long enough: ``resume_after`` ticks of a quarantined job with a working
    token, ``review_after`` ticks of held operations."""

    def __init__(self, token_works: Callable[[], bool], *, resume_after: int = 3,
                 review_after: int = 12, actor: str = ACTOR,
                 logins_free: Callable[[], bool] = lambda: True) -> None:
        self.token_works = token_works
        # IT's word that no login is held by a legacy account any more: until then a
        # conflict that went dead would only go dead again.
        self.logins_free = logins_free
        self.resume_after = resume_after
        self.review_after = review_after
        self.actor = actor
        self.quarantine_seen = 0  # consecutive ticks: quarantined, token working
        self.held_seen = 0  # consecutive ticks with operations held
        self.resumed = 0
        self.approved = 0
        self.retried = 0
        self._retried_ids: set[int] = set()  # each refused create is retried once

    def tick(self, store: Store, now: datetime) -> list[str]:
        """Look at the job and the held list once; returns what was done, if anything."""
        return [said for said in (self._resume_if_due(store, now),
                                  self._review_if_due(store, now),
                                  self._retry_conflicts(store, now)) if said]

    def _retry_conflicts(self, store: Store, now: datetime) -> str | None:
        """Creates refused because the login was taken, retried once IT freed it."""
        if not self.logins_free():
            return None
        ids = [r[0] for r in store.conn.execute(
            "SELECT id FROM ops WHERE status IN ('dead', 'failed') "
            "AND error_class = 'conflict' ORDER BY id") if r[0] not in self._retried_ids]
        if not ids:
            return None
        acted = actions.retry(store, now, ids, 3, self.actor,
                              detail={"reason": RETRY_REASON})
        self.retried += len(acted.done)
        self._retried_ids.update(ids)
        return f"retried {len(acted.done)} refused create(s) ({RETRY_REASON})"

    def _resume_if_due(self, store: Store, now: datetime) -> str | None:
        job = run_store.job_state(store)
        if job["state"] != "quarantined" or not self.token_works():
            self.quarantine_seen = 0
            return None
        self.quarantine_seen += 1
        if self.quarantine_seen < self.resume_after:
            return None
        self.quarantine_seen = 0
        actions.set_job_state(store, now, "active", RESUME_REASON, self.actor)
        self.resumed += 1
        return f"resumed the job ({RESUME_REASON})"

    def _review_if_due(self, store: Store, now: datetime) -> str | None:
        held = op_store.ids_with_status(store, "held")
        if not held:
            self.held_seen = 0
            return None
        self.held_seen += 1
        if self.held_seen < self.review_after:
            return None
        self.held_seen = 0
        acted = actions.approve(store, now, held, self.actor,
                                detail={"reason": APPROVE_REASON})
        self.approved += len(acted.done)
        return (f"approved {len(acted.done)} held operation(s) ({APPROVE_REASON}); they "
                "apply on the next run")


def demo_on_call(world: DemoWorld) -> DemoOnCall:
    """The demo's on-call for ``world``. They learn that IT restored the token the way a
    person would, from IT (the world's fault plan). A held batch waits 36 ticks (90 s) for
    them: time for the person at the console to review it first, and to see terminations
    go past the SLA while it waits."""
    return DemoOnCall(lambda: not world.faults.revoked, review_after=36,
                      logins_free=lambda: not world.faults.refused_names)
