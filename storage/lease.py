"""Leases: only the holder of a lease does what it guards.

A lease row names its holder and expires; the holder renews it while it works. A
crashed holder's lease simply expires, so a stale lease is recovered without an operator.
"writer" is taken by every applying run; "leader" by the `serve` node that leads when
several share one database (sync/leadership.py).

Every lease carries a fencing token that grows by one each time the lease changes hands
(or is taken again after it lapsed) and never goes back: a release expires the row and
keeps it. A write checks the token in its own statement (``Fence``), so a holder that was
paused past its lease cannot write after another node took it over.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage.db import Store, parse_ts, ts

_COLUMNS = "holder, pid, host, expires_at, acquired_at, token, node"
CLAIMS_KEPT_DAYS = 7


@dataclass
class LeaseHolder:
    holder: str
    pid: int | None
    host: str | None
    expires_at: datetime | None
    acquired_at: datetime | None = None
    token: int = 0
    node: str | None = None


class Fenced(Exception):
    """A write refused because its lease is no longer held with its token."""


@dataclass(frozen=True)
class Fence:
    """The lease a write must still hold: same holder, same token, unexpired."""

    holder: str
    token: int
    name: str = "leader"

    def clause(self, now: datetime) -> tuple[str, tuple[Any, ...]]:
        """An SQL condition (and its parameters) true while the lease is ours."""
        return ("EXISTS (SELECT 1 FROM lease WHERE name = ? AND holder = ? AND token = ? "
                "AND expires_at > ?)", (self.name, self.holder, self.token, ts(now)))

    def check(self, conn: Any, now: datetime) -> None:
        """Raise Fenced unless the lease is ours; call inside the write's transaction."""
        sql, params = self.clause(now)
        if not conn.execute(f"SELECT {sql}", params).fetchone()[0]:
            raise Fenced(self.reason())

    def reason(self) -> str:
        return (f"this node no longer holds the {self.name} lease with token {self.token} "
                "(another node took over); nothing more is sent")


def _holder(row: Any) -> LeaseHolder:
    return LeaseHolder(row[0], row[1], row[2], parse_ts(row[3]), _since(row[4]),
                       int(row[5] or 0), row[6])


def _since(text: str | None) -> datetime | None:
    """When the holder took the lease; only shown, so a malformed value is just unknown."""
    try:
        return parse_ts(text)
    except ValueError:
        return None


def _dead_local(pid: int | None, host: str | None, node: str | None = None,
                my_node: str | None = None) -> bool:
    """A lease held by a process on this host that no longer exists is stale now, not
    when it expires: a killed `sync` must not block the next one for minutes. Between
    `serve` nodes (``my_node`` given) only a lease of this same node counts: two nodes on
    one host must still wait for each other's lease to expire."""
    if my_node is not None and node != my_node:
        return False
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


def take(store: Store, holder: str, now: datetime, ttl_seconds: float, name: str = "writer",
         node: str | None = None) -> tuple[LeaseHolder, bool]:
    """Take or renew the lease: (the lease as it now stands, whether ``holder`` has it).
    The token grows when the lease changes hands or is taken again after it lapsed; a
    renewal in time keeps it."""
    expires = ts(now + timedelta(seconds=ttl_seconds))
    at = ts(now)
    with store.tx() as conn:
        row = conn.execute(f"SELECT {_COLUMNS} FROM lease WHERE name = ?", (name,)).fetchone()
        if row and row[0] != holder and row[3] > at \
                and not _dead_local(row[1], row[2], row[6], node):
            return _holder(row), False
        same_term = bool(row and row[0] == holder and row[3] > at)
        token = int(row[5] or 0) + (0 if same_term else 1) if row else 1
        acquired = row[4] if same_term else at
        conn.execute(
            "INSERT INTO lease(name, holder, pid, host, acquired_at, expires_at, token, node) "
            "VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET holder=excluded.holder, "
            "pid=excluded.pid, host=excluded.host, expires_at=excluded.expires_at, "
            "acquired_at=excluded.acquired_at, token=excluded.token, node=excluded.node",
            (name, holder, os.getpid(), socket.gethostname(), acquired, expires, token, node))
    return LeaseHolder(holder, os.getpid(), socket.gethostname(), parse_ts(expires),
                       parse_ts(acquired), token, node), True


def acquire(store: Store, holder: str, now: datetime, ttl_seconds: float,
            name: str = "writer") -> LeaseHolder | None:
    """Take or renew the lease. Returns None on success, else who holds it."""
    lease, ours = take(store, holder, now, ttl_seconds, name)
    return None if ours else lease


def renew(store: Store, fence: Fence, now: datetime, ttl_seconds: float) -> bool:
    """Extend the lease only if it is still ours with this token and unexpired; False
    when it lapsed or was taken (then it must be campaigned for again)."""
    with store.tx() as conn:
        cur = conn.execute("UPDATE lease SET expires_at = ? WHERE name = ? AND holder = ? "
                           "AND token = ? AND expires_at > ?",
                           (ts(now + timedelta(seconds=ttl_seconds)), fence.name,
                            fence.holder, fence.token, ts(now)))
        return bool(cur.rowcount)


def release(store: Store, holder: str, name: str = "writer") -> None:
    """Give the lease up at once. The row stays, expired (it ends when it began, so it
    is past under any clock), so that the next holder's token is still greater."""
    with store.tx() as conn:
        conn.execute("UPDATE lease SET expires_at = acquired_at WHERE name = ? AND holder = ?",
                     (name, holder))


def current(store: Store, now: datetime, name: str = "writer") -> LeaseHolder | None:
    """Who holds the lease now, or None when nobody does (never taken, released, lapsed)."""
    row = store.one(f"SELECT {_COLUMNS} FROM lease WHERE name = ?", (name,))
    if not row or row[3] <= ts(now):
        return None
    return _holder(row)


def last(store: Store, name: str = "leader") -> LeaseHolder | None:
    """The lease row as it stands, expired or not (its newest token and holder)."""
    row = store.one(f"SELECT {_COLUMNS} FROM lease WHERE name = ?", (name,))
    return _holder(row) if row else None


def claim_job(store: Store, job: str, fire_time: datetime, node: str | None,
              now: datetime) -> str | None:
    """Claim one scheduled run of ``job`` (by its fire time) before running it: None when
    this call claimed it, else the node that already had (a job never runs twice across
    nodes, even when two briefly believe they lead)."""
    with store.tx() as conn:
        # Claims matter only around their fire time; a week keeps them for inspection.
        conn.execute("DELETE FROM job_claims WHERE claimed_at < ?",
                     (ts(now - timedelta(days=CLAIMS_KEPT_DAYS)),))
        cur = conn.execute("INSERT INTO job_claims(job, fire_time, node, claimed_at) "
                           "VALUES (?,?,?,?) ON CONFLICT(job, fire_time) DO NOTHING",
                           (job, ts(fire_time), node, ts(now)))
        if cur.rowcount:
            return None
        row = conn.execute("SELECT node FROM job_claims WHERE job = ? AND fire_time = ?",
                           (job, ts(fire_time))).fetchone()
    return str(row[0]) if row and row[0] else "another node"
