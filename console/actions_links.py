"""Operator decisions on disputed and unlinked matches, shared by `rostersync links` and
the console's person screen.

Each function checks the decision against what the database says now, writes it (storage/
match_decisions.py) and the audit entry naming the person in one transaction, and returns
one sentence saying what the next run will do. Open link and create operations of the
person are superseded in the same transaction, so that a retry sweep before the next run
cannot apply a plan the operator just overruled; the next run plans what was decided.
Nothing here talks to the LMS.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rostersync.storage import audit
from rostersync.storage import match_decisions as match_store
from rostersync.storage import ops as op_store
from rostersync.storage import people as people_store
from rostersync.storage.db import Store, ts

# Open operations a match decision overrules.
_MATCH_OPS = ("link", "create")
_OPEN = ("pending", "failed", "held", "suppressed")  # not running: the executor owns those


class LinkRefused(Exception):
    """A decision that cannot apply; the message is one sentence naming what and why."""


def link(store: Store, now: datetime, actor: str, employee_id: str, lms_id: str) -> str:
    """Link the person to exactly this candidate LMS account on the next run."""
    with store.tx() as conn:
        match = open_match(store, employee_id)
        chosen = next((c for c in match["candidates"] if c["lms_id"] == lms_id), None)
        if chosen is None:
            ids = ", ".join(c["lms_id"] for c in match["candidates"]) or "none"
            raise LinkRefused(f"LMS account {lms_id!r} is not one of {employee_id}'s candidate "
                              f"accounts (candidates: {ids})")
        owner = chosen.get("external_key")
        if owner and owner != employee_id:
            raise LinkRefused(f"LMS account {lms_id} belongs to {owner} (its externalId); it "
                              f"cannot be linked to {employee_id}")
        _decide(conn, store, now, actor, employee_id, "link", lms_id, None)
    return (f"{employee_id} linked to LMS account {lms_id} ({describe(chosen)}); the next run "
            "links it and updates it from HR")


def create(store: Store, now: datetime, actor: str, employee_id: str) -> str:
    """Create a new account for the person on the next run, whatever the candidates."""
    with store.tx() as conn:
        match = open_match(store, employee_id)
        _decide(conn, store, now, actor, employee_id, "create", None, None)
    clash = username_clash(match)
    note = (f"; LMS account {clash['lms_id']} already has userName {clash['user_name']!r}, "
            "so the LMS may refuse the duplicate: the create then fails with a conflict "
            "naming that account" if clash else "")
    return f"{employee_id} gets a new LMS account on the next run{note}"


def ignore(store: Store, now: datetime, actor: str, employee_id: str, reason: str) -> str:
    """Leave the match alone: the drift stays visible, marked ignored, nothing is planned."""
    reason = (reason or "").strip()
    if not reason:
        raise LinkRefused("a reason is required to ignore a match: it goes to the audit log")
    with store.tx() as conn:
        open_match(store, employee_id)
        _decide(conn, store, now, actor, employee_id, "ignore", None, reason)
    return f"{employee_id}'s match is ignored ({reason}); no run links or creates an account"


def clear(store: Store, now: datetime, actor: str, employee_id: str) -> str:
    """End the person's decision: the next run applies the ordinary matching rules."""
    with store.tx() as conn:
        before = match_store.clear(conn, now, employee_id, actor)
        if before is None:
            raise LinkRefused(f"{employee_id} has no match decision to clear")
        people_store.mark_dirty(conn, [employee_id])
        audit.record(store, now, "match_clear", employee_id,
                     {"cleared": before.as_dict()}, actor=actor)
    return (f"{employee_id}'s decision ({before.decision}) is cleared; the next run matches "
            "them by the ordinary rules")


# -- reading -----------------------------------------------------------------------------

def open_match(store: Store, employee_id: str) -> dict[str, Any]:
    """The person's open disputed or unlinked match: the drift, the HR record and desired
    account, the candidate accounts and the decision in force. LinkRefused when there is
    no such person or no open match."""
    person = match_store.person_desired(store, employee_id)
    if person is None:
        raise LinkRefused(f"employee {employee_id!r} is not known to rostersync (no HR record "
                          "has been read for that id)")
    drift = match_store.open_matches(store, employee_id)
    if not drift:
        raise LinkRefused(f"{employee_id} has no open disputed or unlinked match to decide")
    return _match(store, employee_id, person, drift)


def queue(store: Store) -> list[dict[str, Any]]:
    """Every open disputed or unlinked match, oldest first (the operators' work queue)."""
    by_person: dict[str, list[dict[str, Any]]] = {}
    for row in match_store.open_matches(store):
        by_person.setdefault(row["subject"], []).append(row)
    out = []
    for employee_id, drift in by_person.items():
        person = match_store.person_desired(store, employee_id) or {"record": None,
                                                                     "desired": None}
        out.append(_match(store, employee_id, person, drift))
    return out


def _match(store: Store, employee_id: str, person: dict[str, Any],
           drift: list[dict[str, Any]]) -> dict[str, Any]:
    named = [c["lms_id"] for row in drift for c in row["detail"].get("candidates", [])]
    named += [row["lms_id"] for row in drift if row["lms_id"]]
    decision = match_store.active(store, employee_id)
    if decision is not None and decision.lms_id:
        named.append(decision.lms_id)
    first = drift[0]
    return {
        "employee_id": employee_id,
        "kind": first["kind"],
        "first_seen_at": first["first_seen_at"],
        "detail": first["detail"],
        "record": person["record"],
        "desired": person["desired"],
        "candidates": match_store.candidates(store, employee_id, person["desired"], named),
        "decision": decision.as_dict() if decision else None,
    }


def username_clash(match: dict[str, Any]) -> dict[str, Any] | None:
    """The candidate account that already has the userName a new account would take (the
    LMS may refuse the duplicate), if any."""
    wanted = ((match.get("desired") or {}).get("user_name") or "").lower()
    return next((c for c in match["candidates"]
                 if wanted and (c.get("user_name") or "").lower() == wanted), None)


def describe(account: dict[str, Any]) -> str:
    """'jo@example.com' or 'jo (jo@example.com)': how an operator recognises an account."""
    user, email = account.get("user_name"), account.get("email")
    if user and email and user.lower() != email.lower():
        return f"{user}, {email}"
    return user or email or "no userName"


# -- writing -----------------------------------------------------------------------------

def _decide(conn: Any, store: Store, now: datetime, actor: str, employee_id: str,
            decision: str, lms_id: str | None, reason: str | None) -> None:
    decision_id, before = match_store.record(conn, now, employee_id, decision, lms_id, reason,
                                             actor)
    marks = ",".join("?" * len(_OPEN))
    overruled = [r[0] for r in conn.execute(
        f"SELECT id FROM ops WHERE employee_id = ? AND kind IN (?, ?) AND status IN ({marks})",
        (employee_id, *_MATCH_OPS, *_OPEN))]
    op_store.set_status(conn, now, overruled, "superseded", finished_at=ts(now))
    people_store.mark_dirty(conn, [employee_id])  # the next run evaluates them
    audit.record(store, now, f"match_{decision}", employee_id, {
        "decision": decision, "lms_id": lms_id, "reason": reason, "decision_id": decision_id,
        "superseded_decision": before.as_dict() if before else None,
        "superseded_ops": overruled}, actor=actor)
