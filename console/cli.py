"""The `rostersync` command line: the contract in DESIGN.md, exit codes included.

Expected failures (bad config, unreadable feed, busy lease) are one sentence on stderr
and an exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rostersync.console import (
    actions,
    cli_audiences,
    cli_audit,
    cli_events,
    cli_links,
    cli_mapping,
    cli_ops,
    cli_reports,
    web,
)
from rostersync.console.cli_context import (
    CliError,
    check_leader,
    engine_for,
    load,
    require_audit_key,
    run_applying,
)
from rostersync.console.render import emit_json, run_text, status_text
from rostersync.console.safe_text import escape_output, escaped_stdout
from rostersync.storage import audit
from rostersync.storage.audit_key import AuditKeyError
from rostersync.storage.db import Store
from rostersync.storage.failure import StorageFailure, as_storage_failure
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config, ConfigError, default_config_path
from rostersync.sync.engine import EXIT_FAILED, EXIT_NOT_APPLIED, EXIT_USAGE, EngineBusy
from rostersync.sync.run_report import RunReport
from rostersync.sync.status import build_status


def _common(parser: argparse.ArgumentParser, json_flag: bool = True) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="config file (default ./rostersync.toml or $ROSTERSYNC_CONFIG)")
    parser.add_argument("--db", type=Path, default=None, help="database (default from config)")
    parser.add_argument("--actor", default=None,
                        help="a name recorded in the audit log beside your OS user name")
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print one JSON document")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rostersync",
        description="Keep the LMS roster in step with the HR system of record.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("sync", help="run one sync now")
    _common(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_const", dest="kind", const="full",
                      help="full reconcile (default)")
    mode.add_argument("--delta", action="store_const", dest="kind", const="delta",
                      help="only records changed since the last pull")
    p.add_argument("--dry-run", action="store_true", help="plan and show; change nothing")
    p.set_defaults(kind="full", func=cmd_sync)

    p = sub.add_parser("status", help="health summary; exit 0 OK, 1 WARNING, 2 CRITICAL")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("resync", help="sync one person now, through the same guards")
    _common(p)
    p.add_argument("employee_id")
    p.add_argument("--dry-run", action="store_true")
    p.set_defaults(func=cmd_resync)

    cli_ops.add_parsers(sub, _common)
    cli_reports.add_parsers(sub, _common)
    cli_audiences.add_parsers(sub, _common)
    cli_events.add_parsers(sub, _common)
    cli_links.add_parsers(sub, _common, load)
    cli_mapping.add_parsers(sub, _common)

    p = sub.add_parser("console", help="the operator console (Textual); runs the scheduler")
    _common(p, json_flag=False)
    p.add_argument("--read-only", action="store_true",
                   help="watch only: no jobs run here and no action changes anything")
    web.add_arguments(p)
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("serve", help="run the scheduler without a UI (JSON-lines logs)")
    _common(p, json_flag=False)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("init", help="write a commented sample config")
    p.add_argument("path", nargs="?", type=Path, default=Path("rostersync.toml"))
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("doctor", help="check config, credentials, connectivity, permissions")
    _common(p)
    p.set_defaults(func=cmd_doctor)

    for name, state in (("pause", "paused"), ("resume", "active")):
        p = sub.add_parser(name, help=f"{'pause' if state == 'paused' else 'resume'} "
                                      "applying operations")
        _common(p)
        p.add_argument("--reason", default=None)
        p.set_defaults(func=cmd_job_state, state=state)

    cli_audit.add_parsers(sub, _common)

    p = sub.add_parser("demo", help="run the product on its built-in sandbox")
    p.add_argument("--headless", action="store_true")
    p.add_argument("--seconds", type=float, default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--keep", type=Path, default=None, help="folder for the demo's files")
    p.set_defaults(func=cmd_demo)
    return parser


def print_report(args: argparse.Namespace, report: RunReport) -> int:
    """A run report on stdout (JSON or text); returns the run's exit code."""
    doc = report.as_dict()
    if args.json:
        emit_json(doc)
    else:
        print(run_text(doc))
    return report.exit_code


# -- commands --------------------------------------------------------------------------

def cmd_sync(args: argparse.Namespace) -> int:
    config, store = load(args)
    engine = engine_for(config, store)
    check_leader(engine, dry_run=args.dry_run)
    audit.record(store, Clock().now(), "sync", None,
                 {"kind": args.kind, "dry_run": args.dry_run})
    report = run_applying(
        engine, lambda: engine.sync(args.kind, dry_run=args.dry_run, trigger="cli"),
        dry_run=args.dry_run)
    return print_report(args, report)


