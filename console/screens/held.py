"""Held batch review: one row per hold event (a guard tripping in one run, with its
reason), never merged with another; Enter opens the people in it, and approve or reject
acts on exactly the operations the dialog names."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Label, Static

from rostersync.console import fmt, keymap
from rostersync.console.held_requests import event_request
from rostersync.console.leader_status import held_back_note
from rostersync.console.screens.base import DataScreen
from rostersync.console.screens.held_group import HeldGroupScreen
from rostersync.console.widgets.paged_table import FILL_TEXT, PagedTable
from rostersync.storage import held


class HeldScreen(DataScreen):
    scope = "held"
    BINDINGS = keymap.bindings("held")

    def compose_body(self) -> ComposeResult:
        yield Label("[b]Held for approval[/b], one row per hold (run and reason); Enter "
                    "opens its people", id="list-title")
        yield PagedTable(id="groups")
        yield Static(id="held-reason", classes="panel")

    def on_mount(self) -> None:
        self.query_one("#held-reason").border_title = "Held because"
        self.query_one(PagedTable).focus()

    def query_data(self) -> list[dict[str, Any]]:
        return held.hold_events(self.app.store)

    def show_data(self, events: list[dict[str, Any]]) -> None:
        now = self.app.clock.now()
        self.query_one(PagedTable).show_page(
            ("run", "ops", "people", "kinds", "planned because", "held", "held because"),
            [(held.event_key(e["run_id"], e["hold_reason"]),
              [e["run_id"], e["n"], e["people"], e["kinds"],
               fmt.one_line(", ".join(f"{k} {v}" for k, v in e["why"].items()), 28),
               fmt.age_since(e["oldest"], now), fmt.one_line(e["hold_reason"], FILL_TEXT)])
             # The panel below holds the highlighted hold's reason whole: the column
             # may shrink to a few words before the table runs off an 80-column screen.
             for e in events], fill=("held because", 8))
        self._show_reason()

    def on_data_table_row_highlighted(self, event: PagedTable.RowHighlighted) -> None:
        self._show_reason()

    def _show_reason(self) -> None:
        # The table cuts the reason to its column; the highlighted hold's whole reason,
        # and every reason its changes were planned for, are readable here.
        chosen = self.selected_event()
        event = next((e for e in self.data or []
                      if chosen == (e["run_id"], e["hold_reason"])), None)
        panel = self.query_one("#held-reason", Static)
        panel.display = event is not None
        if event is not None:
            why = ", ".join(f"{k} {v}" for k, v in event["why"].items())
            panel.update(Text.assemble((event["hold_reason"], "bold"), "\n",
                                       ("planned because: ", "dim"), why))

    def selected_event(self) -> tuple[int | None, str] | None:
        key = self.query_one(PagedTable).current_key
        return None if key is None else held.parse_event_key(key)

    def why_not(self, action: str) -> str | None:
        if action in ("approve_group", "reject_group", "open_group") and not self.data:
            return "nothing is held"
        return None

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_data_table_row_selected(self, event: PagedTable.RowSelected) -> None:
        event.stop()  # the table takes Enter itself
        self.action_open_group()

    def action_open_group(self) -> None:
        event = self.selected_event()
        if event is not None:
            self.app.push_screen(HeldGroupScreen(*event))

    def action_approve_group(self) -> None:
        self._request("approve")

    def action_reject_group(self) -> None:
        self._request("reject")

    def _request(self, verb: str) -> None:
        event = self.selected_event()
        if event is not None:
            # The scope is read when the dialog opens, not when the key was pressed nor
            # when it is confirmed: what the dialog names is what is acted on.
            now = self.app.clock.now()
            not_here = held_back_note(self.app.leader)  # with several nodes: who applies
            self.app.request_from(lambda store: event_request(store, verb, *event, now=now,
                                                              not_here=not_here))
