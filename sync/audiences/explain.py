"""What the CLI and the console show about audiences: each audience's rules, sizes and
pending changes, and for one person where they are, where they should be, and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage import memberships as membership_store
from rostersync.storage.db import Store
from rostersync.sync.audiences.chain import ManagerChain, walk_managers
from rostersync.sync.audiences.membership import compile_audiences, place
from rostersync.sync.lifecycle import lifecycle
from rostersync.sync.mapping import map_person
from rostersync.sync.models import Person, Status


def overview(store: Store, config: Any) -> list[dict[str, Any]]:
    sizes = membership_store.sizes(store)
    out = []
    for a in config.audiences:
        n = sizes.get(a.id, {})
        out.append({
            "id": a.id, "name": a.title, "lms_group": a.group, "rules": a.rule_texts,
            "compliance": a.compliance, "size": n.get("actual", 0),
            "desired": n.get("desired", 0), "pending_add": n.get("pending_add", 0),
            "pending_remove": n.get("pending_remove", 0), "held": n.get("held", 0),
            "description": a.description})
    return out


def _chain(store: Store, person: Person) -> ManagerChain:
    def manager_of(key: str) -> str | None:
        if key == person.employee_id:
            return person.manager_id
        return store.scalar("SELECT manager_id FROM people WHERE employee_id = ?", (key,))
    return walk_managers(person.employee_id, manager_of)


def explain(store: Store, config: Any, employee_id: str, now: datetime) -> dict[str, Any] | None:
    """None when rostersync has never seen the person."""
    row = store.one("SELECT record FROM people WHERE employee_id = ?", (employee_id,))
    if row is None:
        return None
    person = Person.model_validate_json(row[0]) if row[0] else None
    audiences = compile_audiences(config)
    actual = membership_store.actual_for(store, [employee_id]).get(employee_id, set())
    pending = {(r[0], r[1]): r[2] for r in store.conn.execute(
        "SELECT json_extract(payload, '$.audience'), kind, status FROM ops "
        "WHERE employee_id = ? AND kind IN ('member_add', 'member_remove') "
        "AND status IN ('pending','running','failed','held','suppressed')", (employee_id,))}
    why_not: str | None
    eligible, why_not, placement, loop = False, "no valid HR record", None, None
    if person is not None:
        state = lifecycle(person, now, config.guards.termination_cutoff)
        mapped = map_person(person, state, config)
        eligible = mapped.in_scope and state.state in (Status.active, Status.leave)
        why_not = (None if eligible else mapped.scope_reason
                   or f"status {state.state}: only active people and people on leave belong "
                      "to audiences")
        if eligible:
            walked = _chain(store, person)
            placement = place(person, audiences, now, walked.managers, walked.loop)
            loop = walked.note()
    rows = []
    for a in config.audiences:
        desired = placement.desired.get(a.id) if placement else None
        frozen = placement.frozen.get(a.id) if placement else None
        op = next(((k, s) for (aud, k), s in pending.items() if aud == a.id), None)
        rows.append({
            "id": a.id, "name": a.title, "is_in": a.id in actual,
            "should_be_in": desired is not None,
            "rule": desired["rule"] if desired else None,
            "because": desired["because"] if desired else [],
            "left_alone": frozen,
            "note": placement.notes.get(a.id) if placement else None,
            "pending": {"kind": op[0], "status": op[1]} if op else None})
    return {"employee_id": employee_id,
            "name": person.display_name if person else None,
            "eligible": eligible, "why_not": why_not, "manager_chain": loop,
            "unmapped": placement.unmapped if placement else {},
            "onboarding_change_at": placement.due_at.isoformat()
            if placement and placement.due_at else None,
            "audiences": rows}
