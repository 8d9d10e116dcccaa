"""Storage: the packed snapshot index agrees with the rows, migrations are versioned,
leases recover from dead holders."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from rostersync.storage import lease
from rostersync.storage import people as people_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.storage.schema import MIGRATIONS
from rostersync.storage.store_factory import make_store
from rostersync.sync.clock import FrozenClock
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.support import World, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def snapshot_digests(store, snapshot_id):
    """The index as a dict, to compare with the rows."""
    return dict(zip(*people_store.snapshot_index(store, snapshot_id), strict=True))


@pytest.mark.parametrize("rewrite", [False, True], ids=["delta rows", "blob rewritten"])
def test_packed_snapshot_index_matches_the_rows(tmp_path, scim_server, lms_token, rewrite,
                                                monkeypatch):
    if rewrite:  # every accepted snapshot rewrites the blob from the comparison's lists
        monkeypatch.setattr(people_store, "DELTA_REWRITE_MIN", 0)
        monkeypatch.setattr(people_store, "DELTA_REWRITE_SHARE", 0.0)
    world = World.generate(60)
    csv_path = world.write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, scim_server.base_url, csv_path))
    store = make_store(config.database)
    engine = Engine(config, store, clock=FrozenClock(NOW))
    asyncio.run(engine.sync("full"))
    del world.rows["E00060"]
    world.rows["E00010"]["Work Email"] = "bad@@x"  # invalid: stored with the never-equal digest
    world.rows["E00011"]["Job Title"] = "Changed"
    world.write(csv_path)
    asyncio.run(engine.sync("full"))
    snapshot = run_store.last_accepted_snapshot(store)
    packed = snapshot_digests(store, snapshot["id"])
    rows = dict(store.conn.execute("SELECT employee_id, digest FROM snapshot_rows"))
    assert packed == rows and len(rows) == 59
    # An index left from an older snapshot is ignored, not trusted.
    assert snapshot_digests(store, snapshot["id"] - 1) == rows


def test_snapshot_index_takes_small_deltas_and_rewrites_the_blob_otherwise(tmp_path):
    store = Store(tmp_path / "x.db")
    count = "SELECT count(*) FROM snapshot_index_delta"
    base = {f"K{i}": i.to_bytes(8, "little") for i in range(100)}
    with store.tx() as conn:
        people_store.write_snapshot_index(conn, 1, base.copy)
    after = {**base, "K1": b"\xff" * 8, "K100": b"\x01" * 8}
    del after["K2"]
    with store.tx() as conn:
        people_store.write_snapshot_index(conn, 2, after.copy, 1, [
            ("K1", b"\xff" * 8), ("K2", None), ("K100", b"\x01" * 8)])
    assert store.scalar(count) == 3
    # snapshot_rows is empty here: equality proves the blob plus its deltas answered.
    assert snapshot_digests(store, 2) == after
    # Deltas that do not start from the index's own snapshot are never chained on.
    with store.tx() as conn:
        people_store.write_snapshot_index(conn, 4, after.copy, 3, [])
    assert store.scalar(count) == 0 and snapshot_digests(store, 4) == after
    big = {f"K{i}": b"\x02" * 8 for i in range(people_store.DELTA_REWRITE_MIN + 1)}
    with store.tx() as conn:
        people_store.write_snapshot_index(conn, 5, big.copy, 4, list(big.items()))
    assert store.scalar(count) == 0 and snapshot_digests(store, 5) == big


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


def test_a_feed_with_repeated_keys_is_rejected_naming_them(tmp_path, scim_server, lms_token):
    world = World.generate(40)
    csv_path = world.write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, scim_server.base_url, csv_path))
    engine = Engine(config, make_store(config.database), clock=FrozenClock(NOW))
    asyncio.run(engine.sync("full"))
    rows = list(world.rows.values())
    world.write(csv_path, [*rows, rows[3], rows[7], {**rows[7], "Job Title": "Twin"}])
    report = asyncio.run(engine.sync("full"))
    assert report.status == "rejected"
    assert "2 employee_id value(s) appear more than once: E00004, E00008" in report.message
    del world.rows["E00040"]
    world.write(csv_path)  # a good feed again: one leaver, nothing else
    report = asyncio.run(engine.sync("full"))
    assert report.status == "succeeded" and report.counts["vanished"] == 1
    assert report.counts["changed"] == 0
