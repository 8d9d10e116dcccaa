"""Batches of account writes: what the executor hands an LMS that takes many at once.

SCIM Bulk (RFC 7644 §3.7) and Moodle's core_user_create_users / core_user_update_users
take many users per request; a request costs the LMS far more than one user in it (a
Moodle web-service call boots the whole site). The executor still records every
operation on its own (its attempt, outcome and event), so a batch is only a way of
sending: this module holds the pure part, what a batch item is and how items are packed
into batches within the LMS's limits, managers before their reports.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.models import Account


@dataclass(frozen=True)
class BatchLimits:
    """What one batch may hold, as the LMS says (SCIM /ServiceProviderConfig) or as
    configured (Moodle ``batch_size``)."""

    max_items: int
    max_bytes: int | None = None  # the request body, all items and the envelope
    # True: a create may name, as its manager, another create of the same batch (SCIM
    # bulkId); a report's manager is then sent earlier in the same batch or in an earlier
    # batch that has finished. False: the LMS holds no manager reference (Moodle), so
    # batches need no order.
    references: bool = False


@dataclass
class BatchItem:
    """One operation as one entry of a batch. ``ref`` is unique within the batch (the op
    id): a SCIM bulkId, the key of its outcome."""

    ref: str
    kind: Literal["create", "update"]
    account: Account | None = None  # create: the account to make (external_key set)
    lms_id: str | None = None  # update: the account to change
    changes: dict[str, Any] = field(default_factory=dict)
    manager_lms_id: str | None = None
    manager_ref: str | None = None  # a create of the same batch that is the manager
    version: str | None = None  # If-Match, where the LMS uses versions
    prepared: Any = None  # the entry as the LMS's wire wants it, when built while packing


_Item = TypeVar("_Item")

# What became of each item: the account as the LMS holds it now (None: nothing to
# report, e.g. an update the LMS answered without a body), or why it failed.
Outcome = Account | ConnectorError | None


class BatchingTarget(Protocol):
    """An LMS target that takes batches (SCIM Bulk, Moodle): the executor sends batches
    only to a target whose ``batch_limits`` answered with limits."""

    async def batch_limits(self) -> BatchLimits | None: ...

    async def apply_batch(self, items: list[BatchItem]) -> dict[str, Outcome]: ...


class BatchRefused(Exception):
    """The LMS refused the batch mechanism itself (no /Bulk, a 501, a body it will not
    take): nothing in the batch was applied, so every item may be sent on its own."""


@dataclass
class Batch:
    items: list[BatchItem]
    after: set[int] = field(default_factory=set)  # earlier batches holding a manager


def managers_first(keys: Iterable[str], manager_of: dict[str, str | None]) -> list[str]:
    """``keys`` in depth-first order of the manager tree among them: every manager before
    its reports, and a manager's reports right after it, so that most of them land in the
    manager's own batch. A loop is cut where it closes (the plan reports those)."""
    keys = list(keys)
    present = set(keys)
    reports: dict[str, list[str]] = {}
    roots = []
    for key in keys:
        manager = manager_of.get(key)
        if manager in present and manager != key:
            reports.setdefault(manager, []).append(key)
        else:
            roots.append(key)
    order: list[str] = []
    seen: set[str] = set()

    def walk(root: str) -> None:
        stack = [root]
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            order.append(key)
            stack.extend(reversed(reports.get(key, [])))

    for root in roots:
        walk(root)
    for key in keys:  # the members of a loop, which no root reaches
        walk(key)
    return order


def pack(items: list[BatchItem], limits: BatchLimits, cost: Callable[[BatchItem], int],
         manager_ref_of: dict[str, str] | None = None, envelope: int = 0) -> list[Batch]:
    """Every batch of ``packed`` at once."""
    return list(packed(items, limits, cost, manager_ref_of, envelope))


def packed(items: list[BatchItem], limits: BatchLimits, cost: Callable[[BatchItem], int],
           manager_ref_of: dict[str, str] | None = None, envelope: int = 0
           ) -> Iterator[Batch]:
    """Consecutive ``items`` packed into batches of at most ``limits.max_items`` items and
    ``limits.max_bytes`` bytes (``envelope`` bytes of each are the request's own).

    ``manager_ref_of`` maps an item's ref to the ref of the item creating its manager
    (items come managers first, see ``managers_first``): a manager in the same batch is
    referenced (``manager_ref``), one in an earlier batch makes that batch a prerequisite
    (``after``). An item bigger than the byte budget goes alone: the LMS then says no to
    it, and only to it.

    A generator: a batch is yielded as soon as it is full, so that the first request can
    leave while the rest are still being sized.
    """
    manager_ref_of = manager_ref_of or {}
    current: Batch | None = None
    index = -1
    where: dict[str, int] = {}
    size = envelope
    for item in items:
        weight = cost(item) + 1  # the comma between entries
        if current is None or len(current.items) >= limits.max_items or (
                limits.max_bytes is not None and size + weight > limits.max_bytes
                and current.items):
            if current is not None:
                yield current
            current = Batch([])
            index += 1
            size = envelope
        manager = manager_ref_of.get(item.ref)
        if manager is not None and manager in where:
            if where[manager] == index and limits.references:
                item.manager_ref = manager
            elif where[manager] != index:
                current.after.add(where[manager])
        current.items.append(item)
        where[item.ref] = index
        size += weight
    if current is not None:
        yield current


def split(items: list[_Item]) -> tuple[list[_Item], list[_Item]]:
    """Two halves, to find the users an all-or-nothing batch was refused for."""
    middle = len(items) // 2
    return items[:middle], items[middle:]
