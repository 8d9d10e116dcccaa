"""SQLite through sqlite-utils: one connection per thread, WAL, owner-only files.

A sqlite3 connection must not cross threads, so ``Store`` hands each thread its own.
Connections run in autocommit mode and writers open ``BEGIN IMMEDIATE`` explicitly
(``Store.tx``) so that a write transaction never upgrades half-way and deadlocks.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, overload

import sqlite_utils

from rostersync.storage.db_path import checked_path
from rostersync.storage.schema import migrate as run_migrations

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@overload
def ts(moment: datetime) -> str: ...
@overload
def ts(moment: None) -> None: ...
@overload
def ts(moment: datetime | None) -> str | None: ...


def ts(moment: datetime | None) -> str | None:
    """A UTC timestamp as fixed-width text, so that text order is time order."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(TS_FORMAT)


# Typed as the columns are: a stored time is never empty text (``ts`` writes NULL for
# none), so a time read from a column that holds one is a datetime.
@overload
def parse_ts(text: str) -> datetime: ...
@overload
def parse_ts(text: None) -> None: ...
@overload
def parse_ts(text: str | None) -> datetime | None: ...


def parse_ts(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.strptime(text, TS_FORMAT).replace(tzinfo=UTC)


def _create_private(path: Path) -> None:
    """Create the database file with owner-only permissions before SQLite opens it; never
    through a link (storage/db_path.py has refused a dangling one already, O_NOFOLLOW
    covers one planted since)."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:
        return  # another process created it first; the path checks run again at open
    os.close(fd)


# SQLite's own checkpoints (in the commit that crosses the threshold) keep the WAL small;
# a bulk write lifts the threshold for its connection (bulk_writes) and leaves the copying
# to checkpoint_in_background, after the run.
AUTOCHECKPOINT_PAGES = 8192
BULK_AUTOCHECKPOINT_PAGES = 65536


# SQLite's default cap on bound parameters per statement (3.32+).
MAX_VARIABLES = 32766


class DatabaseUnreachable(sqlite3.OperationalError):
    """The database server cannot be reached or refused the login (PostgreSQL store);
    ``str()`` is one sentence naming the server, never the password."""


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The rowid of the row an INSERT through ``cursor`` just made."""
    if cursor.lastrowid is None:
        raise sqlite3.InterfaceError("no row was inserted")
    return cursor.lastrowid


def execute_values(conn: sqlite3.Connection, sql: str, row: str,
                   rows: list[tuple[Any, ...]], max_rows: int = 500) -> int:
    """``sql`` (with ``{values}`` where the rows go) as few multi-row statements.

    Unlike executemany, whose every row is a step that lets go of the GIL and waits to
    take it back, each statement here is one step: a thread that writes them holds the
    GIL only while binding, so it can run beside a thread busy in Python (the engine
    evaluates the next batch while the last one is written). Returns the rows changed."""
    if not rows:
        return 0
    per = max(1, min(max_rows, MAX_VARIABLES // max(1, len(rows[0]))))
    changed = 0
    for start in range(0, len(rows), per):
        part = rows[start:start + per]
        changed += conn.execute(sql.format(values=",".join([row] * len(part))),
                                [value for r in part for value in r]).rowcount
    return changed


class Store:
    """The database: thread-local connections to one SQLite file, migrated on open."""

    def __init__(self, path: str | os.PathLike[str], *, migrate: bool = True) -> None:
        self.path = Path(path)
        # The audit chain's HMAC key and where it came from (storage/audit_key.py); None
        # until a command attaches one, and then the chain is written unkeyed.
        self.audit_key: bytes | None = None
        self.audit_key_source: str | None = None
        self._local = threading.local()
        self._checkpointing = threading.Lock()
        if str(self.path) != ":memory:":
            _create_private(checked_path(self.path))
        if migrate:
            run_migrations(self.conn, self.path)

    def _open(self) -> sqlite_utils.Database:
        # Checked before every connection: a link or a foreign WAL planted after the
        # first open must not be followed either.
        target = self.path if str(self.path) == ":memory:" else checked_path(self.path)
        conn = sqlite3.connect(target, isolation_level=None, check_same_thread=True,
                               timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses no committed transaction on a process crash; only an
        # OS crash can roll back the last few, which the re-read-before-create covers.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("PRAGMA temp_store=MEMORY")
        # 16 MiB a connection: each thread has its own, the OS page cache is behind them.
        conn.execute("PRAGMA cache_size=-16384")
        conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
        return sqlite_utils.Database(conn)

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._open()
            self._local.db = db
        return db

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def one(self, sql: str, params: Any = ()) -> Any:
        """The first row (a tuple, or None when there is none: an aggregate always has one)."""
        return self.conn.execute(sql, params).fetchone()

    def rows(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Any = ()) -> Any:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        conn = self.conn
        if conn.in_transaction:  # nested: join the outer transaction
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            # SQLite rolls back by itself on some errors (SQLITE_FULL, SQLITE_IOERR): a
            # second ROLLBACK would then hide the real error behind "no transaction".
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        """This thread's writes skip checkpoints up to 256 MiB of WAL (a reconcile's plan
        writes tens of thousands of scattered rows; copying them back mid-run doubles the
        cost), and the caller checkpoints after (checkpoint_in_background)."""
        conn = self.conn
        conn.execute(f"PRAGMA wal_autocheckpoint={BULK_AUTOCHECKPOINT_PAGES}")
        try:
            yield
        finally:
            conn.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")

    def checkpoint_in_background(self) -> threading.Thread | None:
        """Copy the WAL into the database file on a thread of its own, off the path of
        the run that wrote it (a run's outcome is durable once committed to the WAL).
        PASSIVE never blocks readers or writers; one checkpoint at a time."""
        if str(self.path) == ":memory:" or not self._checkpointing.acquire(blocking=False):
            return None

        def run() -> None:
            try:
                self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass  # busy or closed: the next run's checkpoint (or SQLite's own) catches up
            finally:
                self.close()  # this thread's connection
                self._checkpointing.release()

        thread = threading.Thread(target=run, name="rostersync-checkpoint")
        thread.start()
        return thread

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None
