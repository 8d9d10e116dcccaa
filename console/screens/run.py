"""One run: its counts, what it held and why, and failures grouped by error class and
owner (HR data, IT connectivity, L&D mapping) with "retry all in this group"."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from console import fmt, keymap, requests
from console.screens.base import DataScreen
from console.widgets.paged_table import PagedTable
from storage import console_queries as q
from sync.models import ERROR_OWNER


class RunScreen(DataScreen):
    scope = "run"
    BINDINGS = keymap.bindings("run")

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id

    def compose_body(self) -> ComposeResult:
        yield Static(id="run-summary", classes="panel")
        yield Static(id="run-held", classes="panel")
        yield PagedTable(id="failures")

    def on_mount(self) -> None:
        self.query_one("#run-summary").border_title = f"Run {self.run_id}"
        self.query_one("#run-held").border_title = "Held"
        self.query_one("#failures").border_title = "Failures by error class"

    def query_data(self) -> dict[str, Any] | None:
        return q.run_detail(self.app.store, self.run_id)

    def show_data(self, d: dict[str, Any] | None) -> None:
        if d is None:
            self.query_one("#run-summary", Static).update(f"run {self.run_id} does not exist")
            return
        run = d["run"]
        text = Text()
        text.append(f"{run['kind']} ({run['trigger']}) ")
        text.append(run["status"], style=fmt.STATUS_STYLE.get(run["status"], "bold"))
        text.append(f"  {fmt.short_time(run['started_at'])} → "
                    f"{fmt.short_time(run['finished_at'])}\n")
        if run["message"]:
            text.append(f"{run['message']}\n", style="yellow")
        text.append(json.dumps(run["counts"], sort_keys=True), style="dim")
        self.query_one("#run-summary", Static).update(text)
        held = Text()
        for row in d["held"]:
            held.append(f"{row['n']:>6}  {row['why']}\n")
        self.query_one("#run-held", Static).update(held or Text("nothing held", style="dim"))
        self.query_one(PagedTable).show_page(
            ("error class", "owner", "ops", "example"),
            [(row["error_class"], [row["error_class"],
                                   ERROR_OWNER.get(row["error_class"], "?"), row["n"],
                                   fmt.one_line(row["sample"], 60)])
             for row in d["failures"]])

    def why_not(self, action: str) -> str | None:
        if action == "retry_group" and self.query_one(PagedTable).current_key is None:
            return "no failures in this run"
        return None

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_retry_group(self) -> None:
        error_class = self.query_one(PagedTable).current_key
        if error_class is None:
            return
        app, run_id = self.app, self.run_id
        # The ids are read when the dialog opens: a failure that lands after it is not in
        # the scope the operator confirms.
        def build(store):
            ids = q.failed_ids(store, run_id, error_class)
            if not ids:
                return f"run {run_id}: no {error_class} failure is left to retry"
            return requests.retry_group_request(app, run_id, error_class, ids)

        self.app.request_from(build)
