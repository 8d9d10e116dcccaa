"""One hold event opened: the people it holds (name, employee id, department, location,
manager, HR status, termination date and why each change was planned), counts by
department and by location, and approve or reject for the people selected.

Everyone starts selected; space deselects (or selects again) the highlighted row, i
inverts the selection. The dialog fixes the selected operation ids when it opens; an
operation that joins the hold later is not in it, whatever its person.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label, Static

from rostersync.console import fmt, keymap
from rostersync.console.held_requests import event_request
from rostersync.console.leader_status import held_back_note
from rostersync.console.screens.base import DataScreen
from rostersync.console.widgets.charts import bar_table
from rostersync.console.widgets.paged_table import PagedTable
from rostersync.storage import held

PAGE_SIZE = 100
COLUMNS = ("sel", "person", "name", "department", "location", "manager", "HR status",
           "terminates", "op", "planned because")


class HeldGroupScreen(DataScreen):
    scope = "held_group"
    BINDINGS = keymap.bindings("held_group")

    def __init__(self, run_id: int | None, hold_reason: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.hold_reason = hold_reason
        self.deselected: set[int] = set()
        self.page_offset = 0

    def compose_body(self) -> ComposeResult:
        yield Label(id="list-title")
        yield Static(id="held-reason", classes="panel")
        with Horizontal(id="held-group"):
            yield PagedTable(id="people")
            yield Static(id="breakdown", classes="panel")

    def on_mount(self) -> None:
        self.query_one("#breakdown").border_title = "Selected people"
        # The whole reason, wrapped: it names the guard and its limit, which decide.
        reason = self.query_one("#held-reason", Static)
        reason.border_title = "Held because"
        reason.update(Text(self.hold_reason))
        self.query_one(PagedTable).focus()

    def query_data(self) -> list[dict[str, Any]]:
        return held.held_in_event(self.app.store, self.run_id, self.hold_reason)

    # -- what is selected ---------------------------------------------------------------

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.data or []

    def selected_rows(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["id"] not in self.deselected]

    def show_data(self, rows: list[dict[str, Any]]) -> None:
        if self.page_offset >= len(rows):
            self.page_offset = max(0, (len(rows) - 1) // PAGE_SIZE * PAGE_SIZE)
        chosen = self.selected_rows()
        people = len({r["employee_id"] for r in chosen})
        page = rows[self.page_offset:self.page_offset + PAGE_SIZE]
        self.query_one("#list-title", Label).update(
            f"[b]Run {self.run_id}[/b] held {len(rows)} operation(s)  ·  "
            f"selected {len(chosen)} op(s), "
            f"{people} people  ·  rows {self.page_offset + 1 if page else 0}-"
            f"{self.page_offset + len(page)}")
        self.query_one(PagedTable).show_page(COLUMNS, [(str(r["id"]), self._cells(r))
                                                       for r in page],
                                             fill=("planned because", 16))
        self.query_one("#breakdown", Static).update(_breakdown(chosen))

    def _cells(self, r: dict[str, Any]) -> list[Any]:
        picked = r["id"] not in self.deselected
        name = " ".join(x for x in (r.get("preferred_name") or r.get("first_name"),
                                    r.get("last_name")) if x)
        return [Text("[x]" if picked else "[ ]", style="bold green" if picked else "dim"),
                r["employee_id"], name or None, r.get("department"), r.get("location"),
                r.get("manager_id"), r.get("status"), r.get("termination_date"),
                f"#{r['id']} {r['kind']}", r["reason"]]

    # -- keys ---------------------------------------------------------------------------

    def why_not(self, action: str) -> str | None:
        if self.data is None:
            return "still loading"
        if action in ("approve_selected", "reject_selected") and not self.selected_rows():
            return "nothing selected: space selects the highlighted person, i inverts"
        if action in ("toggle", "invert", "open") and not self.rows:
            return "nothing of this hold is still held"
        return None

    def action_back(self) -> None:
        self.app.pop_screen()

    def on_data_table_row_selected(self, event: PagedTable.RowSelected) -> None:
        event.stop()  # the table takes Enter itself
        self.action_open()

    # Textual's own ``toggle`` action takes an attribute name; this screen's key toggles
    # the highlighted group instead (keymap), so the signature differs on purpose.
    def action_toggle(self) -> None:  # type: ignore[override]
        key = self.query_one(PagedTable).current_key
        if key is not None:
            self.deselected ^= {int(key)}
            self.show_data(self.rows)
            table = self.query_one(PagedTable)
            if table.cursor_row < table.row_count - 1:
                table.move_cursor(row=table.cursor_row + 1, animate=False)

    def action_invert(self) -> None:
        self.deselected = {r["id"] for r in self.rows} - self.deselected
        self.show_data(self.rows)

    def action_page(self, step: int) -> None:
        offset = self.page_offset + step * PAGE_SIZE
        if 0 <= offset < len(self.rows):
            self.page_offset = offset
            self.show_data(self.rows)

    def action_open(self) -> None:
        key = self.query_one(PagedTable).current_key
        row = next((r for r in self.rows if str(r["id"]) == key), None)
        if row is not None:
            self.app.open_person(row["employee_id"])

    def action_approve_selected(self) -> None:
        self._request("approve")

    def action_reject_selected(self) -> None:
        self._request("reject")

    def _request(self, verb: str) -> None:
        only = frozenset(r["id"] for r in self.selected_rows())
        run_id, reason, now = self.run_id, self.hold_reason, self.app.clock.now()
        not_here = held_back_note(self.app.leader)  # with several nodes: who applies
        self.app.request_from(lambda store: event_request(store, verb, run_id, reason,
                                                          only=only, now=now,
                                                          not_here=not_here))


def _breakdown(rows: list[dict[str, Any]], limit: int = 6) -> Group | Text:
    if not rows:
        return Text("nothing selected", style="dim")
    parts: list[Any] = []
    for field, title in (("department", "by department"), ("location", "by location")):
        pairs = held.breakdown(rows, field)
        shown = pairs[:limit]
        if len(pairs) > limit:
            shown.append((f"{len(pairs) - limit} others", sum(n for _, n in pairs[limit:])))
        parts.append(Text(title, style="bold"))
        parts.append(bar_table([(fmt.one_line(name, 14), n, "", "") for name, n in shown],
                               width=12))
    return Group(*parts)
