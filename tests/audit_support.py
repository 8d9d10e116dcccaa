"""An installation made by `rostersync init`, audit entries written through the CLI, and an
attacker who can edit the database file with sqlite3 but cannot read the audit key."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from rostersync.console.cli import main


class Install:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "rostersync.toml"
        self.db = folder / "rostersync.db"
        self.key_file = folder / "rostersync.auditkey"
        assert main(["init", str(self.config)]) == 0

    def cli(self, capsys, *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([*argv, "--config", str(self.config)])
        out = capsys.readouterr()
        return code, out.out, out.err

    def cli_init(self, capsys, *argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["init", str(self.config), *argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    def act(self, capsys, times: int) -> None:
        """``times`` audited operator actions (pause and resume touch no server)."""
        for i in range(times):
            code, _out, err = self.cli(capsys, "pause" if i % 2 == 0 else "resume",
                                       "--reason", f"window {i}")
            assert code == 0, err

    def anchor(self, capsys) -> str:
        _code, out, _err = self.cli(capsys, "status", "--json")
        return json.loads(out)["audit_head"]["anchor"]


def attacker(db: Path) -> sqlite3.Connection:
    """A plain sqlite3 connection with the append-only triggers dropped."""
    conn = sqlite3.connect(db, isolation_level=None)
    for name in ("audit_no_update", "audit_no_delete", "audit_checkpoints_no_update",
                 "audit_checkpoints_no_delete"):
        conn.execute(f"DROP TRIGGER IF EXISTS {name}")
    return conn


def unkeyed_hash(prev: str, at: str, actor: str, action: str, target: str | None,
                 detail: str) -> str:
    """What anyone can compute: the chain's link as it was before it was keyed."""
    blob = json.dumps([prev, at, actor, action, target, detail], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def rewrite_from(conn: sqlite3.Connection, first_id: int) -> None:
    """Recompute every link from ``first_id`` on, as an attacker without the key can."""
    prev = conn.execute("SELECT hash FROM audit WHERE id < ? ORDER BY id DESC LIMIT 1",
                        (first_id,)).fetchone()
    prev = prev[0] if prev else "0" * 64
    rows = conn.execute("SELECT id, at, actor, action, target, detail FROM audit "
                        "WHERE id >= ? ORDER BY id", (first_id,)).fetchall()
    for entry_id, at, actor, action, target, detail in rows:
        digest = unkeyed_hash(prev, at, actor, action, target, detail)
        conn.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE id = ?",
                     (prev, digest, entry_id))
        prev = digest
