"""Pull a full feed and find what changed since the last accepted snapshot.

Only records whose content digest differs from the snapshot are parsed; the feed gate's
figures for the whole feed are derived from the previous snapshot's figures adjusted by
the changed, added and removed rows.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import compress
from operator import not_
from typing import Any

from rostersync.storage import people as people_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.sync.config import REQUIRED_FIELDS, Config
from rostersync.sync.connectors.base import HrisSource, RawRecord
from rostersync.sync.evaluate import Parsed, parse_record
from rostersync.sync.feedgate import FeedStats, GateLimits, check_feed
from rostersync.sync.gc_pause import gc_paused
from rostersync.sync.schema_check import column_changes

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
    # The snapshot the feed was compared against: its id, keys and digests side by side.
    previous_id: int | None = None
    base_keys: list[str] = field(default_factory=list)
    base_digests: list[bytes] = field(default_factory=list)
    # The source's columns this time (None: not knowable) and what changed among them
    # since the last accepted feed (sync.schema_check.column_changes).
    columns: list[str] | None = None
    column_changes: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def new_snapshot(self) -> dict[str, bytes]:
        """The accepted snapshot's digests, whole (only a rewrite of the index needs it)."""
        out = dict(zip(self.base_keys, self.base_digests, strict=True))
        out.update((key, digest) for key, digest, _mask, _active in snapshot_upserts(self))
        for key in self.vanished:
            out.pop(key, None)
        return out


def scan(store: Store, source: HrisSource, fingerprint: str) -> FullPull:
    """Stream the feed against the snapshot's digests (blocking: run in a thread)."""
    with gc_paused():  # a million rows, no reference cycles: see sync/gc_pause.py
        return _scan(store, source, fingerprint)


def _scan(store: Store, source: HrisSource, fingerprint: str) -> FullPull:
    previous = run_store.last_accepted_snapshot(store)
    keys, digests = people_store.snapshot_index(store, previous["id"] if previous else None)
    force = previous is None or previous["fingerprint"] != fingerprint
    pull = FullPull(previous_id=previous["id"] if previous else None, base_keys=keys,
                    base_digests=digests)
    if previous is not None:
        pull.previous = FeedStats(previous["rows"], previous["active"], previous["null_counts"])
    batches = getattr(source, "scan_full_digests", None)
    if batches is not None:
        rows = compare_batches(source, batches(), force, pull)
    else:
        rows = compare_records(source.scan_full(), force, pull)
    pull.rows = rows
    # Known once the scan has read the export.
    pull.columns = getattr(source, "source_columns", lambda: None)()
    pull.column_changes = column_changes(previous.get("columns") if previous else None,
                                         pull.columns)
    return pull


def compare_batches(source: HrisSource, batches: Iterable[tuple[Any, list[bytes]]], force: bool,
                    pull: FullPull) -> int:
    """The hot loop of a million-row reconcile, kept in C: per chunk, set operations find
    the rows whose digest the snapshot does not hold; a Python step runs only for them.

    A row's digest covers its whole line, key included, so a row is unchanged exactly
    when its digest is one of the snapshot's: no lookup by key is needed, no million-key
    dict is built, and only the rows that changed have their key read at all. Each
    digest met is struck from the set; what is left are the old versions of changed
    rows and the rows that vanished, told apart by their keys at the end. A key met
    twice shows as an unchanged row met twice in a chunk, a fresh row met twice, or a
    fresh row whose key also came unchanged.
    """
    unmatched = set(pull.base_digests)  # old rows not met unchanged (yet)
    holds = unmatched.__contains__
    to_record = source.to_record  # type: ignore[attr-defined]
    rows = 0
    fresh: list[str] = []  # keys of rows the snapshot does not hold: changed or added
    duplicates: list[str] = []
    for batch, digests in batches:
        n = len(digests)
        hits = list(map(holds, digests))
        before = len(unmatched)
        unmatched.difference_update(digests)
        if before - len(unmatched) != hits.count(True):  # an unchanged line met twice
            met = Counter(batch.keys_at(list(compress(range(n), hits))))
            duplicates += [key for key, count in met.items() if count > 1]
        misses = list(compress(range(n), map(not_, hits)))
        rows += n
        for i, key in zip(misses, batch.keys_at(misses), strict=True):
            if key is None:  # a blank line: no record
                rows -= 1
                continue
            fresh.append(key)
            pull.changed.append(to_record((key, digests[i], batch.linenos[i], batch.raws[i])))
        if force:  # every row is evaluated again, unchanged or not
            met_rows = list(compress(range(n), hits))
            for i, key in zip(met_rows, batch.keys_at(met_rows), strict=True):
                pull.changed.append(to_record((key, digests[i], batch.linenos[i],
                                               batch.raws[i])))
    fresh_keys = set(fresh)
    if len(fresh_keys) != len(fresh):
        duplicates += [key for key, count in Counter(fresh).items() if count > 1]
    base_keys, base_digests = pull.base_keys, pull.base_digests
    left = unmatched.__contains__
    # An old key whose row was not met unchanged: changed if it came fresh, else gone.
    pull.vanished = [key for key in compress(base_keys, map(left, base_digests))
                     if key not in fresh_keys]
    # A fresh key whose old row was met unchanged came twice.
    for i in compress(range(len(base_keys)), map(fresh_keys.__contains__, base_keys)):
        if not left(base_digests[i]):
            duplicates.append(base_keys[i])
    pull.duplicates = sorted(set(duplicates))  # the gate rejects the feed for them
    return rows


