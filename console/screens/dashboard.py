"""Home: the figures of `rostersync status --json` (the same function computes them),
the running job with its progress, the next runs, trends and recent activity.

The panels reflow by the screen's size (breakpoint classes, app.tcss): on a narrow or
short terminal Health takes the full width with Terminations and Operations side by side
below it, and the rest follows further down (the page scrolls). Every figure of Terminations, Drift and Operations opens the list
behind it (Enter or a click)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Grid, Horizontal, Vertical
from textual.widgets import Label, OptionList, ProgressBar, Static

from rostersync.console import fmt, keymap
from rostersync.console.screens.base import DataScreen
from rostersync.console.widgets import job_status
from rostersync.console.widgets.figures import Figure, FigureList
from rostersync.console.widgets.intake import IntakeLine
from rostersync.console.widgets.trend_chart import TrendChart, plan
from rostersync.storage import console_queries as q
from rostersync.storage import events as event_store
from rostersync.storage.db import parse_ts
from rostersync.sync.status import build_status

# The status reason about blocked terminations: the Health panel shows its own line for
# it (first, in colour), so the reason is not repeated below.
BLOCKED = "blocked by a suppression"

OP_FIGURES = ("failed", "dead", "held", "pending", "suppressed", "succeeded")
CHARTS = (("chart-drift", "drift"), ("chart-failed", "failures"),
          ("chart-rate", "applied/min"), ("chart-age", "HR data age"))


def drill_target(key: str) -> tuple[str, str | None]:
    """A figure's key -> (list name, status to narrow it to)."""
    panel, _, item = key.partition(":")
    if panel == "ops":
        return ("held", None) if item == "held" else ("ops", item)
    if panel == "drift":
        return "drift", (None if item == "total" else item)
    if item == "scheduled":
        return "scheduled", None
    return "terminations", None  # pending, past SLA, blocked, oldest: the same list


def termination_figures(t: dict[str, Any]) -> list[Figure]:
    blocked = t["blocked_by_suppression_count"]
    return [
        Figure("terminations:pending", "pending", str(t["pending"])),
        Figure("terminations:overdue", "past SLA", str(t["overdue"]),
               "bold red" if t["overdue"] else "green"),
        Figure("terminations:blocked", "blocked", str(blocked),
               ("bold red" if t["blocked_by_suppression_overdue"] else "yellow") if blocked
               else "dim"),
        Figure("terminations:oldest", "oldest", fmt.age(t["oldest_pending_age_seconds"])),
        Figure("terminations:scheduled", "scheduled", str(t["scheduled"])),
    ]


def drift_figures(status: dict[str, Any]) -> list[Figure]:
    # Kinds with nothing open are left out: eleven zeros would push the rest off a
    # small screen, and "total" still says when there is no drift at all.
    return [Figure(f"drift:{kind}", kind, str(n), "bold")
            for kind, n in status["drift"].items() if n] + [
        Figure("drift:total", "total", str(status["drift_total"]))]


def op_figures(ops: dict[str, int]) -> list[Figure]:
    return [Figure(f"ops:{name}", name, str(ops.get(name, 0)),
                   fmt.STATUS_STYLE.get(name, "") if ops.get(name, 0) else "dim")
            for name in OP_FIGURES]


def health_text(status: dict[str, Any]) -> Text:
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
    for reason in [r for r in status["reasons"] if BLOCKED not in r]:
        health.append(f"• {' '.join(reason.split())}\n")  # wrapped by the panel, never cut
    health.rstrip()
    return health