def cmd_resync(args: argparse.Namespace) -> int:
    config, store = load(args)
    engine = engine_for(config, store)
    check_leader(engine, dry_run=args.dry_run)
    audit.record(store, Clock().now(), "resync", args.employee_id, {"dry_run": args.dry_run})
    report = run_applying(engine, lambda: engine.resync(args.employee_id, dry_run=args.dry_run),
                          dry_run=args.dry_run)
    return print_report(args, report)


def cmd_status(args: argparse.Namespace) -> int:
    config, store = load(args)
    doc = build_status(store, config, Clock().now())
    if args.json:
        emit_json(doc)
    else:
        print(status_text(doc))
    return doc["exit_code"]


def cmd_console(args: argparse.Namespace) -> int:
    from rostersync.console.app import run_console

    if (refused := web.usage_error(args)) is not None:
        raise CliError(refused)
    config, store = load(args)
    if not args.read_only:
        require_audit_key(store)
    if args.web:
        store.close()  # each browser session opens its own
        return web.serve(args, args.config or default_config_path())
    if args.web_session:
        return web.run_session(config, store, read_only=args.read_only)
    return run_console(config, store, read_only=args.read_only)


def cmd_serve(args: argparse.Namespace) -> int:
    from rostersync.sync.scheduler import serve_forever

    config, store = load(args)
    require_audit_key(store)
    return serve_forever(config, store)


def cmd_init(args: argparse.Namespace) -> int:
    from rostersync.console.cli_init import write_sample
    from rostersync.console.invocation import program
    from rostersync.sync.sample import SAMPLE_CONFIG

    write_sample(args.path, SAMPLE_CONFIG, args.force)  # 0600; one sentence when it cannot
    print(cli_audit.init_key(args.path))
    # Named so that it runs as printed, with or without the virtualenv activated.
    print(f"wrote {args.path}; edit it, export the token variable it names, then run "
          f"`{program()} doctor --config {shlex.quote(str(args.path))}`")
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from rostersync.console.doctor import run_doctor

    return run_doctor(args, load)


def cmd_job_state(args: argparse.Namespace) -> int:
    _config, store = load(args)
    now = Clock().now()
    actor = audit.current_actor()
    reason = args.reason or ("paused by operator" if args.state == "paused" else None)
    # The state and its audit entry in one transaction, as the console writes them.
    before = actions.set_job_state(store, now, args.state, reason, actor)
    doc = {"state": args.state, "was": before["state"], "reason": reason}
    if args.json:
        emit_json(doc)
    else:
        print(f"job {before['state']} -> {args.state}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from rostersync.console.demo_oncall import demo_on_call
    from rostersync.sandbox.demo import run_demo

    def run_console(world: Any, config: Config, store: Store) -> None:
        from rostersync.console.demo_app import (
            run_demo_console,  # textual loads only for the console
        )

        run_demo_console(world, config, store)

    return run_demo(args, on_call=demo_on_call, run_console=run_console)


EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell shows for a writer cut off


def busy_report(args: argparse.Namespace, message: str) -> RunReport:
    """The run report of a command that found the writer lease held: nothing was done."""
    kind = args.kind if args.command == "sync" else \
        "resync" if args.command == "resync" else "retry"
    return RunReport(None, kind, "busy", dry_run=bool(getattr(args, "dry_run", False)),
                     message=message)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with escaped_stdout(args.command):  # no HR or operator text drives the terminal
            code = args.func(args)
        sys.stdout.flush()  # a reader that went away is found here, not at exit
        return code
    except (ConfigError, CliError) as exc:
        print(f"rostersync: {escape_output(str(exc))}", file=sys.stderr)
        return getattr(exc, "code", EXIT_USAGE)
    except AuditKeyError as exc:
        print(f"rostersync: {escape_output(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except EngineBusy as exc:
        print(f"rostersync: {exc}", file=sys.stderr)
        if getattr(args, "json", False):  # --json: one document on stdout, always
            emit_json(busy_report(args, str(exc)).as_dict())
        return EXIT_NOT_APPLIED
    except (StorageFailure, sqlite3.Error) as exc:
        # A full disk or a failing one: one sentence, exit 1 (a bug in a statement shows).
        failure = as_storage_failure(exc, getattr(args, "db", None) or
                                     "named by [database] (path or url)")
        if failure is None:
            raise
        print(f"rostersync: {failure}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:
        # `rostersync ... | head`: the reader has all it wanted. Point stdout at /dev/null
        # so the interpreter's last flush does not fail again; exit as SIGPIPE would.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        print("rostersync: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
