"""Where the audit chain's HMAC key comes from: never the database it protects.

In order: the key itself in ROSTERSYNC_AUDIT_KEY; a key file named by
ROSTERSYNC_AUDIT_KEY_FILE; the key file beside the config (``rostersync.auditkey`` for
``rostersync.toml``), which `rostersync init` writes. A key file must be owner-only: one
that others can read is refused, since whoever reads it can rewrite the log undetected.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KEY_ENV = "ROSTERSYNC_AUDIT_KEY"
KEY_FILE_ENV = "ROSTERSYNC_AUDIT_KEY_FILE"
KEY_SUFFIX = ".auditkey"
# 32 characters: a hex key of 128 bits at the least; init writes 256 bits (64 hex digits).
MIN_KEY_CHARS = 32


class AuditKeyError(Exception):
    """The audit key is missing where one is needed, unusable, or not the sealing key."""


@dataclass(frozen=True)
class AuditKey:
    secret: bytes
    source: str  # named in messages; never the key itself


def default_key_path(config_path: Path) -> Path:
    return config_path.with_suffix(KEY_SUFFIX)


def key_from_text(text: str, source: str) -> AuditKey:
    """A key read from the environment or a file, checked for length."""
    value = text.strip()
    if len(value) < MIN_KEY_CHARS:
        raise AuditKeyError(f"the audit key in {source} is {len(value)} characters long; "
                            f"it needs at least {MIN_KEY_CHARS} (e.g. `openssl rand -hex 32`)")
    return AuditKey(value.encode("utf-8"), source)


def mode_problem(path: Path, mode: int) -> str | None:
    """Why a key file's permission bits are unsafe, or None."""
    if mode & 0o077:
        return (f"the audit key file {path} is readable by others (mode {mode & 0o777:04o}); "
                f"run `chmod 600 {path}`")
    return None


def read_key_file(path: Path, source: str | None = None) -> AuditKey:
    source = source or str(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if os.path.islink(path):  # O_NOFOLLOW: a link could hand us a key someone else chose
            raise AuditKeyError(
                f"the audit key file {path} is a symbolic link; the key is read only from a "
                f"regular file (replace the link with the file, or name the file itself in "
                f"${KEY_FILE_ENV})") from None
        raise AuditKeyError(f"cannot read the audit key file {path} ({exc.strerror})") from None
    with os.fdopen(fd, "r", encoding="utf-8") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise AuditKeyError(f"the audit key file {path} is not a regular file")
        problem = mode_problem(path, info.st_mode)
        if problem:
            raise AuditKeyError(problem)
        return key_from_text(fh.read(), source)


def find_key(env: Mapping[str, str], default_path: Path | None) -> AuditKey | None:
    """The configured key, or None when none is configured anywhere."""
    if env.get(KEY_ENV):
        return key_from_text(env[KEY_ENV], f"${KEY_ENV}")
    if env.get(KEY_FILE_ENV):
        return read_key_file(Path(env[KEY_FILE_ENV]), f"{env[KEY_FILE_ENV]} (${KEY_FILE_ENV})")
    if default_path is not None and (default_path.exists() or default_path.is_symlink()):
        return read_key_file(default_path)
    return None


def create_key_file(path: Path) -> AuditKey:
    """A new random key in a new owner-only file; never overwrites or follows a link."""
    flags = os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        text = secrets.token_hex(32)
        fh.write(text + "\n")
    return AuditKey(text.encode("utf-8"), str(path))


def is_sealed(store: Any) -> bool:
    """Whether an audit entry was ever written under a key (the log is keyed from then on)."""
    return bool(store.scalar("SELECT count(*) FROM audit_checkpoints WHERE mac IS NOT NULL"))


def missing_shared_key(default_path: Path) -> str:
    """What a node with [ha] enabled and no key is told (the commands and `doctor`)."""
    return (f"[ha] is enabled, so every node must sign the audit log with the same key, and "
            f"this node has none: copy the key file of the first node to {default_path} "
            f"(chmod 600), or name it in ${KEY_FILE_ENV} (`rostersync init` writes one; "
            f"docs/ha.md)")


def attach(store: Any, default_path: Path, env: Mapping[str, str], *,
           shared: bool = False) -> AuditKey | None:
    """Give ``store`` the configured key. A log never keyed whose config has no key yet
    gets a new key file beside the config (the migration: its next audit entry seals the
    unkeyed prefix); a keyed log is never given a new key, so a shell that lacks the key
    cannot start a second chain.

    ``shared``: several nodes write this log ([ha] enabled). Each would write its own new
    key, and the first to write would lock every other node out of the audit log; so no
    key is made here, and a node without one is refused until it holds the same key as
    the others."""
    key = find_key(env, default_path)
    if key is None and shared:
        raise AuditKeyError(missing_shared_key(default_path))
    if key is None and not is_sealed(store):
        try:
            key = create_key_file(default_path)
        except FileExistsError:
            key = read_key_file(default_path)
        except OSError:
            key = None  # a read-only config folder: the log stays unkeyed, verify says so
    if key is not None:
        store.audit_key, store.audit_key_source = key.secret, key.source
    return key
