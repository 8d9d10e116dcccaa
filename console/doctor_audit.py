"""`rostersync doctor`'s audit key lines: where the key comes from, and whether it is the
key the audit log was sealed with. The commands refuse a wrong or missing key when they
start (console/cli_context.py); a second node being set up should hear it here first."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rostersync.storage import audit, audit_key
from rostersync.storage.failure import StorageFailure
from rostersync.storage.store_factory import make_store

Add = Callable[[str, bool, str, str | None], None]


def key_checks(config: Any, config_path: Path, add: Add) -> audit_key.AuditKey | None:
    """Where this node's key comes from; looked for, never created here."""
    default = audit_key.default_key_path(config_path)
    try:
        found = audit_key.find_key(os.environ, default)
    except audit_key.AuditKeyError as exc:
        add("audit key", False, str(exc), None)
        return None
    if found is None and config.ha.enabled:
        add("audit key", False, audit_key.missing_shared_key(default), None)
    elif found is None:
        add("audit key", True, f"none yet: the next command writes {default} (0600), "
            "unless the audit log is already keyed", None)
    else:
        add("audit key", True, f"from {found.source}", None)
    return found


def seal_check(config: Any, found: audit_key.AuditKey | None, add: Add) -> None:
    """The key against the log's seal, when the database is there to read. A missing
    SQLite file is not created, nor a schema migrated: a fresh install has no seal."""
    if config.database.url is None and not Path(config.database.path).exists():
        return
    try:
        store = make_store(config.database, migrate=False)
    except (StorageFailure, sqlite3.Error, OSError):
        return  # the database's own lines say why
    try:
        if found is not None:
            store.audit_key, store.audit_key_source = found.secret, found.source
        problem = audit.key_problem(store)
        sealed = audit_key.is_sealed(store)
    except (StorageFailure, sqlite3.Error):
        return  # no audit table yet (migrations behind): nothing sealed to compare with
    finally:
        store.close()
    if problem is not None:
        add("audit key", False, problem, None)
    elif sealed:
        add("audit key", True, "it is the key the audit log was sealed with", None)
