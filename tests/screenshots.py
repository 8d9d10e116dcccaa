"""`make screenshots`: regenerate screenshots/*.svg from the demo world.

    python -m tests.screenshots [--out screenshots] [--people 2000]

The demo's organisation lives through its story (hires, leavers, a burst of terminations,
a renamed department, a broken e-mail, a login the LMS says is taken, answers lost to
connection resets, a revoked token), synced by the real engine into the sandbox LMS; the
console then opens on that database and each view is saved. The snapshot tests use the
smaller, frozen-clock harness (tests/console_harness.py) instead: they must be
byte-stable, these must look like a real day.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from console.app import ConsoleApp
from sandbox.demo import DemoWorld
from storage.db import Store
from sync.config import Config
from sync.engine import Engine
from tests.console_harness import SIZE, settle

Steps = Callable[..., Awaitable[None]]


def live_a_day(world: DemoWorld, config: Config, store: Store) -> None:
    """The story, in an order that leaves every kind of trouble on screen at the end."""
    engine = Engine(config, store)
    life = world.life
    asyncio.run(engine.sync("full"))
    for event in (life.hires, life.transfer, life.leave, life.termination,
                  life.future_termination, life.renamed_department, life.manager_change):
        world.events.append({"event": event()})
    life.publish()
    asyncio.run(engine.sync("delta"))
    for event in (life.rehire, life.give_bad_email, life.mass_terminations,
                  life.taken_user_name, life.lost_answers):
        world.events.append({"event": event()})
    life.publish()
    asyncio.run(engine.sync("full"))
    world.events.append({"event": life.revoke_token()})
    asyncio.run(engine.sync("full"))  # refused: the job is quarantined
    world.events.append({"event": life.restore_token()})


def _keys(*keys: str) -> Steps:
    async def run(pilot) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


def _call(fn: Callable[[ConsoleApp], None]) -> Steps:
    async def run(pilot) -> None:
        await settle(pilot)
        fn(pilot.app)
        await settle(pilot)

    return run


def _suppress_form(employee_id: str) -> Steps:
    async def run(pilot) -> None:
        await _call(lambda app: app.open_person(employee_id))(pilot)
        await _keys("s", *"legal hold")(pilot)

    return run


def views(store: Store) -> dict[str, tuple[bool, Steps]]:
    """(read_only, steps) per screenshot, pointed at people the story left in trouble."""
    failed = store.scalar("SELECT employee_id FROM ops WHERE status IN ('failed', 'dead') "
                          "ORDER BY id LIMIT 1")
    invalid = store.scalar("SELECT subject FROM drift WHERE kind = 'invalid' "
                           "AND resolved_at IS NULL ORDER BY id LIMIT 1")
    run_id = store.scalar("SELECT max(id) FROM runs WHERE status != 'quarantined'")
    return {
        "dashboard": (False, _keys()),
        "drift": (False, _keys("2")),
        "drift_filtered": (False, _keys("2", "slash", *"unmapped")),
        "ops": (False, _keys("3")),
        "terminations": (False, _keys("4")),
        "runs": (False, _keys("5")),
        "audit": (False, _keys("6")),
        "held": (False, _keys("7")),
        "confirm": (False, _keys("7", "a")),
        "person": (False, _call(lambda app: app.open_person(failed))),
        "person_invalid": (False, _call(lambda app: app.open_person(invalid))),
        "run": (False, _call(lambda app: app.open_run(run_id))),
        "suppress_form": (False, _suppress_form(failed)),
        "help": (False, _keys("question_mark")),
        "read_only_dashboard": (True, _keys()),
    }


async def _shoot(config: Config, store: Store, out: Path, name: str, read_only: bool,
                 steps: Steps) -> None:
    engine = None if read_only else Engine(config, store)
    app = ConsoleApp(config, store, read_only=read_only, engine=engine, run_scheduler=False,
                     live=False, actor="operator")
    async with app.run_test(size=SIZE) as pilot:
        await steps(pilot)
        app.save_screenshot(f"{name}.svg", path=str(out))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        world = DemoWorld(Path(tmp) / "demo", people=args.people)
        config = world.start()
        store = Store(config.database.path)
        try:
            live_a_day(world, config, store)
            for name, (read_only, steps) in views(store).items():
                # A view never acts (the confirm dialog is shot, not answered), so every
                # view can share the one database.
                asyncio.run(_shoot(config, store, args.out, name, read_only, steps))
                print(args.out / f"{name}.svg")
        finally:
            world.stop()
            store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
