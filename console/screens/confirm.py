"""The confirmation dialog of a dangerous action: it names exactly what will happen, how
many records that touches and which operation ids (fixed when it opened), and that it is
written to the audit log under the operator's name."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from rostersync.console.action_path import ActionRequest, ids_text


def reach(request: ActionRequest) -> str:
    """The sentence saying what the action touches: its own where it has one, the fixed
    operation ids' count where it has those, else how many records."""
    if request.scope:
        return request.scope
    if request.op_ids:
        return (f"This touches {request.count} record(s), exactly these; any that changes "
                "state before you confirm is skipped and reported.")
    return f"This touches {request.count} record(s)."


class ConfirmModal(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("y", "confirm", "Yes")]

    def __init__(self, request: ActionRequest) -> None:
        super().__init__()
        self.request = request
        self.question = request.question
        self.count = request.count
        self.verb = request.verb

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            for line in (*self.request.context, *self.request.details):
                yield Label(line, classes="detail")
            if self.request.op_ids:
                yield Label(f"operations: {ids_text(self.request.op_ids)}", classes="detail")
            yield Label(f"{reach(self.request)} It is written to the audit log under your "
                        "name. y confirms, Esc cancels.", classes="count")
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
