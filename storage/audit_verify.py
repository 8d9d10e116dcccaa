"""`audit verify`: walk the chain from its signed start, and compare the head with an
earlier copy (the anchor) when one is given.

A log never keyed is checked as it always was (unkeyed links, from the newest
checkpoint). A keyed log needs the key: every checkpoint after the seal must carry a valid
signature chained to the one before; the kept entries must start exactly where the newest
signed checkpoint says, run without gaps, carry the unkeyed link up to the sealed entry
and an HMAC after it, and reach at least every entry a signed checkpoint names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rostersync.storage.audit_chain import (
    GENESIS,
    Anchor,
    checkpoint_mac,
    keyed_hash,
    legacy_hash,
    same_mac,
)
from rostersync.storage.db import Store


@dataclass
class ChainCheck:
    ok: bool
    entries: int
    broken_at: int | None = None
    message: str = ""
    keyed: bool = False
    head: dict[str, Any] = field(default_factory=dict)


_ENTRY_SQL = ("SELECT id, at, actor, os_user, action, target, detail, prev_hash, hash "
              "FROM audit ORDER BY id")


def verify(store: Store, expect_head: Anchor | None = None) -> ChainCheck:
    checkpoints = store.rows("SELECT * FROM audit_checkpoints ORDER BY id")
    signed = [c for c in checkpoints if c["mac"] is not None]
    if not signed:
        check, hashes = _verify_unkeyed(store, checkpoints)
    else:
        check, hashes = _verify_keyed(store, checkpoints, signed)
    if check.ok and expect_head is not None:
        problem = _compare_anchor(expect_head, check.head, hashes, signed)
        if problem:
            check.ok, check.message = False, problem
    return check


def _head(count: int, digest: str) -> dict[str, Any]:
    return {"count": count, "hash": digest, "anchor": f"{count}:{digest}"}


def _verify_unkeyed(store: Store, checkpoints: list[dict[str, Any]]
                    ) -> tuple[ChainCheck, dict[int, str]]:
    prunes = [c for c in checkpoints if c["kind"] == "prune"]
    last_id, prev = (prunes[-1]["through_id"], prunes[-1]["through_hash"]) if prunes \
        else (0, GENESIS)
    hashes: dict[int, str] = {last_id: prev}
    count = 0
    for row in store.conn.execute(_ENTRY_SQL):
        entry_id, at, actor, _os, action, target, detail, prev_hash, digest = row
        count += 1
        if prev_hash != prev:
            return ChainCheck(False, count, entry_id,
                              f"audit entry {entry_id} does not follow the entry before it"), {}
        if legacy_hash(prev, at, actor, action, target, detail) != digest:
            return ChainCheck(False, count, entry_id,
                              f"audit entry {entry_id} was altered after it was written"), {}
        prev, last_id = digest, entry_id
        hashes[entry_id] = digest
    message = (f"{count} audit entries, chain intact (unkeyed: no audit key has been used "
               "with this database yet)")
    return ChainCheck(True, count, None, message, False, _head(last_id, prev)), hashes


def _fail(count: int, at: int | None, message: str) -> tuple[ChainCheck, dict[int, str]]:
    return ChainCheck(False, count, at, message, True), {}


def _verify_keyed(store: Store, checkpoints: list[dict[str, Any]],
                  signed: list[dict[str, Any]]) -> tuple[ChainCheck, dict[int, str]]:
    key = store.audit_key
    if key is None:
        return _fail(0, None, "the audit log is keyed and no audit key was found to verify "
                              "it: set ROSTERSYNC_AUDIT_KEY or restore the key file")
    seal = signed[0]
    for c in checkpoints:
        if c["mac"] is None and c["id"] > seal["id"]:
            return _fail(0, None, f"audit checkpoint {c['id']} is unsigned but was added after "
                                  "the log was keyed: it is forged")
    prev_mac = ""
    for c in signed:
        if not same_mac(c["mac"], checkpoint_mac(key, c, prev_mac)):
            return _fail(0, None, f"audit checkpoint {c['id']} does not carry a valid signature "
                                  "(forged, altered, or signed with another key)")
        if (c["kind"] == "seal") != (c is seal):
            return _fail(0, None, f"audit checkpoint {c['id']} is of the wrong kind")
        prev_mac = c["mac"]
    newest = signed[-1]
    expected, prev = newest["start_id"], newest["start_hash"]
    hashes: dict[int, str] = {expected - 1: prev}
    count = 0
    for row in store.conn.execute(_ENTRY_SQL):
        entry_id, at, actor, os_user, action, target, detail, prev_hash, digest = row
        count += 1
        if entry_id != expected:
            what = (f"audit entries {expected}..{entry_id - 1} are missing"
                    if entry_id > expected else
                    f"audit entry {entry_id} lies before the signed start of the chain "
                    f"(entry {expected})")
            return _fail(count, expected, what)
        if prev_hash != prev:
            return _fail(count, entry_id,
                         f"audit entry {entry_id} does not follow the entry before it")
        if entry_id <= seal["through_id"]:
            good = legacy_hash(prev, at, actor, action, target, detail) == digest
            if good and entry_id == seal["through_id"] and digest != seal["through_hash"]:
                return _fail(count, entry_id,
                             f"the unkeyed audit entries up to {entry_id} are not the ones "
                             f"checkpoint {seal['id']} sealed: they were rewritten")
        else:
            good = same_mac(digest, keyed_hash(key, entry_id, prev, at, os_user, actor,
                                               action, target, detail))
        if not good:
            return _fail(count, entry_id,
                         f"audit entry {entry_id} was altered after it was written")
        prev, expected = digest, entry_id + 1
        hashes[entry_id] = digest
    last_id = expected - 1
    reach = max(c["through_id"] for c in signed)
    if last_id < reach:
        return _fail(count, last_id + 1,
                     f"the audit log ends at entry {last_id}, but a signed checkpoint names "
                     f"entry {reach}: entries were removed from its end")
    message = (f"{count} audit entries, chain intact (keyed; sealed by checkpoint "
               f"{seal['id']} at {seal['at']}, after {seal['through_id']} unkeyed entries)")
    return ChainCheck(True, count, None, message, True, _head(last_id, prev)), hashes


def _compare_anchor(anchor: Anchor, head: dict[str, Any], hashes: dict[int, str],
                    signed: list[dict[str, Any]]) -> str | None:
    """Why the log does not extend the head an earlier copy saw, or None."""
    if anchor.count > head["count"]:
        return (f"the audit log ends at entry {head['count']}, but the anchor saw entry "
                f"{anchor.count}: entries were removed from its end")
    if anchor.count in hashes:
        if hashes[anchor.count].startswith(anchor.hash):
            return None
        return (f"audit entry {anchor.count} is not the one the anchor saw: the log was "
                "rewritten")
    covered = [c for c in signed if c["kind"] == "prune" and c["through_id"] >= anchor.count]
    if covered:
        return None  # pruned under a signed checkpoint: retention, not truncation
    return (f"audit entry {anchor.count} is gone and no signed checkpoint accounts for it; "
            "compare with a newer anchor")
