"""The conflicts inside one run's feed: shared logins and e-mails, unknown managers and
manager loops, found for the people a run evaluates (the pure checks are in
sync.feed_conflicts; this module reads what they need from the database)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from rostersync.storage import drift as drift_store
from rostersync.storage import people as people_store
from rostersync.storage.db import Store
from rostersync.sync.config import Config
from rostersync.sync.feed_conflicts import Facts, Issues, find_conflicts, manager_issues
from rostersync.sync.lifecycle import lifecycle
from rostersync.sync.mapping import in_scope, login_of
from rostersync.sync.models import DriftKind, Person, Status

if TYPE_CHECKING:
    from rostersync.sync.evaluate import Parsed


def _facts(person: Person, config: Config, now: datetime) -> Facts:
    state = lifecycle(person, now, config.guards.termination_cutoff).state
    # A generated login is kept unique where it is assigned (sync.mapping_logins): its
    # first candidate shared with a colleague is no conflict.
    login = None if config.mapping.generated_login else login_of(person, config)
    return Facts(login.lower() if login else None,
                 person.email.lower() if person.email else None, person.manager_id,
                 state != Status.terminated and in_scope(person, config)[0])


_CLAIMING = frozenset(("active", "leave", "pre_hire"))


def _stored_facts(row: tuple[Any, ...]) -> tuple[str, Facts, bool]:
    """(key, facts, in the feed) from a storage.people facts row."""
    key, user_name, email, manager, status, scoped, missing_since, has_desired = row
    in_feed = missing_since is None and status != "vanished"
    claims = bool(in_feed and scoped and has_desired and status in _CLAIMING)
    return key, Facts(user_name, email, manager, claims), in_feed


# The drift kinds feed_issues files: a person with one open is checked again every run.
_FEED_ISSUE_KINDS = (str(DriftKind.conflict), str(DriftKind.manager_unknown),
                     str(DriftKind.manager_cycle))


def _settled(store: Store, facts: dict[str, Facts], in_feed: dict[str, bool],
             missing: set[str] | frozenset[str]) -> set[str]:
    """This run's people whose login, e-mail, manager and claim are what the database
    already holds, with no feed issue open: nothing about them can start a new conflict
    or loop. A new case needs someone's facts to change, and that person's own checks
    find everyone involved (a shared value by the index, a loop by the walk through
    them), so the settled are looked at only as the others' counterparts. In a reconcile
    most changed rows change a department or a title, not these. A manager who just
    left the feed unsettles their reports (their manager is now unknown)."""
    stored = {key: (f, here) for key, f, here in map(
        _stored_facts, people_store.facts_for(store, list(facts)))}
    reopen = drift_store.open_subjects(store, _FEED_ISSUE_KINDS)
    return {k for k, f in facts.items()
            if stored.get(k) == (f, in_feed[k]) and k not in reopen
            and f.manager_id not in missing}


def feed_issues(store: Store, config: Config, now: datetime, keys: list[str],
                fresh: dict[str, Parsed], missing: set[str] | frozenset[str] = frozenset()
                ) -> Issues:
    """The conflicts inside the feed that concern ``keys``: shared logins and e-mails,
    unknown managers and manager cycles, each naming everyone involved (people outside
    ``keys`` included: the engine evaluates them too, so every side gets its drift).

    Set operations over what is in hand: ``fresh`` (this run's records, which win over
    what the database holds) and indexed lookups of the values and managers ``keys``
    name; never a scan of everyone."""
    facts: dict[str, Facts] = {}
    in_feed: dict[str, bool] = {}
    for key, parsed in fresh.items():
        if parsed.person is not None:
            facts[key] = _facts(parsed.person, config, now)
            in_feed[key] = True
    stale = {k for k in fresh if k not in facts}  # invalid now: the stored record stands

    def take(rows: list[tuple[Any, ...]]) -> None:
        for row in rows:
            key, f, here = _stored_facts(row)
            if key in facts and key not in stale:
                continue
            if key in missing:
                f, here = Facts(f.user_name, f.email, f.manager_id, False), False
            facts[key], in_feed[key] = f, here
            stale.discard(key)

    settled = _settled(store, facts, in_feed, missing)
    take(people_store.facts_for(store, [k for k in keys if k not in facts or k in stale]))
    subjects = [k for k in keys if k in facts and k not in settled]
    # Everyone else holding one of these values: the index finds them; this run's
    # records are searched by value in memory (their stored values may be stale).
    for name in ("user_name", "email"):
        wanted = sorted({v for k in subjects if facts[k].claims
                         for v in [facts[k].value(name)] if v})
        if wanted:  # facts are read only for holders not in hand already
            take(people_store.facts_for(store, [
                k for k in people_store.holder_keys(store, name, wanted) if k not in facts]))
    conflicts = find_conflicts({k: f for k, f in facts.items()})
    mine = set(subjects)
    related = {k for k, fields in conflicts.items()
               if k in mine or any(mine.intersection(o) for _v, o in fields.values())}
    conflicts = {k: v for k, v in conflicts.items() if k in related}

    # Managers: load up the chains level by level (one primary-key query per level).
    wanted_managers = {f.manager_id for k in subjects for f in [facts[k]] if f.manager_id}
    for _ in range(64):
        wanted_managers -= facts.keys()
        if not wanted_managers:
            break
        take(people_store.facts_for(store, sorted(wanted_managers)))
        wanted_managers = {manager for m in wanted_managers
                           if m in facts and (manager := facts[m].manager_id)}
    unknown, cycles = manager_issues(
        subjects, lambda k: facts[k].manager_id if k in facts else None,
        lambda k: in_feed.get(k, False), lambda k: facts[k].claims)
    return Issues(conflicts, unknown, {k: v for k, v in cycles.items() if facts[k].claims})
