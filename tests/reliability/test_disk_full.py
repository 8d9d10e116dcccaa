"""A full disk in the middle of a run of 200 updates, for real.

The database lives on a 64 MiB tmpfs when this process may mount one (root, as in the
sandbox); the SCIM server fills that disk to the last byte as it receives the 100th PATCH.
Where mounting is not allowed (CI as an ordinary user) the database is made "full" by
SQLite itself: the run's process opens every connection with ``PRAGMA max_page_count``
set a margin above the database's size, and the server grows the database to that limit
at the same request. Both raise SQLite's own SQLITE_FULL inside the product; the figures
say which one ran (both run where mounting is allowed).

Then: the run fails in one sentence (no traceback), ``status`` is CRITICAL before and
after the space is freed, the next run succeeds and ``status`` clears, and no user
receives the same PATCH twice (the server counts them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.sandbox.scim_server import ScimSandbox
from rostersync.storage import lease as lease_store
from rostersync.storage import runs as run_store
from rostersync.storage.db import Store
from rostersync.storage.failure import (
    STORAGE,
    StorageFailure,
    as_storage_failure,
    primary_code,
    unresolved,
)
from rostersync.sync.config import load_config
from rostersync.sync.engine import Engine
from tests.reliability import figures
from tests.scim_fixtures import SCIM_TOKEN
from tests.support import TOKEN_ENV, World, by_external_id, lms_users, write_config

PEOPLE = 210
UPDATES = 200
FILL_AT_PATCH = 100
MAX_PAGES_ENV = "ROSTERSYNC_TEST_MAX_PAGES"
# The run's process under the page limit: every SQLite connection it opens is capped.
_PAGE_LIMITED = f"""
import os, sqlite3, sys
_connect = sqlite3.connect
def _capped(*args, **kwargs):
    conn = _connect(*args, **kwargs)
    conn.execute("PRAGMA max_page_count = %d" % int(os.environ[{MAX_PAGES_ENV!r}]))
    return conn
