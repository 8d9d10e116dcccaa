"""One person: HRIS vs LMS side by side, data-quality problems, operation history with
attempts, the audit trail, and the actions that apply to them."""

from __future__ import annotations

import contextlib
from datetime import date
from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static

from rostersync.console import actions_links, fmt, keymap, match_requests, provenance, requests
from rostersync.console.leader_status import held_back_note
from rostersync.console.screens.base import DataScreen
from rostersync.console.screens.reason_form import ReasonModal
from rostersync.console.widgets.match_panel import MatchPanel
from rostersync.storage import console_queries as q
from rostersync.storage import runs as run_store
from rostersync.sync.audiences.explain import explain
from rostersync.sync.lifecycle import termination_instant
from rostersync.sync.models import MANAGED_FIELDS

# Person fields worth showing, in the order HR people think of them.
HR_FIELDS = ("employee_id", "employee_number", "first_name", "last_name", "preferred_name",
             "email", "department", "job_title", "location", "manager_id", "status",
             "hire_date", "termination_date", "timezone")


class PersonScreen(DataScreen):
    scope = "person"
    BINDINGS = keymap.bindings("person")

    def __init__(self, employee_id: str) -> None:
        super().__init__()
        self.employee_id = employee_id

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="person"):
            yield Static(id="who")
            with Horizontal(id="sides"):
                yield Static(id="hris", classes="panel")
                yield Static(id="compare", classes="panel")
            yield MatchPanel(id="match", classes="panel")
            yield Static(id="problems", classes="panel")
            yield Static(id="audiences", classes="panel")
            yield Static(id="history", classes="panel")
            yield Static(id="trail", classes="panel")
            # Last, below what needs acting on and the person's history (the audit trail
            # shows an operator's action at once): the long answer to "why this value?".
            yield Static(id="provenance", classes="panel")

    def on_mount(self) -> None:
        for pid, title in (("hris", "HRIS record"), ("compare", "Desired (from HR) vs LMS"),
                           ("provenance", "Where each desired value comes from"),
                           ("problems", "Drift and data quality"),
                           ("history", "Operations"), ("trail", "Audit trail")):
            self.query_one(f"#{pid}").border_title = title
        panel = self.query_one("#audiences")
        panel.border_title = "Audiences: is in, should be in, and which rule says so"
        panel.display = bool(self.app.config.audiences)

    def query_data(self) -> dict[str, Any]:
        detail = q.person_detail(self.app.store, self.employee_id)
        if self.app.config.audiences:
            detail["audiences"] = explain(self.app.store, self.app.config, self.employee_id,
                                          self.app.clock.now())
        # The mapping explained here, off the event loop, like the reads it builds on.
        detail["provenance"] = provenance.explain_recorded(
            self.app.config, detail, self.app.clock.now().date())
        detail["match"] = None
        if any(row["kind"] in ("disputed", "unlinked") for row in detail["drift"]):
            # Resolved since the drift was read (LinkRefused): no panel.
            with contextlib.suppress(actions_links.LinkRefused):
                detail["match"] = actions_links.open_match(self.app.store, self.employee_id)
        return detail

    # -- rendering ------------------------------------------------------------------------

    def show_data(self, d: dict[str, Any]) -> None:
        rec = d["record"] or {}
        name = " ".join(x for x in (rec.get("first_name"), rec.get("last_name")) if x)
        if d["person"]:
            p = d["person"]
            where = fmt.spans(f"status {p['status']}",
                              None if p["in_scope"] else ("(out of scope)", "yellow"))
        else:
            where = Text("not in the HRIS feed", style="yellow")
        who = fmt.spans((self.employee_id, "bold"), name, "·", where)
        when = termination_line(d["person"], rec, self.app.config.guards.termination_cutoff)
        if when:
            who.append("\n")
            who.append(when, style="bold")
        if d["suppression"]:
            s = d["suppression"]
            who.append(f"\nSUPPRESSED by {s['created_by']}: {s['reason']}"
                       f"{' until ' + fmt.short_time(s['until']) if s['until'] else ''}",
                       style="bold magenta")
        self.query_one("#who", Static).update(who)

        hris = Table.grid(padding=(0, 1))
        for name in HR_FIELDS:
            if rec.get(name) not in (None, ""):
                hris.add_row(Text(name, style="dim"), str(rec[name]))
        self.query_one("#hris", Static).update(hris if rec else Text("no valid HR record",
                                                                      style="yellow"))
        self.query_one("#compare", Static).update(self._compare(d["desired"], d["account"]))
        self.query_one("#provenance", Static).update(
            provenance.provenance(d.get("provenance"), d["account"] is not None))
        self.query_one(MatchPanel).show(d.get("match"))
        self.query_one("#problems", Static).update(self._problems(d["drift"]))
        if d.get("audiences"):
            self.query_one("#audiences", Static).update(_audiences(d["audiences"]))
        self.query_one("#history", Static).update(self._history(d["ops"]))
        trail = Text()
        for a in d["audit"]:
            trail.append_text(fmt.spans((fmt.short_time(a["at"]), "dim"), a["actor"],
                                        (a["action"], "bold"), fmt.detail_summary(a["detail"],
                                                                                   400)))
            trail.append("\n")
        self.query_one("#trail", Static).update(trail or Text("no operator action yet",
                                                              style="dim"))

    @staticmethod
    def _compare(desired: dict | None, account: dict | None) -> Table:
        table = Table(box=None, padding=(0, 1), show_edge=False)
        table.add_column("")
        table.add_column("field", style="dim")
        table.add_column("desired")
        table.add_column("LMS")
        if desired is None and account is None:
            table.add_row("", "", "not in scope", "no account")
            return table
        for name in MANAGED_FIELDS:
            want = None if desired is None else desired.get(name)
            have = None if account is None else account.get(name)
            differs = desired is not None and want != have
            table.add_row(Text("≠", style="bold red") if differs else "", name,
                          Text(_show(want), style="bold" if differs else ""),
                          Text(_show(have) if account else "no account",
                               style="bold red" if differs else ""))
        return table

    @staticmethod
    def _problems(drift: list[dict[str, Any]]) -> Text:
        out = Text()
        for row in drift:
            out.append_text(fmt.spans(
                (row["kind"], "bold yellow"),
                f"(owner {row['owner'] or '-'}, since {fmt.short_time(row['first_seen_at'])})"))
            detail = dict(row["detail"])
            for problem in detail.pop("problems", None) or []:
                out.append(f"\n  • {problem}", style="red")
            # Every other detail as "key: value" lines, wrapped by the panel, never cut.
            for line in fmt.detail_lines(detail):
                out.append(f"\n  {line}")
            out.append("\n")
        return out or Text("in step: no open drift", style="green")

    @staticmethod
    def _history(ops: list[dict[str, Any]]) -> Text:
        out = Text()
        for op in ops:
            out.append_text(fmt.spans(
                f"#{op['id']} {op['kind']}",
                (op["status"], fmt.STATUS_STYLE.get(op["status"], "")),
                f"{op['attempts']}/{op['max_attempts']} tries",
                f"· {op['reason']}" if op["reason"] else None,
                f"· held: {op['hold_reason']}" if op["hold_reason"] else None))
            out.append("\n")
            for a in op["attempt_log"]:
                out.append_text(fmt.spans(
                    (f"    try {a['attempt']}", "dim"), (fmt.short_time(a["started_at"]), "dim"),
                    (a["outcome"] or "running", "dim"),
                    (f"[{a['error_class']} {a['http_status'] or ''}]".replace(" ]", "]"),
                     "red") if a["error"] else None,
                    # The whole error: the panel wraps it, the operator needs all of it.
                    (" ".join(a["error"].split()), "red") if a["error"] else None))
                out.append("\n")
        return out or Text("no operations", style="dim")

    # -- actions -----------------------------------------------------------------------

    def _ops(self, *statuses: str) -> list[int]:
        return [op["id"] for op in (self.data or {}).get("ops", []) if op["status"] in statuses]

    def why_not(self, action: str) -> str | None:
        if self.data is None:
            return "still loading"
        if action == "retry" and not self._ops("failed", "dead"):
            return "nothing to retry: no failed or dead operation for this person"
        if action in ("approve", "reject") and not self._ops("held"):
            return "nothing held for this person"
        if action == "unsuppress" and not self.data.get("suppression"):
            return "this person is not suppressed"
        if action == "suppress" and self.data.get("suppression"):
            return "already suppressed; unsuppress first"
        if action in ("link_match", "create_account", "ignore_match"):
            return self._why_not_match(action)
        return None

    def _why_not_match(self, action: str) -> str | None:
        match = (self.data or {}).get("match")
        if match is None:
            return "no disputed or unlinked match to decide for this person"
        if action != "link_match":
            return None
        chosen = self.query_one(MatchPanel).highlighted()
        if chosen is None:
            return (f"no candidate LMS account to link: press "
                    f"{keymap.key_for('create_account', self.app.key_overrides)} for a new "
                    "account instead")
        owner = chosen.get("external_key")
        if owner and owner != self.employee_id:
            return (f"LMS account {chosen['lms_id']} belongs to {owner} (its externalId); "
                    "choose another candidate in the match panel")
        return None

    def action_back(self) -> None:
        self.app.pop_screen()

    # Each request fixes its scope (the ids on screen now) and names it; the app's one
    # action path asks, then acts on exactly that (console/action_path.py).

    def action_retry(self) -> None:
        self.app.request(requests.retry_request(self.app, self.employee_id,
                                                self._ops("failed", "dead")))

    def action_approve(self) -> None:
        employee_id, ids = self.employee_id, self._ops("held")
        not_here = held_back_note(self.app.leader)  # with several nodes: who applies them
        self.app.request_from(lambda store: requests.approve_request(
            employee_id, ids, run_store.job_state(store)["state"], not_here))

    def action_reject(self) -> None:
        self.app.request(requests.reject_request(self.employee_id, self._ops("held")))

    def action_suppress(self) -> None:
        self.app.request(requests.suppress_request(self.employee_id,
                                                   self._ops("pending", "failed", "held")))

    def action_unsuppress(self) -> None:
        self.app.request(requests.unsuppress_request(self.employee_id,
                                                     self._ops("suppressed")))

    def action_resync(self) -> None:
        self.app.ask_resync(self.employee_id)

    # Match decisions: the candidate is the one highlighted in the match panel now.

    def action_link_match(self) -> None:
        chosen = self.query_one(MatchPanel).highlighted()
        if self.data and self.data.get("match") and chosen:
            self.app.request(match_requests.link_request(self.data["match"], chosen))

    def action_create_account(self) -> None:
        if self.data and self.data.get("match"):
            self.app.request(match_requests.create_request(self.data["match"]))

    def action_ignore_match(self) -> None:
        match = (self.data or {}).get("match")
        if match is None or self.app.read_only:
            return
        # The reason first, so that the confirmation can name it.
        self.app.push_screen(
            ReasonModal(f"Ignore {self.employee_id}'s {match['kind']} match",
                        "No run links or creates an account for them until the decision "
                        "is cleared; the drift stays, marked ignored.", "Continue"),
            lambda reason: self.app.request(match_requests.ignore_request(match, reason))
            if reason else None)


