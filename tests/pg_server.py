"""A throwaway PostgreSQL for tests: Debian's server binaries, a temporary folder, loopback.

``PgServer`` runs initdb and pg_ctl from /usr/lib/postgresql/<version>/bin on a free
port of 127.0.0.1 with password (scram) authentication, and deletes everything on stop.
PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user
(through runuser) with the folder handed to it.

Fixtures: ``pg_url`` (session: one server per test process, the password exported in
``ROSTERSYNC_DB_PASSWORD`` as the config reads it) and ``pg_database`` (a fresh database
per test, so tests never see each other's rows). Both skip with one reason when the
binaries are missing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

PASSWORD_ENV = "ROSTERSYNC_DB_PASSWORD"
SUPERUSER = "rostersync"
# Durability is worth nothing in a throwaway cluster; these make start-up and commits fast.
FAST_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "16MB",
    "max_connections": "60",
    "log_min_messages": "warning",
}


def find_bindir(preferred: str = "15") -> Path | None:
    """The folder holding initdb and pg_ctl: version ``preferred`` if installed, else the
    newest installed; None when PostgreSQL's server package is absent."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name)
                   if Path(p).parent.parent.name.isdigit() else 0)
    for path in found:
        if Path(path).parent.parent.name == preferred:
            return Path(path).parent
    return Path(found[-1]).parent if found else None


def why_unavailable() -> str | None:
    """One sentence saying why no server can be started here, or None when one can."""
    if find_bindir() is None:
        return ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin/initdb); "
                "install the Debian package 'postgresql' (.ci/run does as root)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _user_exists("postgres")):
        return "running as root needs runuser and a 'postgres' user to start PostgreSQL"
    return None


def _user_exists(name: str) -> bool:
    import pwd
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


FOLDER_PREFIX = "rostersync-pg-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PgServer:
    """One PostgreSQL cluster in a temporary folder; a context manager."""

    def __init__(self, bindir: Path | None = None,
                 settings: dict[str, str] | None = None) -> None:
        found = bindir or find_bindir()
        if found is None:
            raise RuntimeError(why_unavailable() or "PostgreSQL is not installed")
        self.bindir = found
        self.password = secrets.token_urlsafe(18)
        self.settings = {**FAST_SETTINGS, **(settings or {})}
        self.port = 0
        self.folder: Path | None = None
        self._as_root = os.geteuid() == 0

    # -- running the server binaries as a user PostgreSQL accepts -----------------------

    def _run(self, *argv: str) -> None:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-800:]}")

    def _hand_over(self, path: Path) -> None:
        if self._as_root:
            shutil.chown(path, "postgres", "postgres")

    @property
    def data(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    def start(self) -> PgServer:
        self.reap_orphans()
        self.folder = Path(tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-"))
        self._hand_over(self.folder)
        pwfile = self.folder / "pw"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        os.chmod(pwfile, 0o600)
        self._hand_over(pwfile)
        # C collation: text sorts by bytes, as in SQLite, so fixed-width UTC timestamps
        # and ids order the same on both stores.
        self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C", "--no-sync")
        pwfile.unlink()
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
        for attempt in range(5):  # another process may take the free port first
            self.port = _free_port()
            try:
                self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data),
                          "-l", str(self.folder / "server.log"),
                          "-o", f"{options} -p {self.port} -k {self.folder}")
                return self
            except RuntimeError:
                if attempt == 4:
                    raise
        return self

    def reap_orphans(self) -> None:
        """Servers left by test processes that were killed before their teardown: their
        folder names the process; stopped and deleted, so none piles up in /tmp."""
        for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*-*"):
            owner = folder.name[len(FOLDER_PREFIX):].split("-", 1)[0]
            if not owner.isdigit() or _alive(int(owner)):
                continue
            if (folder / "data" / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError):
                    self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D",
                              str(folder / "data"))
            shutil.rmtree(folder, ignore_errors=True)

    def stop(self) -> None:
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            # Already gone, or not answering: the folder goes either way.
            with contextlib.suppress(RuntimeError):
                self._run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(self.data))
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses and databases --------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        """The URL a config names: no password in it (that comes from the environment)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """One statement outside a transaction (CREATE/DROP DATABASE need that)."""
        import psycopg
        with psycopg.connect(self.url(), password=self.password, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self, name: str) -> str:
        self.admin(f'CREATE DATABASE "{name}"')
        return self.url(name)


_databases = count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(reason)
    with PgServer() as server:
        before = os.environ.get(PASSWORD_ENV)
        os.environ[PASSWORD_ENV] = server.password
        try:
            yield server
        finally:
            if before is None:
                os.environ.pop(PASSWORD_ENV, None)
            else:
                os.environ[PASSWORD_ENV] = before


@pytest.fixture(scope="session")
def pg_url(pg_server: PgServer) -> str:
    """The server's maintenance database; the password is in ROSTERSYNC_DB_PASSWORD."""
    return pg_server.url()


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """The URL of a database created for this test alone, dropped after it."""
    name = f"t{os.getpid()}_{next(_databases)}"
    url = pg_server.create_database(name)
    os.environ[PASSWORD_ENV] = pg_server.password  # a test may have changed it
    yield url
    with contextlib.suppress(Exception):
        pg_server.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the suite's `--database=pg` switch: configs written by tests.support.write_config
# name a fresh database on one server per test process (started on first use) ----------

SWITCH_ENV = "ROSTERSYNC_TEST_DATABASE"
_shared: PgServer | None = None


def switched_to_pg() -> bool:
    return os.environ.get(SWITCH_ENV) == "pg"


def fresh_database_url() -> str:
    """A new database on the process's shared server; its password is exported."""
    global _shared
    if _shared is None:
        reason = why_unavailable()
        if reason is not None:
            pytest.skip(reason)
        import atexit
        _shared = PgServer().start()
        atexit.register(_shared.stop)
    os.environ[PASSWORD_ENV] = _shared.password
    return _shared.create_database(f"w{os.getpid()}_{next(_databases)}")


# Settings for timing, not for tests: durable commits to the WAL on disk but without a
# flush per commit (as SQLite's synchronous=NORMAL), and a realistic buffer cache.
BENCH_SETTINGS = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "off",
                  "shared_buffers": "256MB", "max_wal_size": "2GB"}


def main() -> None:
    """`python -m tests.pg_server`: a server for the benchmarks (bench.reconcile and
    bench.apply --database-url), until Enter or Ctrl-C; then deleted."""
    reason = why_unavailable()
    if reason is not None:
        raise SystemExit(reason)
    with PgServer(settings=BENCH_SETTINGS) as server:
        print(f"export {PASSWORD_ENV}={server.password}")
        print(f"--database-url {server.url('rostersync_bench')}", flush=True)
        with contextlib.suppress(KeyboardInterrupt, EOFError):
            input()


if __name__ == "__main__":
    main()
