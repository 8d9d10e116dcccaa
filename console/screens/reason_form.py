"""A reason, asked for before a confirmation whose question has to name it (ignoring a
disputed match, say). Unlike the suppression form there is no expiry: the decision stays
until an operator changes or clears it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label

from rostersync.console.screens.answer_form import AnswerForm, Missing
from rostersync.console.widgets.text_input import TextInput


class ReasonModal(AnswerForm[str]):
    """Dismisses with the reason (never empty), or None on cancel."""

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
            yield TextInput(placeholder="reason (required, goes to the audit log)", id="reason")
            yield Label("", id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="error", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.submit()

    def answer(self) -> str:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            raise Missing("a reason is required: it goes to the audit log")
        return reason
