"""Modal dialogs: confirming a dangerous action (saying how many records it touches) and
the suppression form (reason, optional expiry)."""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from console.when import WhenError, parse_when


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "confirm", "Yes")]

    def __init__(self, question: str, count: int, verb: str = "Confirm") -> None:
        super().__init__()
        self.question = question
        self.count = count
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Label(f"This touches {self.count} record(s). It is written to the audit "
                        "log under your name. Press y to confirm, Esc to cancel.",
                        classes="count")
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="error", id="yes")
                yield Button("Cancel", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe choice is the default

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_confirm(self) -> None:
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class SuppressModal(ModalScreen[tuple[str, datetime | None] | None]):
    """Reason (required) and expiry (optional: ISO date/time or 12h, 7d, 2w)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, subject: str, count: int, now: datetime,
                 title: str = "Suppress") -> None:
        super().__init__()
        self.subject = subject
        self.count = count
        self.now = now
        self.verb = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{self.verb} {self.subject}", classes="question")
            yield Label(f"Holds every change for them; {self.count} open operation(s) are "
                        "touched.", classes="count")
            yield Input(placeholder="reason (required)", id="reason")
            yield Input(placeholder="until: 2026-12-31, 12h, 7d, 2w (optional)", id="until")
            yield Label("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="error", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "reason":
            self.query_one("#until", Input).focus()
        else:
            self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        until_text = self.query_one("#until", Input).value.strip()
        error = self.query_one("#error", Label)
        if not reason:
            error.update("a reason is required: it goes to the audit log")
            return
        try:
            until = parse_when(until_text, self.now) if until_text else None
        except WhenError as exc:
            error.update(str(exc))
            return
        self.dismiss((reason, until))

    def action_cancel(self) -> None:
        self.dismiss(None)
