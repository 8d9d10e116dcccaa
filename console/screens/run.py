"""One run: its counts, what it held and why, and the operations that failed in it,
grouped by error class and owner (HR data, IT connectivity, L&D mapping) with "retry all
in this group". The run in progress shows its phase and progress."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from rostersync.console import fmt, keymap, requests
from rostersync.console.action_path import ActionRequest
from rostersync.console.screens.base import DataScreen
from rostersync.console.widgets.paged_table import FILL_TEXT, PagedTable
from rostersync.storage import run_detail
from rostersync.storage.db import Store, parse_ts
from rostersync.sync.models import ERROR_OWNER

FAILURE_COLUMNS = ("error class", "owner", "failed here", "still failing", "example")


class RunScreen(DataScreen):
    scope = "run"
    BINDINGS = keymap.bindings("run")

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id

    def compose_body(self) -> ComposeResult:
        # Failures come right after the heading: at 80x24 they must be on screen.
        with VerticalScroll(id="run"):
            yield Static(id="run-summary", classes="panel")
            yield PagedTable(id="failures")
            yield Static(id="failure-example", classes="panel")
            yield Static(id="run-held", classes="panel")
            yield Static(id="run-counts", classes="panel")

    def on_mount(self) -> None:
        for wid, title in (("run-summary", f"Run {self.run_id}"), ("run-held", "Held"),
                           ("failures", "Failed in this run, by error class"),
                           ("failure-example", "Example error"), ("run-counts", "Counts")):
            self.query_one(f"#{wid}").border_title = title
        # The app keeps the running job's progress; redraw it between database reads.
        if self.app.live:
            self.set_interval(1.0, self._show_progress)

    def query_data(self) -> dict[str, Any] | None:
        return run_detail.run_detail(self.app.store, self.run_id)

    def show_data(self, d: dict[str, Any] | None) -> None:
        if d is None:
            self.query_one("#run-summary", Static).update(f"run {self.run_id} does not exist")
            return
        self._show_summary(d["run"])
        held = Table.grid(padding=(0, 2))
        held.add_column(justify="right")
        held.add_column()
        for row in d["held"]:
            held.add_row(str(row["n"]), row["why"])
        self.query_one("#run-held", Static).update(
            held if d["held"] else Text("nothing held", style="dim"))
        self.query_one(PagedTable).show_page(
            FAILURE_COLUMNS,
            [(row["error_class"], [row["error_class"],
                                   ERROR_OWNER.get(row["error_class"], "?"), row["n"],
                                   row["still_failing"], fmt.one_line(row["sample"], FILL_TEXT)])
             for row in d["failures"]], fill=("example", 16))
        self._show_example()

    def _show_summary(self, run: dict[str, Any]) -> None:
        now = self.app.clock.now()
        running = run["status"] == "running"
        head = fmt.spans((run["kind"], "bold"), f"({run['trigger']})",
                         ("RUNNING" if running else run["status"],
                          fmt.STATUS_STYLE.get(run["status"], "bold")),
                         ("dry run", "dim") if run["dry_run"] else None)
        started, finished = parse_ts(run["started_at"]), parse_ts(run["finished_at"])
        when = f"started {fmt.short_time(run['started_at'])}"
        if started is not None:
            when += f", {fmt.age((now - started).total_seconds())} ago"
            if finished is not None:
                when += f", took {fmt.age((finished - started).total_seconds())}"
        parts: list[Any] = [head, Text(when + (", still running" if running else ""),
                                       style="dim")]
        if running:
            parts.append(self._progress_text())
        if run["message"]:
            parts.append(Text(run["message"], style="yellow"))
        self.query_one("#run-summary", Static).update(Group(*parts))
        counts = self.query_one("#run-counts", Static)
        counts.display = bool(run["counts"])
        counts.update(_counts(run["counts"]))

    def _progress_text(self) -> Text:
        job = self.app.job
        if not job or job.get("run_id") != self.run_id:
            # Started by another process (serve, the command line): its events are not ours.
            return Text("progress is not shown here: another process is running it",
                        style="dim")
        done, total = job.get("done") or 0, job.get("total")
        figures = f"{done} of {total} ({done / total:.0%})" if total else f"{done} done"
        return fmt.spans(("phase", "dim"), (str(job.get("phase") or "starting"), "bold cyan"),
                         figures)

    def _show_progress(self) -> None:
        if self.data and self.data["run"]["status"] == "running":
            self._show_summary(self.data["run"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_example()

    def _show_example(self) -> None:
        # The table cuts the example to one line; the whole of it is readable here.
        key = self.query_one(PagedTable).current_key
        row = next((r for r in (self.data or {}).get("failures", [])
                    if r["error_class"] == key), None)
        panel = self.query_one("#failure-example", Static)
        panel.display = row is not None
        if row is not None:
            panel.update(Text(row["sample"] or "no error text", style="red"))

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
        def build(store: Store) -> ActionRequest | str:
            ids = run_detail.failed_ids(store, run_id, error_class)
            if not ids:
                return f"run {run_id}: no {error_class} failure is left to retry"
            return requests.retry_group_request(app, run_id, error_class, ids)

        self.app.request_from(build)


def _counts(counts: dict[str, Any]) -> Group:
    """Figures two to a row with their numbers aligned, then one row per breakdown."""
    figures, breakdowns = fmt.count_rows(counts)
    grid = Table.grid(padding=(0, 1))
    for _ in range(2):
        grid.add_column(style="dim")
        grid.add_column(justify="right", min_width=6)
        grid.add_column(width=2)
    for i in range(0, len(figures), 2):
        cells: list[Any] = []
        for label, value in figures[i:i + 2]:
            cells += [label, Text(str(value), style="" if value else "dim"), ""]
        grid.add_row(*cells)
    lines = Table.grid(padding=(0, 1))
    lines.add_column(style="dim")
    lines.add_column()
    for label, text in breakdowns:
        lines.add_row(label, text)
    return Group(grid, lines)
