"""The store on PostgreSQL ([database] url), with the interface of storage/db.py's Store.

Callers hold what they hold on SQLite: ``store.conn`` answers ``execute(sql, params)``
with a cursor that looks like sqlite3's (tuples, ``description``, ``rowcount``,
``lastrowid``), the SQL stays in SQLite's dialect (storage/pg_translate.py rewrites it,
once per statement), and errors arrive as sqlite3's exception classes, which is what
the callers catch today.

One psycopg connection per thread, in autocommit mode; ``tx()`` opens an explicit
transaction under READ COMMITTED and, first thing, takes a transaction-level advisory
lock: SQLite's BEGIN IMMEDIATE lets one writer transaction run at a time, and the
storage code is written for that (read-then-write without row locks), so the same
holds here. Reads outside ``tx()`` never wait for it.
"""

from __future__ import annotations

import sqlite3
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from decimal import Decimal
from typing import Any, cast

import psycopg
from psycopg import errors as pg_errors
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import NumericLoader

from rostersync.storage.db import DatabaseUnreachable, Store
from rostersync.storage.pg_schema import WRITER_LOCK, migrate
from rostersync.storage.pg_translate import translate
from rostersync.storage.pg_url import PgTarget


class _BoolAsInteger(Dumper):
    """Flags are INTEGER columns (0/1), as on SQLite, where True is stored as 1."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _LooseNumeric(NumericLoader):
    """sum() over integers is NUMERIC on PostgreSQL; SQLite gives an int (or a float)."""

    def load(self, data: Any) -> Any:
        value = super().load(data)
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        return value


# SQLSTATE classes that mean the server, not the statement, failed: storage failures
# (storage/failure.py), reported as one sentence and recorded like a full disk.
_UNREACHABLE_CLASSES = ("08", "57P")  # connection exception; the server shutting down
_RESOURCE_CLASSES = ("53", "58")     # insufficient resources; system error


def _as_sqlite_error(exc: psycopg.Error) -> sqlite3.Error:
    """The sqlite3 class a caller already catches for this kind of failure; the message
    is PostgreSQL's first line (no query text, no parameters)."""
    message = (str(exc).strip().splitlines() or ["database error"])[0]
    state = exc.sqlstate or ""
    if (isinstance(exc, psycopg.OperationalError) and not state) \
            or state.startswith(_UNREACHABLE_CLASSES) or state[:2] in _RESOURCE_CLASSES:
        failed = sqlite3.OperationalError(message)
        failed.sqlite_errorname = ("PG_RESOURCES" if state[:2] in _RESOURCE_CLASSES
                                   else "PG_UNREACHABLE")
        return failed
    if isinstance(exc, pg_errors.IntegrityError):
        return sqlite3.IntegrityError(message)
    if isinstance(exc, (psycopg.OperationalError, pg_errors.LockNotAvailable,
                        pg_errors.SerializationFailure, pg_errors.DeadlockDetected,
                        pg_errors.InsufficientPrivilege, pg_errors.QueryCanceled)):
        return sqlite3.OperationalError(message)
    if isinstance(exc, psycopg.ProgrammingError):
        return sqlite3.ProgrammingError(message)
    return sqlite3.DatabaseError(message)


class PgCursor:
    """What a statement gave back, shaped as sqlite3's cursor."""

    def __init__(self, cursor: psycopg.Cursor[Any], lastrowid: int | None = None,
                 hide_rows: bool = False) -> None:
        self._cursor = cursor
        self.lastrowid = lastrowid
        self.rowcount = cursor.rowcount
        self._hide = hide_rows

    @property
    def description(self) -> Any:
        if self._hide or self._cursor.description is None:
            return None
        return [(column.name, None, None, None, None, None, None)
                for column in self._cursor.description]

    def fetchone(self) -> Any:
        if self._hide or self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        if self._hide or self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def fetchmany(self, size: int = 1) -> list[Any]:
        if self._hide or self._cursor.description is None:
            return []
        return self._cursor.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())

    def close(self) -> None:
        self._cursor.close()


class _Empty:
    """The answer to a statement that means nothing here (a SQLite PRAGMA)."""

    lastrowid = None
    rowcount = -1
    description = None

    def __init__(self, rows: list[tuple[Any, ...]] | None = None,
                 name: str = "value") -> None:
        self._rows = rows or []
        if rows is not None:
            self.description = [(name, None, None, None, None, None, None)]

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


