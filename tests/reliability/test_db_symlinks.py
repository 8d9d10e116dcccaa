"""A symbolic link at the database path, or beside it (issue 17, "not yet tried").

SQLite follows a link at the database path and creates a missing target through a dangling
one; its -wal, -shm and -journal files are replayed into the database. Each command that
opens the database (`sync`, `status`, `serve`, `console`, and what `init` writes beside
the config) must refuse, in one sentence naming the path, anything that would make it
create, migrate or overwrite a file it does not own; a link to a rostersync database of
the same user is followed (a database moved to another volume). Real SQLite files and the
real command line; nothing is mocked.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from rostersync.console.cli import main
from rostersync.storage.db import Store
from rostersync.storage.db_path import DatabasePathError, checked_path
from tests.reliability import figures
from tests.support import TOKEN_ENV, World, write_config

OPENERS = ("sync", "status", "serve", "console")
OTHER_UID = 54321
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")


@pytest.fixture
def config(tmp_path: Path) -> Path:
    os.environ[TOKEN_ENV] = "not-used-by-these-tests"
    csv_path = World.generate(5).write(tmp_path / "employees.csv")
    # Port 9 (discard): nothing may reach the LMS before the path is checked anyway.
    return write_config(tmp_path, "http://127.0.0.1:9/scim/v2", csv_path)


def run(capsys, config: Path, db: Path, command: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main([command, "--config", str(config), "--db", str(db)])
    return code, capsys.readouterr().err


def refused_by_every_opener(capsys, config: Path, db: Path, words: str) -> None:
    for command in OPENERS:
        code, err = run(capsys, config, db, command)
        assert code == 2, (command, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, (command, err)
        assert str(db) in err and words in err, (command, err)
        figures.add("symlinks: commands refused in one sentence")


def rostersync_db(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    store = Store(path)
    store.execute("INSERT OR REPLACE INTO job_state (name, state, since) "
                  "VALUES ('main', 'active', 'x')")
    store.close()
    return path


# -- the database path itself -------------------------------------------------------------

def test_a_dangling_link_is_never_created_through(tmp_path, capsys, config):
    elsewhere = tmp_path / "elsewhere" / "victim.db"
    elsewhere.parent.mkdir()
    link = tmp_path / "linked.db"
    link.symlink_to(elsewhere)
    refused_by_every_opener(capsys, config, link, "does not exist")
    assert not elsewhere.exists() and link.is_symlink()  # before: created and migrated


def test_a_link_to_a_file_that_is_not_ours_is_never_opened(tmp_path, capsys, config):
    def foreign_db(name: str, version: int) -> Path:
        path = tmp_path / name
        conn = sqlite3.connect(path)
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("INSERT INTO invoices VALUES (1, 9.5)")
        conn.commit()
        conn.close()
        return path

    # Another application's database: without a schema version (before: it got all of
    # rostersync's tables and version 12), and with one (before: switched to WAL).
    unversioned, versioned = foreign_db("other_app.db", 0), foreign_db("another.db", 7)
    empty, text = tmp_path / "empty.log", tmp_path / "notes.txt"
    empty.write_bytes(b"")
    text.write_text("precious notes\n" * 20)
    cases = [(unversioned, "without a rostersync schema"),
             (versioned, "without rostersync's tables"), (empty, "is empty"),
             (text, "is not an SQLite database")]
    for target, words in cases:
        before = target.read_bytes()
        link = tmp_path / f"to_{target.name}.db"
        link.symlink_to(target)
        refused_by_every_opener(capsys, config, link, words)
        # Before: the empty file became a database (308 KiB), the foreign ones changed.
        assert target.read_bytes() == before, target
        assert not Path(f"{target}-wal").exists()


def test_a_link_to_a_directory_or_a_plain_database_directory_is_refused(tmp_path, capsys,
                                                                        config):
    folder = tmp_path / "a_folder"
    folder.mkdir()
    link = tmp_path / "to_folder.db"
    link.symlink_to(folder)
    refused_by_every_opener(capsys, config, link, "not a regular file")
    refused_by_every_opener(capsys, config, folder, "not a regular file")


def test_a_link_to_our_database_of_the_same_user_is_followed(tmp_path, capsys, config):
    real = rostersync_db(tmp_path / "volume" / "rostersync.db")
    link = tmp_path / "rostersync-link.db"
    link.symlink_to(real)
    code, err = run(capsys, config, link, "status")
    assert "Traceback" not in err and "symbolic link" not in err, err
    assert code in (0, 1, 2)
    store = Store(link)
    store.execute("UPDATE job_state SET state = 'paused' WHERE name = 'main'")
    store.close()
    # The writes went to the real file (SQLite keeps its -wal beside the target).
    assert Store(real).scalar("SELECT state FROM job_state WHERE name = 'main'") == "paused"
    assert not Path(f"{link}-wal").exists()
    assert checked_path(link) == real.resolve()
    figures.add("symlinks: links to our own database followed")


@as_root
def test_a_link_to_a_database_of_another_user_is_refused(tmp_path, capsys, config):
    real = rostersync_db(tmp_path / "volume" / "rostersync.db")
    os.chown(real, OTHER_UID, OTHER_UID)
    link = tmp_path / "rostersync-link.db"
    link.symlink_to(real)
    refused_by_every_opener(capsys, config, link, f"belongs to uid {OTHER_UID}")


# -- the files SQLite keeps beside it -----------------------------------------------------

@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
@pytest.mark.parametrize("existing", [True, False], ids=["existing-db", "new-db"])
def test_a_link_beside_the_database_redirects_nothing(tmp_path, capsys, config, suffix,
                                                      existing):
    db = tmp_path / "rostersync.db"
    if existing:
        rostersync_db(db)
    victim = tmp_path / f"victim{suffix}"
    victim.write_text("precious\n")
    Path(f"{db}{suffix}").symlink_to(victim)
    # Before: SQLite's own "unable to open database file", naming nothing.
    refused_by_every_opener(capsys, config, db, f"{db}{suffix} (beside the database")
    assert victim.read_text() == "precious\n"
    dangling = tmp_path / f"dangling{suffix}"
    Path(f"{db}{suffix}").unlink()
    Path(f"{db}{suffix}").symlink_to(dangling)
    refused_by_every_opener(capsys, config, db, "is a symbolic link")
    assert not dangling.exists()


@as_root
@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_a_file_beside_the_database_planted_by_another_user_is_not_replayed(
        tmp_path, capsys, config, suffix):
    db = rostersync_db(tmp_path / "rostersync.db")
    planted = Path(f"{db}{suffix}")
    planted.write_bytes(b"\0" * 32)
    planted.chmod(0o666)
    os.chown(planted, OTHER_UID, OTHER_UID)
    # Before: opened; SQLite would have read (and for a WAL, replayed) the stranger's file.
    refused_by_every_opener(capsys, config, db, f"belongs to uid {OTHER_UID}")
    # The owner's own files beside it are fine (what every run leaves).
    os.chown(planted, os.getuid(), os.getgid())
    planted.unlink()
    Store(db).close()


def test_the_check_runs_again_when_a_connection_opens(tmp_path):
    """A link planted after the database was first opened is refused by the next thread's
    connection, not followed."""
    db = rostersync_db(tmp_path / "rostersync.db")
    store = Store(db)
    store.close()
    Path(f"{db}-journal").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DatabasePathError, match="-journal"):
        store.scalar("SELECT 1")
    assert not (tmp_path / "elsewhere").exists()


# -- the audit key beside the config ------------------------------------------------------

def test_a_link_at_the_audit_key_path_is_refused(tmp_path, capsys, config):
    key_path = config.with_suffix(".auditkey")
    chosen = tmp_path / "chosen.key"
    chosen.write_text("k" * 64 + "\n")
    chosen.chmod(0o600)
    key_path.symlink_to(chosen)
    db = tmp_path / "rostersync.db"
    for command in ("status", "sync"):
        code, err = run(capsys, config, db, command)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"the audit key file {key_path} is a symbolic link" in err, err
        figures.add("symlinks: commands refused in one sentence")
    key_path.unlink()
    key_path.symlink_to(tmp_path / "missing.key")  # dangling: init must not create through it
    capsys.readouterr()
    fresh = tmp_path / "fresh.toml"
    fresh.with_suffix(".auditkey").symlink_to(tmp_path / "missing2.key")
    code = main(["init", str(fresh)])
    assert not (tmp_path / "missing2.key").exists()
    assert code == 2 and "is a symbolic link" in capsys.readouterr().err  # before: "kept"
    code, err = run(capsys, config, db, "status")
    assert code == 2 and "is a symbolic link" in err and not (tmp_path / "missing.key").exists()
