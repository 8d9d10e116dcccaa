"""People (the HRIS side as last seen) and the narrow index of the accepted snapshot."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from itertools import compress, repeat
from operator import is_not
from typing import Any, TypeVar

from rostersync.storage.db import Store, execute_values, ts

_CHUNK = 500  # parameters per IN (...) query, well under SQLite's limit

_Item = TypeVar("_Item")


def chunks(items: list[_Item], size: int = _CHUNK) -> Iterator[list[_Item]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


# The packed blob is rewritten once the delta rows pass this share of the snapshot.
DELTA_REWRITE_SHARE = 0.05
DELTA_REWRITE_MIN = 10_000


def snapshot_index(store: Store, snapshot_id: int | None) -> tuple[list[str], list[bytes]]:
    """The keys of the last accepted full snapshot and their digests, side by side: from
    the packed index (plus its delta rows) when it describes that snapshot, else from the
    rows. Lists, not a dict: a million-key dict costs more to build than the whole
    comparison that uses it (see sync.pull)."""
    head = store.one("SELECT snapshot_id FROM snapshot_index_head WHERE id = 1")
    row = store.one("SELECT keys, digests FROM snapshot_index WHERE id = 1")
    if row is not None and head is not None and snapshot_id is not None \
            and head[0] == snapshot_id:
        keys = row[0].decode().split("\n") if row[0] else []
        packed = row[1]
        if len(packed) == 8 * len(keys):
            digests = [packed[i:i + 8] for i in range(0, len(packed), 8)]
            delta = dict(store.conn.execute(
                "SELECT employee_id, digest FROM snapshot_index_delta"))
            return _with_delta(keys, digests, delta) if delta else (keys, digests)
    rows = store.conn.execute("SELECT employee_id, digest FROM snapshot_rows").fetchall()
    return [r[0] for r in rows], [r[1] for r in rows]


def _with_delta(keys: list[str], digests: list[bytes], delta: dict[str, bytes | None]
                ) -> tuple[list[str], list[bytes]]:
    """Apply delta rows (a new digest, or None for a key that left) to the packed lists."""
    gone = False
    for i in compress(range(len(keys)), map(delta.__contains__, keys)):
        digest = delta.pop(keys[i])
        digests[i] = digest  # type: ignore[assignment]  # None: removed below
        gone = gone or digest is None
    if gone:
        kept = list(map(is_not, digests, repeat(None)))
        keys, digests = list(compress(keys, kept)), list(compress(digests, kept))
    for key, digest in delta.items():  # keys the blob does not have yet
        if digest is not None:
            keys.append(key)
            digests.append(digest)
    return keys, digests


def write_snapshot_index(conn: Any, snapshot_id: int,
                         full: Callable[[], dict[str, bytes]],
                         previous_id: int | None = None,
                         changes: list[tuple[str, bytes | None]] | None = None) -> None:
    """Make the index describe snapshot ``snapshot_id``, whose digests ``full()`` gives.

    When the index describes ``previous_id`` and ``changes`` (key, digest or None for a
    key that left) turn that into this snapshot, only they are written, as delta rows;
    the blob is rewritten (and ``full`` called) when the deltas grow past a share of
    the snapshot."""
    if changes is not None and previous_id is not None:
        head = conn.execute("SELECT snapshot_id FROM snapshot_index_head WHERE id = 1"
                            ).fetchone()
        pending = conn.execute("SELECT count(*) FROM snapshot_index_delta").fetchone()[0]
        size = conn.execute("SELECT length(digests) / 8 FROM snapshot_index WHERE id = 1"
                            ).fetchone()
        limit = max(DELTA_REWRITE_MIN, int((size[0] if size else 0) * DELTA_REWRITE_SHARE))
        if head is not None and head[0] == previous_id and pending + len(changes) <= limit:
            conn.executemany("INSERT OR REPLACE INTO snapshot_index_delta(employee_id, digest) "
                             "VALUES (?, ?)", changes)
            conn.execute("UPDATE snapshot_index_head SET snapshot_id = ? WHERE id = 1",
                         (snapshot_id,))
            return
    digests = full()
    conn.execute("DELETE FROM snapshot_index_delta")
    text = "\n".join(digests)
    if len(digests) > 1 and text.count("\n") != len(digests) - 1:
        # A key with a newline in it cannot be packed: the rows remain the source.
        conn.execute("DELETE FROM snapshot_index")
        conn.execute("DELETE FROM snapshot_index_head")
        return
    conn.execute("INSERT OR REPLACE INTO snapshot_index(id, snapshot_id, keys, digests) "
                 "VALUES (1, ?, ?, ?)", (snapshot_id, text.encode(), b"".join(digests.values())))
    conn.execute("INSERT OR REPLACE INTO snapshot_index_head(id, snapshot_id) VALUES (1, ?)",
                 (snapshot_id,))


def snapshot_rows_for(store: Store, keys: list[str]) -> dict[str, tuple[int, int]]:
    """employee_id -> (null_mask, active) for some keys."""
    out: dict[str, tuple[int, int]] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for key, mask, active in store.conn.execute(
                f"SELECT employee_id, null_mask, active FROM snapshot_rows "
                f"WHERE employee_id IN ({marks})", part):
            out[key] = (mask, active)
    return out


def write_snapshot_rows(conn: Any, upserts: Iterable[tuple[str, bytes, int, int]],
                        deletes: Iterable[str]) -> None:
    conn.executemany(
        "INSERT INTO snapshot_rows(employee_id, digest, null_mask, active) VALUES (?,?,?,?) "
        "ON CONFLICT(employee_id) DO UPDATE SET digest=excluded.digest, "
        "null_mask=excluded.null_mask, active=excluded.active", upserts)
    conn.executemany("DELETE FROM snapshot_rows WHERE employee_id = ?", ((k,) for k in deletes))


def load_people(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for row in store.rows(f"SELECT * FROM people WHERE employee_id IN ({marks})", part):
            out[row["employee_id"]] = row
    return out


def keys_needing_evaluation(store: Store, now: datetime) -> set[str]:
    """People whose state may have changed without their HR row changing: marked dirty
    (the LMS side moved), scheduled to change (a start or termination time has come),
    with open drift or open operations, or missing from the feed."""
    now_s = ts(now)
    sql = """
        SELECT employee_id FROM people WHERE dirty = 1
        UNION SELECT employee_id FROM people WHERE effective_at IS NOT NULL AND effective_at <= ?
        UNION SELECT employee_id FROM people WHERE missing_since IS NOT NULL
        UNION SELECT subject FROM drift WHERE resolved_at IS NULL
        UNION SELECT employee_id FROM ops
              WHERE status IN ('pending','failed','held','suppressed')
        UNION SELECT employee_id FROM audience_people WHERE due_at IS NOT NULL AND due_at <= ?
    """
    return {row[0] for row in store.conn.execute(sql, (now_s, now_s))}


def upsert_people(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Write evaluated people; `record` and `desired` stay as they were when None is
    passed with keep_record (an invalid record keeps the last good state in force),
    `last_seen_at` when None is passed, and `manager_id` changes only where
    `manager_changed` says so (None never clears it)."""
    groups: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {}
    for r in rows:
        now = r["now"]
        groups.setdefault((bool(r["keep_record"]), r["last_seen_at"] is not None), []).append((
            r["employee_id"], r["status"], r["in_scope"], r["manager_id"], r["record"],
            r["desired"], r["desired_digest"], r["locator"], r["effective_at"], now,
            r["last_seen_at"] or now, r["missing_since"], r["missing_pulls"], now))
    for (keep, seen), values in groups.items():
        desired = "people.desired" if keep else "excluded.desired"
        digest = "people.desired_digest" if keep else "excluded.desired_digest"
        last_seen = "excluded.last_seen_at" if seen else "people.last_seen_at"
        execute_values(conn, f"""
            INSERT INTO people(employee_id, status, in_scope, manager_id, record, desired,
                desired_digest, locator, effective_at, first_seen_at, last_seen_at,
                missing_since, missing_pulls, updated_at) VALUES {{values}}
            ON CONFLICT(employee_id) DO UPDATE SET
                status = excluded.status,
                in_scope = excluded.in_scope,
                record = coalesce(excluded.record, people.record),
                desired = {desired},
                desired_digest = {digest},
                locator = coalesce(excluded.locator, people.locator),
                effective_at = excluded.effective_at,
                last_seen_at = {last_seen},
                missing_since = excluded.missing_since,
                missing_pulls = excluded.missing_pulls,
                dirty = 0,
                updated_at = excluded.updated_at""", "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", values)
    # Not in the SET above: SQLite rewrites an index entry for every column a SET names,
    # changed or not, and a reconcile's people almost all keep their manager.
    execute_values(
        conn, "UPDATE people SET manager_id = v.column2 FROM (VALUES {values}) AS v "
        "WHERE people.employee_id = v.column1 AND people.manager_id IS NOT v.column2",
        "(?,?)", [(r["employee_id"], r["manager_id"]) for r in rows if r["manager_changed"]])


