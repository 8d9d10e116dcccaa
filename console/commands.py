"""The command palette: go to a view, run a sync now, pause or resume, open or resync a
person by employee id.

Its dangerous commands take the same path as keys (``app.request``: a dialog naming what
will happen, then exactly that), and a command that needs an argument is offered only
when the text typed is one: "Resync person X" appears only when X is an employee id the
database knows, never for any word.
"""

from __future__ import annotations

import asyncio
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from storage import people as people_store


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
                ("Sync now: full", "full reconcile now (asks first)",
                 partial(app.ask_sync, "full")),
                ("Sync now: delta", "changed records only (asks first)",
                 partial(app.ask_sync, "delta")),
                ("Pause the scheduler and the job", "no runs, no applying (asks first)",
                 app.ask_pause),
                ("Resume the scheduler and the job", "runs and applying resume (asks first)",
                 app.ask_resume),
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
        # "E00042", "resync E00042", "open e00042": that person, when the id is known.
        words = query.split()
        verb = words[0].lower() if len(words) == 2 else ""
        if len(words) == 2 and not any(v.startswith(verb) for v in ("open", "resync")):
            return
        word = words[-1] if words and len(words) <= 2 else ""
        if not word or not word[0].isalnum():
            return
        employee_id = await asyncio.to_thread(people_store.known_id, self.app.store, word)
        if employee_id is None:
            return
        if "resync".startswith(verb) and verb and not self.app.read_only:
            # The verb was typed: the resync comes first.
            yield Hit(1.0, f"Resync person {employee_id}",
                      partial(self.app.ask_resync, employee_id),
                      help="resync this person now, through the same guards (asks first)")
            return
        yield Hit(0.9, f"Open person {employee_id}", partial(self.app.open_person, employee_id),
                  help="jump to the person screen")
        if not self.app.read_only:
            yield Hit(0.8, f"Resync person {employee_id}",
                      partial(self.app.ask_resync, employee_id),
                      help="resync this person now, through the same guards (asks first)")
