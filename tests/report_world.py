"""A recorded history for the report tests and the report screenshot: the real Engine
against a real SCIM sandbox on 127.0.0.1, with a frozen clock, living through
terminations that were on time, held, failed and suppressed.

The story (40 people, SLA 60 minutes, more than 3 deactivations in one run are held):
- 09:00  first full sync creates everyone.
- 10:00  E00003 is terminated with yesterday's date (HR recorded it late; deactivated at
         once: on time); E00005 is terminated but the LMS answers 503 for their account
         (failed); E00020 is under a legal hold (suppressed by alice first); E00011 gets a
         future termination date (scheduled for midnight in New York on 3 October).
- 11:00  E00030..E00033 are terminated (last day 30 September) together: held by the
         mass-deactivation guard.
- 10:00  also: E00007's e-mail becomes invalid (HR) and E00009 moves to a department
         with no mapping (L&D).
- 13:00  HR fixes E00007's e-mail (a full sync resolves it); the LMS recovers; bob retries E00005's operation: deactivated 3 h late.
- 14:00  carol approves three of the held four: deactivated 3 h late; E00033 stays held.
- 3 Oct 04:00 UTC  the retry sweep deactivates E00011 at their effective time: on time.
- 3 Oct 06:00 UTC  a last full sync; then the report's period ends (END).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rostersync.console import actions
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import Config, load_config
from rostersync.sync.engine import Engine
from tests.support import Refusing, World, set_token_env, write_config

START = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
END = datetime(2026, 10, 3, 6, 30, tzinfo=UTC)
SINCE, UNTIL = "2026-09-01", END.isoformat()
GUARDS = {"mass_deactivation_min": 3, "termination_sla_minutes": 60}
HELD = ["E00030", "E00031", "E00032", "E00033"]


@dataclass
class History:
    config: Config
    store: Store
    clock: FrozenClock
    config_path: Path
    ops: dict[str, list[int]]


def _terminate(world: World, key: str, day: str) -> None:
    world.rows[key].update({"Status": "Terminated", "Termination Date": day})


def live(folder: Path, lms: ScimSandbox, token: str) -> History:
    set_token_env(token)
    world = World.generate(40)
    csv_path = world.write(folder / "employees.csv")
    config_path = write_config(folder, lms.base_url, csv_path, guards=GUARDS)
    config = load_config(config_path)
    store = make_store(config.database)
    clock = FrozenClock(START)
    engine = Engine(config, store, clock=clock, rng=random.Random(7))
    run = lambda kind="full": asyncio.run(engine.sync(kind))  # noqa: E731

    run()
    clock.advance(hours=1)
    actions.suppress_people(store, clock.now(), ["E00020"], "legal hold: litigation", None,
                            "alice")
    _terminate(world, "E00003", "2026-09-30")
    _terminate(world, "E00005", "2026-09-30")
    _terminate(world, "E00020", "2026-09-30")
    world.rows["E00011"]["Termination Date"] = "2026-10-02"
    good_email = world.rows["E00007"]["Work Email"]
    world.rows["E00007"]["Work Email"] = "not-an-email"  # invalid (HR) until 13:00
    world.rows["E00009"]["Department"] = "Quantum Lab"  # unmapped (L&D), never fixed
    world.write(csv_path)
    failing = store.scalar("SELECT lms_id FROM accounts WHERE external_key = 'E00005'")
    lms.fault = Refusing(lambda method, path: ((503, {}, b"upstream maintenance")
                                               if method in ("PATCH", "PUT", "DELETE")
                                               and failing in path else None))
    try:
        run()
        clock.advance(hours=1)
        for key in HELD:
            _terminate(world, key, "2026-09-30")
        world.write(csv_path)
        run()
    finally:
        lms.fault = None
    clock.advance(hours=2)
    failed = [op["id"] for op in op_store.list_ops(store, employee_id="E00005")
              if op["status"] in ("failed", "dead")]
    assert failed, "E00005's deactivation should have failed"
    actions.retry(store, clock.now(), failed, config.guards.retry_max_attempts, actor="bob")
    asyncio.run(engine.apply_due(trigger="cli", op_ids=failed))
    world.rows["E00007"]["Work Email"] = good_email
    world.write(csv_path)
    run()
    clock.advance(hours=1)
    held = {key: [op["id"] for op in op_store.list_ops(store, employee_id=key)
                  if op["status"] == "held"] for key in HELD}
    approve = [i for key in HELD[:3] for i in held[key]]
    actions.approve(store, clock.now(), approve, "carol")
    asyncio.run(engine.apply_due(trigger="cli", op_ids=approve))
    clock.set(datetime(2026, 10, 3, 4, 0, tzinfo=UTC))  # midnight in New York (EDT)
    asyncio.run(engine.apply_due())
    clock.set(datetime(2026, 10, 3, 6, 0, tzinfo=UTC))
    run()
    clock.set(END)
    ops = {key: [op["id"] for op in op_store.list_ops(store, employee_id=key)]
           for key in ("E00003", "E00005", "E00011", "E00020", *HELD)}
    return History(config, store, clock, config_path, ops)