def termination_line(person: dict[str, Any] | None, rec: dict[str, Any], cutoff: str
                     ) -> str | None:
    """When this person's access ends (or starts), in their own zone with UTC beside it:
    HR gives a date, the person lives in a zone, the operator reads UTC."""
    zone = rec.get("timezone")
    scheduled = (person or {}).get("effective_at")
    term = rec.get("termination_date")
    if scheduled:
        what = "termination scheduled" if term else "starts"
        return f"{what}: {fmt.zoned_time(scheduled, zone)}"
    if term and (person or {}).get("status") == "terminated":
        with contextlib.suppress(ValueError):
            moment = termination_instant(date.fromisoformat(term), zone or "UTC", cutoff)
            return f"terminated, effective {fmt.zoned_time(moment.isoformat(), zone)}"
    return None


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return str(value)


def _audiences(doc: dict[str, Any]) -> Table | Text:
    if not doc["eligible"]:
        return Text(f"in no audience: {doc['why_not']}", style="dim")
    grid = Table.grid(padding=(0, 1))
    for a in doc["audiences"]:
        mark = ("in" if a["is_in"] else "-") + " / " + ("should" if a["should_be_in"] else "-")
        style = "" if a["is_in"] == a["should_be_in"] else "yellow"
        why = "; ".join(w for w in (a["rule"] or a["left_alone"], a.get("note")) if w)
        pending = f" [{a['pending']['kind']} {a['pending']['status']}]" if a["pending"] else ""
        grid.add_row(Text(a["id"], style="bold"), Text(mark, style=style),
                     Text(" ".join(str(why).split()) + pending, style="dim"))
    for field, value in doc["unmapped"].items():
        grid.add_row(Text("unmapped", style="yellow"), Text(field),
                     Text(f'"{value}" matches no audience rule (L&D)', style="yellow"))
    return grid
