"""The command palette: run a sync now, resync or jump to a person by id, pause or
resume the scheduler and the job."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        out: list[tuple[str, str, object]] = [
            ("Go: dashboard", "home", partial(app.action_go, "dashboard")),
            ("Go: drift", "open drift list", partial(app.action_go, "drift")),
            ("Go: operations", "operations list", partial(app.action_go, "ops")),
            ("Go: held batch review", "approve or reject held groups",
             partial(app.action_go, "held")),
            ("Go: runs", "runs list", partial(app.action_go, "runs")),
            ("Go: audit log", "audit", partial(app.action_go, "audit")),
        ]
        if not app.read_only:
            out += [
                ("Sync now: full", "full reconcile now", partial(app.do_sync, "full")),
                ("Sync now: delta", "changed records only", partial(app.do_sync, "delta")),
                ("Pause the scheduler and the job", "no runs, no applying",
                 app.do_pause),
                ("Resume the scheduler and the job", "runs and applying resume",
                 app.do_resume),
            ]
        return out

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
        # "E00042": jump to that person, or resync them
        word = query.strip()
        if word and " " not in word and word[0].isalnum():
            yield Hit(0.9, f"Open person {word}", partial(self.app.open_person, word),
                      help="jump to the person screen")
            if not self.app.read_only:
                yield Hit(0.8, f"Resync person {word}", partial(self.app.do_resync, word),
                          help="resync this person now, through the same guards")
