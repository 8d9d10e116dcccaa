"""The throwaway PostgreSQL of tests/pg_server.py: it starts, it is gone after stop, and
a server whose test process was killed is stopped and deleted by the next start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.pg_server import PgServer, why_unavailable

pytestmark = pytest.mark.skipif(why_unavailable() is not None,
                                reason=why_unavailable() or "")

ROOT = Path(__file__).resolve().parent.parent


def test_a_server_answers_with_its_password_and_leaves_nothing():
    with PgServer() as server:
        folder = server.folder
        assert folder is not None and folder.name.startswith(f"rostersync-pg-{os.getpid()}-")
        with psycopg.connect(server.create_database("one"), password=server.password) as conn:
            assert conn.info.server_version >= 130000
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.url(), password="wrong", connect_timeout=10)
    assert not folder.exists()


def test_a_killed_test_process_leaves_no_server_behind():
    child = subprocess.Popen(
        [sys.executable, "-c", "from tests.pg_server import PgServer\n"
         "s = PgServer().start()\nprint(s.folder, flush=True)\nimport time\ntime.sleep(600)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    folder = Path(child.stdout.readline().strip())  # type: ignore[union-attr]
    pid = int((folder / "data" / "postmaster.pid").read_text().split()[0])
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert folder.exists()  # the orphan: its server still runs
    with PgServer():
        assert not folder.exists()
        assert not running(pid)


def running(pid: int) -> bool:
    """Alive and not a zombie (a container's init may not reap the stopped server)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status
