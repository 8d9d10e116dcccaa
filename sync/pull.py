"""Pull a full feed and find what changed since the last accepted snapshot.

Only records whose content digest differs from the snapshot are parsed; the feed gate's
figures for the whole feed are derived from the previous snapshot's figures adjusted by
the changed, added and removed rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from itertools import chain, compress, islice
from operator import is_, ne

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
    previous_id: int | None = None  # the snapshot the feed was compared against


def scan(store: Store, source: HrisSource, fingerprint: str) -> FullPull:
    """Stream the feed against the snapshot's digests (blocking: run in a thread)."""
    previous = run_store.last_accepted_snapshot(store)
    known = people_store.snapshot_digests(store, previous["id"] if previous else None)
    force = previous is None or previous["fingerprint"] != fingerprint
    pull = FullPull(known=known, previous_id=previous["id"] if previous else None)
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

    At a million keys every dict operation is a cache miss, so the loop makes as few as
    it can. The snapshot dict becomes the new snapshot in place (an update replaces the
    values of keys it holds, no second million-key dict is built). A key the feed no
    longer has keeps its old digest *object*, which is how vanished keys are found;
    duplicates show in the counts, and only then are they looked for one by one.
    """
    old_count = len(known)
    old_keys = list(known)
    old_values = list(known.values())
    known_get = known.get
    to_record = source.to_record  # type: ignore[attr-defined]
    rows = 0
    chunks: list[list[str]] = []
    for keys, digests, linenos, raws in batches:
        n = len(keys)
        rows += n
        chunks.append(keys)
        olds = list(map(known_get, keys))
        known.update(zip(keys, digests, strict=True))
        positions = range(n) if force else compress(range(n), map(ne, olds, digests))
        for i in positions:
            pull.changed.append(to_record((keys[i], digests[i], linenos[i], raws[i])))
    # Keys whose value is still the very object loaded from the index were not in the feed.
    vanished = list(compress(old_keys, map(is_, islice(known.values(), old_count),
                                             old_values)))
    del old_keys, old_values
    distinct = len(known) - len(vanished)
    if rows != distinct:
        pull.duplicates = _duplicates(chunks)  # the gate rejects the feed for them
    for key in vanished:
        del known[key]
    pull.vanished = vanished
    pull.known = known  # now the new snapshot's digests
    return rows


def _duplicates(chunks: list[list[str]]) -> list[str]:
    """Keys met more than once in the feed (the slow path of a broken feed)."""
    counts = Counter(chain.from_iterable(chunks))
    return [key for key, n in counts.items() if n > 1]


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
