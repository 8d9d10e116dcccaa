"""The console's one-line text input: Textual's Input, with a steady cursor when the
console runs without timers (live=False, the snapshot tests), so that a picture never
depends on where a 0.5 s blink happened to be when it was taken."""

from __future__ import annotations

from textual.widgets import Input


class TextInput(Input):
    def on_mount(self) -> None:
        if not getattr(self.app, "live", True):
            self.cursor_blink = False
