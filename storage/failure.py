"""Storage failures: the database could not be written or read (a full disk, an I/O
error, a read-only or vanished file). They are expected failures of the machine, not bugs:
the operator gets one sentence naming the database and what SQLite said, never a
traceback, and the runs table (when it can still be written) remembers them so that
``status`` stays CRITICAL until a run succeeds."""

from __future__ import annotations

import os
import sqlite3
from datetime import datetime
from typing import Any

from rostersync.storage import lease as lease_store
from rostersync.storage.db import Store

STORAGE = "storage"  # the error class of a run that a storage failure stopped

# SQLite's primary result codes that mean the file or the disk failed, with the words an
# operator acts on (extended codes such as SQLITE_IOERR_WRITE share their primary's).
_CAUSES = {
    "SQLITE_FULL": "the disk holding it is full",
    "SQLITE_IOERR": "the disk reported an I/O error",
    "SQLITE_READONLY": "it cannot be written (read-only file, folder or disk)",
    "SQLITE_CANTOPEN": "it cannot be opened (missing folder or no permission)",
    "SQLITE_CORRUPT": "the file is damaged",
    "SQLITE_NOTADB": "the file is not a SQLite database",
    # The PostgreSQL store (storage/pg_store.py) names these on the errors it raises.
    "PG_UNREACHABLE": "the database server could not be reached or closed the connection",
    "PG_RESOURCES": "the database server ran out of a resource (disk, memory, connections)",
}
# Older SQLite bindings give no error name: the message text stands in.
_MESSAGES = {
    "database or disk is full": "SQLITE_FULL",
    "disk i/o error": "SQLITE_IOERR",
    "attempt to write a readonly database": "SQLITE_READONLY",
    "unable to open database file": "SQLITE_CANTOPEN",
    "database disk image is malformed": "SQLITE_CORRUPT",
    "file is not a database": "SQLITE_NOTADB",
}


class StorageFailure(Exception):
    """The database failed underneath a command; ``str()`` is one sentence."""

    def __init__(self, path: str | os.PathLike[str], code: str, detail: str) -> None:
        self.path = str(path)
        self.code = code
        self.detail = detail
        super().__init__(f"storage failure: the database {self.path} could not be used "
                         f"because {_CAUSES[code]} ({code}: {detail})")


def primary_code(exc: BaseException) -> str | None:
    """The storage failure's SQLite code (``SQLITE_FULL`` ...), or None for any other
    error (a busy database, a bug in a statement): pure, for tests and callers alike."""
    if not isinstance(exc, sqlite3.Error):
        return None
    name = getattr(exc, "sqlite_errorname", None) or ""
    for code in _CAUSES:
        if name == code or name.startswith(code + "_"):
            return code
    return _MESSAGES.get(str(exc).strip().lower())


def as_storage_failure(exc: BaseException, path: str | os.PathLike[str]) -> StorageFailure | None:
    """``exc`` as a StorageFailure on ``path`` when it is one, else None."""
    if isinstance(exc, StorageFailure):
        return exc
    code = primary_code(exc)
    return StorageFailure(path, code, str(exc)) if code else None


def unresolved(store: Store, now: datetime) -> dict[str, Any] | None:
    """What keeps ``status`` CRITICAL after a storage failure, or None: the newest run that
    a storage failure stopped when no run has succeeded since, or a run still marked
    running whose process is gone (it could not even record how it ended: on a full disk
    nothing can be written). A dry run takes no lease and writes nothing that matters."""
    last_ok = store.scalar("SELECT max(id) FROM runs WHERE status = 'succeeded' "
                           "AND dry_run = 0") or 0
    rows = store.rows("SELECT id, status, started_at, finished_at, message FROM runs "
                      "WHERE id > ? AND dry_run = 0 AND (error_class = ? OR status = 'running') "
                      "ORDER BY id DESC", (last_ok, STORAGE))
    for row in rows:
        if row["status"] != "running":
            return {**row, "recorded": True}
        holder = lease_store.current(store, now)
        if holder is None or lease_store.holder_gone(holder):
            return {**row, "recorded": False}
    return None


def unresolved_reason(failure: dict[str, Any]) -> str:
    """The status line for ``unresolved``: one sentence naming the run."""
    if failure["recorded"]:
        return (f"run {failure['id']} was stopped by a storage failure at "
                f"{failure['finished_at']} and no run has succeeded since: "
                f"{failure['message']}")
    return (f"run {failure['id']} (started {failure['started_at']}) ended without recording "
            "its outcome (a storage failure or a killed process); the next run reads the "
            "LMS before re-sending any operation left unconfirmed")
