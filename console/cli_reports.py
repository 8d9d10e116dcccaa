"""`rostersync report ...`: evidence from recorded history; `rostersync prune`: retention.

Reports read the database only (never the HRIS or the LMS). With an explicit --until the
same command over the same database prints the same document.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rostersync.console.cli_context import CliError, load
from rostersync.console.render import emit_json
from rostersync.storage import audit, retention
from rostersync.sync.clock import Clock
from rostersync.sync.reports import html, tabular, text
from rostersync.sync.reports.build import DEFAULT_SINCE, REPORTS, build_report
from rostersync.sync.reports.period import PeriodError, parse_period


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:
    report = sub.add_parser("report", help="evidence from recorded history (terminations, "
                                           "drift, operator actions)")
    rsub = report.add_subparsers(dest="report", metavar="REPORT", required=True)
    helps = {"terminations": "every termination: effective time, deactivation, delay, SLA, why",
             "drift": "drift by kind over time, time to resolve, oldest open, data quality",
             "operator": "operator actions from the audit log, chain verified"}
    for name in REPORTS:
        p = rsub.add_parser(name, help=helps[name])
        common(p)
        p.add_argument("--since", default=DEFAULT_SINCE[name],
                       help=f"start: 30d, 12h, 2w back, or an ISO date (default "
                            f"{DEFAULT_SINCE[name]})")
        p.add_argument("--until", default=None, help="end: an ISO date/time (default now)")
        p.add_argument("--format", choices=["text", "csv", "json", "html"], default=None,
                       help="default text (json with --json)")
        p.add_argument("--table", choices=tabular.TABLES[name], default=None,
                       help="which table --format csv writes (default "
                            f"{tabular.TABLES[name][0]})")
        p.add_argument("--output", "-o", type=Path, default=None,
                       help="write to this file instead of stdout")
        p.set_defaults(func=cmd_report, report_name=name)

    p = sub.add_parser("prune", help="delete history older than the [retention] settings")
    common(p)
    p.add_argument("--dry-run", action="store_true", help="count what would go; delete nothing")
    p.set_defaults(func=cmd_prune)


def cmd_report(args: argparse.Namespace) -> int:
    config, store = load(args)
    try:
        period = parse_period(args.since, args.until, Clock().now())
    except PeriodError as exc:
        raise CliError(str(exc)) from None
    fmt = args.format or ("json" if args.json else "text")
    if args.table and fmt != "csv":
        raise CliError("--table applies to --format csv only")
    doc = build_report(args.report_name, store, config, period)
    body = {"json": tabular.to_json, "html": html.render, "text": text.render,
            "csv": lambda d: tabular.to_csv(d, args.table)}[fmt](doc)
    if args.output is not None:
        try:
            write_private(args.output, body if body.endswith("\n") else body + "\n")
        except OSError as exc:
            raise CliError(f"{args.output}: cannot write the report ({exc.strerror})") from None
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(body if body.endswith("\n") else body + "\n")
    # A broken audit chain is evidence of tampering: the same exit code as `audit verify`.
    return 2 if doc["report"] == "operator" and not doc["chain"]["ok"] else 0


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only (0600): reports name people,
    their terminations and who acted. An existing file is narrowed to 0600 too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        os.fchmod(fd, 0o600)
        fh.write(text)


def cmd_prune(args: argparse.Namespace) -> int:
    config, store = load(args)
    horizons = config.retention.horizons()
    if not horizons:
        doc = {"dry_run": args.dry_run, "cutoffs": {}, "deleted": {},
               "message": "no [retention] settings: all history is kept"}
    else:
        doc = retention.prune(store, Clock().now(), horizons, actor=audit.current_actor(),
                              dry_run=args.dry_run)
        check = audit.verify(store)
        doc["audit_chain"] = {"ok": check.ok, "message": check.message}
    if args.json:
        emit_json(doc)
    elif not horizons:
        print(doc["message"])
    else:
        verb = "would delete" if args.dry_run else "deleted"
        print(f"{verb}: " + (", ".join(f"{k} {v}" for k, v in doc["deleted"].items())
                             or "nothing"))
        print(f"audit chain: {doc['audit_chain']['message']}")
    return 0 if doc.get("audit_chain", {"ok": True})["ok"] else 2