class DashboardScreen(DataScreen):
    scope = "dashboard"
    BINDINGS = keymap.bindings("dashboard")
    # Classes for app.tcss: -narrow/-wide by columns, -short/-tall by rows.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._shown: dict[str, Any] = {}  # per panel: what it shows now

    def compose_body(self) -> ComposeResult:
        # Rows of panels rather than one grid: a grid sizes a panel spanning columns by
        # one column's width, so wrapped Health text would leave holes; rows do not.
        with Vertical(id="dash"):
            with Container(id="dash-top"):
                yield Static(id="health", classes="panel")
                with Horizontal(id="dash-counts"):
                    yield FigureList(id="terminations", classes="panel figures")
                    yield FigureList(id="ops", classes="panel figures")
            with Container(id="dash-middle"):
                yield FigureList(id="drift", classes="panel figures")
                yield Static(id="staleness", classes="panel")
                with Vertical(id="job", classes="panel"):
                    yield Label(id="job-line")
                    yield ProgressBar(id="progress", show_eta=False)
                    yield Label(id="next-runs")
                    yield IntakeLine(id="intake")
            with Grid(id="trends", classes="panel"):
                for chart_id, _ in CHARTS:
                    yield TrendChart(id=chart_id)
            yield Static(id="activity", classes="panel")

    def on_mount(self) -> None:
        for pid, title in (("health", "Health"), ("staleness", "Staleness"),
                           ("terminations", "Terminations"), ("drift", "Drift by kind"),
                           ("ops", "Operations"), ("job", "Job"),
                           ("trends", "Trends (UTC)"), ("activity", "Recent activity")):
            self.query_one(f"#{pid}").border_title = title
        self.query_one("#progress", ProgressBar).display = False
        if self.app.live:
            # Ages tick between database refreshes; cheap, no query.
            self.set_interval(1.0, self._show_ticking)

    def query_data(self) -> dict[str, Any]:
        store, now = self.app.store, self.app.clock.now()
        realtime = self.app.config.realtime
        return {"status": build_status(store, self.app.config, now),
                "series": q.run_series(store, now=now), "activity": q.recent_activity(store),
                "events": event_store.summary(store, now) if realtime.enabled else None}

    def show_data(self, data: dict[str, Any]) -> None:
        status = data["status"]
        realtime = self.app.config.realtime
        self.query_one("#intake", IntakeLine).show(realtime.enabled, realtime.describe_mode(),
                                                   data.get("events"))
        self._update("#health", health_text(status))
        self._show_staleness()
        self.query_one("#terminations", FigureList).show_figures(
            termination_figures(status["terminations"]))
        self.query_one("#drift", FigureList).show_figures(drift_figures(status))
        self.query_one("#ops", FigureList).show_figures(op_figures(status["ops"]))
        self._show_trends(data["series"])
        self._show_activity(data["activity"])
        self.show_job()

    def _show_trends(self, series: dict[str, Any]) -> None:
        at, rate = series["at"], series["apply"]
        for (chart_id, name), xs, ys, unit in (
                (CHARTS[0], at, series["drift"], ""),
                (CHARTS[1], at, series["failed"], ""),
                (CHARTS[2], rate["at"], rate["per_minute"], ""),
                (CHARTS[3], at, series["hris_age_minutes"], " min")):
            self.query_one(f"#{chart_id}", TrendChart).show(plan(name, xs, ys, unit))

    def _show_ticking(self) -> None:
        self._show_staleness()
        self.show_job()

    def _show_staleness(self) -> None:
        if not self.data:
            return
        now, th = self.app.clock.now(), self.app.config.thresholds
        table = Table.grid(padding=(0, 1))
        rows: list[tuple[str, Text, Text]] = []
        errors: list[str] = []
        for name, warn, crit in (("HRIS", th.hris_stale_warning_hours,
                                  th.hris_stale_critical_hours),
                                 ("LMS", th.lms_stale_warning_hours,
                                  th.lms_stale_critical_hours)):
            info = self.data["status"]["staleness"][name.lower()]
            last = parse_ts(info["last_success_at"])
            seconds = None if last is None else (now - last).total_seconds()
            state = fmt.staleness_state(seconds, warn, crit)
            row = (name, Text(fmt.age(seconds), style=fmt.STATE_STYLE[state]),
                   Text(state, style=fmt.STATE_STYLE[state]))
            rows.append(row)
            table.add_row(*row)
            if info.get("last_error"):
                # Below the table, across the panel: an error is read whole, wrapped.
                errors.append(f"{name} last error: {' '.join(info['last_error'].split())}")
        # The key is what is shown, so a tick that changes no age repaints nothing.
        key = (tuple(tuple(str(c) for c in row) for row in rows), tuple(errors))
        self._update("#staleness", Group(table, *[Text(e, style="red") for e in errors]), key)

    def _show_activity(self, activity: dict[str, list[dict[str, Any]]]) -> None:
        lines = Text()
        for run in activity["runs"]:
            lines.append(f"{fmt.short_time(run['started_at'])} run {run['id']} {run['kind']} ")
            lines.append(run["status"], style=fmt.STATUS_STYLE.get(run["status"], ""))
            if run["message"]:
                lines.append(f"  {fmt.one_line(run['message'], 70)}", style="dim")
            lines.append("\n")
        for entry in activity["audit"]:
            lines.append(f"{fmt.short_time(entry['at'])} {entry['actor']} {entry['action']} "
                         f"{entry['target'] or ''}\n", style="cyan")
        lines.rstrip()
        self._update("#activity", lines)

    def _update(self, selector: str, content: Any, key: Any = None) -> None:
        """Update a panel only when what it shows changed: a repaint of the whole
        dashboard costs tens of ms on a big terminal, every 2 s otherwise."""
        key = content if key is None else key
        if self._shown.get(selector) != key:
            self._shown[selector] = key
            self.query_one(selector, Static).update(content)

    def show_job(self) -> None:
        """Called on load, every second when live, and on every engine event (the app
        keeps the job state)."""
        app = self.app
        runs = ((self.data or {}).get("activity") or {}).get("runs") or []
        text = job_status.job_text(app.job, runs, app.clock.now())
        before = self._shown.get("#job-line")
        if before != text:
            self._shown["#job-line"] = text
            # A count ticking during an apply keeps the text's shape: no layout pass
            # for the whole dashboard on each engine event, only a repaint of the line.
            same_shape = before is not None and len(before.plain) == len(text.plain)
            self.query_one("#job-line", Label).update(text, layout=not same_shape)
        bar = self.query_one("#progress", ProgressBar)
        running = job_status.running_run(runs)
        if app.job is not None:
            bar.display = True
            bar.update(total=app.job["total"], progress=app.job["done"])
        elif running is not None and job_status.progress(running)[1]:
            done, total = job_status.progress(running)
            bar.display = True
            bar.update(total=total, progress=done)
        else:
            bar.display = False
        nxt = app.next_runs()
        now = app.clock.now()
        self.query_one("#next-runs", Label).update(
            "next: " + ", ".join(f"{k} {_due_in(v, now)}" for k, v in sorted(nxt.items()))
            if nxt
            else ("read-only: this console starts no runs" if app.read_only
                  else "scheduler not running"))

    # -- drilling down ------------------------------------------------------------------

    def action_drill(self) -> None:
        focused = self.focused
        if isinstance(focused, FigureList) and focused.highlighted_key:
            self.drill(focused.highlighted_key)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        # A click on a figure (Enter is the screen's own key, action_drill).
        event.stop()
        if event.option.id:
            self.drill(event.option.id)

    def drill(self, key: str) -> None:
        name, status = drill_target(key)
        try:
            if status is None:
                self.app.action_go(name)
            else:
                self.app.open_list(name, status=status)
        except KeyError:  # a list this console does not have
            self.notify(f"there is no {name} list in this console", severity="warning")

    def action_search(self) -> None:
        self.app.action_command_palette()

    def action_open_last_run(self) -> None:
        runs = (self.data or {}).get("activity", {}).get("runs") or []
        if runs:
            self.app.open_run(runs[0]["id"])

    def why_not(self, action: str) -> str | None:
        if action == "open_last_run" and not ((self.data or {}).get("activity", {})
                                              .get("runs")):
            return "no run has happened yet"
        if action == "drill" and not isinstance(self.focused, FigureList):
            return "Tab to a figure (Terminations, Drift, Operations) first"
        return None


def _due_in(when: str | None, now: datetime) -> str:
    """'in 4s' rather than a timestamp: three of them fit a third of 80 columns."""
    if not when:
        return "paused"
    moment = datetime.fromisoformat(when)  # APScheduler's time, with its UTC offset
    return f"in {fmt.age(max(0.0, (moment - now).total_seconds()))}"
