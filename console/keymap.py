"""The one keymap: screen bindings, the footer, the help screen and read-only mode all
come from this table, so they cannot disagree.

``dangerous`` actions change data or the LMS: they confirm in a modal and vanish in
``--read-only``.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    key: str          # Textual key name(s), comma separated
    action: str
    label: str        # footer text
    help: str         # help-screen text
    scope: str        # app | list | person | run | held | dashboard
    dangerous: bool = False
    show: bool = True
    display: str | None = None


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
    # person
    Key("escape", "back", "Back", "back", "person"),
    Key("r", "retry", "Retry", "retry this person's failed/dead operations", "person", True),
    Key("s", "suppress", "Suppress", "suppress changes for this person (reason, expiry)",
        "person", True),
    Key("u", "unsuppress", "Unsuppress", "lift this person's suppression", "person", True),
    Key("y", "resync", "Resync", "resync this person now", "person", True),
    Key("a", "approve", "Approve", "approve this person's held operations", "person", True),
    Key("x", "reject", "Reject", "reject this person's held operations", "person", True),
    # run
    Key("escape", "back", "Back", "back", "run"),
    Key("r", "retry_group", "Retry group", "retry every failure in the selected group", "run",
        True),
    # held batch review
    Key("escape", "back", "Back", "back", "held"),
    Key("a", "approve_group", "Approve group", "approve every op in the selected group",
        "held", True),
    Key("x", "reject_group", "Reject group", "reject every op in the selected group", "held",
        True),
    # reports
    Key("escape", "back", "Back", "back", "reports"),
    Key("p", "period", "Period", "cycle the period: last 7, 30, 90 days", "reports"),
    # audiences
    Key("escape", "back", "Back", "back", "audiences"),
    # dashboard
    Key("enter", "open_last_run", "Last run", "drill into the last run", "dashboard"),
)

DANGEROUS = frozenset(k.action for k in KEYS if k.dangerous) | {
    # palette-only actions, equally dangerous
    "sync_now", "resync_person", "pause", "resume"}


def bindings(scope: str) -> list[Binding]:
    return [Binding(k.key, k.action, k.label, show=k.show, key_display=k.display)
            for k in KEYS if k.scope == scope]


def is_dangerous(action: str) -> bool:
    return action.split("(")[0] in DANGEROUS


def help_rows(read_only: bool) -> list[tuple[str, str, str]]:
    """(scope, key, help) for the help screen; dangerous keys are absent when read-only."""
    return [(k.scope, k.display or k.key, k.help) for k in KEYS
            if not (read_only and k.dangerous)]