sqlite3.connect = _capped
from rostersync.console.cli import main
sys.exit(main(sys.argv[1:]))
"""


class TmpfsDisk:
    """A small tmpfs: filling it leaves SQLite no byte to grow its WAL into."""

    kind = "tmpfs filled to the last byte"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.filler = folder / "filler"

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "rostersync.console.cli"]

    def env(self) -> dict[str, str]:
        return {}

    def prepare(self, db: Path) -> None:
        _truncate_wal(db)  # the run's WAL starts empty, so every commit must grow it
        # A reader holding its snapshot from before the run (a console left open does
        # this) keeps SQLite from restarting the WAL at a checkpoint: every commit after
        # the fill must then grow the file. Without it, whether a checkpoint happened to
        # restart the WAL before the fill decided whether the disk looked full at all.
        self._reader = sqlite3.connect(db, isolation_level=None)
        self._reader.execute("BEGIN")
        self._reader.execute("SELECT count(*) FROM sqlite_master").fetchone()

    def fill(self) -> None:
        fd = os.open(self.filler, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        try:
            for size in (1 << 20, 1 << 12, 1):
                chunk = b"\0" * size
                with contextlib.suppress(OSError):
                    while True:
                        os.write(fd, chunk)
        finally:
            os.close(fd)
        probe = os.statvfs(self.folder)
        assert probe.f_bavail == 0, "the disk still has room"

    def free(self) -> None:
        self._reader.close()
        self.filler.unlink()


class PageLimitedDisk:
    """SQLite's own size limit: max_page_count on the run's connections, reached by
    growing the database from another connection (which has no limit)."""

    kind = "SQLite max_page_count reached"
    MARGIN = 4096  # pages the run may grow by before the fill (planning takes far fewer)

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db: Path | None = None
        self.limit = 0

    def argv(self) -> list[str]:
        return [sys.executable, "-c", _PAGE_LIMITED]

    def env(self) -> dict[str, str]:
        return {MAX_PAGES_ENV: str(self.limit)}

    def prepare(self, db: Path) -> None:
        _truncate_wal(db)
        self.db = db
        with contextlib.closing(sqlite3.connect(db)) as conn:
            self.limit = conn.execute("PRAGMA page_count").fetchone()[0] + self.MARGIN

    def fill(self) -> None:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30,
                                                isolation_level=None)) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS disk_filler(b BLOB)")
            size = conn.execute("PRAGMA page_size").fetchone()[0]
            while True:
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                free = conn.execute("PRAGMA freelist_count").fetchone()[0]
                if pages >= self.limit and free == 0:
                    return
                room = max(self.limit - pages + free, 1)
                conn.execute("INSERT INTO disk_filler VALUES (zeroblob(?))",
                             (room * (size - 64),))

    def free(self) -> None:
        with contextlib.closing(sqlite3.connect(self.db, timeout=30,
                                                isolation_level=None)) as conn:
            conn.execute("DROP TABLE disk_filler")


def _truncate_wal(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextlib.contextmanager
def small_disk(folder: Path, kind: str) -> Iterator[TmpfsDisk | PageLimitedDisk]:
    folder.mkdir()
    if kind == "page_limit":
        yield PageLimitedDisk(folder)
        return
    mount = shutil.which("mount")
    if os.geteuid() != 0 or not mount or subprocess.run(
            [mount, "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(folder)],
            capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root; the page_limit case stands in for it")
    try:
        yield TmpfsDisk(folder)
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


class PatchCounter:
    """Counts the requests the LMS receives per user, and fills the disk as the n-th
    PATCH arrives (before the LMS acts on it)."""

    def __init__(self, disk: TmpfsDisk | PageLimitedDisk, fill_at: int | None) -> None:
        self.patches: Counter[str] = Counter()
        self.reads: Counter[str] = Counter()
        self._disk, self._fill_at = disk, fill_at
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str) -> None:
        if "/Users/" not in path:
            return
        user = path.rsplit("/", 1)[-1]
        with self._lock:
            if method == "GET":
                self.reads[user] += 1
            if method != "PATCH":
                return
            self.patches[user] += 1
            if sum(self.patches.values()) == self._fill_at:
                self._disk.fill()


def _status(config: Path, capsys) -> dict:
    code = main(["status", "--config", str(config), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["exit_code"] == code
    return doc


@pytest.mark.parametrize("kind", ["tmpfs", "page_limit"])
def test_disk_full_mid_run_then_space_freed(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, SCIM_TOKEN)
    # The audit key from the environment: every process of the test shares it.
    monkeypatch.setenv("ROSTERSYNC_AUDIT_KEY", "k" * 64)
    world = World.generate(PEOPLE)
    csv_path = world.write(tmp_path / "employees.csv")
    with small_disk(tmp_path / "disk", kind) as disk, ScimSandbox(token=SCIM_TOKEN) as lms:
        # One PATCH per update, so the fill lands at a known operation (SCIM Bulk packs
        # them; its unknown outcomes are read first the same way, tests/test_bulk_scim.py).
        config = write_config(disk.folder, lms.base_url, csv_path, lms={"bulk": "off"})
        db = disk.folder / "rostersync.db"
        assert main(["sync", "--config", str(config), "--json"]) == 0
        capsys.readouterr()

        changed = sorted(world.rows)[1:UPDATES + 1]
        for key in changed:
            world.rows[key]["Job Title"] = "Principal Specialist"
        world.write(csv_path)
        disk.prepare(db)
        counter = PatchCounter(disk, FILL_AT_PATCH)
        lms.on_request = counter
        failed = subprocess.run(
            [*disk.argv(), "sync", "--config", str(config), "--json"],
            env={**os.environ, **disk.env()}, capture_output=True, text=True, timeout=300)
        figures.add(f"disk full ({disk.kind}): runs stopped")

        # One sentence, exit 1, no traceback; the run report says storage.
        assert failed.returncode == 1, failed.stderr[-2000:]
        assert failed.stderr == "", failed.stderr[-2000:]  # no traceback, no noise
        report = json.loads(failed.stdout)
        assert report["status"] == "failed" and report["error_class"] == STORAGE
        assert "SQLITE_FULL" in report["message"] and "\n" not in report["message"]
        sent_before = sum(counter.patches.values())
        assert FILL_AT_PATCH <= sent_before < UPDATES  # stopped mid-run
        figures.add(f"disk full ({disk.kind}): PATCHes sent before the stop", sent_before)

        # CRITICAL while the disk is full, and still after space is freed, until a run
        # succeeds.
        assert _status(config, capsys)["exit_code"] == 2
        disk.free()
        doc = _status(config, capsys)
        assert doc["exit_code"] == 2
        assert any("storage failure" in r or "without recording" in r
                   for r in doc["reasons"]), doc["reasons"]

        # The next run, as `serve` would make it: the retry sweep applies what is due,
        # the operations the failed run left unconfirmed among them, with no listing of
        # the LMS to show which of them already arrived. Then a full run.
        counter._fill_at = None
        sweep = asyncio.run(Engine(load_config(config)).apply_due(trigger="schedule"))
        assert sweep.status == "succeeded", sweep.message
        doc = _status(config, capsys)
        assert doc["exit_code"] < 2, doc["reasons"]
        assert main(["sync", "--config", str(config), "--json"]) == 0, capsys.readouterr()
        capsys.readouterr()

        # Every change arrived, and no user received the same PATCH twice.
        users = by_external_id(lms_users(lms.base_url, SCIM_TOKEN))
        assert all(users[k][0]["title"] == "Principal Specialist" for k in changed)
        assert len(counter.patches) == UPDATES
        twice = {u: n for u, n in counter.patches.items() if n > 1}
        figures.add(f"disk full ({disk.kind}): PATCHes sent twice", len(twice))
        assert not twice, twice
        with contextlib.closing(sqlite3.connect(db)) as conn:
            unknown = conn.execute("SELECT count(*) FROM op_attempts "
                                   "WHERE outcome = 'interrupted'").fetchone()[0]
        # The run left operations whose outcome it could not record; each was read back
        # from the LMS (a GET of that user) rather than sent again.
        assert unknown > 0 and sum(counter.reads.values()) >= unknown
        figures.add(f"disk full ({disk.kind}): unknown outcomes read back", unknown)


# -- the parts, each at its edge -----------------------------------------------------------

def _sqlite_error(sql: str, limit: int | None = None) -> sqlite3.Error:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(b BLOB)")
    if limit is not None:
        conn.execute(f"PRAGMA max_page_count = {limit}")
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    raise AssertionError(f"{sql} did not fail")


def test_full_database_is_a_storage_failure_in_one_sentence(tmp_path):
    exc = _sqlite_error("INSERT INTO t VALUES (zeroblob(100000))", limit=2)
    assert primary_code(exc) == "SQLITE_FULL"
    failure = as_storage_failure(exc, tmp_path / "r.db")
    assert isinstance(failure, StorageFailure)
    assert str(failure) == (f"storage failure: the database {tmp_path / 'r.db'} could not be "
                            "used because the disk holding it is full (SQLITE_FULL: database "
                            "or disk is full)")


def test_a_bug_in_a_statement_is_not_a_storage_failure():
    assert primary_code(_sqlite_error("SELECT nope FROM t")) is None
    assert primary_code(ValueError("database or disk is full")) is None


def test_busy_database_is_not_a_storage_failure(tmp_path):
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t(x)")
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    with pytest.raises(sqlite3.OperationalError) as caught:
        other.execute("BEGIN IMMEDIATE")
    assert primary_code(caught.value) is None  # SQLITE_BUSY: wait and try, not the disk
    holder.close()
    other.close()


NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _store_with_runs(tmp_path: Path, *statuses: tuple[str, str | None]) -> Store:
    store = Store(tmp_path / "runs.db")
    for status, error_class in statuses:
        run_id = run_store.start_run(store, NOW, "full", "cli", False)
        if status != "running":
            run_store.finish_run(store, run_id, NOW, status, {}, "m", error_class)
    return store


def test_storage_failure_stays_until_a_run_succeeds(tmp_path):
    store = _store_with_runs(tmp_path, ("succeeded", None), ("failed", STORAGE))
    assert unresolved(store, NOW)["id"] == 2
    # A later run that did not succeed leaves it standing; one that did clears it.
    run_store.finish_run(store, run_store.start_run(store, NOW, "full", "cli", False), NOW,
                         "partial", {})
    assert unresolved(store, NOW)["id"] == 2
    run_store.finish_run(store, run_store.start_run(store, NOW, "full", "cli", False), NOW,
                         "succeeded", {})
    assert unresolved(store, NOW) is None


def test_a_run_left_running_counts_only_once_its_process_is_gone(tmp_path):
    store = _store_with_runs(tmp_path, ("succeeded", None), ("running", None))
    # No lease at all: the process that ran it could not even release it, or is gone.
    assert unresolved(store, NOW)["recorded"] is False
    # A live holder (this process) until its lease expires: a run in progress.
    assert lease_store.acquire(store, "me", NOW, 60) is None
    assert unresolved(store, NOW) is None
    assert unresolved(store, NOW + timedelta(seconds=59)) is None
    assert unresolved(store, NOW + timedelta(seconds=60))["id"] == 2
    # A holder on this host whose process has ended: stale at once.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    store.execute("UPDATE lease SET pid = ?", (int(dead.stdout),))
    assert unresolved(store, NOW)["id"] == 2

