"""The paged lists: drift, operations, terminations (pending and scheduled), runs and the
audit log.

One page lives in the table; the total comes from COUNT. The filter, sort, status and
page are screen state, so they survive every live refresh, and the table keeps its
cursor by row key (see PagedTable). The keys are k9s's and lazygit's: / filters, j/k
move, g/G go to the very first and last row, a header click (or o) sorts, c/C copy, v
shows the highlighted row in full.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.events import Resize
from textual.widgets import Input, Label

from rostersync.console import fmt, keymap
from rostersync.console.screens.base import DataScreen
from rostersync.console.screens.row_view import RowView, row_tsv
from rostersync.console.widgets.filter_box import fold_filter, open_filter
from rostersync.console.widgets.paged_table import FILL_TEXT, PagedTable
from rostersync.console.widgets.text_input import TextInput
from rostersync.storage import console_queries as q
from rostersync.storage import people_search
from rostersync.storage import terminations as term_store
from rostersync.storage.db import parse_ts
from rostersync.sync.models import DriftKind, OpStatus

PAGE_SIZE = 50
ASCENDING, DESCENDING = "▲", "▼"


class ListScreen(DataScreen):
    scope = "list"
    BINDINGS = keymap.bindings("list")
    list_name = ""
    heading = ""
    columns: tuple[str, ...] = ()
    sorts: tuple[str, ...] = ()  # what o cycles through, the default first
    sort_by: dict[str, str] = {}  # a column -> the sort its header click picks
    # Columns shown only from this terminal width up (the rest keep their room at 80).
    wide_only: dict[str, int] = {}
    # The column that takes the width the others leave, its cells cut to it (…), and the
    # least it gets: long text (an error) as far as the screen allows, never off its edge.
    fill: tuple[str, int] | None = None
    person_field: str | None = None  # the row field holding the person's employee id
    hint = ""
    statuses: tuple[str | None, ...] = (None,)
    status_label = "status"
    opens = "person"  # what Enter opens: person | run | nothing

    def __init__(self, status: str | None = None, filter_text: str = "",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_text = filter_text
        self.sort = self.sorts[0] if self.sorts else None
        self.desc: bool | None = None
        self.status = status
        self.page_offset = 0
        self.total = 0
        self._cursor_to: str | None = None  # "first" | "last": where g/G land once loaded

    def compose_body(self) -> ComposeResult:
        yield Label(id="list-title")
        if self.hint:
            yield Label(self.hint, id="list-hint")
        yield TextInput(self.filter_text, placeholder="filter…", id="filter")
        yield PagedTable(id="table")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = bool(self.filter_text)
        self.query_one(PagedTable).focus()

    def query_data(self) -> q.Page:
        page = q.page(self.app.store, self.list_name, filter_text=self.filter_text,
                      sort=self.sort, desc=self.desc, status=self.status,
                      offset=self.page_offset, limit=PAGE_SIZE, now=self.app.clock.now())
        if self.person_field:
            # One page of primary-key lookups, not a join over the whole list.
            names = people_search.names_for(self.app.store,
                                            [r[self.person_field] for r in page.rows])
            page.rows = [_with_name(r, self.person_field, names.get(r[self.person_field]))
                         for r in page.rows]
        return page

    # -- showing ----------------------------------------------------------------------

    @property
    def descending(self) -> bool:
        return self.desc if self.desc is not None else q.SPECS[self.list_name].default_desc

    @property
    def sorted_column(self) -> str | None:
        """The column whose header carries the sort indicator (the first that sorts by
        the current sort; none when o picked a sort no column shows)."""
        current = self.sort or q.SPECS[self.list_name].default_sort
        return next((c for c in self.columns if self.sort_by.get(c) == current), None)

    def visible_columns(self) -> list[int]:
        width = self.app.size.width
        return [i for i, c in enumerate(self.columns) if width >= self.wide_only.get(c, 0)]

    def header_labels(self, shown: list[str]) -> list[str]:
        arrow = DESCENDING if self.descending else ASCENDING
        marked = self.sorted_column
        return [f"{c} {arrow}" if c == marked else c for c in shown]

    def show_data(self, page: q.Page) -> None:
        self.total = page.total
        if page.total and self.page_offset >= page.total:
            # the filter shrank the list under us: back to its last page
            self.page_offset = (page.total - 1) // PAGE_SIZE * PAGE_SIZE
            self.reload()
            return
        first = page.offset + 1 if page.rows else 0
        bits = [f"[b]{self.heading}[/b]", f"{first}-{page.offset + len(page.rows)} of "
                f"{page.total}"]
        if self.status:
            bits.append(f"{self.status_label}: {self.status}")
        if self.filter_text:
            bits.append(f"filter: {self.filter_text!r}")
        direction = "↓" if self.descending else "↑"
        bits.append(f"sort: {self.sort or q.SPECS[self.list_name].default_sort} {direction}")
        self.query_one("#list-title", Label).update("  ·  ".join(bits))
        shown = self.visible_columns()
        names = [self.columns[i] for i in shown]
        rows = [(key, [cells[i] for i in shown]) for key, cells in map(self.row, page.rows)]
        table = self.query_one(PagedTable)
        table.show_page(names, rows, self.header_labels(names), self.fill)
        if self._cursor_to and page.rows:
            table.move_cursor(row=0 if self._cursor_to == "first" else len(page.rows) - 1,
                              animate=False)
        self._cursor_to = None

    def on_resize(self, event: Resize) -> None:
        if self.data is not None:
            self.show_data(self.data)  # a column may come or go with the width

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    def name_cell(self, r: dict[str, Any]) -> Any:
        return fmt.one_line(r.get("name"), 24) or None

    # -- the highlighted row ------------------------------------------------------------

    def current_row(self) -> dict[str, Any] | None:
        key = self.query_one(PagedTable).current_key
        if key is None or self.data is None:
            return None
        return next((r for r in self.data.rows if self.row_key(r) == key), None)

    def row_key(self, r: dict[str, Any]) -> str:
        return str(r["id"])

    def row_title(self, r: dict[str, Any]) -> str:
        person = r.get(self.person_field) if self.person_field else None
        who = " · ".join(str(x) for x in (person, r.get("name")) if x)
        return f"{self.heading} · {self.row_key(r)}" + (f" · {who}" if who else "")

    # -- actions ----------------------------------------------------------------------

    def action_filter(self) -> None:
        open_filter(self.query_one("#filter", Input))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter" and event.value != self.filter_text:
            self.filter_text = event.value
            self.page_offset = 0
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one(PagedTable).focus()

    def action_back(self) -> None:
        if fold_filter(self.query_one("#filter", Input), bool(self.filter_text),
                       self.query_one(PagedTable)):
            self.filter_text = ""
            self.reload()
            return
        self.app.pop_screen()

    def action_sort(self) -> None:
        if self.sorts:
            current = self.sort if self.sort in self.sorts else self.sorts[0]
            self.sort = self.sorts[(self.sorts.index(current) + 1) % len(self.sorts)]
            self.page_offset = 0
            self.reload()

    def action_reverse(self) -> None:
        self.desc = not self.descending
        self.page_offset = 0
        self.reload()

    def on_data_table_header_selected(self, event: PagedTable.HeaderSelected) -> None:
        event.stop()
        column = str(event.column_key.value)
        sort = self.sort_by.get(column)
        if sort is None:
            self.notify(f"the list cannot be sorted by {column!r}", title="Sort",
                        severity="warning")
            return
        spec = q.SPECS[self.list_name]
        if sort == (self.sort or spec.default_sort):
            self.desc = not self.descending  # a second click reverses, as in a file manager
        else:
            # A new column starts ascending; the list's own sort, in its own direction.
            self.sort, self.desc = sort, (None if sort == spec.default_sort else False)
        self.page_offset = 0
        self.reload()

    def action_status(self) -> None:
        options = self.statuses
        self.status = options[(options.index(self.status) + 1) % len(options)] \
            if self.status in options else options[0]
        self.page_offset = 0
        self.reload()

    def action_page(self, step: int) -> None:
        self.page_offset = max(0, self.page_offset + step * PAGE_SIZE)
        self.reload()

    def action_cursor_down(self) -> None:
        self.query_one(PagedTable).action_cursor_down()

    def action_cursor_up(self) -> None:
        self.query_one(PagedTable).action_cursor_up()

    def action_first(self) -> None:
        self._go_to(0, "first")

    def action_last(self) -> None:
        self._go_to(max(0, (self.total - 1) // PAGE_SIZE * PAGE_SIZE), "last")

    def _go_to(self, offset: int, where: str) -> None:
        table = self.query_one(PagedTable)
        if offset == self.page_offset and table.row_count:
            table.move_cursor(row=0 if where == "first" else table.row_count - 1,
                              animate=False)
            return
        self.page_offset, self._cursor_to = offset, where
        self.reload()

    def action_copy_id(self) -> None:
        r = self.current_row()
        if r is not None:
            self.app.copy_to_clipboard(self.row_key(r))
            self.notify(f"copied {self.row_key(r)} to the clipboard", title="Copy id")

    def action_copy_row(self) -> None:
        r = self.current_row()
        if r is not None:
            self.app.copy_to_clipboard(row_tsv(r))
            self.notify(f"copied row {self.row_key(r)} ({len(r)} fields, tab-separated) to "
                        "the clipboard", title="Copy row")

    def action_view_row(self) -> None:
        r = self.current_row()
        if r is not None:
            self.app.push_screen(RowView(self.row_title(r), r))

    def action_open(self) -> None:
        row = self.current_row()
        if row is not None:
            self.open_row(row)

    def open_row(self, row: dict[str, Any]) -> None:
        self.app.open_person(row.get("subject") or row.get("employee_id"))

    def on_data_table_row_selected(self, event: PagedTable.RowSelected) -> None:
        self.action_open()

    def why_not(self, action: str) -> str | None:
        if action == "page":
            return None
        if action == "open" and self.opens == "nothing":
            return "nothing to open here"
        if action == "status" and len(self.statuses) < 2:
            return "this list has no status to choose"
        if action in ("view_row", "copy_id", "copy_row") and self.is_mounted \
                and self.query_one(PagedTable).current_key is None:
            return "no row is highlighted"
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "page" and parameters:
            step = int(parameters[0])  # type: ignore[call-overload]
            if step < 0 and self.page_offset == 0:
                return None
            if step > 0 and self.page_offset + PAGE_SIZE >= self.total:
                return None
        return super().check_action(action, parameters)


def _with_name(row: dict[str, Any], person_field: str, name: str | None) -> dict[str, Any]:
    """The row with the person's name right after their id (the full-row view's order)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = value
        if key == person_field:
            out["name"] = name
    return out


