"""What may stand at the database's path before SQLite opens it.

SQLite follows a symbolic link at the database path (its -wal and -shm files then live
beside the link's target) and creates a missing target through a dangling link. So a link
planted at the path would have rostersync create, migrate and overwrite a file of the
link-maker's choosing. The rules, checked before the file is created and before every
connection opens:

- a dangling link is refused: the database is never created through a link;
- a link is followed only to a regular file owned by the user running rostersync that is
  already a rostersync database (SQLite's header, a schema version, our tables): operators
  move databases to other volumes and leave a link behind;
- the files SQLite keeps beside the database (-wal, -shm, -journal) must not be links and
  must belong to the database file's owner: a WAL or hot journal planted by someone else
  would be replayed into the database, a link would redirect SQLite's writes;
- whatever is at the path must be a regular file.

Checking and then opening leaves a window in which someone who can write to the folder
could swap a file; a database folder others can write to is unsafe in any case.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

SQLITE_MAGIC = b"SQLite format 3\x00"
# The header's user_version (big-endian, offset 60): our schema version, 1 or more.
USER_VERSION_OFFSET = 60
SIBLING_SUFFIXES = ("-wal", "-shm", "-journal")
# Tables every rostersync database has had since its first schema.
OUR_TABLES = frozenset({"people", "accounts", "ops", "runs"})


class DatabasePathError(Exception):
    """What stands at the database path (or beside it) must not be opened; one sentence."""


def checked_path(path: Path) -> Path:
    """The file to hand SQLite for ``path`` (the link's target when ``path`` is an allowed
    link), after the rules above; raises DatabasePathError naming the path otherwise."""
    if os.path.islink(path):
        real = _allowed_link_target(path)
    else:
        real = path
        try:
            info = os.stat(path)
        except FileNotFoundError:
            info = None
        if info is not None and not stat.S_ISREG(info.st_mode):
            raise DatabasePathError(f"the database path {path} is not a regular file; "
                                    "point database.path at a file")
    _check_siblings(real, path)
    return real


def _allowed_link_target(link: Path) -> Path:
    target = os.readlink(link)
    if not os.path.exists(link):
        raise DatabasePathError(
            f"the database path {link} is a symbolic link to {target}, which does not exist; "
            "rostersync never creates its database through a link (remove the link, or "
            "point database.path at the real file)")
    real = Path(os.path.realpath(link))
    info = os.stat(real)
    if not stat.S_ISREG(info.st_mode):
        raise DatabasePathError(f"the database path {link} is a symbolic link to {real}, "
                                "which is not a regular file")
    if info.st_uid != os.getuid():
        raise DatabasePathError(
            f"the database path {link} is a symbolic link to {real}, which belongs to "
            f"uid {info.st_uid}, not to the user running rostersync (uid {os.getuid()}); "
            "a link is followed only to a database of the same user")
    why = _not_ours(real)
    if why:
        raise DatabasePathError(
            f"the database path {link} is a symbolic link to {real}, which {why}; "
            "rostersync follows a link only to an existing rostersync database, so as not "
            "to overwrite another file")
    return real


def _not_ours(real: Path) -> str | None:
    """Why the file at ``real`` is not a rostersync database, or None. Reads the header
    first so that no SQLite connection touches a file that is not a database at all."""
    with open(real, "rb") as fh:
        header = fh.read(100)
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        return "is empty" if not header else "is not an SQLite database"
    if int.from_bytes(header[USER_VERSION_OFFSET:USER_VERSION_OFFSET + 4], "big") < 1:
        return "is an SQLite database without a rostersync schema"
    try:
        conn = sqlite3.connect(f"{real.as_uri()}?mode=ro", uri=True)
        try:
            names = {row[0] for row in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"cannot be read as an SQLite database ({exc})"
    missing = OUR_TABLES - names
    if missing:
        return f"is an SQLite database without rostersync's tables ({', '.join(sorted(missing))})"
    return None


def _check_siblings(real: Path, named: Path) -> None:
    try:
        owner = os.stat(real).st_uid
    except FileNotFoundError:
        owner = os.getuid()  # about to be created by this process
    for suffix in SIBLING_SUFFIXES:
        sibling = Path(f"{real}{suffix}")
        try:
            info = os.lstat(sibling)
        except FileNotFoundError:
            continue
        where = f"{sibling} (beside the database {named})"
        if stat.S_ISLNK(info.st_mode):
            raise DatabasePathError(
                f"{where} is a symbolic link; SQLite would write through it, so nothing was "
                "opened (remove the link)")
        if not stat.S_ISREG(info.st_mode):
            raise DatabasePathError(f"{where} is not a regular file; nothing was opened")
        if info.st_uid != owner:
            raise DatabasePathError(
                f"{where} belongs to uid {info.st_uid}, not to the database's owner "
                f"(uid {owner}); SQLite would replay it into the database, so nothing was "
                "opened (remove it if no rostersync process is running)")
