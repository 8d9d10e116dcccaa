"""The append-only, tamper-evident audit log of operator actions.

Each entry's hash covers its content and the previous entry's hash, so editing or
deleting a row anywhere breaks every later link; triggers refuse UPDATE and DELETE. With
an audit key (storage/audit_key.py) the links are HMACs, so someone who can write the
database file but not read the key cannot recompute them; checkpoints are signed the same
way. The first keyed write seals the entries written before any key as an unkeyed prefix
(a signed 'seal' checkpoint naming its last entry and hash). Deleting the newest entries
leaves a shorter chain that is valid in itself: `head()` is published outside the
database (status, metrics, alerts, reports) so that an earlier copy shows it.
"""

from __future__ import annotations

import json
import os
import pwd
from datetime import datetime
from typing import Any

from rostersync.storage.audit_chain import (
    GENESIS,
    checkpoint_mac,
    keyed_hash,
    legacy_hash,
    same_mac,
    who,
)
from rostersync.storage.audit_key import AuditKeyError
from rostersync.storage.audit_verify import ChainCheck, verify
from rostersync.storage.db import Store, ts

__all__ = [
    "GENESIS",
    "AuditKeyError",
    "ChainCheck",
    "add_prune_checkpoint",
    "claim_actor",
    "current_actor",
    "entries",
    "head",
    "key_problem",
    "os_actor",
    "record",
    "verify",
    "who",
]

# The name given with --actor on this command line (recorded beside the OS user).
_claimed: str | None = None


def os_actor() -> str:
    """The real uid's user name: what the OS says, not what SUDO_USER/LOGNAME/USER say,
    which anyone can set."""
    uid = os.getuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def claim_actor(name: str | None) -> None:
    global _claimed
    _claimed = name or None


def current_actor() -> str:
    """The name an operator acts as: --actor when given, else the OS user."""
    return _claimed or os_actor()


def record(store: Store, now: datetime, action: str, target: str | None = None,
           detail: dict[str, Any] | None = None, actor: str | None = None) -> int:
    """Append one entry; the OS user is always recorded, ``actor`` beside it."""
    os_user = os_actor()
    actor = actor or current_actor()
    text = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)
    at = ts(now)
    with store.tx() as conn:
        key = _writing_key(store, conn, now)
        row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        last_id, prev = (int(row[0]), row[1]) if row else _start(conn)
        entry_id = last_id + 1
        if key is None:
            digest = legacy_hash(prev, at, actor, action, target, text)
        else:
            digest = keyed_hash(key, entry_id, prev, at, os_user, actor, action, target, text)
        conn.execute(
            "INSERT INTO audit(id, at, actor, os_user, action, target, detail, prev_hash, hash) "
            "VALUES (?,?,?,?,?,?,?,?,?)",
            (entry_id, at, actor, os_user, action, target, text, prev, digest))
        return entry_id


def chain_start(conn: Any) -> str:
    """The hash the oldest kept entry links to: GENESIS, or after retention pruned the
    oldest entries, the hash of the last pruned one (storage/retention.py)."""
    return _start(conn)[1]


def _start(conn: Any) -> tuple[int, str]:
    row = conn.execute("SELECT through_id, through_hash FROM audit_checkpoints "
                       "WHERE kind = 'prune' ORDER BY id DESC LIMIT 1").fetchone()
    return (int(row[0]), row[1]) if row else (0, GENESIS)


def _signed(conn: Any, limit: int) -> list[dict[str, Any]]:
    cur = conn.execute("SELECT * FROM audit_checkpoints WHERE mac IS NOT NULL "
                       "ORDER BY id DESC LIMIT ?", (limit,))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def _writing_key(store: Store, conn: Any, now: datetime) -> bytes | None:
    """The key to write with: None while the log was never keyed and no key is attached;
    seals the log on the first keyed write; refuses a missing or different key."""
    latest = _signed(conn, 2)
    key = store.audit_key
    if not latest:
        if key is not None:
            _seal(conn, key, now)
        return key
    problem = _key_problem(store, latest)
    if problem is not None:
        raise AuditKeyError(problem)
    return key