def compare_records(records: Iterable[RawRecord], force: bool, pull: FullPull) -> int:
    known = dict(zip(pull.base_keys, pull.base_digests, strict=True))
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
    with gc_paused():
        _assess(store, source, config, pull, today)


def _assess(store: Store, source: HrisSource, config: Config, pull: FullPull,
            today: date) -> None:
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
    stats.add_all(((mask, bool(active)) for mask, active
                   in people_store.snapshot_rows_for(store, old_keys).values()), sign=-1)
    stats.add_all((mask, active) for mask, active, _valid in pull.masks.values())
    pull.stats = stats
    checked = tuple(f for f in config.hris.columns if f not in REQUIRED_FIELDS) + REQUIRED_FIELDS
    limits = GateLimits(config.guards.feed_max_drop_percent,
                        config.guards.feed_max_null_rate_increase,
                        config.guards.feed_max_active_drop_percent, checked)
    pull.reasons = check_feed(stats, pull.previous, pull.duplicates, limits)


def snapshot_upserts(pull: FullPull) -> list[tuple[str, bytes, int, int]]:
    """Rows to write for the accepted snapshot: the changed records, each with its mask."""
    out = []
    for record in pull.changed:
        mask, active, valid = pull.masks[record.key]
        out.append((record.key, record.digest if valid else INVALID_DIGEST, mask, int(active)))
    return out


def accept(conn: Any, *, store: Store, pull: FullPull, run_id: int, now: datetime,
           fingerprint: str) -> None:
    """Make the pulled feed the accepted snapshot, in the plan's last transaction (so a
    run that stops before it evaluates the same records again next time)."""
    snapshot = snapshot_upserts(pull)
    people_store.write_snapshot_rows(conn, snapshot, pull.vanished)
    stats = pull.stats
    snapshot_id = run_store.record_snapshot(store, now, run_id, "full", True, stats.rows,
                                            stats.active, stats.null_counts, [], fingerprint,
                                            columns=pull.columns)
    changes: list[tuple[str, bytes | None]] = [(key, digest) for key, digest, _m, _a in snapshot]
    changes += [(key, None) for key in pull.vanished]
    people_store.write_snapshot_index(conn, snapshot_id, pull.new_snapshot, pull.previous_id,
                                      changes)


def read_delta(store: Store, source: HrisSource, config: Config, today: date) -> list[Parsed]:
    """The records a delta run evaluates: what the source reports changed since the last
    watermark, and the people whose scheduled change has come (blocking: run in a
    thread). A change entered in advance takes effect without editing the record, so no
    delta lists it; those people are read again one by one."""
    watermark = run_store.sources(store).get("hris", {}).get("watermark")
    since = None
    if watermark:
        with contextlib.suppress(ValueError):
            since = datetime.fromisoformat(watermark)
    out: dict[str, Parsed] = {}
    for record in source.scan_delta(since):
        out[record.key] = parse_record(source, record, config, today)
    for key in people_store.revisits_due(store, today):
        if key not in out and (revisited := source.fetch_one(key)) is not None:
            out[key] = parse_record(source, revisited, config, today)
    return list(out.values())
