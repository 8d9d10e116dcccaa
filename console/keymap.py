"""The one keymap: screen bindings, the footer, the help screen and read-only mode all
come from this table, so they cannot disagree.

``dangerous`` actions change data or the LMS: they confirm in a modal and vanish in
``--read-only``.

An operator may move any action to another key (``[console.keys]``, checked by
console/keys_config.py): ``overrides`` below maps an action's name to its keys, and each
binding carries the action's name as its id, so Textual's keymap moves it everywhere the
footer, the help screen and the palette's key panel look.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from textual.binding import Binding, BindingType
from textual.keys import format_key


@dataclass(frozen=True)
class Key:
    key: str          # Textual key name(s), comma separated
    action: str
    label: str        # footer text
    help: str         # help-screen text
    scope: str        # app | list | person | run | held | held_group | dashboard | log
    dangerous: bool = False
    show: bool = True
    display: str | None = None

    @property
    def name(self) -> str:
        """The action's name in [console.keys]: "retry", "go_drift", "next_page"."""
        go = re.fullmatch(r"go\('(\w+)'\)", self.action)
        if go:
            return f"go_{go.group(1)}"
        return _PAGE_NAMES.get(self.action, self.action)


_PAGE_NAMES = {"page(1)": "next_page", "page(-1)": "previous_page"}


KEYS: tuple[Key, ...] = (
    # anywhere
    Key("question_mark", "help", "Help", "this help, generated from the keymap", "app",
        display="?"),
    Key("1", "go('dashboard')", "Home", "dashboard", "app", show=False),
    Key("2", "go('drift')", "Drift", "drift list", "app"),
    Key("3", "go('ops')", "Ops", "operations list", "app"),
    Key("4", "go('terminations')", "Terms", "pending terminations", "app", show=False),
    Key("5", "go('runs')", "Runs", "runs list", "app", show=False),
    Key("6", "go('audit')", "Audit", "audit log", "app", show=False),
    Key("7", "go('held')", "Held", "held batch review", "app"),
    Key("8", "go('reports')", "Reports", "reports: terminations, drift, operator actions",
        "app", show=False),
    Key("9", "go('audiences')", "Audiences", "audiences: rules, sizes, pending membership "
        "changes", "app", show=False),
    Key("0", "go('log')", "Log", "the live log: engine events, notices and operator "
        "actions (pause, filter)", "app", show=False),
    Key("b", "toggle_banner", "Alerts", "show every alert line, or fold them back to one",
        "app", show=False),
    Key("q", "quit", "Quit", "quit the console", "app"),
    # lists
    Key("slash", "filter", "Filter", "filter as you type (Esc clears it first)", "list",
        display="/"),
    Key("escape", "back", "Back", "clear the filter, else go back", "list"),
    Key("o", "sort", "Sort", "cycle the sort column", "list"),
    Key("O", "reverse", "Reverse", "reverse the sort order", "list", show=False),
    Key("f", "status", "Status", "cycle the status/kind shown", "list"),
    Key("right_square_bracket", "page(1)", "Next", "next page", "list", display="]"),
    Key("left_square_bracket", "page(-1)", "Prev", "previous page", "list", show=False,
        display="["),
    Key("enter", "open", "Open", "drill into the person or run", "list"),
    Key("v", "view_row", "View", "the highlighted row in full: every column, unabridged",
        "list"),
    Key("c", "copy_id", "Copy id", "copy the highlighted row's id to the clipboard (OSC 52)",
        "list", show=False),
    Key("C", "copy_row", "Copy row", "copy the highlighted row, tab-separated", "list",
        show=False),
    Key("j", "cursor_down", "Down", "next row", "list", show=False),
    Key("k", "cursor_up", "Up", "previous row", "list", show=False),
    Key("g", "first", "Top", "first row of the first page", "list", show=False),
    Key("G", "last", "Bottom", "last row of the last page", "list", show=False),
    # person
    Key("escape", "back", "Back", "back", "person"),
    Key("r", "retry", "Retry", "retry this person's failed/dead operations", "person", True),
    Key("s", "suppress", "Suppress", "suppress changes for this person (reason, expiry)",
        "person", True),
    Key("u", "unsuppress", "Unsuppress", "lift this person's suppression", "person", True),
    Key("y", "resync", "Resync", "resync this person now", "person", True),
    Key("a", "approve", "Approve", "approve this person's held operations", "person", True),
    Key("x", "reject", "Reject", "reject this person's held operations", "person", True),
    # Not in the footer (it is full): the match panel names these keys when it shows.
    Key("l", "link_match", "Link", "disputed/unlinked match: link this person to the "
        "candidate LMS account highlighted in the match panel", "person", True, show=False),
    Key("n", "create_account", "New account", "disputed/unlinked match: create a new LMS "
        "account instead of any candidate", "person", True, show=False),
    Key("i", "ignore_match", "Ignore match", "disputed/unlinked match: leave it alone, with "
        "a reason (no link, no create; the drift stays, marked ignored)", "person", True,
        show=False),
    # run
    Key("escape", "back", "Back", "back", "run"),
    Key("r", "retry_group", "Retry group", "retry every failure in the selected group", "run",
        True),
    # held batch review
    Key("escape", "back", "Back", "back", "held"),
    Key("enter", "open_group", "Open", "open the hold: its people, by department and "
        "location, to select from", "held"),
    Key("a", "approve_group", "Approve hold", "approve every op of the selected hold (run "
        "and reason), as the dialog lists them", "held", True),
    Key("x", "reject_group", "Reject hold", "reject every op of the selected hold and "
        "suppress its people (reason and expiry)", "held", True),
    # one hold opened: its people
    Key("escape", "back", "Back", "back", "held_group"),
    Key("space", "toggle", "Select", "select or deselect the highlighted person",
        "held_group"),
    Key("i", "invert", "Invert", "invert the selection", "held_group"),
    Key("enter", "open", "Person", "drill into the highlighted person", "held_group"),
    Key("right_square_bracket", "page(1)", "Next", "next page", "held_group", show=False,
        display="]"),
    Key("left_square_bracket", "page(-1)", "Prev", "previous page", "held_group",
        show=False, display="["),
    Key("a", "approve_selected", "Approve", "approve the selected people's held ops",
        "held_group", True),
    Key("x", "reject_selected", "Reject", "reject the selected people's held ops and "
        "suppress them (reason and expiry)", "held_group", True),
    # reports
    Key("escape", "back", "Back", "back", "reports"),
    Key("p", "period", "Period", "cycle the period: last 7, 30, 90 days", "reports"),
    # audiences
    Key("escape", "back", "Back", "back", "audiences"),
    # the live log
    Key("escape", "back", "Back", "clear the filter, else go back", "log"),
    Key("slash", "filter", "Filter", "filter as you type", "log", display="/"),
    Key("p", "pause", "Pause", "pause or resume the live tail (entries keep arriving)",
        "log"),
    Key("f", "kind", "Kind", "cycle what is shown: all, notices, engine, operator", "log"),
    # dashboard
    Key("enter", "drill", "Open", "open what the highlighted figure counts (Tab moves "
        "between panels)", "dashboard"),
    Key("slash", "search", "Search", "find a person by part of a name, e-mail or id",
        "dashboard", display="/"),
    Key("L", "open_last_run", "Last run", "drill into the last run", "dashboard",
        show=False),
)

