"""Storage: the packed snapshot index agrees with the rows, migrations are versioned,
leases recover from dead holders."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

from storage import lease
from storage import people as people_store
from storage import runs as run_store
from storage.db import Store
from storage.schema import MIGRATIONS
from sync.clock import FrozenClock
from sync.config import load_config
from sync.engine import Engine
from tests.support import World, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_packed_snapshot_index_matches_the_rows(tmp_path, scim_server, lms_token):
    world = World.generate(60)
    csv_path = world.write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, scim_server.base_url, csv_path))
    store = Store(config.database.path)
    engine = Engine(config, store, clock=FrozenClock(NOW))
    asyncio.run(engine.sync("full"))
    del world.rows["E00060"]
    world.rows["E00010"]["Work Email"] = "bad@@x"  # invalid: stored with the never-equal digest
    world.rows["E00011"]["Job Title"] = "Changed"
    world.write(csv_path)
    asyncio.run(engine.sync("full"))
    snapshot = run_store.last_accepted_snapshot(store)
    packed = people_store.snapshot_digests(store, snapshot["id"])
    rows = dict(store.conn.execute("SELECT employee_id, digest FROM snapshot_rows"))
    assert packed == rows and len(rows) == 59
    # An index left from an older snapshot is ignored, not trusted.
    assert people_store.snapshot_digests(store, snapshot["id"] - 1) == rows


def test_schema_version_and_a_newer_database_is_refused(tmp_path):
    store = Store(tmp_path / "x.db")
    assert store.scalar("PRAGMA user_version") == len(MIGRATIONS)
    store.conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    store.close()
    try:
        Store(tmp_path / "x.db")
        raise AssertionError("a newer schema was accepted")
    except RuntimeError as exc:
        assert "newer than this rostersync" in str(exc)


def test_lease_of_a_dead_process_is_taken_over_at_once(tmp_path):
    store = Store(tmp_path / "x.db")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    store.conn.execute("INSERT INTO lease(name, holder, pid, host, acquired_at, expires_at) "
                       "VALUES ('writer', 'other', ?, ?, 'x', '9999-12-31T00:00:00.000000Z')",
                       (child.pid, os.uname().nodename))
    assert lease.acquire(store, "me", NOW, 60) is not None  # alive: refused
    child.kill()
    child.wait()
    assert lease.acquire(store, "me", NOW, 60) is None  # dead: recovered
