"""SQLite's dialect, as this codebase writes it, rewritten for PostgreSQL.

The storage modules (and a few sync/console ones) write SQLite SQL. Rather than keep two
copies of some 260 statements, the PostgreSQL store passes each through ``translate``
once (the result is cached per statement text) and keeps explicit PostgreSQL variants
only where no mechanical rewrite exists (storage/pg_variants.py).

What changes, outside string literals and quoted names:
- placeholders ``?`` become ``%s`` and ``:name`` becomes ``%(name)s`` (named parameters);
  a literal ``%`` doubles, as psycopg reads ``%`` as the start of a placeholder;
- ``INSERT OR IGNORE`` / ``INSERT OR REPLACE`` become ``ON CONFLICT`` clauses (the
  replaced row is found by the table's primary key, from the schema);
- ``x IS y`` / ``x IS NOT y`` (y not NULL) become ``IS [NOT] DISTINCT FROM``: SQLite's
  null-safe comparisons;
- ``LIKE`` becomes ``ILIKE``: SQLite's LIKE ignores the case of ASCII letters;
- ``COLLATE NOCASE`` names the case-insensitive ICU collation the store creates;
- a subquery in FROM gets a name (PostgreSQL 15 wants one);
- ``INDEXED BY`` hints go (PostgreSQL's planner takes none);
- ``BEGIN IMMEDIATE`` is plain ``BEGIN`` (the store takes its writer lock after it);
- an INSERT of one row into a table with an integer ``id`` gains ``RETURNING id``, which
  stands in for sqlite3's ``cursor.lastrowid``;
- DDL: INTEGER becomes BIGINT (SQLite integers are 64-bit), ``INTEGER PRIMARY KEY`` an
  identity column, BLOB is BYTEA, ``WITHOUT ROWID`` goes, and the append-only triggers
  call one PL/pgSQL function instead of ``RAISE(ABORT, ...)``.

json_extract, group_concat, sum over a comparison and two-argument max/min keep their
SQLite spelling: the store defines functions and aggregates of those names
(storage/pg_schema.py), so expressions and the indexes built on them stay identical.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

# Tables keyed by an integer ``id`` the database assigns, and every table's primary key
# (for INSERT OR REPLACE), read from the SQLite schema so that the two never disagree.
_CREATE = re.compile(r"CREATE TABLE (\w+) \((.*?)\n\s*\)( WITHOUT ROWID)?;", re.S)
_COLUMN_PK = re.compile(r"^\s*(\w+)\s+\w+\s+PRIMARY KEY", re.M)
_TABLE_PK = re.compile(r"PRIMARY KEY \(([^)]*)\)")


_UNIQUE_INDEX = re.compile(r"CREATE UNIQUE INDEX (?:IF NOT EXISTS )?\w+ ON (\w+)", re.I)
_UNIQUE_COLUMN = re.compile(r"\bUNIQUE\b", re.I)


def _schema_keys() -> tuple[frozenset[str], dict[str, tuple[str, ...]], frozenset[str]]:
    from rostersync.storage.schema import MIGRATIONS
    serial: set[str] = set()
    keys: dict[str, tuple[str, ...]] = {}
    # Tables with a uniqueness besides the primary key: SQLite's REPLACE deletes every row
    # any of them conflicts with, ON CONFLICT (the key) only the key's; refused, not guessed.
    unique_elsewhere: set[str] = set()
    for script in MIGRATIONS:
        unique_elsewhere.update(t.lower() for t in _UNIQUE_INDEX.findall(script))
        for match in _CREATE.finditer(script):
            table, body = match.group(1), match.group(2)
            column = _COLUMN_PK.search(body)
            composite = _TABLE_PK.search(body)
            if composite:
                keys[table] = tuple(c.strip() for c in composite.group(1).split(","))
            elif column:
                keys[table] = (column.group(1),)
            if re.search(r"^\s*id\s+INTEGER PRIMARY KEY\s*,", body, re.M):
                serial.add(table)
            if _UNIQUE_COLUMN.search(body):
                unique_elsewhere.add(table.lower())
    return frozenset(serial), keys, frozenset(unique_elsewhere)


SERIAL_TABLES, PRIMARY_KEYS, UNIQUE_BESIDES_KEY = _schema_keys()


@dataclass(frozen=True)
class Translated:
    """A statement ready for psycopg. ``returns_id``: the store reads the inserted id
    from the statement's one row and hides that row from the caller, as sqlite3's
    lastrowid is not a result row."""

    sql: str
    returns_id: bool = False


def _split_literals(sql: str) -> list[tuple[bool, str]]:
    """The statement as (is_code, text) pieces: string literals and quoted names are
    left alone by every rewrite."""
    pieces: list[tuple[bool, str]] = []
    start = 0
    i = 0
    while i < len(sql):
        quote = sql[i]
        if quote in "'\"":
            if start < i:
                pieces.append((True, sql[start:i]))
            end = i + 1
            while end < len(sql):
                if sql[end] == quote:
                    if end + 1 < len(sql) and sql[end + 1] == quote:
                        end += 2  # a doubled quote inside the literal
                        continue
                    break
                end += 1
            pieces.append((False, sql[i:end + 1]))
            start = i = end + 1
        else:
            i += 1
    if start < len(sql):
        pieces.append((True, sql[start:]))
    return pieces


_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_KEYWORD_AFTER_IS = r"(?!NULL\b|DISTINCT\b|TRUE\b|FALSE\b|UNKNOWN\b)"
_IS_NOT = re.compile(r"\bIS\s+NOT\s+" + _KEYWORD_AFTER_IS, re.I)
_IS = re.compile(r"\bIS\s+(?!NOT\b)" + _KEYWORD_AFTER_IS, re.I)
_LIKE = re.compile(r"(?<!I)\bLIKE\b")
_INDEXED_BY = re.compile(r"\s+(INDEXED\s+BY\s+\w+|NOT\s+INDEXED)\b", re.I)
_NOCASE = re.compile(r"\bCOLLATE\s+NOCASE\b", re.I)
_OR_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\b", re.I)
_OR_REPLACE = re.compile(r"^\s*INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I)
_INSERT_ONE = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\s*\([^)]*\)\s*VALUES\s*\([^()]*\)\s*$",
                         re.I | re.S)
_TRIGGER = re.compile(
    r"CREATE TRIGGER (\w+) BEFORE (UPDATE|DELETE) ON (\w+)\s+BEGIN SELECT "
    r"RAISE\(ABORT, '([^']*)'\); END", re.I)
_DROP_TRIGGER = re.compile(r"^\s*DROP TRIGGER (IF EXISTS )?(\w+)\s*$", re.I)


def _code(sql: str, named: bool, escape_percent: bool) -> str:
    """Rewrite the parts of ``sql`` outside literals."""
    out: list[str] = []
    for is_code, text in _split_literals(sql):
        if not is_code:
            out.append(text.replace("%", "%%") if escape_percent else text)
            continue
        if escape_percent:
            text = text.replace("%", "%%")
        text = _IS_NOT.sub("IS DISTINCT FROM ", text)
        text = _IS.sub("IS NOT DISTINCT FROM ", text)
        text = _LIKE.sub("ILIKE", text)
        text = _NOCASE.sub('COLLATE "nocase"', text)
        text = _INDEXED_BY.sub("", text)  # the planner chooses on its own
        text = text.replace("?", "%s")
        if named:
            text = _NAMED.sub(r"%(\1)s", text)
        out.append(text)
    return "".join(out)


def _ddl(sql: str) -> str:
    """Column types and table options of a CREATE/ALTER statement."""
    trigger = _TRIGGER.search(sql)
    if trigger:
        name, event, table, message = trigger.groups()
        return (f"CREATE TRIGGER {name} BEFORE {event} ON {table} FOR EACH ROW "
                f"EXECUTE FUNCTION rostersync_refuse('{message}')")
    pieces = []
    for is_code, text in _split_literals(sql):
        if is_code:
            text = re.sub(r"\bINTEGER PRIMARY KEY CHECK", "BIGINT PRIMARY KEY CHECK", text)
            text = re.sub(r"\bINTEGER PRIMARY KEY\b",
                          "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", text)
            text = re.sub(r"\bINTEGER\b", "BIGINT", text)
            text = re.sub(r"\bBLOB\b", "BYTEA", text)
            text = re.sub(r"\)\s*WITHOUT ROWID", ")", text)
            text = _NOCASE.sub('COLLATE "nocase"', text)
        pieces.append(text)
    return "".join(pieces)


_SUBQUERY = re.compile(r"\b(FROM|JOIN)\s*\(\s*(SELECT|WITH|VALUES)\b", re.I)
_ALIAS_FOLLOWS = re.compile(r"\s*(AS\b|(?!(WHERE|ORDER|GROUP|LIMIT|UNION|EXCEPT|INTERSECT|"
                            r"JOIN|LEFT|INNER|CROSS|ON|HAVING|WINDOW|OFFSET)\b)[A-Za-z_])",
                            re.I)


def _alias_subqueries(sql: str) -> str:
    """PostgreSQL before 16 wants a name on every subquery in FROM; SQLite does not."""
    masked = "".join(text if is_code else "'" + " " * (len(text) - 2) + "'"
                     for is_code, text in _split_literals(sql))
    inserts: list[int] = []
    for match in _SUBQUERY.finditer(masked):
        depth = 0
        for end in range(masked.index("(", match.start()), len(masked)):
            depth += {"(": 1, ")": -1}.get(masked[end], 0)
            if depth == 0:
                break
        else:
            continue
        if not _ALIAS_FOLLOWS.match(masked, end + 1):
            inserts.append(end + 1)
    for number, at in enumerate(sorted(inserts, reverse=True)):
        sql = f"{sql[:at]} AS _q{number}{sql[at:]}"
    return sql


@lru_cache(maxsize=4096)
def translate(sql: str, named: bool = False, has_params: bool = True) -> Translated:
    """``sql`` for PostgreSQL. ``named``: the parameters are a mapping (``:name``);
    ``has_params``: psycopg substitutes only then, so only then must ``%`` double."""
    head = sql.lstrip()[:24].upper()
    if head.startswith("BEGIN"):
        return Translated("BEGIN")
    if head.startswith(("CREATE TABLE", "CREATE TRIGGER", "ALTER TABLE")):
        return Translated(_ddl(sql))
    if head.startswith(("CREATE INDEX", "CREATE UNIQUE")):
        return Translated(_code(_ddl(sql), False, False))
    drop = _DROP_TRIGGER.match(sql)
    if drop:  # PostgreSQL names the table; the append-only triggers are <table>_no_<event>
        table = drop.group(2).rsplit("_no_", 1)[0]
        return Translated(f"DROP TRIGGER {drop.group(1) or ''}{drop.group(2)} ON {table}")
    suffix = ""
    text = sql.rstrip().rstrip(";")
    if _OR_IGNORE.match(text):
        text = _OR_IGNORE.sub("INSERT INTO", text, count=1)
        suffix = " ON CONFLICT DO NOTHING"
    replace = _OR_REPLACE.match(text)
    if replace:
        table, columns = replace.group(1), [c.strip() for c in replace.group(2).split(",")]
        key = PRIMARY_KEYS.get(table.lower())
        if key is None:
            raise ValueError(f"INSERT OR REPLACE into {table}: its primary key is unknown")
        if table.lower() in UNIQUE_BESIDES_KEY:
            raise ValueError(f"INSERT OR REPLACE into {table}: it is unique on more than its "
                             "primary key, which ON CONFLICT cannot replace as SQLite does; "
                             "write the upsert for the key it conflicts on")
        text = re.sub(r"^\s*INSERT\s+OR\s+REPLACE\s+INTO", "INSERT INTO", text, count=1,
                      flags=re.I)
        others = [c for c in columns if c not in key]
        action = ("DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in others)
                  if others else "DO NOTHING")
        suffix = f" ON CONFLICT ({', '.join(key)}) {action}"
    returns_id = False
    one = _INSERT_ONE.match(text)
    if one and one.group(1).lower() in SERIAL_TABLES and "RETURNING" not in text.upper():
        suffix += " RETURNING id"
        returns_id = True
    if "(" in text:
        text = _alias_subqueries(text)
    return Translated(_code(text + suffix, named, has_params), returns_id)
