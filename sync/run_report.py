"""What a run reports: its status, counts and reasons, and the exit code the command line
returns for it (DESIGN.md's contract: 0 ok, 1 failed, 2 usage, 3 held, 4 rejected,
5 not applied)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rostersync.sync.events import OpsHeld

if TYPE_CHECKING:
    from rostersync.sync.evaluate import PlanSummary

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HELD, EXIT_REJECTED, EXIT_NOT_APPLIED = 0, 1, 2, 3, 4, 5


class EngineBusy(Exception):
    """Another process holds the writer lease."""


@dataclass
class RunReport:
    run_id: int | None
    kind: str
    status: str  # succeeded | partial | held | rejected | quarantined | paused | failed
    dry_run: bool = False
    counts: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    reasons: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    # Why a run failed or was rejected, when a source is the reason: source_unreachable,
    # source_auth (the HRIS could not be read) or feed_rejected (read and refused).
    error_class: str | None = None

    @property
    def exit_code(self) -> int:
        if self.status == "rejected":
            return EXIT_REJECTED
        if self.status in ("quarantined", "paused", "busy"):
            return EXIT_NOT_APPLIED
        if self.counts.get("held_new", 0) or self.status == "held":
            return EXIT_HELD
        if self.status in ("failed", "partial"):
            return EXIT_FAILED
        return EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "kind": self.kind, "status": self.status,
                "dry_run": self.dry_run, "exit_code": self.exit_code, "counts": self.counts,
                "message": self.message, "reasons": self.reasons, "plan": self.plan,
                "error_class": self.error_class}


def summarise(report: RunReport, on_event: Callable[[Any], None], summary: PlanSummary,
              dry_run: bool) -> None:
    """A run's planning, as the report's counts and reasons (and the held event)."""
    report.counts.update(
        evaluated=summary.evaluated, drift=dict(summary.drift),
        planned=dict(summary.planned), held_new=summary.held,
        scheduled=summary.scheduled, suppressed_new=summary.suppressed,
        superseded=summary.superseded)
    if summary.held:
        reason = summary.hold_reason or "held"
        report.reasons.append(reason)
        if not dry_run:
            on_event(OpsHeld(report.run_id or 0, summary.held, reason))
    if dry_run:
        report.plan = summary.plan or []
        # A mapping change previewed: how many accounts each attribute would rewrite.
        report.counts["rewrites"] = dict(sorted(summary.rewrites.items()))

