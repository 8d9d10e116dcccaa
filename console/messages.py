"""Every Textual message the console passes around, in one place.

The engine reports through plain ``sync.events`` objects; ``from_event`` wraps each one in
the matching message so that screens and the app handle them like any other Textual
message. ``post_message`` is thread-safe, which matters: the engine emits Progress from
the worker threads it plans in.
"""

from __future__ import annotations

from typing import Any

from textual.message import Message

from rostersync.sync import events


class EngineMessage(Message):
    """Base of the engine's events; ``event`` is the original sync.events object."""

    def __init__(self, event: events.Event) -> None:
        super().__init__()
        self.event = event


# Each message's ``event`` is declared as the event it wraps (``_BY_EVENT``), so that a
# handler reads the event's own fields.
class RunStarted(EngineMessage):
    event: events.RunStarted


class RunProgress(EngineMessage):
    event: events.Progress

    def can_replace(self, message: Message) -> bool:
        # A newer figure of the same run supersedes a queued one: the evaluate phase
        # reports every batch, and only the latest is worth drawing.
        return (isinstance(message, RunProgress)
                and message.event.run_id == self.event.run_id)


class RunFinished(EngineMessage):
    event: events.RunFinished


class OpsHeld(EngineMessage):
    event: events.OpsHeld


class FeedRejected(EngineMessage):
    event: events.FeedRejected


class Quarantined(EngineMessage):
    event: events.Quarantined


_BY_EVENT: dict[type[events.Event], type[EngineMessage]] = {
    events.RunStarted: RunStarted,
    events.Progress: RunProgress,
    events.RunFinished: RunFinished,
    events.OpsHeld: OpsHeld,
    events.FeedRejected: FeedRejected,
    events.Quarantined: Quarantined,
}


def from_event(event: events.Event) -> EngineMessage | None:
    """The message of an event the console handles one by one, or None: nothing is
    posted that no handler reads. OpFinished is not one of them (an apply emits one per
    operation): the app counts those and posts OpsApplied."""
    kind = _BY_EVENT.get(type(event))
    return kind(event) if kind is not None else None


class OpsApplied(Message):
    """Operations of the running apply have finished: the count is read from the app's
    tally when this is handled, so one message stands for any number of them."""

    def __init__(self, run_id: int | None) -> None:
        super().__init__()
        self.run_id = run_id

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, OpsApplied) and message.run_id == self.run_id


class NoticesChanged(Message):
    """A notice was raised: the notice bars redraw (once for any number queued)."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, NoticesChanged)


class SchedulerNotice(Message):
    """The scheduler skipped a job or a job raised: shown as a notification."""

    def __init__(self, record: dict[str, Any]) -> None:
        super().__init__()
        self.record = record


class DataChanged(Message):
    """Something changed the database (an action, a run): visible screens reload now."""


class Loaded(Message):
    """A screen's thread worker finished its query set (data, or the exception)."""

    def __init__(self, data: Any, error: BaseException | None = None) -> None:
        super().__init__()
        self.data = data
        self.error = error
