"""Walking a person's manager links for `manager_chain` rules (pure).

HR data can loop (two people who manage each other): the walk stops at the first repeat
and keeps the loop, so the explanation can say why the chain ends where it does instead
of leaving a rule's answer unexplained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rostersync.sync.feed_conflicts import describe_cycle

# Manager chains longer than this are cut (a cycle in HR data must not hang a run).
MAX_CHAIN = 32


@dataclass(frozen=True)
class ManagerChain:
    """The managers above a person, nearest first; ``loop`` the cycle the walk ran into
    (its members in link order, starting where the walk re-entered it), if any."""

    managers: tuple[str, ...] = ()
    loop: tuple[str, ...] = ()

    def note(self) -> str | None:
        return loop_note(self.loop) if self.loop else None


def loop_note(loop: tuple[str, ...]) -> str:
    """What an explanation says about a chain that loops: ``manager chain loops: A -> B -> A``."""
    return f"manager chain loops: {describe_cycle(loop)}"


def walk_managers(key: str, manager_of: Callable[[str], str | None],
                  limit: int = MAX_CHAIN) -> ManagerChain:
    """Follow ``key``'s manager links until the top, a repeat or ``limit`` managers.

    The person themselves counts as a manager when a loop leads back to them (that is
    what the links say); the walk then stops at the next repeat."""
    managers: list[str] = []
    position = {key: 0}  # where each node sits on the walk (the person at 0)
    loop: tuple[str, ...] = ()
    node = manager_of(key)
    while node and len(managers) < limit:
        if node in position and not loop:
            walked = [key, *managers]
            loop = tuple(walked[position[node]:])
        if node in managers:
            break
        managers.append(node)
        position.setdefault(node, len(managers))
        node = manager_of(node)
    return ManagerChain(tuple(managers), loop)