def set_revisits(conn: Any, changes: list[tuple[str, str | None]]) -> None:
    """(employee id, the day to read them again or None) for the people whose day moved;
    apart from the upsert, which would rewrite the index entry of every person."""
    conn.executemany("UPDATE people SET revisit_on = ? WHERE employee_id = ?",
                     [(day, key) for key, day in changes])


def revisits_due(store: Store, today: date) -> list[str]:
    """The people a delta run must read again: their scheduled change's day has come."""
    return [r[0] for r in store.conn.execute(
        "SELECT employee_id FROM people WHERE revisit_on IS NOT NULL AND revisit_on <= ? "
        "ORDER BY employee_id", (today.isoformat(),))]


def mark_reports_dirty(conn: Any, manager_id: str) -> None:
    """A manager's account now exists: their reports can get their manager set."""
    conn.execute("UPDATE people SET dirty = 1 WHERE manager_id = ?", (manager_id,))


def mark_reports_dirty_of(conn: Any, manager_ids: Iterable[str]) -> None:
    """``mark_reports_dirty`` for many managers at once."""
    conn.executemany("UPDATE people SET dirty = 1 WHERE manager_id = ?",
                     ((m,) for m in manager_ids))


def dirty_keys(store: Store) -> list[str]:
    return [r[0] for r in store.conn.execute("SELECT employee_id FROM people WHERE dirty = 1")]


