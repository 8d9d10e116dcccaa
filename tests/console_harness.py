"""The console's test and screenshot harness: a seeded database built by running the
real Engine against a real SCIM sandbox, a frozen clock, and helpers that let Pilot wait
for workers instead of sleeping.

The world after seeding (150 people, started at START):
- everyone was created by a first full sync;
- E00005's title change fails (the LMS answers 503 for them): a failed op;
- E00007's e-mail is invalid (invalid drift); E00009's department is unmapped;
- E00121..E00150 were terminated in HR: 30 deactivations, held by the mass guard.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

from textual.worker import WorkerState

from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import audit
from rostersync.storage.db import Store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, load_config
from rostersync.sync.engine import Engine
from tests.support import World, set_token_env, write_config

START = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
VIEWED_AT = START + timedelta(hours=3, minutes=20)  # the console's (frozen) now
SIZE = (120, 40)
TOKEN = "console-token"
ACTOR = "operator"


@dataclass
class Seeded:
    folder: Path
    template: Path  # the seeded database; tests copy it
    lms: ScimSandbox
    csv_path: Path
    base_url: str

    def config_for(self, db_path: Path) -> Config:
        config = load_config(write_config(db_path.parent, self.base_url, self.csv_path))
        config.database.path = db_path
        return config


def seed(folder: Path, lms: ScimSandbox) -> Seeded:
    # scim2-server names users with uuid4; error messages quote those ids, so snapshots
    # would differ on every run. Counted ids make the seeded world the same every time.
    counter = itertools.count(1)
    with mock.patch("scim2_server.memory.uuid.uuid4",
                    lambda: uuid.UUID(int=next(counter))):
        return _seed(folder, lms)


def _seed(folder: Path, lms: ScimSandbox) -> Seeded:
    set_token_env(TOKEN)
    folder.mkdir(parents=True, exist_ok=True)
    world = World.generate(150)
    csv_path = world.write(folder / "employees.csv")
    config = load_config(write_config(folder, lms.base_url, csv_path))
    store = Store(config.database.path)
    clock = play_history(store, config, world, csv_path, lms)
    audit.record(store, clock.now() + timedelta(minutes=5), "sync", None,
                 {"kind": "full", "from": "cli"}, actor=ACTOR)
    store.close()
    template = folder / "template.db"
    _copy(config.database.path, template)
    return Seeded(folder, template, lms, csv_path, lms.base_url)


def play_history(store: Store, config: Config, world: World, csv_path: Path,
                 lms: ScimSandbox) -> FrozenClock:
    """The seeded history, run by the real engine on ``store`` (SQLite or PostgreSQL):
    a first full run of 150 people; an hour later a new title (E00005, whose update the
    LMS refuses), an invalid e-mail (E00007), an unmapped department (E00009) and 30
    leavers held by the mass guard. Returns the clock, at the end of it."""
    clock = FrozenClock(START)
    engine = Engine(config, store, clock=clock, rng=random.Random(7))
    asyncio.run(engine.sync("full"))

    clock.advance(hours=1)
    world.rows["E00005"]["Job Title"] = "Lead"
    world.rows["E00007"]["Work Email"] = "not-an-email"
    world.rows["E00009"]["Department"] = "Quantum Lab"
    for i in range(121, 151):
        world.rows[f"E{i:05d}"].update({"Status": "Terminated",
                                        "Termination Date": "2026-11-20"})
    world.write(csv_path)
    failing = store.scalar("SELECT lms_id FROM accounts WHERE external_key = 'E00005'")
    lms.fault = _FailingUpdates(failing)
    try:
        asyncio.run(engine.sync("full"))
    finally:
        lms.fault = None
    return clock


class _FailingUpdates:
    """The LMS answers 503 to every update of one account, alone or inside /Bulk."""

    def __init__(self, lms_id: str) -> None:
        self.lms_id = lms_id

    def __call__(self, method: str, path: str) -> tuple[int, dict, bytes] | None:
        return self.refusal(method, path, b"")

    def refusal(self, method: str, path: str, _body: bytes) -> tuple[int, dict, bytes] | None:
        if method in ("PATCH", "PUT") and self.lms_id in path:
            return 503, {}, b"upstream maintenance"
        return None


def _copy(source: Path, target: Path) -> None:
    """A consistent copy (WAL included) through SQLite's backup API."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target)
    with dst:
        src.backup(dst)
    src.close()
    dst.close()


def fresh_db(seeded: Seeded, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rostersync.db"
    shutil.copyfile(seeded.template, path)
    return path


def make_app(seeded: Seeded, folder: Path, *, read_only: bool = False):
    """A console over a private copy of the seeded database, with no timers running."""
    from rostersync.console.app import ConsoleApp

    db = fresh_db(seeded, folder)
    config = seeded.config_for(db)
    store = Store(db)
    clock = FrozenClock(VIEWED_AT)
    engine = None if read_only else Engine(config, store, clock=clock, rng=random.Random(7))
    return ConsoleApp(config, store, clock=clock, read_only=read_only, engine=engine,
                      run_scheduler=False, live=False, actor=ACTOR)


async def settle(pilot) -> None:
    """Wait until every worker (queries, actions, engine runs) and the messages they
    posted have been handled: no sleeps."""
    # At least six rounds (a worker's result may start another worker through a message),
    # and more while any worker is still pending or running: on a loaded machine a
    # thread's result can arrive after a round's wait has returned.
    quiet = 0
    for _ in range(200):
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        busy = any(w.state in (WorkerState.PENDING, WorkerState.RUNNING)
                   for w in pilot.app.workers)
        quiet = 0 if busy else quiet + 1
        if quiet >= 6:
            break
    await pilot.pause()


def notes(app) -> list[str]:
    """The texts of the notifications the console has shown."""
    return app.notices_seen()
