"""Audience membership for one evaluation batch: the reads it needs (actual memberships,
manager chains) done once per batch, then the pure decisions per person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage import memberships as membership_store
from rostersync.storage.db import Store
from rostersync.sync.audiences.chain import MAX_CHAIN, ManagerChain, walk_managers
from rostersync.sync.audiences.membership import AudienceSet, compile_audiences, membership, place
from rostersync.sync.diff import Decision, Subject
from rostersync.sync.models import OpKind, Person, Status


class AudienceBatch:
    def __init__(self, store: Store, config: Any, now: datetime,
                 persons: dict[str, Person | None]) -> None:
        self.now = now
        self.rows: list[tuple[str, dict, dict, datetime | None]] = []
        self.audiences: AudienceSet | None = None
        if not config.audiences:
            return
        self.audiences = compile_audiences(config)
        self.actual = membership_store.actual_for(store, list(persons))
        self.managers: dict[str, str | None] = {}
        if self.audiences.uses_manager_chain:
            self._load_managers(store, persons)

    def _load_managers(self, store: Store, persons: dict[str, Person | None]) -> None:
        for key, person in persons.items():
            self.managers[key] = person.manager_id if person else None
        wanted = {m for m in self.managers.values() if m and m not in self.managers}
        for _ in range(MAX_CHAIN):
            if not wanted:
                return
            found = dict.fromkeys(wanted)
            for part_start in range(0, len(wanted), 500):
                part = sorted(wanted)[part_start:part_start + 500]
                marks = ",".join("?" * len(part))
                found.update(store.conn.execute(
                    f"SELECT employee_id, manager_id FROM people WHERE employee_id IN ({marks})",
                    part))
            self.managers.update(found)
            wanted = {m for m in found.values() if m and m not in self.managers}

    def chain(self, key: str) -> ManagerChain:
        return walk_managers(key, self.managers.get)

    def extend(self, decision: Decision, subject: Subject, person: Person | None) -> None:
        """Add the person's membership drift and operations to their decision."""
        if self.audiences is None or person is None or subject.state is None:
            return
        if subject.vanished is not None:
            return  # gone from the feed: memberships wait, like the account does
        mapped = subject.mapped
        eligible = bool(mapped and mapped.in_scope and mapped.desired is not None
                        and subject.state.state in (Status.active, Status.leave))
        placement = None
        if eligible:
            walked = self.chain(subject.employee_id)
            placement = place(person, self.audiences, self.now, walked.managers, walked.loop)
        actual = self.actual.get(subject.employee_id, set())
        account = subject.actual
        # An account must exist before a membership: now, or by an op planned with it.
        can_add = account is not None or any(
            i.kind in (OpKind.create, OpKind.link) for i in decision.intents)
        membership(decision, placement, actual, self.audiences,
                   account.lms_id if account else None, can_add)
        if placement is not None:
            self.rows.append((subject.employee_id, placement.desired, placement.frozen,
                              placement.due_at))
        else:
            self.rows.append((subject.employee_id, {}, {}, None))