class DriftList(ListScreen):
    list_name, heading = "drift", "Drift"
    columns = ("id", "person", "name", "kind", "owner", "age", "detail")
    sorts = ("first_seen_at", "subject", "kind", "owner", "id")
    sort_by = {"id": "id", "person": "subject", "kind": "kind", "owner": "owner",
               "age": "first_seen_at"}
    wide_only = {"name": 110}
    fill = ("detail", 16)
    person_field = "subject"
    statuses = (None, *[str(k) for k in DriftKind])
    status_label = "kind"

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [r["id"], r["subject"], self.name_cell(r), r["kind"], r["owner"],
                              fmt.age_since(r["first_seen_at"], self.app.clock.now()),
                              fmt.detail_summary(r["detail"], FILL_TEXT)]


class OpsList(ListScreen):
    list_name, heading = "ops", "Operations"
    # The error is the class and the LMS's words in one column, as wide as the screen
    # allows: at 80 columns it is what the operator came for, so the reason (why the
    # operation was planned, also in the row view) gives way below 100 columns.
    columns = ("id", "person", "name", "kind", "status", "reason", "tries", "error")
    sorts = ("id", "employee_id", "kind", "status", "attempts", "error_class", "updated_at")
    sort_by = {"id": "id", "person": "employee_id", "kind": "kind", "status": "status",
               "tries": "attempts", "error": "error_class"}
    wide_only = {"name": 140, "reason": 100}
    fill = ("error", 16)
    person_field = "employee_id"
    statuses = (None, *[str(s) for s in OpStatus])

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        error = ": ".join(p for p in (r["error_class"], fmt.one_line(r["last_error"], FILL_TEXT))
                          if p) or None
        return str(r["id"]), [
            r["id"], r["employee_id"], self.name_cell(r), r["kind"],
            Text(r["status"], style=fmt.STATUS_STYLE.get(r["status"], "")),
            fmt.one_line(r["reason"], 24), f"{r['attempts']}/{r['max_attempts']}", error]


