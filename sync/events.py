"""Plain event objects the engine reports through one callback.

The console turns them into Textual messages; `serve` writes them as JSON lines. They
carry no UI and no secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    def as_dict(self) -> dict[str, Any]:
        return {"event": type(self).__name__, **asdict(self)}


@dataclass(frozen=True)
class RunStarted(Event):
    run_id: int
    kind: str
    trigger: str
    dry_run: bool


@dataclass(frozen=True)
class Progress(Event):
    run_id: int
    phase: str  # pull | gate | evaluate | persist | apply
    done: int
    total: int | None = None


@dataclass(frozen=True)
class FeedRejected(Event):
    run_id: int
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class OpFinished(Event):
    run_id: int | None
    op_id: int
    employee_id: str
    kind: str
    status: str
    error: str | None = None


@dataclass(frozen=True)
class OpsHeld(Event):
    run_id: int
    count: int
    reason: str


@dataclass(frozen=True)
class Quarantined(Event):
    run_id: int | None
    reason: str


@dataclass(frozen=True)
class RunFinished(Event):
    run_id: int
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    message: str | None = None


EventCallback = Callable[[Event], None]


def ignore(_event: Event) -> None:
    """The default callback."""
