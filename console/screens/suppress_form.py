"""The suppression form: a reason and an expiry, for suppressing a person or rejecting
held operations (which suppresses their people).

A suppression stops every change to its people, a termination included, so it must not
be open-ended by accident (issue 13: an empty "until" used to mean "for ever" without a
word). The expiry is required; "no expiry" is an explicit choice that shows what it
means before it can be confirmed. The dialog fits at 80x24 and works from the keyboard
alone: Tab goes reason, until, no expiry, the buttons; Enter in "until" submits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Checkbox, Input, Label

from rostersync.console import fmt
from rostersync.console.screens.answer_form import AnswerForm, Missing
from rostersync.console.when import WhenError, parse_when
from rostersync.console.widgets.text_input import TextInput

NO_EXPIRY = "no expiry — suppress until lifted by hand"
NO_EXPIRY_WARNING = ("⚠ no expiry: these people get no change at all — terminations "
                     "included — until someone lifts it")
NEED_EXPIRY = "an expiry is required (or tick 'no expiry')"
THEN = ("Then no change at all reaches them — terminations included — until the "
        "suppression ends.")


class SuppressModal(AnswerForm[tuple[str, datetime | None]]):
    """Reason (required) and expiry (required: ISO date/time or 12h, 7d, 2w), or an
    explicit "no expiry". Dismisses with (reason, until or None), or None on cancel."""

    # Only selectors the app's stylesheet leaves alone: a one-row checkbox and message
    # lines keep the dialog inside 24 rows.
    DEFAULT_CSS = """
    SuppressModal #no-expiry { border: none; height: 1; padding: 0; background: $surface; }
    SuppressModal #ok { width: auto; min-width: 16; }
    SuppressModal #effect { color: $text-muted; }
    SuppressModal #effect.warning { color: $error; text-style: bold; }
    SuppressModal #error { display: none; }
    SuppressModal #error.shown { display: block; }
    """

    def __init__(self, subject: str, count: int, now: datetime, title: str, question: str,
                 details: Sequence[str] = ()) -> None:
        super().__init__()
        self.details = tuple(details)
        self.subject = subject
        self.count = count
        self.now = now
        self.verb = title
        self.question = question  # the request's exact sentence of what happens now

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(f"{self.verb} {self.subject}", classes="question")
            yield Label(f"{self.question}. {THEN}", classes="count")
            for line in self.details:
                yield Label(line, classes="detail")
            yield TextInput(placeholder="reason (required, goes to the audit log)", id="reason")
            yield TextInput(placeholder="until: 2026-12-31, 12h, 7d, 2w (required)", id="until")
            yield Checkbox(NO_EXPIRY, id="no-expiry")
            yield Label(id="effect")
            yield Label(id="error", classes="error")
            with Horizontal(classes="buttons"):
                yield Button(self.verb, variant="error", id="ok")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self._show_effect()
        self.query_one("#reason", Input).focus()

    # -- what the answer means, shown as it is typed ------------------------------------

    def on_input_changed(self, event: Input.Changed) -> None:
        self._clear_error()  # the refusal was about the answer before this change
        if event.input.id == "until":
            self._show_effect()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        self._clear_error()
        self._show_effect()
        ok = self.query_one("#ok", Button)
        ok.label = f"{self.verb}, no expiry" if event.value else self.verb
        ok.refresh(layout=True)  # the label is not a layout reactive; the width follows it

    def _show_effect(self) -> None:
        effect = self.query_one("#effect", Label)
        no_expiry = self.query_one("#no-expiry", Checkbox).value
        effect.set_class(no_expiry, "warning")
        if no_expiry:
            effect.update(NO_EXPIRY_WARNING)
            return
        text = self.query_one("#until", Input).value.strip()
        try:
            until = parse_when(text, self.now) if text else None
        except WhenError:
            effect.update("ends: not a time yet (2026-12-31, 12h, 7d, 2w)")
            return
        if until is None:
            effect.update("ends: give an expiry, or tick 'no expiry'")
        else:
            effect.update(f"ends: {until:%Y-%m-%d %H:%M} UTC, in "
                          f"{fmt.age((until - self.now).total_seconds())}; then changes resume")

    # -- answering ----------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "reason":
            self.query_one("#until", Input).focus()
        else:
            self.submit()

    def _clear_error(self) -> None:
        self.query_one("#error", Label).remove_class("shown")

    def answer(self) -> tuple[str, datetime | None]:
        """(reason, until or None); Missing says what is missing."""
        reason = self.query_one("#reason", Input).value.strip()
        until_text = self.query_one("#until", Input).value.strip()
        no_expiry = self.query_one("#no-expiry", Checkbox).value
        if not reason:
            raise Missing("a reason is required: it goes to the audit log")
        if no_expiry:
            if until_text:
                raise Missing("give an expiry or tick 'no expiry', not both")
            return reason, None
        if not until_text:
            raise Missing(NEED_EXPIRY)
        try:
            return reason, parse_when(until_text, self.now)
        except WhenError as exc:
            raise Missing(str(exc)) from None