class TerminationsList(ListScreen):
    list_name, heading = "terminations", "Pending terminations"
    columns = ("id", "person", "name", "pending for", "SLA", "deactivation")
    sorts = ("first_seen_at", "subject", "id")
    sort_by = {"id": "id", "person": "subject", "pending for": "first_seen_at",
               "SLA": "first_seen_at"}
    wide_only = {"name": 100}
    fill = ("deactivation", 16)
    person_field = "subject"
    hint = "Terminations dated in the future: palette → \"Go: scheduled terminations\""

    def query_data(self) -> q.Page:
        page = super().query_data()
        # A suppression keeps the account active on purpose; the row says whose it is,
        # and its SLA clock keeps running like every other pending termination's.
        blocked = term_store.blocked_for(self.app.store, [r["subject"] for r in page.rows],
                                         self.app.clock.now(),
                                         self.app.config.guards.termination_sla_minutes)
        for r in page.rows:
            r["blocked"] = blocked.get(r["subject"])
        return page

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        seconds = (self.app.clock.now() - parse_ts(r["first_seen_at"])).total_seconds()
        left = self.app.config.guards.termination_sla_minutes * 60 - seconds
        sla = (Text(f"over by {fmt.age(-left)}", style="bold red") if left < 0
               else Text(f"{fmt.age(left)} left", style="green"))
        e = r.get("blocked")
        if e:
            state = Text(f"blocked by a suppression ({e['suppressed_by']}, {e['reason']}, "
                         f"{term_store.until_text(e)})",
                         style="bold red" if e["overdue"] else "yellow")
        else:
            state = Text(r["op_status"] or "not planned",
                         style=fmt.STATUS_STYLE.get(r["op_status"] or "", ""))
        return str(r["id"]), [r["id"], r["subject"], self.name_cell(r), fmt.age(seconds),
                              sla, state]


