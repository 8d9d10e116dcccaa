"""`rostersync console --web`: the console in a browser, through textual-serve.

Each browser tab that connects gets its own console process (textual-serve starts one per
websocket), launched as ``python -m <this package>.cli console --web-session ...``. Those
processes never run the scheduler: `rostersync serve` owns the schedule, and a scheduler
per open tab would race it. They are read-only unless ``--web-allow-actions`` was given,
so the people who open a browser can look but not act, the same read-only mode that
``console --read-only`` gives a terminal.

The server listens on a loopback address by default. textual-serve has no login and no
TLS of its own: the documented way to reach it from other machines is a reverse proxy that
terminates TLS and authenticates people (docs/cli.md). A non-loopback address is refused
unless ``--web-allow-remote`` says that is meant.
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rostersync.console.cli_context import CliError
from rostersync.sync.config_realtime import host_port, split_host_port

if TYPE_CHECKING:
    from rostersync.storage.db import Store
    from rostersync.sync.config import Config

DEFAULT_LISTEN = "127.0.0.1:8790"
# Recorded beside the OS user of the server when a browser session acts (with
# --web-allow-actions and no --actor): the audit log shows the action came from a browser.
WEB_ACTOR = "web console"
CLI_MODULE = f"{__package__}.cli"  # follows the package wherever it is installed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `console` subcommand's browser flags."""
    parser.add_argument("--web", action="store_true",
                        help="serve the console to browsers (read-only unless "
                             "--web-allow-actions) instead of running it here")
    parser.add_argument("--web-listen", default=None, metavar="HOST:PORT",
                        help=f"where --web listens (default {DEFAULT_LISTEN}; port 0 picks "
                             "a free one)")
    parser.add_argument("--web-allow-remote", action="store_true",
                        help="let --web-listen name a non-loopback address (put a TLS "
                             "reverse proxy with authentication in front instead)")
    parser.add_argument("--web-public-url", default=None, metavar="URL",
                        help="the address browsers use, when a reverse proxy serves the "
                             "console (e.g. https://rostersync.example.org)")
    parser.add_argument("--web-allow-actions", action="store_true",
                        help="let browser sessions act (approve, retry, sync ...) as a "
                             "terminal console would; off by default")
    # One browser session's console process, started by the --web server.
    parser.add_argument("--web-session", action="store_true", help=argparse.SUPPRESS)


def usage_error(args: argparse.Namespace) -> str | None:
    """The one sentence that refuses a combination of the browser flags (None: fine)."""
    web_only = [flag for flag, given in (
        ("--web-listen", args.web_listen is not None),
        ("--web-allow-remote", args.web_allow_remote),
        ("--web-public-url", args.web_public_url is not None),
        ("--web-allow-actions", args.web_allow_actions)) if given]
    if web_only and not args.web:
        return f"{web_only[0]} only applies with --web"
    if args.web and args.web_allow_actions and args.read_only:
        return "--read-only and --web-allow-actions contradict each other; give one"
    if args.web_public_url is not None and not args.web_public_url.startswith(
            ("http://", "https://")):
        return (f"--web-public-url {args.web_public_url!r} must start with http:// or "
                "https://")
    return None


def is_loopback(host: str) -> bool:
    """A literal loopback address (127.0.0.0/8, ::1) or the name localhost. Any other name
    counts as remote: what it resolves to can change after we look."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen_address(listen: str | None, allow_remote: bool) -> tuple[str, int]:
    """The (host, port) to bind, or CliError naming the flag and the value."""
    value = listen or DEFAULT_LISTEN
    try:
        host, port = split_host_port(host_port(value))
    except ValueError as exc:
        raise CliError(f"--web-listen {exc}") from None
    if not is_loopback(host) and not allow_remote:
        raise CliError(f"--web-listen {value}: {host} is not a loopback address; the web "
                       "console has no login or TLS of its own, so expose it through a "
                       "TLS reverse proxy, or give --web-allow-remote if this is meant")
    return host, port


def session_command(python: str, config_path: Path, db: Path | None, actor: str | None,
                    *, allow_actions: bool) -> str:
    """The shell command textual-serve runs for each browser session."""
    argv = [python, "-m", CLI_MODULE, "console", "--web-session",
            "--config", str(config_path.resolve())]
    if db is not None:
        argv += ["--db", str(db.resolve())]
    if allow_actions:
        argv += ["--actor", actor or WEB_ACTOR]
    else:
        argv.append("--read-only")
        if actor is not None:
            argv += ["--actor", actor]
    return shlex.join(argv)


def serve(args: argparse.Namespace, config_path: Path) -> int:
    """Serve until interrupted. The config has been loaded once already, so a bad one is
    refused here, not in every browser session."""
    host, port = listen_address(args.web_listen, args.web_allow_remote)
    try:
        from rostersync.console.web_server import ConsoleServer, bind
    except ImportError:
        raise CliError("--web needs the textual-serve package: "
                       "pip install 'rostersync[web]'") from None
    command = session_command(sys.executable, config_path, args.db, args.actor,
                              allow_actions=args.web_allow_actions)
    try:
        sock = bind(host, port)
    except OSError as exc:
        raise CliError(f"--web-listen {host}:{port}: cannot listen there "
                       f"({exc.strerror or exc})") from None
    mode = "actions allowed" if args.web_allow_actions else "read-only"
    ConsoleServer(command, sock, public_url=args.web_public_url, mode=mode).serve()
    return 0


def run_session(config: Config, store: Store, *, read_only: bool) -> int:
    """One browser session's console: the terminal console's app, minus the scheduler."""
    from rostersync.console.app import ConsoleApp

    ConsoleApp(config, store, read_only=read_only, run_scheduler=False).run()
    return 0
