"""The help screen, generated from console/keymap.py (read-only hides dangerous keys; those
refused because another node leads are shown dim, with the reason)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from rostersync.console import keymap

if TYPE_CHECKING:
    from textual import getters

    from rostersync.console.app import ConsoleApp

SCOPE_TITLES = keymap.SCOPE_TITLES


def ordered_sections(rows: list[tuple[str, str, str]], here: str | None
                     ) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """(scope, title, [(key, what)]) with the current screen's keys first ("This screen:
    Person"), then the keys that work anywhere, then every other screen's."""
    by_scope: dict[str, list[tuple[str, str]]] = {}
    for scope, key, text in rows:
        by_scope.setdefault(scope, []).append((key, text))
    order = [s for s in (here, "app") if s in by_scope]
    order += [s for s in by_scope if s not in order]
    return [(s, f"This screen: {SCOPE_TITLES.get(s, s)}" if s == here and s != "app"
             else SCOPE_TITLES.get(s, s), by_scope[s]) for s in order]


class HelpScreen(ModalScreen[None]):
    if TYPE_CHECKING:
        app = getters.app(ConsoleApp)  # shown only by the console app
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table(title="rostersync console keys", box=None, padding=(0, 2))
        table.add_column("where", style="dim")
        table.add_column("key", style="bold cyan")
        table.add_column("what")
        here = self.current_scope()
        rows_now = keymap.help_rows(self.app.read_only, self.app.key_overrides)
        refused = self.refused_keys()
        for scope, title, rows in ordered_sections(rows_now, here):
            for i, (key, text) in enumerate(rows):
                head = Text(title, style="bold") if i == 0 else ""
                if (scope, text) in refused:
                    table.add_row(head, Text(key, style="dim"),
                                  Text(f"{text} (disabled here)", style="dim"))
                else:
                    table.add_row(head, key, text)
            if scope == "app":
                table.add_row("", "ctrl+p", "command palette: sync now, resync, jump to a "
                              "person, pause/resume")
        note = ("\nread-only: actions that change data are not available"
                if self.app.read_only else
                "".join(f"\ndisabled here: {why}" for why in sorted(set(refused.values()))))
        with VerticalScroll(classes="dialog help"):
            yield Static(table)
            yield Static(note)

    def refused_keys(self) -> dict[tuple[str, str], str]:
        """(scope, help text) of each dangerous key refused because of who leads -> why."""
        out: dict[tuple[str, str], str] = {}
        for k in keymap.KEYS:
            why = self.app.leader_refusal(k.action) if k.dangerous else None
            if why is not None:
                out[(k.scope, k.help)] = why
        return out

    def current_scope(self) -> str | None:
        """The scope of the screen under this one (the one help was asked from)."""
        for screen in reversed(self.app.screen_stack):
            if screen is not self and hasattr(screen, "scope"):
                return screen.scope
        return None

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
