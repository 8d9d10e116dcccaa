"""`make screenshots`: regenerate screenshots/*.svg from the demo world.

    python -m tests.screenshots [--out screenshots] [--people 2000]

The demo's organisation lives through its story (hires, leavers, a burst of terminations,
a renamed department, a broken e-mail, a login the LMS says is taken, answers lost to
connection resets, a revoked token), synced by the real engine into the sandbox LMS and
its audiences, with hires and terminations arriving as signed BambooHR webhooks at the
real-time intake; the console then opens on that database and each view is saved. The snapshot tests use the
smaller, frozen-clock harness (tests/console_harness.py) instead: they must be
byte-stable, these must look like a real day.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from rostersync.console.app import ConsoleApp
from rostersync.console.cli import main as cli_main
from rostersync.console.demo_oncall import demo_on_call
from rostersync.sandbox.demo import DemoWorld
from rostersync.storage.db import Store
from rostersync.sync.alerts import Alerter
from rostersync.sync.config import Config
from rostersync.sync.engine import Engine
from rostersync.sync.realtime.service import RealtimeService
from tests import web_screenshot
from tests.console_harness import SIZE
from tests.console_views import call_app, press_keys

Steps = Callable[..., Awaitable[None]]


def live_a_day(world: DemoWorld, config: Config, store: Store) -> None:
    asyncio.run(_live_a_day(world, config, store))


async def _live_a_day(world: DemoWorld, config: Config, store: Store) -> None:
    """The story, in an order that leaves every kind of trouble on screen at the end.
    The webhook listener runs without its dispatcher: each act's events are synced by
    an explicit drain, so the pictures do not depend on timing."""
    engine = Engine(config, store)
    life = world.life
    intake = RealtimeService(engine, config)
    await intake.listener.start()
    world.send_webhooks_to(intake.listener.url)

    async def act(*events) -> None:
        for event in events:
            world.events.append({"event": event()})
        await asyncio.to_thread(life.publish)
        await asyncio.to_thread(world.webhooks.flush)  # every change is received...
        await intake.dispatcher.drain()                # ...and synced in real time

    try:
        await engine.sync("full")
        await act(life.hires, life.transfer, life.leave, life.termination,
                  life.future_termination, life.renamed_department, life.manager_change,
                  life.promotion)
        await engine.sync("delta")
        await act(life.rehire, life.give_bad_email, life.mass_terminations,
                  life.taken_user_name, life.lost_answers)
        await engine.sync("full")
        world.events.append({"event": life.revoke_token()})
        await engine.sync("full")  # refused: the job is quarantined
        world.events.append({"event": life.restore_token()})
        await asyncio.to_thread(Alerter(store, config).check)  # alerts.jsonl, alert state
        await asyncio.to_thread(_an_operator_at_work, world, store)
    finally:
        await intake.stop()


def _an_operator_at_work(world: DemoWorld, store: Store) -> None:
    """What an on-call operator does with that day, through the command line, so the
    audit log and the suppressions on screen are true too."""
    leaver = store.scalar("SELECT subject FROM drift WHERE kind = 'pending_termination' "
                          "AND resolved_at IS NULL ORDER BY id LIMIT 1")
    conflict = store.scalar("SELECT employee_id FROM ops WHERE status IN ('failed', 'dead') "
                            "ORDER BY id LIMIT 1")
    config = ["--config", str(world.config_path)]
    with contextlib.redirect_stdout(io.StringIO()):
        cli_main(["ops", "suppress", "--employee", leaver, "--reason",
                  "legal hold: litigation, keep the account", "--until", "30d", *config])
        cli_main(["ops", "suppress", "--employee", conflict, "--reason",
                  "login taken by a legacy account; IT is merging them", "--until", "2d",
                  *config])
        cli_main(["audit", "verify", *config])


def _suppress_form(employee_id: str) -> Steps:
    async def run(pilot) -> None:
        await call_app(lambda app: app.open_person(employee_id))(pilot)
        await press_keys("s", *"legal hold")(pilot)

    return run


def _subject(store: Store, what: str, *queries: str):
    """The first answer of these queries: a view opened on nobody would silently show the
    dashboard instead, so a story that left no such subject is an error."""
    for query in queries:
        found = store.scalar(query)
        if found is not None:
            return found
    raise LookupError(f"the demo's day left no {what} to show")


def views(store: Store) -> dict[str, tuple[bool, Steps]]:
    """(read_only, steps) per screenshot, pointed at people the story left in trouble."""
    # The person the LMS refused (the taken login). Not "an op that is failed now": the
    # operator at work has suppressed that person by the time the views are shot.
    failed = _subject(store, "a person the LMS refused",
                      "SELECT o.employee_id FROM ops o JOIN op_attempts a ON a.op_id = o.id "
                      "WHERE a.outcome = 'error' AND a.error_class != 'transient' "
                      "ORDER BY o.id LIMIT 1")
    invalid = _subject(store, "a person with invalid data",
                       "SELECT subject FROM drift WHERE kind = 'invalid' "
                       "AND resolved_at IS NULL ORDER BY id LIMIT 1")
    run_id = _subject(store, "a run", "SELECT max(id) FROM runs WHERE status != 'quarantined'")
    # Someone in several audiences, one of them for compliance, whose department nobody
    # mapped: the Audiences panel shows memberships, rules and what is left alone.
    grouped = _subject(
        store, "a person in audiences",
        "SELECT m.employee_id FROM audience_members m JOIN drift d "
        "ON d.subject = m.employee_id AND d.kind = 'unmapped' AND d.resolved_at IS NULL "
        "GROUP BY m.employee_id ORDER BY count(*) DESC, m.employee_id LIMIT 1",
        "SELECT employee_id FROM audience_members WHERE audience_id = "
        "'people-managers' ORDER BY employee_id LIMIT 1")
    return {
        "dashboard": (False, press_keys()),
        "drift": (False, press_keys("2")),
        "drift_filtered": (False, press_keys("2", "slash", *"unmapped")),
        "ops": (False, press_keys("3")),
        "terminations": (False, press_keys("4")),
        "runs": (False, press_keys("5")),
        "audit": (False, press_keys("6")),
        "held": (False, press_keys("7")),
        "confirm": (False, press_keys("7", "a")),
        "held_group": (False, press_keys("7", "enter", "space", "space")),
        "confirm_selection": (False, press_keys("7", "enter", "space", "space", "a")),
        "person": (False, call_app(lambda app: app.open_person(failed))),
        "person_invalid": (False, call_app(lambda app: app.open_person(invalid))),
        "run": (False, call_app(lambda app: app.open_run(run_id))),
        "suppress_form": (False, _suppress_form(failed)),
        "help": (False, press_keys("question_mark")),
        "audiences": (False, press_keys("9")),
        "reports": (False, press_keys("8")),
        "person_audiences": (False, call_app(lambda app: app.open_person(grouped))),
        "read_only_dashboard": (True, press_keys()),
        "dashboard_80x24": (False, press_keys()),
        "dashboard_200x50": (False, press_keys()),
        "log": (False, press_keys("0")),
        "scheduled": (False, call_app(lambda app: app.open_list("scheduled"))),
        "row_view": (False, press_keys("3", "v")),
    }


# Views shot at another size than SIZE: the small terminal and the big one.
SIZES = {"dashboard_80x24": (80, 24), "dashboard_200x50": (200, 50)}


async def _shoot(config: Config, store: Store, out: Path, name: str, read_only: bool,
                 steps: Steps) -> None:
    engine = None if read_only else Engine(config, store)
    app = ConsoleApp(config, store, read_only=read_only, engine=engine, run_scheduler=False,
                     live=False, actor="operator")
    async with app.run_test(size=SIZES.get(name, SIZE)) as pilot:
        await steps(pilot)
        app.save_screenshot(f"{name}.svg", path=str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = DemoWorld(Path(tmp) / "demo", people=args.people, on_call=demo_on_call)
        config = world.start()
        store = Store(config.database.path)
        try:
            live_a_day(world, config, store)
            for name, (read_only, steps) in views(store).items():
                # A view never acts (the confirm dialog is shot, not answered), so every
                # view can share the one database.
                asyncio.run(_shoot(config, store, args.out, name, read_only, steps))
                print(args.out / f"{name}.svg")
            # The same day in a browser: `rostersync console --web` in headless Chromium.
            if (shot := web_screenshot.shoot(world.config_path, args.out)) is not None:
                print(shot)
        finally:
            world.stop()
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