def key_problem(store: Store) -> str | None:
    """Why the attached key could not write the next entry (no key for a keyed log, or
    not the key it was sealed with), or None. Read-only: long-running commands ask at
    start, so a node with the wrong key is refused then, not at an operator's action."""
    with store.tx() as conn:
        latest = _signed(conn, 2)
    return _key_problem(store, latest) if latest else None


def _key_problem(store: Store, latest: list[dict[str, Any]]) -> str | None:
    key = store.audit_key
    if key is None:
        return (f"the audit log in {store.path} is keyed, but no audit key was found: set "
                "ROSTERSYNC_AUDIT_KEY or restore the key file (docs/reliability.md)")
    prev_mac = latest[1]["mac"] if len(latest) > 1 else ""
    if not same_mac(latest[0]["mac"], checkpoint_mac(key, latest[0], prev_mac)):
        return (f"the audit key from {store.audit_key_source} is not the key the audit log "
                f"in {store.path} was sealed with")
    return None


def _insert_checkpoint(conn: Any, key: bytes | None, fields: dict[str, Any]) -> None:
    cp = dict(fields)
    cp["id"] = int(conn.execute("SELECT coalesce(max(id), 0) + 1 FROM audit_checkpoints")
                   .fetchone()[0])
    if key is not None:
        latest = _signed(conn, 1)
        cp["mac"] = checkpoint_mac(key, cp, latest[0]["mac"] if latest else "")
    else:
        cp["mac"] = None
    names = list(cp)
    conn.execute(f"INSERT INTO audit_checkpoints({','.join(names)}) "
                 f"VALUES ({','.join('?' * len(names))})", [cp[n] for n in names])


def _seal(conn: Any, key: bytes, now: datetime) -> None:
    """Close the unkeyed prefix: its last entry and hash, and where its kept part starts,
    under the key. From here on no unsigned checkpoint or unkeyed entry is accepted."""
    start_id, start_hash = _start(conn)
    last = conn.execute("SELECT id, hash, at FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    first = conn.execute("SELECT min(id) FROM audit").fetchone()[0]
    through = (int(last[0]), last[1], last[2]) if last else (start_id, start_hash, ts(now))
    _insert_checkpoint(conn, key, {
        "at": ts(now), "kind": "seal", "through_id": through[0], "through_hash": through[1],
        "through_at": through[2], "pruned": 0, "actor": os_actor(),
        "start_id": int(first) if first is not None else through[0] + 1,
        "start_hash": start_hash})


def add_prune_checkpoint(store: Store, conn: Any, now: datetime, through_id: int,
                         through_hash: str, through_at: str, pruned: int, actor: str) -> None:
    """The checkpoint retention writes before deleting entries up to ``through_id``:
    signed when the log is keyed, so a forged one cannot hide a deleted prefix."""
    key = _writing_key(store, conn, now)
    _insert_checkpoint(conn, key, {
        "at": ts(now), "kind": "prune", "through_id": through_id, "through_hash": through_hash,
        "through_at": through_at, "pruned": pruned, "actor": actor,
        "start_id": through_id + 1, "start_hash": through_hash})


def head(store: Store) -> dict[str, Any]:
    """The newest entry's number (entries ever written: retention does not lower it) and
    hash, and both as the ``COUNT:HASH`` anchor `audit verify --expect-head` takes."""
    row = store.one("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1")
    count, digest = (int(row[0]), row[1]) if row else _start(store.conn)
    keyed = store.scalar("SELECT count(*) FROM audit_checkpoints WHERE mac IS NOT NULL") > 0
    return {"count": count, "hash": digest, "anchor": f"{count}:{digest}", "keyed": keyed}


def entries(store: Store, *, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    if target is None:
        return store.rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    return store.rows("SELECT * FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?",
                      (target, limit))
