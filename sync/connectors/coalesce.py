"""Membership changes of one LMS group, sent in order and coalesced.

A first sync with audiences adds thousands of members, a handful of groups at a time.
Changes to one group must not race (a group is one resource, and some LMSs rewrite its
whole member list per change), so they go one request at a time; those that arrive
while a request is in flight are sent together in the next one. Each caller still gets
its own outcome: when a combined request is refused for a reason a retry would not fix
(one bad member, say), its changes are sent again one by one, so that only the bad one
fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from rostersync.sync.connectors.base import ConnectorError
from rostersync.sync.models import ErrorClass

Change = TypeVar("Change")

def about_the_request(error: ConnectorError) -> bool:
    """A failure that says nothing about any one change (an outage, an expired token):
    the whole request is retried later, not split."""
    return error.error_class in (ErrorClass.transient, ErrorClass.auth)


class GroupChanges(Generic[Change]):
    """``send(group, changes)`` makes one request for several changes of one group;
    ``shared`` tells a refusal of the whole request from one caused by some change."""

    def __init__(self, send: Callable[[str, list[Change]], Awaitable[None]],
                 max_batch: int = 100,
                 shared: Callable[[ConnectorError], bool] = about_the_request) -> None:
        self._send = send
        self._max_batch = max_batch
        self._shared = shared
        self._locks: dict[str, asyncio.Lock] = {}
        self._waiting: dict[str, list[tuple[Change, asyncio.Future[None]]]] = {}

    async def submit(self, group: str, change: Change) -> None:
        """Returns once the change is made; raises the ConnectorError that refused it."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiting = self._waiting.setdefault(group, [])
        waiting.append((change, done))
        try:
            async with self._locks.setdefault(group, asyncio.Lock()):
                # Whoever holds the lock sends for everyone waiting, itself included; a
                # caller whose change went out with an earlier request finds it done.
                while not done.done():
                    batch, waiting[:] = waiting[:self._max_batch], waiting[self._max_batch:]
                    await self._send_batch(group, batch)
        except BaseException:
            # The caller is gone (a run cancelled at shutdown): its change is not sent on
            # its behalf, and whatever outcome another sender sets for it is nobody's to
            # read, so it must not be reported as an exception never retrieved.
            waiting[:] = [entry for entry in waiting if entry[1] is not done]
            done.add_done_callback(_outcome_read)
            raise
        return done.result()

    async def _send_batch(self, group: str,
                          batch: list[tuple[Change, asyncio.Future[None]]]) -> None:
        try:
            try:
                await self._send(group, [change for change, _ in batch])
            except ConnectorError as exc:
                if len(batch) == 1 or self._shared(exc):
                    _settle(batch, exc)
                    return
                for change, done in batch:  # find the one that was refused
                    try:
                        await self._send(group, [change])
                    except ConnectorError as one:
                        done.set_exception(one)
                    else:
                        done.set_result(None)
                return
            _settle(batch, None)
        finally:
            # Cancelled mid-request: the others' changes are in an unknown state, which
            # is what a lost answer means; they are retried like one.
            for _change, done in batch:
                if not done.done():
                    done.set_exception(ConnectorError(
                        f"the request for group {group!r} was interrupted"))


def _outcome_read(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


def _settle(batch: list[tuple[Change, asyncio.Future[None]]],
            error: ConnectorError | None) -> None:
    for _change, done in batch:
        if not done.done():
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)
