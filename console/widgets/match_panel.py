"""The person screen's match panel: for a disputed or unlinked match, the HR record side
by side with each candidate LMS account, and a list to choose the candidate from."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from rostersync.console import keymap

TITLE = "Match: HR record vs candidate LMS accounts"

# (label, the HR side from record/desired, the candidate's Account field)
_ROWS = (
    ("userName", lambda rec, want: want.get("user_name"), "user_name"),
    ("email", lambda rec, want: rec.get("email"), "email"),
    ("first name", lambda rec, want: rec.get("preferred_name") or rec.get("first_name"),
     "given_name"),
    ("last name", lambda rec, want: rec.get("last_name"), "family_name"),
    ("employee no.", lambda rec, want: rec.get("employee_number"), "employee_number"),
)


class MatchPanel(Vertical):
    DEFAULT_CSS = """
    MatchPanel { height: auto; }
    MatchPanel #match-sides { height: auto; }
    MatchPanel #candidates { height: auto; max-height: 8; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.match: dict[str, Any] | None = None
        self._ids: list[str] = []

    def compose(self) -> ComposeResult:
        yield Static(id="match-sides")
        yield OptionList(id="candidates")

    def on_mount(self) -> None:
        self.border_title = TITLE
        self.display = False

    def show(self, match: dict[str, Any] | None) -> None:
        self.match = match
        self.display = match is not None
        if match is None:
            return
        self.query_one("#match-sides", Static).update(
            side_by_side(match, getattr(self.app, "key_overrides", {})))
        ids = [c["lms_id"] for c in match["candidates"]]
        if ids == self._ids:
            return  # a refresh keeps the operator's highlighted candidate
        options = self.query_one("#candidates", OptionList)
        kept = options.highlighted
        options.clear_options()
        options.add_options([Option(_choice(i, c, match["employee_id"]), id=c["lms_id"])
                             for i, c in enumerate(match["candidates"], 1)])
        if ids:
            options.highlighted = min(kept or 0, len(ids) - 1)
            if not self._ids:
                # The screen opened on a match to decide: the arrows choose a candidate
                # (l, n and i act on it), not scroll the page past it.
                options.focus()
        self._ids = ids

    def highlighted(self) -> dict[str, Any] | None:
        """The candidate the operator chose in the list (the first until they move)."""
        if self.match is None or not self.match["candidates"]:
            return None
        index = self.query_one("#candidates", OptionList).highlighted
        candidates = self.match["candidates"]
        return candidates[index] if index is not None and index < len(candidates) else None


def side_by_side(match: dict[str, Any], overrides: Mapping[str, str] | None = None
                 ) -> Group:
    rec, want = match.get("record") or {}, match.get("desired") or {}
    table = Table(box=None, padding=(0, 1), show_edge=False)
    table.add_column("", style="dim")
    table.add_column("HR record", style="bold")
    candidates = match["candidates"]
    for i, c in enumerate(candidates, 1):
        table.add_column(f"{i}. LMS {c['lms_id']}")
    table.add_row("externalId", match["employee_id"],
                  *[_mark(c.get("external_key"), match["employee_id"]) for c in candidates])
    for label, hr_value, field in _ROWS:
        ours = hr_value(rec, want)
        table.add_row(label, _text(ours), *[_mark(c.get(field), ours) for c in candidates])
    table.add_row("active", "in HR" if want.get("active", True) else "not active",
                  *["yes" if c.get("active") else "no" for c in candidates])
    return Group(table, Text(_state(match, overrides or {}), style="italic"))


def _state(match: dict[str, Any], overrides: Mapping[str, str]) -> str:
    detail, decision = match.get("detail") or {}, match.get("decision")
    if detail.get("decision_stale"):
        return detail["decision_stale"]
    if decision is None:
        key = partial(keymap.key_for, overrides=overrides)  # the operator's keys
        return (f"{match['kind']}: choose a candidate and press {key('link_match')} to link "
                f"it, {key('create_account')} for a new account, {key('ignore_match')} to "
                "ignore")
    what = {"link": f"link to LMS account {decision['lms_id']}",
            "create": "create a new account",
            "ignore": f"ignore ({decision['reason']})"}[decision["decision"]]
    return f"decided by {decision['by']}: {what}"


def _choice(number: int, c: dict[str, Any], employee_id: str) -> str:
    owner = c.get("external_key")
    claim = ("" if not owner else " (this person's)" if owner == employee_id
             else f" (belongs to {owner})")
    return (f"{number}. LMS {c['lms_id']}  {c.get('user_name') or '-'}  "
            f"{c.get('email') or '-'}  externalId {owner or 'none'}{claim}")


def _text(value: Any) -> str:
    return "—" if value in (None, "") else str(value)


def _mark(value: Any, ours: Any) -> Text:
    """A candidate's value, green where it agrees with HR's (case aside), else plain."""
    same = value not in (None, "") and str(value).lower() == str(ours or "").lower()
    return Text(_text(value), style="green" if same else "")
