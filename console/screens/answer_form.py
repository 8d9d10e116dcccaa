"""What the console's forms share: Enter or the first button submits, Esc or the other
cancels, and an answer that is not complete says in one sentence what is missing instead
of closing the form."""

from __future__ import annotations

from typing import Generic, TypeVar

from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import Button, Label

Answer = TypeVar("Answer")


class Missing(Exception):
    """Raised by ``answer``: the sentence saying what the form still needs."""


class AnswerForm(ModalScreen[Answer | None], Generic[Answer]):
    """Subclasses compose a ``#error`` label and an ``#ok`` button, and define
    ``answer``; the form dismisses with it, or with None on cancel."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def answer(self) -> Answer:
        raise NotImplementedError

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self.submit()
        else:
            self.dismiss(None)

    def submit(self) -> None:
        try:
            answer = self.answer()
        except Missing as missing:
            error = self.query_one("#error", Label)
            error.update(str(missing))
            error.add_class("shown")
            return
        self.dismiss(answer)

    def action_cancel(self) -> None:
        self.dismiss(None)
