"""What every `rostersync` subcommand shares: the expected-failure exception and opening
the config, the database and the engine. The cli_* modules import it from here, not
from console/cli.py, which imports them (no import circle)."""

from __future__ import annotations

import argparse

from storage.db import Store
from sync.config import Config, default_config_path, load_config
from sync.engine import EXIT_USAGE, Engine


class CliError(Exception):
    """An expected failure: message on stderr, exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def load(args: argparse.Namespace) -> tuple[Config, Store]:
    path = args.config or default_config_path()
    config = load_config(path)
    if args.db is not None:
        config.database.path = args.db
    try:
        store = Store(config.database.path)
    except Exception as exc:
        raise CliError(f"{config.database.path}: cannot open the database ({exc})") from None
    return config, store


def engine_for(config: Config, store: Store) -> Engine:
    return Engine(config, store)
