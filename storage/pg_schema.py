"""The schema on PostgreSQL: the same migrations as SQLite (storage/schema.py), translated,
versioned in a one-row ``schema_version`` table where SQLite has PRAGMA user_version.

Before the first migration the store defines what the SQLite statements rely on:
json_extract (on the TEXT columns holding JSON), group_concat, sum over a comparison,
two-argument max/min, a case-insensitive collation for COLLATE NOCASE, and the function
the append-only triggers call. Each is IMMUTABLE where the SQLite one is deterministic,
so the expression indexes of migration 9 can be built on it.
"""

from __future__ import annotations

from typing import Any, Protocol

from rostersync.storage.pg_translate import translate
from rostersync.storage.schema import MIGRATIONS, _statements

# Keys of the transaction-level advisory locks: migrations (any process opening the
# database migrates it first) and the store's one-writer-at-a-time transactions.
MIGRATE_LOCK = 0x726F7374_0001
WRITER_LOCK = 0x726F7374_0002

PRELUDE: list[str] = [
    "CREATE TABLE IF NOT EXISTS schema_version (id INTEGER PRIMARY KEY CHECK (id = 1), "
    "version INTEGER NOT NULL)",
    "INSERT INTO schema_version(id, version) VALUES (1, 0) ON CONFLICT DO NOTHING",
    # json_extract(text, '$.a.b', ...): one path gives the value as text (NULL for a JSON
    # null or a missing key); several give a JSON array of them, as SQLite does.
    """CREATE OR REPLACE FUNCTION json_extract(doc text, VARIADIC paths text[])
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT CASE WHEN cardinality(paths) = 1
        THEN doc::jsonb #>> string_to_array(nullif(substr(paths[1], 3), ''), '.')
        ELSE (SELECT jsonb_agg(doc::jsonb #> string_to_array(nullif(substr(p, 3), ''), '.')
                               ORDER BY n)::text
              FROM unnest(paths) WITH ORDINALITY AS u(p, n)) END
    $$""",
    """CREATE OR REPLACE FUNCTION json_set(doc text, path text, value text)
    RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
      SELECT jsonb_set(doc::jsonb, string_to_array(substr(path, 3), '.'),
                       to_jsonb(value))::text
    $$""",
    """CREATE OR REPLACE FUNCTION rostersync_concat(acc text, item text)
    RETURNS text LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE WHEN item IS NULL THEN acc WHEN acc IS NULL THEN item
                  ELSE acc || ',' || item END
    $$""",
    """CREATE OR REPLACE AGGREGATE group_concat(text) (
      SFUNC = rostersync_concat, STYPE = text)""",
    # SQLite's sum(a < b): a comparison is 0 or 1 there.
    """CREATE OR REPLACE FUNCTION rostersync_count_true(acc bigint, item boolean)
    RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
      SELECT CASE WHEN item IS NULL THEN acc
                  ELSE coalesce(acc, 0) + CASE WHEN item THEN 1 ELSE 0 END END
    $$""",
    "CREATE OR REPLACE AGGREGATE sum(boolean) (SFUNC = rostersync_count_true, STYPE = bigint)",
    """CREATE OR REPLACE FUNCTION max(a anycompatible, b anycompatible)
    RETURNS anycompatible LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN a IS NULL OR
      b IS NULL THEN NULL ELSE GREATEST(a, b) END $$""",
    """CREATE OR REPLACE FUNCTION min(a anycompatible, b anycompatible)
    RETURNS anycompatible LANGUAGE sql IMMUTABLE AS $$ SELECT CASE WHEN a IS NULL OR
      b IS NULL THEN NULL ELSE LEAST(a, b) END $$""",
    """CREATE OR REPLACE FUNCTION rostersync_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'integrity_constraint_violation';
    END $$""",
    """DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'nocase'
                     AND collnamespace = current_schema()::regnamespace) THEN
        CREATE COLLATION nocase (provider = icu, locale = 'und-u-ks-level2',
                                 deterministic = false);
      END IF;
    END $$""",
]


class Executes(Protocol):
    """The raw psycopg connection: statements go through unchanged."""

    def execute(self, query: Any, params: Any = None) -> Any: ...


def current_version(raw: Executes) -> int | None:
    """The schema version, or None when the database has no rostersync schema yet."""
    row = raw.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    return int(raw.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()[0])


def migrate(raw: Executes, where: str) -> int:
    """Bring the database (``where`` names it in errors, without a password) to the
    newest schema; returns the version. One process at a time: an advisory lock."""
    raw.execute("BEGIN")
    try:
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
        if current_version(raw) is None:
            for statement in PRELUDE:
                raw.execute(statement)
        version = current_version(raw) or 0
        if version > len(MIGRATIONS):
            raise RuntimeError(
                f"{where}: database schema version {version} is newer than this "
                f"rostersync ({len(MIGRATIONS)}); upgrade rostersync")
        for number in range(version, len(MIGRATIONS)):
            for statement in _statements(MIGRATIONS[number]):
                raw.execute(translate(statement, has_params=False).sql)
            raw.execute("UPDATE schema_version SET version = %s WHERE id = 1", (number + 1,))
    except BaseException:
        raw.execute("ROLLBACK")
        raise
    raw.execute("COMMIT")
    return len(MIGRATIONS)
