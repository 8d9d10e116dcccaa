"""Reports: the summaries of `rostersync report terminations|drift|operator` as terminal
charts, computed by the same functions (sync/reports) over the same recorded history.
`p` cycles the period (7, 30, 90 days back from now)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid
from textual.widgets import Static

from rostersync.console import fmt, keymap
from rostersync.console.screens.base import DataScreen
from rostersync.console.widgets.charts import bar_table, sparkline
from rostersync.sync.reports.build import build_report
from rostersync.sync.reports.period import Period

PERIODS = (7, 30, 90)


class ReportsScreen(DataScreen):
    scope = "reports"
    BINDINGS = keymap.bindings("reports")
    DEFAULT_CSS = """
    #reports-grid { grid-size: 2; grid-columns: 1fr 1fr; height: auto; }
    #reports-grid .panel { height: auto; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.days = 30

    def compose_body(self) -> ComposeResult:
        with Grid(id="reports-grid"):
            yield Static(id="rep-terminations", classes="panel")
            yield Static(id="rep-delays", classes="panel")
            yield Static(id="rep-drift", classes="panel")
            yield Static(id="rep-failures", classes="panel")
            yield Static(id="rep-quality", classes="panel")
            yield Static(id="rep-operator", classes="panel")

    def on_mount(self) -> None:
        self._titles()

    def _titles(self) -> None:
        for pid, title in (("terminations", "Terminations"), ("delays", "Delay distribution"),
                           ("drift", "Open drift per day"), ("failures", "Failures by class"),
                           ("quality", "Data quality by field and owner"),
                           ("operator", "Operator actions")):
            self.query_one(f"#rep-{pid}").border_title = f"{title} · last {self.days}d"

    def query_data(self) -> dict[str, Any]:
        app = self.app
        now = app.clock.now()
        period = Period(now - timedelta(days=self.days), now)
        return {name: build_report(name, app.store, app.config, period)
                for name in ("terminations", "drift", "operator")}

    def show_data(self, data: dict[str, Any]) -> None:
        self._show_terminations(data["terminations"])
        self._show_drift(data["drift"])
        self._show_operator(data["operator"])

    def _show_terminations(self, doc: dict[str, Any]) -> None:
        s, d = doc["summary"], doc["summary"]["delay_seconds"]
        grid = Table.grid(padding=(0, 1))
        share = s["share_within_sla"]
        grid.add_row("terminations", str(s["count"]))
        grid.add_row(f"within {doc['sla_minutes']:g}m SLA",
                     Text("-" if share is None else f"{share * 100:.1f}%",
                          style="green" if share == 1 else "bold red" if share is not None
                          else "dim"))
        grid.add_row("delay p50 / p95 / max",
                     " / ".join(fmt.age(d[k]) if d["count"] else "-"
                                for k in ("p50", "p95", "max")))
        grid.add_row("still active in LMS", Text(str(s["open"]),
                                                 style="bold red" if s["open"] else "green"))
        grid.add_row("missed SLA by reason", ", ".join(
            f"{k} {v}" for k, v in sorted(s["missed_by_reason"].items())) or "-")
        self.query_one("#rep-terminations", Static).update(grid)
        h = doc["charts"]["delay_histogram"]
        rows = [(label, n, "", "green" if edge < h["sla_seconds"] else "red")
                for label, n, edge in zip(h["labels"], h["counts"], h["edges_seconds"],
                                          strict=True)]
        self.query_one("#rep-delays", Static).update(bar_table(rows, width=20))

    def _show_drift(self, doc: dict[str, Any]) -> None:
        series = doc["series"]
        grid = Table.grid(padding=(0, 1))
        for kind, values in series["open"].items():
            grid.add_row(kind, Text(sparkline(values[-40:]), style="cyan"),
                         str(values[-1] if values else 0))
        if not series["open"]:
            grid.add_row(Text("no drift in this period", style="dim"))
        self.query_one("#rep-drift", Static).update(grid)
        failures = [(f["error_class"], f["attempts"], f["owner"], "yellow")
                    for f in doc["failures"]]
        self.query_one("#rep-failures", Static).update(
            bar_table(failures, width=20) if failures
            else Text("no failed attempts", style="green"))
        quality = [(f"{q['field']} ({q['kind']})", q["open"], q["owner"], "magenta")
                   for q in doc["data_quality"]]
        self.query_one("#rep-quality", Static).update(
            bar_table(quality, width=20) if quality
            else Text("no data-quality problems", style="green"))

    def _show_operator(self, doc: dict[str, Any]) -> None:
        c = doc["chain"]
        out = Table.grid(padding=(0, 1))
        out.add_row(Text(c["message"], style="green" if c["ok"] else "bold red"))
        rows = [(a["actor"], a["total"], ", ".join(f"{k} {v}" for k, v in a.items()
                                                   if k not in ("actor", "total")), "blue")
                for a in doc["by_actor"]]
        out.add_row(bar_table(rows, width=16) if rows
                    else Text("no operator actions", style="dim"))
        self.query_one("#rep-operator", Static).update(out)

    def action_period(self) -> None:
        self.days = PERIODS[(PERIODS.index(self.days) + 1) % len(PERIODS)]
        self._titles()
        self.reload()

    def action_back(self) -> None:
        self.app.pop_screen()
