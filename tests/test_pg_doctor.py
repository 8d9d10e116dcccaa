"""`rostersync doctor` on a PostgreSQL store: login, server version, permissions and
migrations, each one sentence, against a real server (tests/pg_server.py)."""

from __future__ import annotations

import json
import re

import psycopg
import pytest

from rostersync.console.cli import main
from rostersync.storage.pg_doctor import MIN_SERVER_VERSION, version_finding
from rostersync.storage.pg_store import PgStore
from rostersync.storage.pg_url import target_from
from rostersync.storage.schema import MIGRATIONS


def on_database(workspace, url: str) -> None:
    """The workspace's config, its [database] pointing at ``url``."""
    text = workspace.config_path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(path|url) = .*\n(?=\n\[hris\])", f'url = "{url}"\n', text, count=1)
    workspace.config_path.write_text(text, encoding="utf-8")
    workspace.config_path.chmod(0o600)  # doctor warns about a config others can read


def doctor(capsys, workspace) -> tuple[int, dict[str, dict[str, str]], str]:
    code = main(workspace.args("doctor", "--json"))
    captured = capsys.readouterr()
    checks = {c["check"]: c for c in json.loads(captured.out)["checks"]}
    return code, checks, captured.out + captured.err


def admin(url: str, sql: str) -> None:
    import os
    with psycopg.connect(url, password=os.environ["ROSTERSYNC_DB_PASSWORD"],
                         autocommit=True) as conn:
        conn.execute(sql)


def test_a_current_database_passes_every_check(capsys, workspace, pg_database):
    PgStore(target_from(pg_database)).close_all()  # migrated
    on_database(workspace, pg_database)
    code, checks, _ = doctor(capsys, workspace)
    assert code == 0, [c for c in checks.values() if c["result"] != "ok"]
    assert checks["database"]["detail"] == f"connected to {pg_database}"
    assert re.fullmatch(rf"{re.escape(pg_database)} runs PostgreSQL 1\d\.\d+",
                        checks["database version"]["detail"])
    assert checks["database permissions"]["result"] == "ok"
    assert checks["database migrations"]["detail"] == (
        f"{pg_database} has schema version {len(MIGRATIONS)} (current)")
    assert not any(k.startswith("permissions ") and "rostersync.db" in k for k in checks)


def test_migrations_missing_behind_and_ahead(capsys, workspace, pg_database):
    on_database(workspace, pg_database)
    code, checks, _ = doctor(capsys, workspace)  # an empty database: created on first use
    assert (code, checks["database migrations"]["result"]) == (1, "warning")
    assert "no rostersync schema yet" in checks["database migrations"]["detail"]
    PgStore(target_from(pg_database)).close_all()
    newest = len(MIGRATIONS)
    for version, result, words in [(newest - 1, "warning", f"{newest - 1} of {newest}"),
                                   (newest + 1, "error", "newer than this rostersync")]:
        admin(pg_database, f"UPDATE schema_version SET version = {version}")
        code, checks, _ = doctor(capsys, workspace)
        assert checks["database migrations"]["result"] == result
        assert words in checks["database migrations"]["detail"]
        assert code == (1 if result == "warning" else 2)


def test_permissions_a_login_without_create_or_without_a_table(capsys, workspace,
                                                               pg_database, monkeypatch):
    PgStore(target_from(pg_database)).close_all()
    admin(pg_database, "CREATE ROLE clerk LOGIN PASSWORD 'clerk-secret'")
    admin(pg_database, "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                       "TO clerk")
    admin(pg_database, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    monkeypatch.setenv("ROSTERSYNC_DB_PASSWORD", "clerk-secret")
    on_database(workspace, pg_database.replace("rostersync@", "clerk@"))
    code, checks, _ = doctor(capsys, workspace)
    assert checks["database permissions"]["result"] == "warning"
    assert "may not create in its schema" in checks["database permissions"]["detail"]
    monkeypatch.undo()
    admin(pg_database, "REVOKE DELETE ON audit FROM clerk")
    monkeypatch.setenv("ROSTERSYNC_DB_PASSWORD", "clerk-secret")
    code, checks, _ = doctor(capsys, workspace)
    assert checks["database permissions"]["result"] == "error", checks["database permissions"]
    assert code == 2
    assert "cannot read and write the tables audit;" in checks["database permissions"]["detail"]


def test_a_wrong_password_is_one_sentence(capsys, workspace, pg_database, monkeypatch):
    on_database(workspace, pg_database)
    monkeypatch.setenv("ROSTERSYNC_DB_PASSWORD", "wrong-horse-battery")
    code, checks, everything = doctor(capsys, workspace)
    assert code == 2
    detail = checks["database"]["detail"]
    assert detail.startswith(f"cannot connect to the PostgreSQL database {pg_database}: ")
    assert "password authentication failed" in detail and "\n" not in detail
    assert "wrong-horse-battery" not in everything and "Traceback" not in everything
    # Any other command says the same, as one line on stderr, with the usage-error code.
    assert main(workspace.args("status")) == 2
    err = capsys.readouterr().err
    assert "password authentication failed" in err and "wrong-horse-battery" not in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("server_version, ok", [
    (MIN_SERVER_VERSION * 10000, True),              # exactly the oldest supported
    (MIN_SERVER_VERSION * 10000 - 1, False),         # just below: the last release before
    (MIN_SERVER_VERSION * 10000 + 1, True),          # just above
])
def test_the_server_version_threshold(server_version, ok):
    found = version_finding(server_version, "postgresql://u@h/db")
    assert found.ok is ok
    assert ("needs PostgreSQL 13 or newer" in found.detail) is not ok


def test_the_audit_key_is_compared_with_the_seal_on_postgresql(capsys, workspace,
                                                                pg_database):
    """A second node on the same PostgreSQL: doctor tells it whether its key is the one
    the shared audit log was sealed with."""
    from tests.support import give_audit_key

    on_database(workspace, pg_database)
    key_file = give_audit_key(workspace.config_path)
    assert main(workspace.args("pause", "--reason", "seal the log")) == 0
    capsys.readouterr()
    _code, checks, _ = doctor(capsys, workspace)
    assert checks["audit key"] == {"check": "audit key", "result": "ok",
                                   "detail": "it is the key the audit log was sealed with"}
    key_file.write_text("c" * 64)
    code, checks, _ = doctor(capsys, workspace)
    assert code == 2
    assert checks["audit key"]["detail"] == (
        f"the audit key from {key_file} is not the key the audit log in {pg_database} "
        "was sealed with")
