"""`rostersync audit list | verify`: the operator audit log, and proof it is whole.

`verify --expect-head COUNT:HASH` also compares the log with a head seen earlier (the
``audit_head.anchor`` of `status --json`, the metrics, alerts and reports): a log cut short
or rewritten since no longer extends it. Exit 0 intact, 2 broken or not verifiable.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from rostersync.console.cli_context import CliError, load
from rostersync.console.render import emit_json
from rostersync.console.safe_text import escape_controls
from rostersync.storage import audit, audit_key
from rostersync.storage.audit_chain import parse_anchor

EXIT_BROKEN = 2


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:
    p = sub.add_parser("audit", help="the operator audit log")
    common(p)
    p.add_argument("action", choices=["list", "verify"])
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--expect-head", metavar="COUNT:HASH", default=None,
                   help="fail unless the log extends this earlier head (audit_head.anchor "
                        "from `status --json`)")
    p.set_defaults(func=cmd_audit)


def line(row: dict) -> str:
    """One entry on one line, every stored value escaped (it came from an operator or HR)."""
    target = escape_controls(row["target"]) if row["target"] else "-"
    return (f"{row['id']:>6} {row['at']} {escape_controls(audit.who(row)):<12} "
            f"{escape_controls(row['action']):<12} {target:<14} "
            f"{escape_controls(row['detail'])}")


def cmd_audit(args: argparse.Namespace) -> int:
    anchor = None
    if args.expect_head is not None:
        try:
            anchor = parse_anchor(args.expect_head)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    _config, store = load(args)
    if args.action == "verify":
        check = audit.verify(store, expect_head=anchor)
        doc = {"ok": check.ok, "entries": check.entries, "broken_at": check.broken_at,
               "message": check.message, "keyed": check.keyed,
               "head": check.head or None}
        emit_json(doc) if args.json else print(check.message)
        return 0 if check.ok else EXIT_BROKEN
    rows = audit.entries(store, limit=args.limit)
    if args.json:
        emit_json(rows)
    else:
        for r in rows:
            print(line(r))
    return 0


def init_key(config_path: Path) -> str:
    """`rostersync init`: the audit key file beside the new config (0600). An existing one
    is kept, --force or not: a new key would orphan the chain it signed."""
    path = audit_key.default_key_path(config_path)
    if path.is_symlink():  # "kept" would be untrue: every command refuses a linked key
        raise CliError(f"{path} is a symbolic link; the audit key is never written or read "
                       "through a link (remove it and run init again)")
    try:
        audit_key.create_key_file(path)
    except FileExistsError:
        return f"kept the audit key {path}"
    except OSError as exc:
        raise CliError(f"{path}: cannot write the audit key ({exc.strerror})") from None
    return f"wrote the audit key {path} (0600; keep it out of backups of the database)"
