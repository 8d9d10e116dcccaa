"""A reason, asked for before a confirmation whose question has to name it (ignoring a
disputed match, say). Unlike the suppression form there is no expiry: the decision stays
until an operator changes or clears it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label


class ReasonModal(ModalScreen[str | None]):
    """Dismisses with the reason (never empty), or None on cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = "ReasonModal { align: center middle; }"

    def __init__(self, title: str, explanation: str, verb: str) -> None:
        super().__init__()
        self.title_text = title
        self.explanation = explanation
        self.verb = verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text, classes="question")
            yield Label(self.explanation, classes="count")
            yield Input(placeholder="reason (required, goes to the audit log)", id="reason")
            yield Label("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="error", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#error", Label).update("a reason is required: it goes to the "
                                                   "audit log")
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)
