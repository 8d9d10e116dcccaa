"""The single-writer lease: only the holder applies operations.

A lease row names its holder and expires; the holder renews it while it works. A
crashed holder's lease simply expires, so a stale lease is recovered without an operator.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from rostersync.storage.db import Store, parse_ts, ts


@dataclass
class LeaseHolder:
    holder: str
    pid: int | None
    host: str | None
    expires_at: datetime | None


def _dead_local(pid: int | None, host: str | None) -> bool:
    """A lease held by a process on this host that no longer exists is stale now, not
    when it expires: a killed `sync` must not block the next one for minutes."""
    if not pid or host != socket.gethostname() or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def holder_gone(holder: LeaseHolder) -> bool:
    """The holder was a process on this host that no longer exists (its lease is stale)."""
    return _dead_local(holder.pid, holder.host)


def new_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(store: Store, holder: str, now: datetime, ttl_seconds: float,
            name: str = "writer") -> LeaseHolder | None:
    """Take or renew the lease. Returns None on success, else who holds it."""
    expires = ts(now + timedelta(seconds=ttl_seconds))
    with store.tx() as conn:
        row = conn.execute("SELECT holder, pid, host, expires_at FROM lease WHERE name = ?",
                           (name,)).fetchone()
        if row and row[0] != holder and row[3] > ts(now) and not _dead_local(row[1], row[2]):
            return LeaseHolder(row[0], row[1], row[2], parse_ts(row[3]))
        conn.execute(
            "INSERT INTO lease(name, holder, pid, host, acquired_at, expires_at) "
            "VALUES (?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, "
            "pid=excluded.pid, host=excluded.host, expires_at=excluded.expires_at, "
            "acquired_at=CASE WHEN lease.holder = excluded.holder THEN lease.acquired_at "
            "ELSE excluded.acquired_at END",
            (name, holder, os.getpid(), socket.gethostname(), ts(now), expires))
    return None


def release(store: Store, holder: str, name: str = "writer") -> None:
    with store.tx() as conn:
        conn.execute("DELETE FROM lease WHERE name = ? AND holder = ?", (name, holder))


def current(store: Store, now: datetime, name: str = "writer") -> LeaseHolder | None:
    row = store.one("SELECT holder, pid, host, expires_at FROM lease WHERE name = ?", (name,))
    if not row or row[3] <= ts(now):
        return None
    return LeaseHolder(row[0], row[1], row[2], parse_ts(row[3]))
