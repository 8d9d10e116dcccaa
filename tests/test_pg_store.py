"""The PostgreSQL store against a real server (tests/pg_server.py): schema and
migrations, transactions and the one-writer lock, sqlite3-shaped results and errors,
the append-only audit log and its pruning, and choosing the store from the config."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from rostersync.storage import audit, audit_verify, retention
from rostersync.storage import runs as run_store
from rostersync.storage.db import DatabaseUnreachable, Store
from rostersync.storage.failure import as_storage_failure
from rostersync.storage.pg_schema import WRITER_LOCK
from rostersync.storage.pg_store import PgStore
from rostersync.storage.pg_url import target_from, url_problem
from rostersync.storage.schema import MIGRATIONS
from rostersync.storage.store_factory import make_store
from rostersync.sync.config import ConfigError, DatabaseConfig, config_from_dict

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
def store(pg_database: str):
    opened = PgStore(target_from(pg_database))
    yield opened
    opened.close_all()


def raw(url: str) -> psycopg.Connection:
    return psycopg.connect(url, password=os.environ["ROSTERSYNC_DB_PASSWORD"], autocommit=True)


def test_migrations_run_once_and_record_the_version(pg_database):
    first = PgStore(target_from(pg_database))
    assert first.scalar("PRAGMA user_version") == len(MIGRATIONS)
    run_store.start_run(first, NOW, "full", "cli", False)
    first.close_all()
    again = PgStore(target_from(pg_database))  # nothing to migrate: the row survives
    assert again.scalar("SELECT count(*) FROM runs") == 1
    with raw(pg_database) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == len(MIGRATIONS)
        conn.execute("UPDATE schema_version SET version = %s", (len(MIGRATIONS) + 1,))
    again.close_all()
    with pytest.raises(RuntimeError, match=f"newer than this rostersync \\({len(MIGRATIONS)}\\)"):
        PgStore(target_from(pg_database))


def test_results_look_like_sqlite3s(store):
    run_id = run_store.start_run(store, NOW, "full", "cli", False)
    cur = store.execute("SELECT id, kind FROM runs WHERE id = ?", (run_id,))
    assert [d[0] for d in cur.description] == ["id", "kind"]
    assert cur.fetchone() == (run_id, "full")
    assert store.execute("UPDATE runs SET message = ? WHERE id > ?", ("m", 0)).rowcount == 1
    assert store.rows("SELECT kind, dry_run FROM runs") == [{"kind": "full", "dry_run": 0}]
    # Booleans are stored as the 0/1 SQLite keeps; an integer sum is an int, not a Decimal.
    store.execute("UPDATE runs SET dry_run = ?", (True,))
    assert store.scalar("SELECT sum(dry_run) FROM runs") == 1
    assert type(store.scalar("SELECT sum(dry_run) FROM runs")) is int
    assert store.scalar("SELECT sum(kind = 'full') FROM runs") == 1  # a comparison counts 1
    assert store.scalar("SELECT json_extract(?, '$.a.b')", ('{"a": {"b": "x%"}}',)) == "x%"
    assert store.scalar("SELECT json_extract(?, '$.a', '$.c')", ('{"a": 1, "c": "z"}',)) == (
        '[1, "z"]')


def test_tx_nests_commits_and_rolls_back(store):
    with store.tx() as conn:
        conn.execute("INSERT INTO job_state(name, state, since) VALUES ('a', 'active', 't')")
        with store.tx() as inner:  # joins the outer transaction
            inner.execute("INSERT INTO job_state(name, state, since) VALUES ('b', 'active', 't')")
    assert store.scalar("SELECT count(*) FROM job_state") == 2
    with pytest.raises(ZeroDivisionError), store.tx() as conn:
        conn.execute("DELETE FROM job_state")
        raise ZeroDivisionError
    assert store.scalar("SELECT count(*) FROM job_state") == 2
    assert not store.pg.in_transaction


def test_errors_arrive_as_the_sqlite3_classes_callers_catch(store):
    store.execute("INSERT INTO job_state(name, state, since) VALUES ('a', 'active', 't')")
    with pytest.raises(sqlite3.IntegrityError, match="duplicate key"):
        store.execute("INSERT INTO job_state(name, state, since) VALUES ('a', 'active', 't')")
    with pytest.raises(sqlite3.Error):
        store.execute("SELECT no_such_column FROM job_state")
    # INSERT OR IGNORE: the same row again changes nothing and raises nothing.
    assert store.execute("INSERT OR IGNORE INTO job_state(name, state, since) "
                         "VALUES ('a', 'paused', 't')").rowcount == 0


def test_one_writer_transaction_at_a_time(store, pg_database):
    """The advisory lock tx() takes is held for exactly the transaction: another session
    cannot take it inside, can right after."""
    with raw(pg_database) as other:
        def free() -> bool:
            taken = other.execute("SELECT pg_try_advisory_lock(%s)", (WRITER_LOCK,)).fetchone()[0]
            if taken:
                other.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK,))
            return bool(taken)

        assert free()
        with store.tx():
            assert not free()
        assert free()
        # A reader outside tx() never waits for the lock.
        with store.tx():
            seen: list[int] = []
            thread = threading.Thread(target=lambda: seen.append(
                store.scalar("SELECT count(*) FROM runs")))
            thread.start()
            thread.join(timeout=30)
            assert seen == [0]


def test_the_audit_log_is_append_only_and_prunes_verifiably(store):
    for day in range(5):
        audit.record(store, NOW + timedelta(days=day), "test.action", f"E{day}", actor="ops")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute("DELETE FROM audit")
    counts = retention.prune(store, NOW + timedelta(days=30), {"audit": 27}, actor="ops")
    assert counts["deleted"]["audit"] == 3  # days 0-2: older than the cutoff, day 3
    assert store.scalar("SELECT count(*) FROM audit") == 3  # days 3-4 and the prune's own
    assert audit_verify.verify(store).ok
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the trigger is back
        store.execute("DELETE FROM audit")


def test_the_config_selects_the_store(tmp_path, pg_database):
    sqlite_store = make_store(DatabaseConfig(path=tmp_path / "x.db"))
    assert type(sqlite_store) is Store
    pg = make_store(DatabaseConfig(url=pg_database))
    assert isinstance(pg, PgStore) and pg.scalar("PRAGMA user_version") == len(MIGRATIONS)
    pg.close_all()


@pytest.mark.parametrize("url, problem", [
    ("postgresql://rostersync:hunter2@db:5432/rs", "must not contain a password"),
    ("mysql://rostersync@db/rs", "must start with postgresql://"),
    ("postgresql://rostersync@db:5432", "names no database"),
    ("postgresql:///rs", "names no host"),
])
def test_bad_urls_are_one_sentence_naming_the_key(url, problem):
    assert problem in (url_problem(url) or "")
    with pytest.raises(ConfigError) as caught:
        config_from_dict({"database": {"url": url}, "hris": {"type": "csv", "path": "x.csv"},
                          "lms": {"type": "scim", "base_url": "https://lms.example/scim"}})
    message = str(caught.value)
    assert "database.url" in message and problem in message
    assert "hunter2" not in message and "\n" not in message.strip()


def test_a_wrong_password_is_one_sentence_without_the_password(pg_database, monkeypatch):
    monkeypatch.setenv("ROSTERSYNC_DB_PASSWORD", "not-the-password")
    with pytest.raises(DatabaseUnreachable) as caught:
        PgStore(target_from(pg_database))
    message = str(caught.value)
    assert message.startswith(f"cannot connect to the PostgreSQL database {pg_database}: ")
    assert "password authentication failed" in message
    assert "not-the-password" not in message and "\n" not in message


def test_a_lost_connection_is_a_storage_failure_and_the_next_call_reconnects(store,
                                                                             pg_database):
    run_store.start_run(store, NOW, "full", "cli", False)
    pid = store.scalar("SELECT pg_backend_pid()")
    with raw(pg_database) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(sqlite3.OperationalError) as caught:
        store.scalar("SELECT count(*) FROM runs")
    failure = as_storage_failure(caught.value, store.path)
    assert failure is not None and failure.code == "PG_UNREACHABLE"
    assert str(failure).startswith(f"storage failure: the database {pg_database} could not "
                                   "be used because the database server could not be reached")
    assert store.scalar("SELECT count(*) FROM runs") == 1  # a new connection
    # A statement the server rejects is a bug to show, not a storage failure.
    with pytest.raises(sqlite3.Error) as bad:
        store.execute("SELECT no_such_column FROM runs")
    assert as_storage_failure(bad.value, store.path) is None


def test_a_threads_connection_ends_with_the_thread(store):
    """A thread's connection is closed when the thread ends (as sqlite3's are), so a long
    `serve` that starts threads does not pile up server sessions."""
    opened: list[psycopg.Connection] = []
    for _ in range(3):
        thread = threading.Thread(target=lambda: opened.append(store.pg.raw))
        thread.start()
        thread.join(timeout=30)
    assert len(opened) == 3 and all(conn.closed for conn in opened)
    assert not store.pg.raw.closed  # this thread's own stays open


def test_a_dead_writer_cannot_hold_the_lock_for_long(store, pg_database):
    """The session settings that end a writer's transaction when its node is gone."""
    assert store.scalar("SHOW idle_in_transaction_session_timeout") == "1min"
    assert store.scalar("SHOW tcp_keepalives_idle") == "10"
    # A URL's own options win.
    own = PgStore(target_from(pg_database + "?options=-c%20statement_timeout%3D5s"),
                  migrate_schema=False)
    assert own.scalar("SHOW statement_timeout") == "5s"
    assert own.scalar("SHOW idle_in_transaction_session_timeout") == "0"
    own.close_all()


def test_the_password_comes_from_the_named_variable_or_libpqs_own(pg_database, monkeypatch):
    password = os.environ["ROSTERSYNC_DB_PASSWORD"]
    monkeypatch.delenv("ROSTERSYNC_DB_PASSWORD")
    monkeypatch.setenv("SYNC_DB_SECRET", password)
    named = make_store(DatabaseConfig(url=pg_database, password_env="SYNC_DB_SECRET"))
    assert named.scalar("SELECT 1") == 1
    named.close_all()
    monkeypatch.delenv("SYNC_DB_SECRET")
    monkeypatch.setenv("PGPASSWORD", password)  # libpq's own, when ours is not set
    fallback = make_store(DatabaseConfig(url=pg_database))
    assert fallback.scalar("SELECT 1") == 1
    fallback.close_all()
    monkeypatch.delenv("PGPASSWORD")
    with pytest.raises(DatabaseUnreachable, match="password"):
        make_store(DatabaseConfig(url=pg_database))
