"""The feed gate: is this snapshot, as a whole, believable? (pure)

A truncated export, a dropped column or a broken join upstream shows up as a population
drop, duplicated keys or a jump in empty values. Such a feed is rejected whole, with
reasons, and the last accepted snapshot stays in force.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from rostersync.sync.config import CANONICAL_FIELDS


@dataclass
class FeedStats:
    rows: int = 0
    active: int = 0
    null_counts: dict[str, int] = field(default_factory=dict)

    def add(self, null_mask: int, active: bool, sign: int = 1) -> None:
        self.rows += sign
        self.active += sign * int(active)
        if null_mask:
            for i, name in enumerate(CANONICAL_FIELDS):
                if null_mask >> i & 1:
                    self.null_counts[name] = self.null_counts.get(name, 0) + sign

    def add_all(self, rows: Iterable[tuple[int, bool]], sign: int = 1) -> None:
        """``add`` for many (null mask, active) pairs: few distinct ones, each added once."""
        for (null_mask, active), count in Counter(rows).items():
            self.add(null_mask, active, sign * count)

    def null_rate(self, name: str) -> float:
        return self.null_counts.get(name, 0) / self.rows if self.rows else 0.0


@dataclass
class GateLimits:
    max_drop_percent: float
    max_null_rate_increase: float
    max_active_drop_percent: float
    checked_fields: tuple[str, ...]
    min_rows_for_rates: int = 20


def check_feed(new: FeedStats, previous: FeedStats | None, duplicates: list[str],
               limits: GateLimits) -> list[str]:
    """Reasons to reject the snapshot; empty when it passes."""
    reasons: list[str] = []
    if duplicates:
        shown = ", ".join(duplicates[:5]) + (" ..." if len(duplicates) > 5 else "")
        reasons.append(f"{len(duplicates)} employee_id value(s) appear more than once: {shown}")
    if new.rows == 0:
        reasons.append("the feed has no records")
    if previous is None or previous.rows == 0:
        return reasons
    floor = 1.0 - limits.max_drop_percent / 100.0
    if new.rows < previous.rows * floor:
        reasons.append(
            f"record count fell from {previous.rows} to {new.rows} "
            f"({_drop(previous.rows, new.rows):.1f}% drop, limit {limits.max_drop_percent:g}%)")
    if previous.active and new.active < previous.active * (1 - limits.max_active_drop_percent
                                                           / 100.0):
        reasons.append(
            f"active population fell from {previous.active} to {new.active} "
            f"({_drop(previous.active, new.active):.1f}% drop, limit "
            f"{limits.max_active_drop_percent:g}%)")
    if new.rows >= limits.min_rows_for_rates and previous.rows >= limits.min_rows_for_rates:
        for name in limits.checked_fields:
            before, after = previous.null_rate(name), new.null_rate(name)
            if after - before > limits.max_null_rate_increase:
                reasons.append(
                    f"empty {name} values rose from {before:.1%} to {after:.1%} of records "
                    f"(limit +{limits.max_null_rate_increase:.0%})")
    return reasons


def _drop(before: int, after: int) -> float:
    return 100.0 * (before - after) / before if before else 0.0
