"""The audit chain's pure parts: entry hashes, checkpoint signatures, the head anchor.

Entries written before a key was used keep the old unkeyed SHA-256 link (anyone can
recompute it); every later entry and checkpoint is an HMAC-SHA256 under a key kept outside
the database, so rewriting them needs the key. An entry's HMAC covers its sequence number,
so renumbering shows; each checkpoint's covers the one before, so dropping one shows.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
# Columns a checkpoint's signature covers, in order (mac and the previous mac aside).
CHECKPOINT_FIELDS = ("id", "at", "kind", "through_id", "through_hash", "through_at", "pruned",
                     "actor", "start_id", "start_hash")
# An anchor quotes at least this many hex digits of the head hash (64 bits).
MIN_ANCHOR_HEX = 16


def _blob(items: list[Any]) -> bytes:
    return json.dumps(items, separators=(",", ":")).encode()


def legacy_hash(prev: str, at: str, actor: str, action: str, target: str | None,
                detail: str) -> str:
    """The link of an entry written before a key was used (unkeyed, as it always was)."""
    return hashlib.sha256(_blob([prev, at, actor, action, target, detail])).hexdigest()


def keyed_hash(key: bytes, entry_id: int, prev: str, at: str, os_user: str | None,
               actor: str, action: str, target: str | None, detail: str) -> str:
    blob = _blob(["entry", entry_id, prev, at, os_user, actor, action, target, detail])
    return hmac.new(key, blob, hashlib.sha256).hexdigest()


def checkpoint_mac(key: bytes, checkpoint: dict[str, Any], prev_mac: str) -> str:
    blob = _blob(["checkpoint", *(checkpoint[f] for f in CHECKPOINT_FIELDS), prev_mac])
    return hmac.new(key, blob, hashlib.sha256).hexdigest()


def same_mac(a: str | None, b: str) -> bool:
    return a is not None and hmac.compare_digest(a, b)


@dataclass(frozen=True)
class Anchor:
    """An earlier copy of the head: entry number ``count`` had a hash starting ``hash``."""

    count: int
    hash: str

    def text(self) -> str:
        return f"{self.count}:{self.hash}"


_ANCHOR = re.compile(r"(\d+):([0-9a-f]+)")


def parse_anchor(text: str) -> Anchor:
    """``COUNT:HASH`` as `status --json` prints it (audit_head.anchor); ValueError names
    what is wrong in one sentence."""
    match = _ANCHOR.fullmatch(text.strip().lower())
    if not match:
        raise ValueError(f"--expect-head {text!r} is not COUNT:HASH (copy audit_head.anchor "
                         "from `rostersync status --json`)")
    count, digest = int(match.group(1)), match.group(2)
    if not MIN_ANCHOR_HEX <= len(digest) <= 64:
        raise ValueError(f"--expect-head {text!r}: the hash needs {MIN_ANCHOR_HEX} to 64 hex "
                         f"digits, not {len(digest)}")
    return Anchor(count, digest)


def who(row: dict[str, Any]) -> str:
    """The actor as shown: the OS user, and the name given with --actor beside it."""
    actor, os_user = row.get("actor") or "", row.get("os_user")
    if not os_user or os_user == actor:
        return actor
    return f"{os_user} (as {actor})"
