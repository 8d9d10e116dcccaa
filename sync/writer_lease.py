"""The engine's side of the single-writer lease (storage.lease): take it for a run,
keep it while the run lasts, give it back, even on a full disk."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime

from rostersync.storage import lease as lease_store
from rostersync.storage.db import Store
from rostersync.storage.failure import as_storage_failure
from rostersync.sync.clock import Clock
from rostersync.sync.run_report import EngineBusy


def take(store: Store, holder: str, now: datetime, ttl: float) -> None:
    """The lease for a run, or EngineBusy naming the process that holds it."""
    other = lease_store.acquire(store, holder, now, ttl)
    if other is not None:
        raise EngineBusy(
            f"another rostersync process ({other.holder}) holds the writer lease "
            f"until {other.expires_at:%Y-%m-%d %H:%M:%S} UTC; nothing was done")


def give_back(store: Store, holder: str) -> None:
    try:
        with store.bulk_writes():
            lease_store.release(store, holder)
    except sqlite3.Error as exc:
        if as_storage_failure(exc, store.path) is None:
            raise
        # A full disk takes no write: the lease of a process that has ended is stale
        # at once (storage.lease), so the next run is not kept waiting.


async def keep(store: Store, holder: str, clock: Clock, ttl: float) -> None:
    """Renews the lease every third of its time until cancelled."""
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            lease_store.acquire(store, holder, clock.now(), ttl)
        except sqlite3.OperationalError:
            continue  # busy for a moment: the next tick renews, well before expiry
