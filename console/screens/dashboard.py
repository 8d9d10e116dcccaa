"""Home: the figures of `rostersync status --json` (the same function computes them),
the running job with its progress, the next runs, trends and recent activity."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Grid, Vertical
from textual.widgets import Label, ProgressBar, Sparkline, Static

from console import fmt, keymap
from console.screens.base import DataScreen
from console.widgets.intake import IntakeLine
from storage import console_queries as q
from storage import events as event_store
from storage.db import parse_ts
from sync.status import build_status

# The status reason about blocked terminations: the Health panel shows its own line for
# it (first, in colour), so the reason is not repeated below.
BLOCKED = "blocked by a suppression"


class DashboardScreen(DataScreen):
    scope = "dashboard"
    BINDINGS = keymap.bindings("dashboard")

    def compose_body(self) -> ComposeResult:
        with Grid(id="dash"):
            yield Static(id="health", classes="panel")
            yield Static(id="staleness", classes="panel")
            yield Static(id="terminations", classes="panel")
            yield Static(id="drift", classes="panel")
            yield Static(id="ops", classes="panel")
            with Vertical(id="job", classes="panel"):
                yield Label(id="job-line")
                yield ProgressBar(id="progress", show_eta=False)
                yield Label(id="next-runs")
                yield IntakeLine(id="intake")
            with Vertical(id="trends", classes="panel"):
                yield Label("drift per run")
                yield Sparkline([], id="spark-drift")
                yield Label("failures per run")
                yield Sparkline([], id="spark-failed")
            yield Static(id="activity", classes="panel")

    def on_mount(self) -> None:
        for pid, title in (("health", "Health"), ("staleness", "Staleness"),
                           ("terminations", "Terminations"), ("drift", "Drift by kind"),
                           ("ops", "Operations"), ("job", "Job"), ("trends", "Trends"),
                           ("activity", "Recent activity")):
            self.query_one(f"#{pid}").border_title = title
        if self.app.live:
            # Ages tick between database refreshes; cheap, no query.
            self.set_interval(1.0, self._show_staleness)

    def query_data(self) -> dict[str, Any]:
        store, now = self.app.store, self.app.clock.now()
        realtime = self.app.config.realtime
        return {"status": build_status(store, self.app.config, now),
                "series": q.run_series(store), "activity": q.recent_activity(store),
                "events": event_store.summary(store, now) if realtime.enabled else None}

    def show_data(self, data: dict[str, Any]) -> None:
        status = data["status"]
        realtime = self.app.config.realtime
        self.query_one("#intake", IntakeLine).show(realtime.enabled, realtime.describe_mode(),
                                                   data.get("events"))
        health = Text()
        health.append(f"{status['status']}\n", style=fmt.STATE_STYLE[status["status"]])
        t = status["terminations"]
        blocked = t["blocked_by_suppression_count"]
        if blocked:
            # Second line, above the reasons, so it is on screen even at 80x24: a leaver
            # whose account a suppression keeps active is the one thing not to miss.
            late = t["blocked_by_suppression_overdue"]
            health.append(f"• {blocked} termination(s) blocked by a suppression"
                          + (f", {late} past SLA" if late else "") + "\n",
                          style="bold red" if late else "yellow")
        for reason in [r for r in status["reasons"] if BLOCKED not in r][:6]:
            health.append(f"• {fmt.one_line(reason, 70)}\n")
        self.query_one("#health", Static).update(health)
        self._show_staleness()
        terms = Table.grid(padding=(0, 1))
        terms.add_row("pending", str(t["pending"]))
        terms.add_row("past SLA", Text(str(t["overdue"]),
                                        style="bold red" if t["overdue"] else "green"))
        terms.add_row("blocked", Text(str(blocked), style=(
            "bold red" if t["blocked_by_suppression_overdue"] else "yellow") if blocked
            else "dim"))
        terms.add_row("oldest", fmt.age(t["oldest_pending_age_seconds"]))
        terms.add_row("scheduled", str(t["scheduled"]))
        self.query_one("#terminations", Static).update(terms)
        drift = Table.grid(padding=(0, 1))
        for kind, n in status["drift"].items():
            drift.add_row(kind, Text(str(n), style="bold" if n else "dim"))
        drift.add_row("total", str(status["drift_total"]))
        self.query_one("#drift", Static).update(drift)
        ops = Table.grid(padding=(0, 1))
        for name in ("failed", "dead", "held", "pending", "suppressed", "succeeded"):
            n = status["ops"].get(name, 0)
            ops.add_row(name, Text(str(n), style=fmt.STATUS_STYLE.get(name, "") if n else "dim"))
        self.query_one("#ops", Static).update(ops)
        self.query_one("#spark-drift", Sparkline).data = data["series"]["drift"] or [0]
        self.query_one("#spark-failed", Sparkline).data = data["series"]["failed"] or [0]
        self._show_activity(data["activity"])
        self.show_job()

    def _show_staleness(self) -> None:
        if not self.data:
            return
        now, th = self.app.clock.now(), self.app.config.thresholds
        table = Table.grid(padding=(0, 1))
        for name, warn, crit in (("HRIS", th.hris_stale_warning_hours,
                                  th.hris_stale_critical_hours),
                                 ("LMS", th.lms_stale_warning_hours,
                                  th.lms_stale_critical_hours)):
            info = self.data["status"]["staleness"][name.lower()]
            last = parse_ts(info["last_success_at"])
            seconds = None if last is None else (now - last).total_seconds()
            state = fmt.staleness_state(seconds, warn, crit)
            table.add_row(name, Text(fmt.age(seconds), style=fmt.STATE_STYLE[state]),
                          Text(state, style=fmt.STATE_STYLE[state]))
            if info.get("last_error"):
                table.add_row("", Text(fmt.one_line(info["last_error"], 30), style="red"), "")
        self.query_one("#staleness", Static).update(table)

    def _show_activity(self, activity: dict[str, list[dict[str, Any]]]) -> None:
        lines = Text()
        for run in activity["runs"][:6]:
            lines.append(f"{fmt.short_time(run['started_at'])} run {run['id']} {run['kind']} ")
            lines.append(run["status"], style=fmt.STATUS_STYLE.get(run["status"], ""))
            if run["message"]:
                lines.append(f"  {fmt.one_line(run['message'], 50)}", style="dim")
            lines.append("\n")
        for entry in activity["audit"][:4]:
            lines.append(f"{fmt.short_time(entry['at'])} {entry['actor']} {entry['action']} "
                         f"{entry['target'] or ''}\n", style="cyan")
        self.query_one("#activity", Static).update(lines)

    def show_job(self) -> None:
        """Called on load and on every engine event (the app keeps the job state)."""
        app = self.app
        job = app.job
        bar = self.query_one("#progress", ProgressBar)
        if job is None:
            self.query_one("#job-line", Label).update("idle")
            bar.update(total=None, progress=0)
            bar.display = False
        else:
            self.query_one("#job-line", Label).update(
                f"run {job['run_id']} {job['kind']}: {job['phase']} "
                f"{job['done']}/{job['total'] if job['total'] is not None else '?'}")
            bar.display = True
            bar.update(total=job["total"], progress=job["done"])
        nxt = app.next_runs()
        self.query_one("#next-runs", Label).update(
            "next: " + ", ".join(f"{k} {v[5:16].replace('T', ' ') if v else 'paused'}"
                                 for k, v in sorted(nxt.items())) if nxt
            else ("read-only: no jobs run here" if app.read_only else "scheduler not running"))

    def action_open_last_run(self) -> None:
        runs = (self.data or {}).get("activity", {}).get("runs") or []
        if runs:
            self.app.open_run(runs[0]["id"])

    def why_not(self, action: str) -> str | None:
        if action == "open_last_run" and not ((self.data or {}).get("activity", {})
                                              .get("runs")):
            return "no run has happened yet"
        return None
