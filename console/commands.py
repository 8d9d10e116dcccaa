"""The command palette: go to a view, run a sync now, pause or resume, find a person by
part of a name, an e-mail or an id, and open a run or an operation by its id.

Its dangerous commands take the same path as keys (``app.request``: a dialog naming what
will happen, then exactly that), and a command that needs an argument is offered only
when the text typed is one: "Resync person X" appears only when X is an employee id the
database knows, never for any word.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from rostersync.storage import people as people_store
from rostersync.storage import people_search
from rostersync.storage.db import Store

if TYPE_CHECKING:
    from rostersync.console.app import ConsoleApp

_ENTITY = re.compile(r"^(run|op)\s*#?(\d+)$", re.IGNORECASE)
MIN_SEARCH = 2  # characters typed before people are searched: one letter names everyone


@dataclass
class Found:
    """What the database knows about the text typed (read in one thread)."""

    employee_id: str | None = None  # the person the last word names exactly
    run: dict[str, Any] | None = None
    op: dict[str, Any] | None = None
    people: list[people_search.PersonHit] = field(default_factory=list)


def _exact_word(query: str) -> str:
    """The word that may be an employee id: "E00042", "open E00042", "resync e00042"."""
    words = query.split()
    if len(words) == 2 and not any(v.startswith(words[0].lower()) for v in ("open", "resync")):
        return ""
    word = words[-1] if words and len(words) <= 2 else ""
    return word if word and word[0].isalnum() else ""


def _people_text(query: str) -> str:
    words = query.split()
    if len(words) > 1 and "open".startswith(words[0].lower()):
        words = words[1:]  # "open chloe": the verb is not part of a name
    return " ".join(words)


def look_up(store: Store, query: str) -> Found:
    found = Found()
    word = _exact_word(query)
    if word:
        found.employee_id = people_store.known_id(store, word)
    entity = _ENTITY.match(query.strip())
    if entity:
        number = int(entity.group(2))
        if entity.group(1).lower() == "run":
            found.run = people_search.run_by_id(store, number)
        else:
            found.op = people_search.op_by_id(store, number)
    text = _people_text(query)
    if len(text) >= MIN_SEARCH:
        found.people = people_search.search(store, text)
    return found


class ConsoleCommands(Provider):
    if TYPE_CHECKING:
        @property
        def app(self) -> ConsoleApp: ...  # the console app's palette: its actions, typed

    def _commands(self) -> list[tuple[str, str, Callable[[], Any]]]:
        app = self.app
        out: list[tuple[str, str, Callable[[], Any]]] = [
            ("Go: dashboard", "home", partial(app.action_go, "dashboard")),
            ("Go: drift", "open drift list", partial(app.action_go, "drift")),
            ("Go: operations", "operations list", partial(app.action_go, "ops")),
            ("Go: pending terminations", "terminations in force, with their SLA",
             partial(app.action_go, "terminations")),
            ("Go: scheduled terminations", "terminations dated in the future, in each "
             "person's own time zone", partial(app.action_go, "scheduled")),
            ("Go: held batch review", "approve or reject held groups",
             partial(app.action_go, "held")),
            ("Go: runs", "runs list", partial(app.action_go, "runs")),
            ("Go: audit log", "audit", partial(app.action_go, "audit")),
        ]
        if not app.read_only:
            out += [
                ("Sync now: full", self._help("ask_sync", "full reconcile now (asks first)"),
                 partial(app.ask_sync, "full")),
                ("Sync now: delta", self._help("ask_sync", "changed records only (asks "
                                               "first)"),
                 partial(app.ask_sync, "delta")),
                ("Pause the scheduler and the job",
                 self._help("ask_pause", "no runs, no applying (asks first)"), app.ask_pause),
                ("Resume the scheduler and the job",
                 self._help("ask_resume", "runs and applying resume (asks first)"),
                 app.ask_resume),
            ]
        return out

    def commands(self) -> list[tuple[str, str]]:
        """The fixed commands offered now, as (name, help)."""
        return [(name, help_text) for name, help_text, _ in self._commands()]

    def _help(self, action: str, what: str) -> str:
        """What a dangerous command does, or, on a node where it is refused because of
        who leads, why: the palette says so before it is chosen, as the footer does."""
        why = self.app.leader_refusal(action)
        return what if why is None else f"refused here: {why}"

    def _resync_help(self) -> str:
        return self._help("ask_resync", "resync this person now, through the same guards "
                                        "(asks first)")

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
        if not query.strip():
            return
        try:
            found = await asyncio.to_thread(look_up, self.app.store, query)
        except Exception as exc:  # a database error is a notice, never a traceback
            self.app.notify(f"search failed: {exc}", severity="warning")
            return
        for hit in self._entity_hits(found):
            yield hit
        employee_id = found.employee_id
        if employee_id is not None:
            words = query.split()
            verb = words[0].lower() if len(words) == 2 else ""
            if verb and "resync".startswith(verb) and not self.app.read_only:
                # The verb was typed: the resync comes first.
                yield Hit(1.0, f"Resync person {employee_id}",
                          partial(self.app.ask_resync, employee_id),
                          help=self._resync_help())
                return
            yield Hit(0.9, f"Open person {employee_id}",
                      partial(self.app.open_person, employee_id),
                      help="jump to the person screen")
            if not self.app.read_only:
                yield Hit(0.8, f"Resync person {employee_id}",
                          partial(self.app.ask_resync, employee_id),
                          help=self._resync_help())
        people_matcher = self.matcher(_people_text(query))
        for person in found.people:
            if person.employee_id == employee_id:
                continue  # offered above, by its exact id
            text = " · ".join(x for x in (f"Open person {person.employee_id}", person.name,
                                          person.email) if x)
            # Every hit has each word somewhere; the matcher ranks the closer ones first
            # (a word order it cannot follow still keeps the hit, ranked last).
            score = max(people_matcher.match(text), 0.01)
            yield Hit(score, people_matcher.highlight(text),
                      partial(self.app.open_person, person.employee_id),
                      help="jump to the person screen")

    def _entity_hits(self, found: Found) -> list[Hit]:
        hits = []
        if found.run is not None:
            r = found.run
            hits.append(Hit(1.0, f"Open run {r['id']} · {r['kind']} · {r['status']}",
                            partial(self.app.open_run, int(r["id"])),
                            help="jump to the run screen"))
        if found.op is not None:
            o = found.op
            hits.append(Hit(1.0, f"Open op {o['id']} · {o['kind']} {o['status']} · person "
                                 f"{o['employee_id']}",
                            partial(self.app.open_person, o["employee_id"]),
                            help="the person screen lists this operation and its attempts"))
        return hits