def mark_dirty(conn: Any, keys: Iterable[str]) -> None:
    conn.executemany("UPDATE people SET dirty = 1 WHERE employee_id = ?", ((k,) for k in keys))


def known_id(store: Store, text: str) -> str | None:
    """The employee id ``text`` names, if the database knows that person: exactly, or
    typed in the other case (``e00042``). Primary-key lookups only: the palette asks on
    every keystroke."""
    for candidate in dict.fromkeys((text, text.upper(), text.lower())):
        row = store.conn.execute("SELECT employee_id FROM people WHERE employee_id = ?",
                                 (candidate,)).fetchone()
        if row is not None:
            return row[0]
    return None


# What the feed-conflict checks read of a person: the login and e-mail they want (lower
# case), their manager and whether they are in the feed and want an account.
_FACTS = ("employee_id, lower(json_extract(desired, '$.user_name')), "
          "lower(json_extract(desired, '$.email')), manager_id, status, in_scope, "
          "missing_since, desired IS NOT NULL")
_HOLDER_EXPR = {"user_name": "lower(json_extract(desired, '$.user_name'))",
                "email": "lower(json_extract(desired, '$.email'))"}


def facts_for(store: Store, keys: list[str]) -> list[tuple[Any, ...]]:
    """The feed-conflict facts of these people (primary-key lookups)."""
    out: list[tuple[Any, ...]] = []
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        out += store.conn.execute(
            f"SELECT {_FACTS} FROM people WHERE employee_id IN ({marks})", part).fetchall()
    return out


def holder_keys(store: Store, field: str, values: list[str]) -> list[str]:
    """The ids of everyone whose desired ``field`` is one of ``values`` (lower case),
    through the expression index: no JSON is read, so the many holders the caller
    already knows (this run's own people) cost a row lookup each, not a parse."""
    expr = _HOLDER_EXPR[field]
    out: list[str] = []
    for part in chunks(values):
        marks = ",".join("?" * len(part))
        out += [r[0] for r in store.conn.execute(
            f"SELECT employee_id FROM people WHERE {expr} IN ({marks})", part)]
    return out
