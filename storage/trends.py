"""The dashboard's series over time: per finished run (drift found, ops failed, the age
of the HR data the run worked from) and the apply rate (ops applied per minute) over the
same stretch of time. A few indexed reads, cheap enough for a refresh every 2 s."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from rostersync.storage.db import Store, parse_ts, ts

# Apply-rate buckets across the window: enough points for a line, few rows to read.
RATE_BUCKETS = 40
MIN_BUCKET_SECONDS = 5


def run_trends(store: Store, now: datetime, limit: int = 30) -> dict[str, Any]:
    """Oldest first. `at` is each run's finish time (epoch seconds, as every `at` here);
    `hris_age_minutes` is how old the last accepted HR feed was when the run ended (it
    grows while the HRIS is down)."""
    rows = store.rows("SELECT id, started_at, finished_at, counts FROM runs "
                      "WHERE status != 'running' AND dry_run = 0 ORDER BY id DESC LIMIT ?",
                      (limit,))
    rows.reverse()
    at, drift, failed = [], [], []
    for row in rows:
        counts = json.loads(row["counts"] or "{}")
        found = counts.get("drift") or {}
        drift.append(sum(found.values()) if isinstance(found, dict) else 0)
        applied = counts.get("applied") or {}
        failed.append(int(applied.get("failed", 0)) + int(applied.get("dead", 0)))
        at.append(parse_ts(row["finished_at"] or row["started_at"]).timestamp())
    start = parse_ts(rows[0]["started_at"]) if rows else None
    return {"at": at, "drift": drift, "failed": failed,
            "hris_age_minutes": _feed_ages(store, rows),
            "apply": apply_rate(store, start, now) if start else {"at": [], "per_minute": []}}


def _feed_ages(store: Store, runs: list[dict[str, Any]]) -> list[float | None]:
    if not runs:
        return []
    first = runs[0]["id"]
    # The feed in force when the first run began, then every accepted feed since.
    before = store.rows("SELECT run_id, created_at FROM snapshots WHERE accepted = 1 "
                        "AND run_id < ? ORDER BY id DESC LIMIT 1", (first,))
    feeds = before + store.rows("SELECT run_id, created_at FROM snapshots WHERE accepted = 1 "
                                "AND run_id >= ? ORDER BY id", (first,))
    ages: list[float | None] = []
    i, current = 0, None
    for run in runs:
        while i < len(feeds) and feeds[i]["run_id"] <= run["id"]:
            current = parse_ts(feeds[i]["created_at"])
            i += 1
        end = parse_ts(run["finished_at"] or run["started_at"])
        ages.append(None if current is None or end is None
                    else max(0.0, (end - current).total_seconds() / 60))
    return ages


def apply_rate(store: Store, start: datetime, now: datetime) -> dict[str, list[Any]]:
    """Ops applied per minute in equal buckets from `start` to `now` (empty buckets are
    zeros: a quiet stretch is news too). `at` is each bucket's start.

    An op gets `finished_at` when it succeeds, or goes dead after its last try: both are
    counted (dead ones are few, and each was tried). One COUNT per bucket on the
    `finished_at` index alone: a 100,000-op hour costs a few ms where reading each op's
    status, or bucketing row by row, costs tens."""
    span = max((now - start).total_seconds(), 1.0)
    size = max(MIN_BUCKET_SECONDS, math.ceil(span / RATE_BUCKETS))
    buckets = math.ceil(span / size)
    edges = [ts(start + timedelta(seconds=b * size)) for b in range(buckets)]
    edges.append(ts(now + timedelta(seconds=1)))  # the last bucket includes `now` itself
    counts = [int(store.scalar("SELECT count(*) FROM ops WHERE finished_at >= ? AND "
                               "finished_at < ?", (lo, hi)) or 0)
              for lo, hi in pairwise(edges)]
    start_s = start.timestamp()
    return {"at": [start_s + b * size for b in range(buckets)],
            "per_minute": [n * 60 / size for n in counts]}
