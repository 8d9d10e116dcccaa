"""Conflicts inside the HR feed (pure): two people claiming one login or e-mail, manager
ids that name nobody in the feed, and manager chains that loop.

These are HR data problems, not LMS failures: writing either side of a shared login gets
a 409 from the LMS that no retry fixes, and a looping or dangling manager reference
writes a management structure that does not exist. The engine leaves the field alone for
the people involved and files drift owned by HR that names everyone in the case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

# The account fields the LMS keeps unique, in the order they are reported.
UNIQUE_FIELDS = ("user_name", "email")

# A chain longer than this is cut (and called a cycle only if it loops before).
MAX_CHAIN = 64


@dataclass(frozen=True)
class Facts:
    """What the uniqueness and manager checks need of one person in the feed.

    ``user_name`` and ``email`` are folded to lower case (the LMS compares them without
    regard to case); ``claims`` is False for people who want no account (out of scope,
    terminated): they hold no login the LMS would refuse to a colleague."""

    user_name: str | None
    email: str | None
    manager_id: str | None
    claims: bool = True

    def value(self, name: str) -> str | None:
        return self.user_name if name == "user_name" else self.email


@dataclass
class Issues:
    """Per person: the unique fields they share with others ({field: (value, others)}),
    and their manager problem, if any."""

    conflicts: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = field(default_factory=dict)
    unknown_manager: dict[str, str] = field(default_factory=dict)  # person -> manager id
    cycles: dict[str, tuple[str, ...]] = field(default_factory=dict)  # person -> the loop

    def keys(self) -> set[str]:
        return set(self.conflicts) | set(self.unknown_manager) | set(self.cycles)


def find_conflicts(facts: Mapping[str, Facts]) -> dict[str, dict[str, tuple[str, tuple[str, ...]]]]:
    """Everyone whose login or e-mail another claiming person also holds, with the others.

    One pass per field over a dict keyed by value: linear in the people given."""
    out: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {}
    for name in UNIQUE_FIELDS:
        holders: dict[str, list[str]] = {}
        for key, f in facts.items():
            value = f.value(name)
            if f.claims and value:
                holders.setdefault(value, []).append(key)
        for value, keys in holders.items():
            if len(keys) < 2:
                continue
            for key in keys:
                others = tuple(sorted(k for k in keys if k != key))
                out.setdefault(key, {})[name] = (value, others)
    return out


@dataclass(frozen=True)
class Chain:
    """A walk up the manager links from one person: the managers met in order;
    ``loop`` is the cycle the walk ran into (its members in link order), ``unknown`` the
    first manager id that names nobody in the feed."""

    managers: tuple[str, ...]
    loop: tuple[str, ...] = ()
    unknown: str | None = None
    cut: bool = False  # longer than MAX_CHAIN without looping


def walk(start: str, manager_of: Callable[[str], str | None],
         known: Callable[[str], bool]) -> Chain:
    """Follow ``start``'s manager links until the top, an unknown id or a repeat.

    Always terminates: every node is visited at most once and at most MAX_CHAIN links
    are followed."""
    path = [start]
    index = {start: 0}
    node = manager_of(start)
    while node is not None:
        if node in index:
            return Chain(tuple(path[1:]), tuple(path[index[node]:]))
        if not known(node):
            return Chain(tuple(path[1:]), unknown=node)
        if len(path) > MAX_CHAIN:
            return Chain(tuple(path[1:]), cut=True)
        index[node] = len(path)
        path.append(node)
        node = manager_of(node)
    return Chain(tuple(path[1:]))


def manager_issues(keys: Iterable[str], manager_of: Callable[[str], str | None],
                   known: Callable[[str], bool], claims: Callable[[str], bool]
                   ) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(unknown managers, cycles) for ``keys``: a person whose own manager id names
    nobody in the feed, and every member of a loop any of them runs into (the loop
    named from that member, so each sees the chain starting with themselves).

    People below a loop keep their (real) manager: only the loop's members are
    reported."""
    unknown: dict[str, str] = {}
    cycles: dict[str, tuple[str, ...]] = {}
    # Managers already walked to the top (or to an unknown id) without a loop: a walk
    # that reaches one stops there, so colleagues sharing a chain cost one walk, not one
    # each (the chain above them is the same).
    clear: set[str] = set()

    def manager_or_stop(node: str) -> str | None:
        return None if node in clear else manager_of(node)

    for key in keys:
        if key in cycles or not claims(key):
            continue
        manager = manager_of(key)
        if manager is None:
            continue
        if manager != key and not known(manager):
            unknown[key] = manager
            continue
        chain = walk(key, manager_or_stop, known)
        loop = chain.loop
        for i, member in enumerate(loop):
            cycles.setdefault(member, loop[i:] + loop[:i])
        if not loop and not chain.cut:
            clear.update(chain.managers)
    return unknown, cycles


def describe_cycle(loop: tuple[str, ...]) -> str:
    """``A -> B -> A``: the loop closed on its first member."""
    return " -> ".join((*loop, loop[0])) if loop else ""
