"""`rostersync doctor`'s checks of a PostgreSQL store: can we log in, is the server new
enough, may we read and write (and create, for migrations), is the schema current.
Each check is one sentence; nothing here changes the database."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import psycopg

from rostersync.storage.pg_schema import current_version
from rostersync.storage.pg_store import connect
from rostersync.storage.pg_url import PgTarget
from rostersync.storage.schema import MIGRATIONS

# json_extract and the other SQLite-compatible functions use jsonb and SQL-language
# functions that every supported release has; 13 is the oldest one still maintained
# when this was written, and the oldest tested.
MIN_SERVER_VERSION = 13


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    level: str | None = None  # "warning" where not ok is not an error


def version_finding(server_version: int, display: str) -> Finding:
    """``server_version`` as libpq gives it (150018 for 15.18): pure, tested at its edge."""
    major, minor = server_version // 10000, server_version % 10000
    text = f"PostgreSQL {major}.{minor}"
    if major < MIN_SERVER_VERSION:
        return Finding("database version", False, f"{display} runs {text}; rostersync needs "
                       f"PostgreSQL {MIN_SERVER_VERSION} or newer")
    return Finding("database version", True, f"{display} runs {text}")


def migration_finding(version: int | None, display: str) -> Finding:
    newest = len(MIGRATIONS)
    if version is None:
        return Finding("database migrations", False, f"{display} has no rostersync schema "
                       "yet: the first command creates it", "warning")
    if version > newest:
        return Finding("database migrations", False, f"{display} has schema version "
                       f"{version}, newer than this rostersync ({newest}); upgrade rostersync")
    if version < newest:
        return Finding("database migrations", False, f"{display} has schema version "
                       f"{version} of {newest}: the next command migrates it", "warning")
    return Finding("database migrations", True, f"{display} has schema version {version} "
                   "(current)")


# has_table_privilege with a list is true when ANY of them is held: each asked alone.
_PRIVILEGES = """
SELECT has_schema_privilege(current_schema(), 'CREATE'),
       coalesce(array_agg(c.relname ORDER BY c.relname) FILTER (WHERE NOT (
           has_table_privilege(c.oid, 'SELECT') AND has_table_privilege(c.oid, 'INSERT')
           AND has_table_privilege(c.oid, 'UPDATE')
           AND has_table_privilege(c.oid, 'DELETE'))), '{}')
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'
"""


def permission_finding(can_create: bool, denied: list[str], migrated: bool,
                       display: str) -> Finding:
    if denied:
        shown = ", ".join(denied[:5]) + (" ..." if len(denied) > 5 else "")
        return Finding("database permissions", False, f"the login of {display} cannot read "
                       f"and write the tables {shown}; grant SELECT, INSERT, UPDATE, DELETE")
    if not can_create:
        if not migrated:
            return Finding("database permissions", False, f"the login of {display} may not "
                           "create tables in its schema, and the schema is not created yet; "
                           "grant CREATE on the schema")
        return Finding("database permissions", False, f"the login of {display} reads and "
                       "writes every table but may not create in its schema: a rostersync "
                       "upgrade that migrates will fail until CREATE is granted", "warning")
    return Finding("database permissions", True, f"the login of {display} reads, writes and "
                   "creates in its schema")


def check(target: PgTarget) -> list[Finding]:
    """Every finding, or the one that stopped the others (no connection)."""
    try:
        conn = connect(target)
    except sqlite3.OperationalError as exc:
        return [Finding("database", False, str(exc))]
    try:
        raw = conn.raw
        findings = [Finding("database", True, f"connected to {target.display}"),
                    version_finding(raw.info.server_version, target.display)]
        version = current_version(raw)
        row = raw.execute(_PRIVILEGES).fetchone()  # an aggregate: always one row
        assert row is not None
        can_create, denied = row
        findings.append(permission_finding(bool(can_create), list(denied),
                                           version is not None, target.display))
        findings.append(migration_finding(version, target.display))
        return findings
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or ["no reason given"])[0]
        return [Finding("database", False, f"{target.display} answered with an error: "
                        f"{reason}")]
    finally:
        conn.close()
