"""The plan's writes: multi-row statements on a writer thread of their own.

The writer thread runs beside the evaluation only because its statements are few and
large; a per-row executemany there waits for the GIL on every row (a 20,000-row batch
took minutes beside a busy thread). So the number of statements one batch of people
costs is checked here, as are the writer's ordering and its errors.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from rostersync.storage.db import Store, execute_values
from rostersync.storage.writer import BatchWriter
from rostersync.sync import pull as pull_mod
from rostersync.sync.config import load_config
from rostersync.sync.connectors.factory import make_source
from rostersync.sync.evaluate import evaluate, write_changes
from tests.support import TOKEN_ENV, World, write_config

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def test_execute_values_splits_under_the_parameter_limit_and_counts_rows(tmp_path):
    store = Store(tmp_path / "x.db")
    conn = store.conn
    conn.execute("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER)")
    rows = [(f"k{i}", i) for i in range(2_345)]
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert execute_values(conn, "INSERT INTO t(k, v) VALUES {values}", "(?,?)", rows,
                          max_rows=1_000) == 2_345
    assert len(statements) == 3
    # An upsert in the same form: the second value of a key wins, as with executemany.
    changed = execute_values(
        conn, "INSERT INTO t(k, v) VALUES {values} ON CONFLICT(k) DO UPDATE SET v = excluded.v",
        "(?,?)", [("k1", 100), ("new", 7)])
    conn.set_trace_callback(None)
    assert changed == 2
    assert conn.execute("SELECT v FROM t WHERE k = 'k1'").fetchone()[0] == 100
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 2_346


def test_a_batch_of_people_is_written_in_a_few_statements(tmp_path):
    os.environ.setdefault(TOKEN_ENV, "unused")
    world = World.generate(600)
    csv_path = world.write(tmp_path / "employees.csv")
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9/v2", csv_path))
    store = Store(config.database.path)
    source = make_source(config.hris)
    pull = pull_mod.scan(store, source, config.fingerprint())
    pull_mod.assess(store, source, config, pull, NOW.date())
    keys = sorted(r.key for r in pull.changed)
    changes = evaluate(store, config, NOW, keys, pull.parsed or {})
    assert len(changes.people_rows) == 600 and len(changes.new_ops) >= 600
    statements: list[str] = []
    with store.tx() as conn:
        conn.set_trace_callback(statements.append)
        write_changes(conn, changes, NOW, None, 6)
        conn.set_trace_callback(None)
    assert len(statements) < 30  # per-row statements would be thousands
    assert store.scalar("SELECT count(*) FROM people") == 600
    assert store.scalar("SELECT count(*) FROM ops") == len(changes.new_ops)


def test_writes_commit_in_order_and_a_failed_one_is_raised(tmp_path):
    store = Store(tmp_path / "x.db")
    store.conn.execute("CREATE TABLE log(n INTEGER)")
    with BatchWriter(store) as writer:
        for n in range(5):
            writer.submit(lambda conn, n=n: conn.execute("INSERT INTO log VALUES (?)", (n,)))
        writer.wait()
        assert [r[0] for r in store.conn.execute("SELECT n FROM log")] == list(range(5))
        writer.submit(lambda conn: conn.execute("INSERT INTO missing_table VALUES (1)"))
        with pytest.raises(Exception, match="missing_table"):
            writer.wait()
    # The failed write's transaction was rolled back; the earlier ones stay.
    assert store.scalar("SELECT count(*) FROM log") == 5