class ScheduledList(ListScreen):
    """People whose termination HR has dated in the future: when it takes effect, in UTC
    and in their own zone (a termination date ends the local working day)."""

    list_name, heading = "scheduled", "Scheduled terminations"
    columns = ("person", "name", "effective (UTC)", "their zone", "their time", "time left")
    sorts = ("effective_at", "employee_id")
    sort_by = {"person": "employee_id", "effective (UTC)": "effective_at",
               "time left": "effective_at"}
    person_field = "employee_id"

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        moment = parse_ts(r["effective_at"])
        zone = fmt.zone(r["timezone"])
        local = moment.astimezone(zone or UTC) if moment else None
        left = (moment - self.app.clock.now()).total_seconds() if moment else None
        return str(r["id"]), [
            r["employee_id"], self.name_cell(r), fmt.compact_time(r["effective_at"]),
            r["timezone"] if zone else f"{r['timezone'] or '-'} (unknown: UTC)",
            f"{local:%Y-%m-%d %H:%M %Z}" if local else None,
            fmt.age(left) if left is not None else None]


class RunsList(ListScreen):
    list_name, heading = "runs", "Runs"
    # "took" rather than a second timestamp: at 80 columns two times leave no room for
    # the message, and the duration is what an operator compares between runs.
    columns = ("id", "kind", "trigger", "status", "started", "took", "message")
    sorts = ("id", "kind", "status", "started_at")
    sort_by = {"id": "id", "kind": "kind", "status": "status", "started": "started_at"}
    # Below 100 columns the trigger (also in the run's view) leaves its room to the message.
    wide_only = {"trigger": 100}
    fill = ("message", 16)
    statuses = (None, "succeeded", "partial", "held", "failed", "rejected", "quarantined",
                "paused", "running")
    opens = "run"

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [r["id"], r["kind"] + (" (dry)" if r["dry_run"] else ""),
                              r["trigger"],
                              Text(r["status"], style=fmt.STATUS_STYLE.get(r["status"], "")),
                              fmt.short_time(r["started_at"]),
                              _took(r["started_at"], r["finished_at"]),
                              fmt.one_line(r["message"], FILL_TEXT)]

    def open_row(self, row: dict[str, Any]) -> None:
        self.app.open_run(int(row["id"]))


def _took(started: str | None, finished: str | None) -> str:
    start, end = parse_ts(started), parse_ts(finished)
    if start is None:
        return "-"
    if end is None:
        return "running"
    return fmt.age((end - start).total_seconds())


class AuditList(ListScreen):
    list_name, heading = "audit", "Audit log"
    columns = ("id", "at", "actor", "action", "target", "detail")
    sorts = ("id", "actor", "action", "target")
    sort_by = {"id": "id", "at": "id", "actor": "actor", "action": "action",
               "target": "target"}
    fill = ("detail", 16)

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [r["id"], fmt.short_time(r["at"]), r["actor"], r["action"],
                              r["target"], fmt.one_line(r["detail"], FILL_TEXT)]

    def open_row(self, row: dict[str, Any]) -> None:
        if row.get("target"):
            self.app.open_person(row["target"])
