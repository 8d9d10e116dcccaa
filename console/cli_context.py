"""What every `rostersync` subcommand shares: the expected-failure exception and opening
the config, the database and the engine. The cli_* modules import it from here, not
from console/cli.py, which imports them (no import circle)."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from rostersync.console import keys_config
from rostersync.console.safe_text import escape_controls
from rostersync.storage import audit, audit_key
from rostersync.storage.db import DatabaseUnreachable, Store
from rostersync.storage.db_path import DatabasePathError
from rostersync.storage.store_factory import describe, make_store
from rostersync.sync.config import Config, ConfigError, default_config_path, load_config
from rostersync.sync.engine import EXIT_USAGE, Engine
from rostersync.sync.ha_fence import refuse_if_another_leads, run_fenced
from rostersync.sync.run_report import RunReport


class CliError(Exception):
    """An expected failure: message on stderr, exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def load(args: argparse.Namespace) -> tuple[Config, Store]:
    path = args.config or default_config_path()
    config = load_config(path)
    # [console.keys] is the console's to check (the config layer knows no actions); a
    # mistake there is a config mistake for every command, as any other key's is.
    found = keys_config.problems(config.console.keys)
    if found:
        raise ConfigError(f"{path}: {keys_config.summary(found)}")
    if args.db is not None:
        config.database.path = args.db
        config.database.url = None  # --db names a SQLite file
    try:
        store = make_store(config.database)
    except (DatabasePathError, DatabaseUnreachable) as exc:  # one sentence naming it
        raise CliError(str(exc)) from None
    except Exception as exc:
        raise CliError(f"{describe(config.database)}: cannot open the database ({exc})") from None
    _audit_identity(args, store, path, shared=config.ha.enabled)
    return config, store


def _audit_identity(args: argparse.Namespace, store: Store, config_path: Path, *,
                    shared: bool) -> None:
    """The audit key (beside the config, or from the environment) and the --actor name,
    which the audit log records beside the OS user, never instead of it."""
    audit.claim_actor(None)  # a refused --actor must not leave an earlier one in place
    claimed = getattr(args, "actor", None)
    if claimed is not None and (not claimed.strip() or escape_controls(claimed) != claimed):
        raise CliError(f"--actor {escape_controls(claimed)!r} is empty or holds a control "
                       "character; give a plain name")
    audit.claim_actor(claimed)
    try:
        audit_key.attach(store, audit_key.default_key_path(Path(config_path)), os.environ,
                         shared=shared)
    except audit_key.AuditKeyError as exc:
        raise CliError(str(exc)) from None


def require_audit_key(store: Store) -> None:
    """For the long-running commands (serve, console): a node that could not write the
    audit log (no key for a keyed log, or another key) is refused at start, in one
    sentence, rather than at an operator's first action or a takeover hours later."""
    problem = audit.key_problem(store)
    if problem is not None:
        raise CliError(problem)


def engine_for(config: Config, store: Store) -> Engine:
    return Engine(config, store)


def check_leader(engine: Engine, *, dry_run: bool = False) -> None:
    """A command about to apply refuses, before it changes anything, while another node
    leads ([ha] enabled; EngineBusy, exit 5). A dry run sends nothing: it is not fenced."""
    if not dry_run:
        refuse_if_another_leads(engine)


def run_applying(engine: Engine, work: Callable[[], Coroutine[Any, Any, RunReport]],
                 *, dry_run: bool = False) -> RunReport:
    """Run an engine entry point for a command; one that applies is fenced by the leader
    lease when [ha] is enabled (sync/ha_fence.py), so it never applies beside the leader."""
    return asyncio.run(work() if dry_run else run_fenced(engine, work))
