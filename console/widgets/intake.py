"""The real-time intake line on the dashboard: the sync mode and the HR events received."""

from __future__ import annotations

from typing import Any

from textual.widgets import Label

from rostersync.console import fmt

# Outcomes worth a word on the line, in the order they are shown.
# An event's status is the outcome of the run that took it ("quarantined": the run was
# refused, and the next full reconcile carries the change instead).
SHOWN = ("synced", "coalesced", "queued", "gated", "batched", "held", "partial", "failed",
         "quarantined", "rejected", "paused", "ignored")


def intake_text(mode: str, events: dict[str, Any]) -> str:
    counts = events["last_24h"]
    total = sum(counts.values())
    parts = [f"{counts[s]} {s}" for s in SHOWN if counts.get(s)]
    others = total - sum(counts.get(s, 0) for s in SHOWN)
    if others:
        parts.append(f"{others} other")
    last = events["last_received_at"]
    when = f", last {fmt.compact_time(last)}" if last else ""
    detail = f" ({', '.join(parts)})" if parts else ""
    # Two lines: in a third of the screen the mode alone fills one.
    return f"mode: {mode}\nevents 24h: {total}{detail}{when}"


class IntakeLine(Label):
    """Hidden unless real-time intake is configured, so batch-only setups see no change."""

    DEFAULT_CSS = "IntakeLine { width: 100%; }"  # wrap within the panel, never clip

    def show(self, enabled: bool, mode: str, events: dict[str, Any] | None) -> None:
        self.display = enabled
        if enabled and events is not None:
            self.update(intake_text(mode, events))
