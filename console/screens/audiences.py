"""Audiences: every configured LMS audience with its rules, its size in the LMS, the
size its rules want, and the membership changes pending or held for approval."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Label

from rostersync.console import fmt, keymap
from rostersync.console.screens.base import DataScreen
from rostersync.console.widgets.paged_table import FILL_TEXT, PagedTable
from rostersync.sync.audiences.explain import overview


class AudiencesScreen(DataScreen):
    scope = "audiences"
    BINDINGS = keymap.bindings("audiences")

    def compose_body(self) -> ComposeResult:
        yield Label("[b]Audiences[/b]: LMS groups and cohorts decided by rules", id="list-title")
        yield PagedTable(id="audiences")

    def on_mount(self) -> None:
        self.query_one(PagedTable).focus()

    def query_data(self) -> list[dict[str, Any]]:
        return overview(self.app.store, self.app.config)

    def show_data(self, rows: list[dict[str, Any]]) -> None:
        self.query_one(PagedTable).show_page(
            ("audience", "members", "should be", "to add", "to remove", "held", "rules"),
            [(r["id"], [r["id"] + (" (compliance)" if r["compliance"] else ""), r["size"],
                        r["desired"], r["pending_add"], r["pending_remove"], r["held"],
                        fmt.one_line(" | ".join(r["rules"]), FILL_TEXT)]) for r in rows],
            # The rules are what this screen is read for: at least 30 columns of them,
            # even if an 80-column screen then scrolls sideways.
            fill=("rules", 30))

    def action_back(self) -> None:
        self.app.pop_screen()
