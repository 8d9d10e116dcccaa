"""`rostersync doctor`: config, credentials, connectivity and file permissions, each
checked and reported as one line, with the exit code of the worst finding."""

from __future__ import annotations

import argparse
import asyncio
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rostersync.console import doctor_audit, keys_config
from rostersync.console.doctor_audit import Add
from rostersync.console.render import emit_json
from rostersync.sync import config_safety
from rostersync.sync.config import (
    ConfigError,
    default_config_path,
    load_config,
    metrics_textfile_problem,
    secret_from_env,
)
from rostersync.sync.connectors.base import ConnectorError, FeedError
from rostersync.sync.connectors.factory import make_source, make_target


def _perm_problem(path: Path) -> str | None:
    if not path.exists():
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"{path} is readable by others (mode {mode:o}); run chmod 600 {path}"
    return None


def run_doctor(args: argparse.Namespace, _load: Callable) -> int:
    checks: list[dict[str, str]] = []

    def add(name: str, ok: bool, detail: str, level: str | None = None) -> None:
        checks.append({"check": name, "result": level or ("ok" if ok else "error"),
                       "detail": detail})

    path = args.config or default_config_path()
    try:
        config = load_config(path)
        key_problems = keys_config.problems(config.console.keys)  # the console's section
        if key_problems:
            raise ConfigError(f"{path}: {keys_config.summary(key_problems)}")
        add("config", True, f"{path} is valid")
    except ConfigError as exc:
        add("config", False, str(exc))
        return _report(args, checks)
    if args.db is not None:
        config.database.path = args.db
        config.database.url = None  # --db names a SQLite file
    g = config.guards
    holds = (f"deactivations above max({g.mass_deactivation_min}, "
             f"{g.mass_deactivation_percent:g}% of active accounts) "
             + (f"within {g.mass_window_minutes:g} minutes (every run counted together)"
                if g.mass_window_minutes else "in one run")
             + f"; login/email changes above max({g.mass_identity_change_min}, "
             f"{g.mass_identity_change_percent:g}%) in one run")
    if g.mass_window_minutes:
        add("mass-change holds", True, f"held for approval: {holds}")
    else:
        add("mass-change holds", False, f"held for approval: {holds}; with "
            "guards.mass_window_minutes = 0 back-to-back runs can bleed past the hold",
            "warning")
    # Already checked at load (zone, cron, formats); shown so the operator sees what runs.
    sched = config.schedule
    when = (f"every {sched.full_every_minutes:g} minutes" if sched.full_every_minutes
            else f"at cron {sched.full_cron!r}")
    add("schedule", True, f"full reconcile {when} ({sched.timezone}); dates read as "
        + ", ".join(config.hris.date_formats))

    # Accepted only by an explicit allow_insecure_http (refused at load otherwise).
    for key, url, _ in config_safety.cleartext_urls(config):
        add("transport", False, config_safety.insecure_sentence(key, url), "warning")
    textfile_problem = metrics_textfile_problem(config)
    if textfile_problem is not None:
        add("metrics textfile", False, textfile_problem)

    # A PostgreSQL store has no file here: its checks come last (_database_checks).
    files = (path,) if config.database.url else (path, config.database.path)
    for file in files:
        problem = _perm_problem(Path(file))
        add(f"permissions {file}", problem is None, problem or "owner-only",
            None if problem is None else "warning")
    # The audit chain's HMAC key (storage/audit_key.py); checked against the log's seal
    # once the database lines are in (doctor_audit.seal_check).
    key_found = doctor_audit.key_checks(config, Path(path), add)

    source = None
    try:
        source = make_source(config.hris)
        count = 0
        for _record in source.scan_full():
            count += 1
        add("hris", True, f"{source.describe()}: {count} records readable")
    except FeedError as exc:
        add("hris", False, str(exc))
    # What a source can say about how it reads (auth in use, effective prompts, a
    # schema it could not check), one line each; "could not ..." is a warning.
    for name, detail in getattr(source, "notes", lambda: [])():
        warn = " could not " in detail
        add(name, not warn, detail, "warning" if warn else None)

    if _lms_credentials(config, add):  # without them the LMS is not asked; the rest is
        _lms_checks(config, add)
    if not config.lms.verify_tls:
        add("tls", False, "TLS verification is off for the LMS", "warning")
    if config.database.url is not None:
        _database_checks(config.database.url, config.database.password_env, add)
    else:
        db_dir = Path(config.database.path).parent
        add("database folder", os.access(db_dir, os.W_OK), f"{db_dir} is writable"
            if os.access(db_dir, os.W_OK) else f"{db_dir} is not writable")
    if not any(c["check"] == "database" and c["result"] == "error" for c in checks):
        doctor_audit.seal_check(config, key_found, add)
    return _report(args, checks)


def _lms_credentials(config: Any, add: Add) -> bool:
    try:
        secret_from_env(config.lms.token_env, "lms.token_env")
    except ConfigError as exc:
        add("lms credentials", False, str(exc), None)
        return False
    add("lms credentials", True, f"token found in ${config.lms.token_env}"
        if config.lms.token_env else "no token configured", None)
    return True


def _lms_checks(config: Any, add: Add) -> None:
    """The LMS answers, and holds the attributes [mapping.attributes] names (where the
    target can tell)."""

    async def probe() -> tuple[str, tuple[bool, str] | None]:
        async with make_target(config.lms) as target:
            found = await target.check()
            mapped = getattr(target, "check_mapped_attributes", None)
            return found, (await mapped() if mapped else None)

    try:
        found, mapped = asyncio.run(probe())
        add("lms", True, found, None)
        if mapped is not None:
            warn = mapped[1].startswith("could not")
            add("mapping", mapped[0] and not warn, mapped[1], "warning" if warn else None)
    except ConnectorError as exc:
        add("lms", False, str(exc), None)


def _database_checks(url: str, password_env: str, add: Add) -> None:
    """Login, server version, permissions and migrations of the PostgreSQL store."""
    from rostersync.storage import pg_doctor
    from rostersync.storage.pg_url import target_from

    for found in pg_doctor.check(target_from(url, password_env)):
        add(found.check, found.ok, found.detail, found.level)


def _report(args: argparse.Namespace, checks: list[dict[str, str]]) -> int:
    worst = 2 if any(c["result"] == "error" for c in checks) else \
        1 if any(c["result"] == "warning" for c in checks) else 0
    if args.json:
        emit_json({"ok": worst == 0, "exit_code": worst, "checks": checks})
    else:
        for c in checks:
            print(f"[{c['result']:^7}] {c['check']}: {c['detail']}")
    return worst
