"""Small, exact statistics for report summaries (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: always a value that occurred, so a p95 delay is some
    person's real delay, not an interpolation between two."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p95 and max of a list of durations in seconds."""
    return {"count": len(values), "p50": percentile(values, 50),
            "p95": percentile(values, 95), "max": max(values) if values else None}


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[int]:
    """Counts per bucket [edges[i], edges[i+1]); the last bucket is open-ended."""
    counts = [0] * len(edges)
    for value in values:
        index = 0
        for i, edge in enumerate(edges):
            if value >= edge:
                index = i
        counts[index] += 1
    return counts


def delay_edges(sla_seconds: float) -> list[float]:
    """Buckets that read well around an SLA: within it in quarters, then hours and days."""
    base = max(sla_seconds, 60.0)
    quarters = [0.0, base / 4, base / 2, base * 3 / 4, base]
    later = [e for e in (2 * 3600, 6 * 3600, 24 * 3600, 3 * 86400, 7 * 86400) if e > base]
    return quarters + later