class PgConnection:
    """A psycopg connection that takes SQLite-dialect statements."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def _pragma(self, sql: str) -> Any:
        body = sql.strip().rstrip(";")[len("PRAGMA"):].strip().lower()
        if body == "user_version":
            row = self.raw.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
            return _Empty([(row[0] if row else 0,)], "user_version")
        if body.startswith("user_version"):
            version = int(body.split("=", 1)[1])
            self.raw.execute("UPDATE schema_version SET version = %s WHERE id = 1", (version,))
            return _Empty()
        if body.startswith("wal_checkpoint"):
            return _Empty([(0, 0, 0)])
        return _Empty()  # journal, cache and checkpoint settings: the server's business

    def execute(self, sql: str, params: Any = ()) -> Any:
        if sql.lstrip()[:6].upper() == "PRAGMA":
            try:
                return self._pragma(sql)
            except psycopg.Error as exc:
                raise _as_sqlite_error(exc) from exc
        named = isinstance(params, Mapping)
        has_params = bool(params)
        statement = translate(sql, named, has_params)
        # Long parameter lists (IN lists, multi-row VALUES) are planned each time: a plan
        # kept from when the table was small would scan it whole once it has grown.
        prepare = False if has_params and len(params) > _PLANNED_EACH_TIME else None
        try:
            cursor = self.raw.execute(statement.sql, params if has_params else None,
                                      prepare=prepare)
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        if statement.returns_id:
            row = cursor.fetchone()
            return PgCursor(cursor, None if row is None else int(row[0]), hide_rows=True)
        return PgCursor(cursor)

    def executemany(self, sql: str, seq: Any) -> Any:
        rows = [tuple(r) if not isinstance(r, Mapping) else r for r in seq]
        if not rows:
            return _Empty()
        statement = translate(sql, isinstance(rows[0], Mapping), True)
        text = statement.sql
        if statement.returns_id:  # executemany gives no lastrowid in sqlite3 either
            text = text[: -len(" RETURNING id")]
        try:
            with self.raw.cursor() as cursor:
                cursor.executemany(text, rows)
                count = cursor.rowcount
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        done = _Empty()
        done.rowcount = count
        return done

    def commit(self) -> None:
        if self.in_transaction:
            self.raw.execute("COMMIT")

    def rollback(self) -> None:
        if self.in_transaction:
            self.raw.execute("ROLLBACK")

    def close(self) -> None:
        self.raw.close()

    def __del__(self) -> None:
        # The thread that owned it ended: end its server session too.
        with suppress(Exception):
            self.raw.close()


def connect(target: PgTarget) -> PgConnection:
    """A connection to ``target``; sqlite3.OperationalError (one sentence naming the
    server, never the password) when it cannot be made."""
    try:
        raw = psycopg.connect(target.conninfo(), autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or ["no reason given"])[-1]
        if target.password:
            reason = reason.replace(target.password, "***")
        raise DatabaseUnreachable(
            f"cannot connect to the PostgreSQL database {target.display}: {reason}") from None
    raw.adapters.register_dumper(bool, _BoolAsInteger)
    raw.adapters.register_loader("numeric", _LooseNumeric)
    return PgConnection(raw)


_PLANNED_EACH_TIME = 32  # parameters
_BEGIN_WRITER = f"BEGIN; SELECT pg_advisory_xact_lock({int(WRITER_LOCK)})"


class PgStore(Store):
    """Thread-local connections to one PostgreSQL database, migrated on open.

    A Store to its callers (the same methods, the same cursor shapes); none of the SQLite
    machinery of the base class runs."""

    dialect = "postgresql"

    def __init__(self, target: PgTarget, *, migrate_schema: bool = True) -> None:
        self.target = target
        # Named in messages where SQLite names its file: the URL, without a password.
        self.path = target.display  # type: ignore[assignment]
        self.audit_key: bytes | None = None
        self.audit_key_source: str | None = None
        self._local = threading.local()
        # Weakly: a thread that ends takes its connection with it (as sqlite3's), so a
        # long `serve` that starts threads does not pile up server connections.
        self._all: weakref.WeakSet[PgConnection] = weakref.WeakSet()
        self._all_lock = threading.Lock()
        if migrate_schema:
            try:
                migrate(self.pg.raw, target.display)
            except psycopg.Error as exc:
                raise _as_sqlite_error(exc) from exc

    @property
    def conn(self) -> sqlite3.Connection:
        # The adapter answers every call this codebase makes on a sqlite3 connection.
        return cast(sqlite3.Connection, self.pg)

    @property
    def pg(self) -> PgConnection:
        """This thread's connection, as itself."""
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is None or conn.raw.closed:
            conn = connect(self.target)
            self._local.conn = conn
            with self._all_lock:
                self._all.add(conn)
        return conn

    # execute, one, rows and scalar are the base class's: they go through ``conn``.

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        conn = self.pg
        if conn.in_transaction:  # nested: join the outer transaction
            yield self.conn
            return
        try:
            # One round trip for both (no parameters: the simple protocol takes a list).
            conn.raw.execute(_BEGIN_WRITER)
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        try:
            yield self.conn
        except BaseException:
            # A lost connection has no transaction left to roll back: the first error is
            # the one to report.
            with suppress(psycopg.Error):
                if not conn.raw.closed and conn.in_transaction:
                    conn.raw.execute("ROLLBACK")
            raise
        else:
            try:
                conn.raw.execute("COMMIT")
            except psycopg.Error as exc:
                raise _as_sqlite_error(exc) from exc

    @contextmanager
    def bulk_writes(self) -> Iterator[None]:
        yield  # no WAL checkpoints to hold back: the server schedules its own

    def checkpoint_in_background(self) -> threading.Thread | None:
        return None  # the server checkpoints on its own

    def close(self) -> None:
        conn: PgConnection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._all_lock:
                self._all.discard(conn)

    def close_all(self) -> None:
        """Every thread's connection (tests and shutdown)."""
        with self._all_lock:
            conns, self._all = list(self._all), weakref.WeakSet()
        for conn in conns:
            conn.close()
        self._local = threading.local()

