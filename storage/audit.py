"""The append-only, tamper-evident audit log of operator actions.

Each entry's hash covers its content and the previous entry's hash, so editing or
deleting a row anywhere breaks every later link; triggers refuse UPDATE and DELETE.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.db import Store, ts

GENESIS = "0" * 64


def current_actor() -> str:
    """The OS user behind an operator action (sudo's caller when run through sudo)."""
    for name in ("SUDO_USER", "LOGNAME", "USER"):
        value = os.environ.get(name)
        if value:
            return value
    try:
        return getpass.getuser()
    except Exception:
        return f"uid:{os.getuid()}"


def _entry_hash(prev: str, at: str, actor: str, action: str, target: str | None,
                detail: str) -> str:
    blob = json.dumps([prev, at, actor, action, target, detail], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def record(store: Store, now: datetime, action: str, target: str | None = None,
           detail: dict[str, Any] | None = None, actor: str | None = None) -> int:
    actor = actor or current_actor()
    text = json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), default=str)
    at = ts(now)
    with store.tx() as conn:
        row = conn.execute("SELECT hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
        prev = row[0] if row else chain_start(conn)
        digest = _entry_hash(prev, at, actor, action, target, text)
        cur = conn.execute(
            "INSERT INTO audit(at, actor, action, target, detail, prev_hash, hash) "
            "VALUES (?,?,?,?,?,?,?)", (at, actor, action, target, text, prev, digest))
        return int(cur.lastrowid)


@dataclass
class ChainCheck:
    ok: bool
    entries: int
    broken_at: int | None = None
    message: str = ""


def chain_start(conn: Any) -> str:
    """The hash the oldest kept entry links to: GENESIS, or after retention pruned the
    oldest entries, the hash of the last pruned one (storage/retention.py)."""
    row = conn.execute("SELECT through_hash FROM audit_checkpoints "
                       "ORDER BY id DESC LIMIT 1").fetchone()
    return row[0] if row else GENESIS


def verify(store: Store) -> ChainCheck:
    prev = chain_start(store.conn)
    count = 0
    for row in store.conn.execute(
            "SELECT id, at, actor, action, target, detail, prev_hash, hash FROM audit ORDER BY id"):
        entry_id, at, actor, action, target, detail, prev_hash, digest = row
        count += 1
        if prev_hash != prev:
            return ChainCheck(False, count, entry_id,
                              f"audit entry {entry_id} does not follow the entry before it")
        if _entry_hash(prev, at, actor, action, target, detail) != digest:
            return ChainCheck(False, count, entry_id,
                              f"audit entry {entry_id} was altered after it was written")
        prev = digest
    return ChainCheck(True, count, None, f"{count} audit entries, chain intact")


def entries(store: Store, *, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    if target is None:
        return store.rows("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    return store.rows("SELECT * FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?",
                      (target, limit))