# Each scope as the help screen and the [console.keys] checks name it.
SCOPE_TITLES = {"app": "Anywhere", "dashboard": "Dashboard", "list": "Lists",
                "person": "Person", "run": "Run", "held": "Held batch review",
                "held_group": "One hold: its people",
                "reports": "Reports", "audiences": "Audiences", "log": "Log"}

DANGEROUS = frozenset(k.action for k in KEYS if k.dangerous) | {
    # palette-only actions, equally dangerous
    "ask_sync", "ask_resync", "ask_pause", "ask_resume"}


def bindings(scope: str) -> list[BindingType]:
    return [Binding(k.key, k.action, k.label, show=k.show, key_display=k.display, id=k.name)
            for k in KEYS if k.scope == scope]


def keys_of(k: Key, overrides: Mapping[str, str]) -> list[str]:
    """The Textual key names that run ``k`` now (its own, or the operator's)."""
    return overrides.get(k.name, k.key).split(",")


def display_of(k: Key, overrides: Mapping[str, str]) -> str:
    """``k``'s keys as the footer writes them ("?", "R", "ctrl+r")."""
    if k.name not in overrides:
        return k.display or k.key
    return ", ".join(format_key(key) for key in keys_of(k, overrides))


def key_for(name: str, overrides: Mapping[str, str]) -> str:
    """The key of the action called ``name``, for a sentence that tells the operator
    which key to press."""
    return next(display_of(k, overrides) for k in KEYS if k.name == name)


def is_dangerous(action: str) -> bool:
    return action.split("(")[0] in DANGEROUS


def help_rows(read_only: bool, overrides: Mapping[str, str] | None = None
              ) -> list[tuple[str, str, str]]:
    """(scope, key, help) for the help screen; dangerous keys are absent when read-only."""
    return [(k.scope, display_of(k, overrides or {}), k.help) for k in KEYS
            if not (read_only and k.dangerous)]
