"""Held batch review: held operations grouped by why they were planned (terminated in
HR, vanished from the feed, out of scope, ...) with approve or reject per group."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Label

from console import fmt, keymap
from console.screens.base import DataScreen
from console.widgets.paged_table import PagedTable
from storage import console_queries as q


class HeldScreen(DataScreen):
    scope = "held"
    BINDINGS = keymap.bindings("held")

    def compose_body(self) -> ComposeResult:
        yield Label("[b]Held for approval[/b], by reason", id="list-title")
        yield PagedTable(id="groups")

    def on_mount(self) -> None:
        self.query_one(PagedTable).focus()

    def query_data(self) -> list[dict[str, Any]]:
        return q.held_groups(self.app.store)

    def show_data(self, groups: list[dict[str, Any]]) -> None:
        self.query_one(PagedTable).show_page(
            ("reason", "kind", "ops", "oldest", "runs", "held because"),
            [(f"{g['reason']}\x1f{g['kind']}",
              [g["reason"], g["kind"], g["n"], fmt.age_since(g["oldest"], self.app.clock.now()),
               g["runs"], fmt.one_line(g["hold_reason"], 50)]) for g in groups])

    def _selected(self) -> tuple[str, str, int] | None:
        key = self.query_one(PagedTable).current_key
        if key is None:
            return None
        reason, kind = key.split("\x1f")
        n = next(g["n"] for g in self.data if g["reason"] == reason and g["kind"] == kind)
        return reason, kind, n

    def why_not(self, action: str) -> str | None:
        if action in ("approve_group", "reject_group") and not self.data:
            return "nothing is held"
        return None

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_approve_group(self) -> None:
        picked = self._selected()
        if picked:
            reason, kind, n = picked
            self.app.confirm_then(f"Approve {n} held {kind} operation(s): {reason}?", n,
                                  lambda: self.app.do_approve_group(reason, kind),
                                  verb="Approve")

    def action_reject_group(self) -> None:
        picked = self._selected()
        if picked:
            reason, kind, n = picked
            self.app.suppress_form(f"{n} held {kind} op(s) ({reason})", n,
                                   lambda why, until: self.app.do_reject_group(
                                       reason, kind, why, until), title="Reject")
