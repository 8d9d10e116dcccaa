"""The help screen, generated from console/keymap.py (read-only hides dangerous keys)."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from console import keymap

SCOPE_TITLES = {"app": "Anywhere", "dashboard": "Dashboard", "list": "Lists",
                "person": "Person", "run": "Run", "held": "Held batch review",
                "held_group": "One hold: its people",
                "reports": "Reports", "audiences": "Audiences", "log": "Log"}


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def compose(self) -> ComposeResult:
        table = Table(title="rostersync console keys", box=None, padding=(0, 2))
        table.add_column("where", style="dim")
        table.add_column("key", style="bold cyan")
        table.add_column("what")
        last = None
        for scope, key, text in keymap.help_rows(self.app.read_only):
            table.add_row(SCOPE_TITLES[scope] if scope != last else "", key, text)
            last = scope
        table.add_row("Anywhere", "ctrl+p", "command palette: sync now, resync, jump to a "
                      "person, pause/resume")
        note = ("\nread-only: actions that change data are not available"
                if self.app.read_only else "")
        with VerticalScroll(classes="dialog help"):
            yield Static(table)
            yield Static(note)

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(None)
