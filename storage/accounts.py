"""The LMS side as last read or written: a cache the engine diffs against."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from rostersync.storage.db import Store, ts
from rostersync.storage.people import chunks


def _row(account_json: str, now: datetime) -> dict[str, Any]:
    data = json.loads(account_json)
    return {
        "lms_id": data["lms_id"], "external_key": data.get("external_key"),
        "user_name": data.get("user_name"), "email": data.get("email"),
        "active": int(bool(data.get("active", True))), "data": account_json,
        "seen_at": ts(now),
    }


def upsert_accounts(conn: Any, accounts: Iterable[tuple[str, bytes]], now: datetime) -> None:
    """accounts: (Account JSON, digest) pairs."""
    rows = []
    for text, digest in accounts:
        row = _row(text, now)
        row["digest"] = digest
        rows.append(row)
    conn.executemany(
        """INSERT INTO accounts(lms_id, external_key, user_name, email, active, data, digest,
               seen_at)
           VALUES (:lms_id, :external_key, :user_name, :email, :active, :data, :digest, :seen_at)
           ON CONFLICT(lms_id) DO UPDATE SET external_key=excluded.external_key,
               user_name=excluded.user_name, email=excluded.email, active=excluded.active,
               data=excluded.data, digest=excluded.digest, seen_at=excluded.seen_at""", rows)


def delete_accounts(conn: Any, lms_ids: Iterable[str | None]) -> None:
    conn.executemany("DELETE FROM accounts WHERE lms_id = ?", ((i,) for i in lms_ids))


def by_external_keys(store: Store, keys: list[str]) -> dict[str, str]:
    """external_key -> Account JSON (the first, should several claim one key)."""
    out: dict[str, str] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for key, data in store.conn.execute(
                f"SELECT external_key, data FROM accounts WHERE external_key IN ({marks}) "
                "ORDER BY lms_id", part):
            out.setdefault(key, data)
    return out


def lms_ids_for_keys(store: Store, keys: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        for key, lms_id in store.conn.execute(
                f"SELECT external_key, lms_id FROM accounts WHERE external_key IN ({marks})",
                part):
            out.setdefault(key, lms_id)
    return out


def keys_with_accounts(store: Store, keys: list[str]) -> set[str]:
    """Which of ``keys`` some LMS account carries (from the key index alone)."""
    out: set[str] = set()
    for part in chunks(keys):
        marks = ",".join("?" * len(part))
        out.update(key for (key,) in store.conn.execute(
            f"SELECT external_key FROM accounts WHERE external_key IN ({marks})", part))
    return out


def keys_for_lms_ids(store: Store, lms_ids: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in chunks(lms_ids):
        marks = ",".join("?" * len(part))
        for lms_id, key in store.conn.execute(
                f"SELECT lms_id, external_key FROM accounts WHERE lms_id IN ({marks})", part):
            if key:
                out[lms_id] = key
    return out


def candidates(store: Store, emails: list[str], user_names: list[str]) -> list[str]:
    """Account JSON of accounts whose email or userName matches (case-insensitive)."""
    out: dict[str, str] = {}
    for column, values in (("email", emails), ("user_name", user_names)):
        for part in chunks([v for v in values if v]):
            marks = ",".join("?" * len(part))
            for lms_id, data in store.conn.execute(
                    f"SELECT lms_id, data FROM accounts WHERE {column} COLLATE NOCASE "
                    f"IN ({marks})", part):
                out[lms_id] = data
    return list(out.values())


def all_digests(store: Store) -> dict[str, tuple[bytes | None, str | None]]:
    return {lms_id: (digest, key) for lms_id, digest, key in
            store.conn.execute("SELECT lms_id, digest, external_key FROM accounts")}


def count_active(store: Store) -> int:
    return int(store.scalar("SELECT count(*) FROM accounts WHERE active = 1"))


def by_lms_ids(store: Store, lms_ids: list[str]) -> dict[str, str]:
    """lms_id -> Account JSON, for those of ``lms_ids`` the cache holds."""
    out: dict[str, str] = {}
    for part in chunks(lms_ids):
        marks = ",".join("?" * len(part))
        out.update(store.conn.execute(
            f"SELECT lms_id, data FROM accounts WHERE lms_id IN ({marks})", part))
    return out


def get_account(store: Store, lms_id: str) -> str | None:
    return store.scalar("SELECT data FROM accounts WHERE lms_id = ?", (lms_id,))
