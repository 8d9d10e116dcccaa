"""Pull a full feed and find what changed since the last accepted snapshot.

Only records whose content digest differs from the snapshot are parsed; the feed gate's
figures for the whole feed are derived from the previous snapshot's figures adjusted by
the changed, added and removed rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from itertools import compress
from operator import ne

from storage import people as people_store
from storage import runs as run_store
from storage.db import Store
from sync.config import REQUIRED_FIELDS, Config
from sync.connectors.base import HrisSource, RawRecord
from sync.evaluate import Parsed, parse_record
from sync.feedgate import FeedStats, GateLimits, check_feed

# Stored as the snapshot digest of an invalid record so that it never matches: an invalid
# row is re-read every run and its `invalid` drift stays current.
INVALID_DIGEST = b"\x00" * 8

# Above this many changed rows, parsed records are not kept between the gate and the
# evaluation (they are parsed again batch by batch) so memory stays flat.
KEEP_PARSED_LIMIT = 100_000


@dataclass
class FullPull:
    rows: int = 0
    changed: list[RawRecord] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    parsed: dict[str, Parsed] | None = None
    masks: dict[str, tuple[int, bool, bool]] = field(default_factory=dict)  # mask, active, valid
    stats: FeedStats = field(default_factory=FeedStats)
    previous: FeedStats | None = None
    reasons: list[str] = field(default_factory=list)
    known: dict[str, bytes] = field(default_factory=dict)  # the snapshot's digests


def scan(store: Store, source: HrisSource, fingerprint: str) -> FullPull:
    """Stream the feed against the snapshot's digests (blocking: run in a thread)."""
    previous = run_store.last_accepted_snapshot(store)
    known = people_store.snapshot_digests(store, previous["id"] if previous else None)
    force = previous is None or previous["fingerprint"] != fingerprint
    pull = FullPull(known=known)
    if previous is not None:
        pull.previous = FeedStats(previous["rows"], previous["active"], previous["null_counts"])
    batches = getattr(source, "scan_full_batches", None)
    if batches is not None:
        rows = _scan_batches(source, batches(), known, force, pull)
    else:
        rows = _scan_records(source.scan_full(), known, force, pull)
    pull.rows = rows
    return pull


def _scan_batches(source: HrisSource, batches, known: dict[str, bytes], force: bool,
                  pull: FullPull) -> int:
    """The hot loop of a million-row reconcile, kept in C: per chunk, map/compress find
    the rows whose digest differs from the snapshot; a Python step runs only for them.

    At a million keys every lookup in a big dict is a cache miss, so the loop makes as
    few as it can: one lookup in the old snapshot and one insert into the new one per
    row. Duplicates show as a new snapshot smaller than the rows read; vanished keys are
    looked for only when the counts say some exist.
    """
    new: dict[str, bytes] = {}
    known_get = known.get
    to_record = source.to_record  # type: ignore[attr-defined]
    rows = found = 0
    for keys, digests, linenos, raws in batches:
        n = len(keys)
        rows += n
        before = len(new)
        new.update(zip(keys, digests, strict=True))
        if len(new) - before != n:
            pull.duplicates.extend(_duplicates(keys, new, before))
        olds = list(map(known_get, keys))
        found += n - olds.count(None)
        positions = range(n) if force else compress(range(n), map(ne, olds, digests))
        for i in positions:
            pull.changed.append(to_record((keys[i], digests[i], linenos[i], raws[i])))
    if found - len(pull.duplicates) < len(known):
        pull.vanished = list(known.keys() - new.keys())
    known.clear()  # the new snapshot replaces the old one: free it now
    pull.known = new
    return rows


def _duplicates(keys: list[str], new: dict[str, bytes], before: int) -> list[str]:
    """Keys of this chunk met earlier in the feed (the slow path of a broken feed)."""
    earlier = set(list(new)[:before])
    out, here = [], set()
    for key in keys:
        if key in here or key in earlier:
            out.append(key)
        here.add(key)
    return out


def _scan_records(records, known: dict[str, bytes], force: bool, pull: FullPull) -> int:
    seen: set[str] = set()
    rows = 0
    for record in records:
        rows += 1
        key = record.key
        if key in seen:
            pull.duplicates.append(key)
            continue
        seen.add(key)
        if force or known.get(key) != record.digest:
            pull.changed.append(record)
    pull.vanished = list(known.keys() - seen)
    return rows


def assess(store: Store, source: HrisSource, config: Config, pull: FullPull, today: date) -> None:
    """Parse the changed records and run the feed gate (blocking)."""
    keep = len(pull.changed) <= KEEP_PARSED_LIMIT
    parsed: dict[str, Parsed] = {}
    for record in pull.changed:
        result = parse_record(source, record, config, today)
        pull.masks[record.key] = (result.null_mask, result.active, result.person is not None)
        if keep:
            parsed[record.key] = result
    pull.parsed = parsed if keep else None

    stats = FeedStats(pull.previous.rows, pull.previous.active,
                      dict(pull.previous.null_counts)) if pull.previous else FeedStats()
    old_keys = [r.key for r in pull.changed] + pull.vanished
    for mask, active in people_store.snapshot_rows_for(store, old_keys).values():
        stats.add(mask, bool(active), sign=-1)
    for mask, active, _valid in pull.masks.values():
        stats.add(mask, active)
    pull.stats = stats
    checked = tuple(f for f in config.hris.columns if f not in REQUIRED_FIELDS) + REQUIRED_FIELDS
    limits = GateLimits(config.guards.feed_max_drop_percent,
                        config.guards.feed_max_null_rate_increase,
                        config.guards.feed_max_active_drop_percent, checked)
    pull.reasons = check_feed(stats, pull.previous, pull.duplicates, limits)


def snapshot_upserts(pull: FullPull) -> list[tuple[str, bytes, int, int]]:
    """Rows to write for the accepted snapshot; also moves pull.known to it."""
    out = []
    known = pull.known
    for record in pull.changed:
        mask, active, valid = pull.masks[record.key]
        digest = record.digest if valid else INVALID_DIGEST
        known[record.key] = digest
        out.append((record.key, digest, mask, int(active)))
    for key in pull.vanished:
        known.pop(key, None)  # a no-op after a batch scan, whose index lacks them already
    return out
