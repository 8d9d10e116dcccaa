"""The store a config names: SQLite at ``[database] path`` (the default), or PostgreSQL
when ``[database] url`` is set. Nothing on the SQLite path goes through the PostgreSQL
translation layer: that store is built only when a URL is configured."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from rostersync.storage.db import Store


class DatabaseSettings(Protocol):
    """What the [database] section holds (sync.config.DatabaseConfig)."""

    path: Path
    url: str | None
    password_env: str


def make_store(database: DatabaseSettings, *, migrate: bool = True) -> Store:
    if database.url is None:
        return Store(database.path, migrate=migrate)
    # Imported here so that a SQLite deployment never loads the driver.
    from rostersync.storage.pg_store import PgStore
    from rostersync.storage.pg_url import target_from
    return PgStore(target_from(database.url, database.password_env), migrate_schema=migrate)


def describe(database: DatabaseSettings) -> str:
    """Where the data lives, as messages name it (never a password)."""
    return database.url if database.url is not None else os.fspath(database.path)
