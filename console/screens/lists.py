"""The paged lists: drift, operations, terminations, runs and the audit log.

One page lives in the table; the total comes from COUNT. The filter, sort, status and
page are screen state, so they survive every live refresh, and the table keeps its
cursor by row key (see PagedTable).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Input, Label

from console import fmt, keymap
from console.screens.base import DataScreen
from console.widgets.paged_table import PagedTable
from storage import console_queries as q
from storage import terminations as term_store
from storage.db import parse_ts
from sync.models import DriftKind, OpStatus

PAGE_SIZE = 50


class ListScreen(DataScreen):
    scope = "list"
    BINDINGS = keymap.bindings("list")
    list_name = ""
    heading = ""
    columns: tuple[str, ...] = ()
    sorts: tuple[str, ...] = ()
    statuses: tuple[str | None, ...] = (None,)
    opens = "person"  # what Enter opens: person | run | nothing

    def __init__(self, status: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filter_text = ""
        self.sort = self.sorts[0] if self.sorts else None
        self.desc: bool | None = None
        self.status = status
        self.page_offset = 0
        self.total = 0

    def compose_body(self) -> ComposeResult:
        yield Label(id="list-title")
        yield Input(placeholder="filter…", id="filter")
        yield PagedTable(id="table")

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.query_one(PagedTable).focus()

    def query_data(self) -> q.Page:
        return q.page(self.app.store, self.list_name, filter_text=self.filter_text,
                      sort=self.sort, desc=self.desc, status=self.status,
                      offset=self.page_offset, limit=PAGE_SIZE)

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
        direction = "↓" if (self.desc if self.desc is not None else
                            q.SPECS[self.list_name].default_desc) else "↑"
        bits.append(f"sort: {self.sort or q.SPECS[self.list_name].default_sort} {direction}")
        self.query_one("#list-title", Label).update("  ·  ".join(bits))
        self.query_one(PagedTable).show_page(self.columns,
                                             [self.row(r) for r in page.rows])

    status_label = "status"

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        raise NotImplementedError

    # -- actions ----------------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.filter_text = event.value
            self.page_offset = 0
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            self.query_one(PagedTable).focus()

    def action_back(self) -> None:
        # k9s: Esc clears the filter first, and only then leaves the list.
        box = self.query_one("#filter", Input)
        if self.filter_text or box.has_focus:
            box.value = ""
            box.display = False
            self.filter_text = ""
            self.query_one(PagedTable).focus()
            self.reload()
            return
        self.app.pop_screen()

    def action_sort(self) -> None:
        if self.sorts:
            self.sort = self.sorts[(self.sorts.index(self.sort) + 1) % len(self.sorts)]
            self.page_offset = 0
            self.reload()

    def action_reverse(self) -> None:
        current = self.desc if self.desc is not None else q.SPECS[self.list_name].default_desc
        self.desc = not current
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

    def action_open(self) -> None:
        key = self.query_one(PagedTable).current_key
        if key is None:
            return
        row = next((r for r in (self.data.rows if self.data else [])
                    if str(r["id"]) == key), None)
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
        return None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "page" and parameters:
            step = int(parameters[0])  # type: ignore[call-overload]
            if step < 0 and self.page_offset == 0:
                return None
            if step > 0 and self.page_offset + PAGE_SIZE >= self.total:
                return None
        return super().check_action(action, parameters)


class DriftList(ListScreen):
    list_name, heading = "drift", "Drift"
    columns = ("id", "person", "kind", "owner", "age", "detail")
    sorts = ("first_seen_at", "subject", "kind", "owner", "id")
    statuses = (None, *[str(k) for k in DriftKind])
    status_label = "kind"

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [r["id"], r["subject"], r["kind"], r["owner"],
                              fmt.age_since(r["first_seen_at"], self.app.clock.now()),
                              fmt.detail_summary(r["detail"], 50)]


class OpsList(ListScreen):
    list_name, heading = "ops", "Operations"
    columns = ("id", "person", "kind", "status", "reason", "tries", "error", "last error")
    sorts = ("id", "employee_id", "kind", "status", "attempts", "error_class", "updated_at")
    statuses = (None, *[str(s) for s in OpStatus])

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [
            r["id"], r["employee_id"], r["kind"],
            Text(r["status"], style=fmt.STATUS_STYLE.get(r["status"], "")),
            fmt.one_line(r["reason"], 24), f"{r['attempts']}/{r['max_attempts']}",
            r["error_class"], fmt.one_line(r["last_error"], 40)]


class TerminationsList(ListScreen):
    list_name, heading = "terminations", "Pending terminations"
    columns = ("id", "person", "pending for", "SLA", "deactivation")
    sorts = ("first_seen_at", "subject", "id")

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
        return str(r["id"]), [r["id"], r["subject"], fmt.age(seconds), sla, state]


class RunsList(ListScreen):
    list_name, heading = "runs", "Runs"
    columns = ("id", "kind", "trigger", "status", "started", "finished", "message")
    sorts = ("id", "kind", "status", "started_at")
    statuses = (None, "succeeded", "partial", "held", "failed", "rejected", "quarantined",
                "paused", "running")
    opens = "run"

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [r["id"], r["kind"] + (" (dry)" if r["dry_run"] else ""),
                              r["trigger"],
                              Text(r["status"], style=fmt.STATUS_STYLE.get(r["status"], "")),
                              fmt.short_time(r["started_at"]), fmt.short_time(r["finished_at"]),
                              fmt.one_line(r["message"], 50)]

    def open_row(self, row: dict[str, Any]) -> None:
        self.app.open_run(int(row["id"]))


class AuditList(ListScreen):
    list_name, heading = "audit", "Audit log"
    columns = ("id", "at", "actor", "action", "target", "detail")
    sorts = ("id", "actor", "action", "target")

    def row(self, r: dict[str, Any]) -> tuple[str, list[Any]]:
        return str(r["id"]), [r["id"], fmt.short_time(r["at"]), r["actor"], r["action"],
                              r["target"], fmt.one_line(r["detail"], 60)]

    def open_row(self, row: dict[str, Any]) -> None:
        if row.get("target"):
            self.app.open_person(row["target"])
