"""Generated logins: each new account gets the first candidate nobody holds.

A login is generated when [mapping] user_name is an expression or a list of them
("jsmith", then "john.smith", then "jsmith" with the employee number). The first
candidate that no LMS account, no other person in the feed and nobody assigned earlier
in this run holds is the person's. Once an account exists its login is kept: the login
is written at creation and never compared after (a name change does not rename anyone).

When every candidate is taken the person gets no account and a `login_taken` drift owned
by IT: the HR data is right (two people may share a name), the candidate list is what
needs another entry. The create is never sent to collect a 409 that no retry fixes.

``choose_login`` is the pure decision; ``settle_logins`` gathers what it needs with a few
indexed queries for one batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rostersync.storage import accounts as account_store
from rostersync.storage import people as people_store
from rostersync.storage.db import Store
from rostersync.sync.diff import DriftItem
from rostersync.sync.models import Account, DriftKind

# Statuses whose stored login still claims its name (see sync.feed_issues).
_CLAIMING = frozenset(("active", "leave", "pre_hire"))


@dataclass
class LoginBook:
    """The logins assigned so far in one run (lower case -> employee id): a batch sees
    what earlier batches chose before their writes land."""

    assigned: dict[str, str] = field(default_factory=dict)


def choose_login(candidates: Iterable[str], previous: str | None,
                 taken: Callable[[str], bool]) -> str | None:
    """The person's login: the one chosen before while it is still a free candidate
    (stable across runs until the account exists), else the first free candidate."""
    candidates = list(candidates)
    if previous and previous.lower() in {c.lower() for c in candidates} \
            and not taken(previous):
        return next(c for c in candidates if c.lower() == previous.lower())
    return next((c for c in candidates if not taken(c)), None)


def settle_logins(store: Store, subjects: Iterable[Any], book: LoginBook | None) -> list[str]:
    """Settles the generated login of each subject (sync.diff.Subject) that wants an
    account: kept from its LMS account when it has one, else chosen among its
    candidates. A subject with no free candidate is blocked, with ``login_taken`` set
    (and claims no login). Returns the keys whose desired login was settled."""
    book = book if book is not None else LoginBook()
    pending = []
    settled: list[str] = []
    for s in subjects:
        mapped = s.mapped
        if mapped is None or mapped.desired is None or not mapped.login_candidates:
            continue
        if s.actual is not None:
            mapped.desired.user_name = s.actual.user_name  # assigned once, kept
            settled.append(s.employee_id)
        else:
            pending.append(s)
    if not pending:
        return settled
    names = sorted({c.lower() for s in pending for c in s.mapped.login_candidates})
    lms_holders: dict[str, set[str]] = {}
    for text in account_store.candidates(store, [], names):
        account = Account.from_json(text)
        lms_holders.setdefault(account.user_name.lower(), set()).add(
            account.external_key or f"LMS account {account.lms_id}")
    feed_holders: dict[str, set[str]] = {}
    previous: dict[str, str] = {}
    holders = people_store.holder_keys(store, "user_name", names)
    mine = [s.employee_id for s in pending]
    for row in people_store.facts_for(store, sorted(set(holders) | set(mine))):
        key, user_name, _email, _manager, status, scoped, missing_since, has_desired = row
        if not user_name:
            continue
        if key in mine:
            previous[key] = user_name
        if missing_since is None and scoped and has_desired and status in _CLAIMING:
            feed_holders.setdefault(user_name, set()).add(key)
    for s in sorted(pending, key=lambda s: s.employee_id):
        me = s.employee_id

        def holders_of(login: str, me: str = me) -> set[str]:
            low = login.lower()
            found = (lms_holders.get(low, set()) | feed_holders.get(low, set())) - {me}
            other = book.assigned.get(low)
            if other is not None and other != me:
                found.add(other)
            return found

        candidates = s.mapped.login_candidates
        chosen = choose_login(candidates, previous.get(me), lambda c: bool(holders_of(c)))
        if chosen is None:
            held = {c: sorted(holders_of(c)) for c in candidates}
            s.mapped.blocked = "every login candidate is already held"
            s.mapped.login_taken = held
            s.mapped.desired.user_name = ""
        else:
            s.mapped.desired.user_name = chosen
            book.assigned[chosen.lower()] = me
        settled.append(me)
    return settled


def login_drift(subject: Any) -> DriftItem | None:
    """The `login_taken` drift of a subject whose every login candidate is held."""
    mapped = subject.mapped
    if mapped is None or not mapped.login_taken:
        return None
    held = mapped.login_taken
    shown = "; ".join(f"{c!r} by {', '.join(w)}" for c, w in held.items())
    return DriftItem(DriftKind.login_taken, {
        "candidates": held,
        "reason": f"every login candidate is already held ({shown}); no account is "
                  "created until mapping.user_name offers a free one"})
