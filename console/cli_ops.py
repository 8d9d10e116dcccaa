"""`rostersync ops ...`: list, show, retry, suppress, unsuppress, approve, reject.

Every action that changes something is written to the audit log with the OS user.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime

from rostersync.console import actions, when
from rostersync.console.cli_context import CliError, check_leader, engine_for, load, run_applying
from rostersync.console.render import emit_json, ops_table, run_text
from rostersync.storage import audit
from rostersync.storage import ops as op_store
from rostersync.storage.db import Store, ts
from rostersync.sync.clock import Clock
from rostersync.sync.engine import Engine
from rostersync.sync.models import OpStatus


def parse_when(text: str, now: datetime) -> datetime:
    """`--until`: an ISO date/time (UTC unless it says otherwise) or 30m / 12h / 7d / 2w."""
    try:
        return when.parse_when(text, now)
    except when.WhenError as exc:
        raise CliError(f"--until {exc}") from None


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:
    ops = sub.add_parser("ops", help="inspect and steer operations")
    osub = ops.add_subparsers(dest="ops_command", metavar="ACTION", required=True)

    p = osub.add_parser("list", help="list operations")
    common(p)
    p.add_argument("--status", choices=[s.value for s in OpStatus])
    p.add_argument("--employee")
    p.add_argument("--run", type=int)
    p.add_argument("--limit", type=int, default=100)
    p.set_defaults(func=cmd_list)

    p = osub.add_parser("show", help="one operation with its attempts")
    common(p)
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_show)

    p = osub.add_parser("retry", help="retry failed or dead operations now")
    common(p)
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--all-failed", action="store_true", help="every failed and dead operation")
    p.add_argument("--defer", action="store_true", help="leave them to the next run")
    p.set_defaults(func=cmd_retry)

    p = osub.add_parser("suppress", help="stop changes for the people of these operations")
    common(p)
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--employee", action="append", default=[], help="suppress a person by id")
    p.add_argument("--reason", required=True)
    _expiry_arguments(p)
    p.set_defaults(func=cmd_suppress)

    p = osub.add_parser("unsuppress", help="lift suppressions for people")
    common(p)
    p.add_argument("employee_ids", nargs="+")
    p.set_defaults(func=cmd_unsuppress)

    p = osub.add_parser("approve", help="release held operations and apply them")
    common(p)
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--run", type=int, help="every operation held by this run")
    p.add_argument("--defer", action="store_true", help="leave them to the next run")
    p.set_defaults(func=cmd_approve)

    p = osub.add_parser("reject", help="drop held operations and suppress their people")
    common(p)
    p.add_argument("ids", nargs="*", type=int)
    p.add_argument("--run", type=int)
    p.add_argument("--reason", required=True)
    _expiry_arguments(p)
    p.set_defaults(func=cmd_reject)


def _expiry_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--until", default=None, help="expiry: ISO date/time or 12h, 7d, 2w "
                   "(required, or --no-expiry)")
    p.add_argument("--no-expiry", action="store_true",
                   help="suppress until lifted by hand: no change at all for these people, "
                   "terminations included, until someone runs `ops unsuppress`")


def _expiry(args: argparse.Namespace, now: datetime) -> datetime | None:
    """An expiry is required: an indefinite suppression also swallows a later
    termination, so it must be asked for by name."""
    if args.until and args.no_expiry:
        raise CliError("--until and --no-expiry contradict each other; pass one")
    if args.until:
        return parse_when(args.until, now)
    if not args.no_expiry:
        raise CliError("an expiry is required: pass --until (e.g. 7d or 2026-12-31), or "
                       "--no-expiry to suppress until lifted by hand")
    print("warning: no expiry: these people get no change at all, terminations included, "
          "until someone runs `rostersync ops unsuppress`", file=sys.stderr)
    return None


def _say_skipped(skipped: list[int], state: str) -> None:
    if skipped:
        print(f"{len(skipped)} operation(s) no longer {state}, left as they are: "
              + ", ".join(f"#{i}" for i in skipped), file=sys.stderr)


def _ops_or_fail(store: Store, ids: list[int]) -> list[dict]:
    found = []
    for op_id in ids:
        op = op_store.get_op(store, op_id)
        if op is None:
            raise CliError(f"operation {op_id} does not exist")
        found.append(op)
    return found


def cmd_list(args: argparse.Namespace) -> int:
    _config, store = load(args)
    rows = op_store.list_ops(store, status=args.status, employee_id=args.employee,
                             run_id=args.run, limit=args.limit)
    emit_json(rows) if args.json else print(ops_table(rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    _config, store = load(args)
    op = _ops_or_fail(store, [args.id])[0]
    if args.json:
        emit_json(op)
        return 0
    for key in ("id", "employee_id", "kind", "status", "reason", "lms_id", "attempts",
                "max_attempts", "error_class", "http_status", "last_error", "next_attempt_at",
                "hold_reason", "suppressed_reason", "suppressed_until", "suppressed_by",
                "approved_by", "run_id", "created_at", "updated_at", "finished_at"):
        if op.get(key) not in (None, ""):
            print(f"{key:>17}: {op[key]}")
    print(f"{'payload':>17}: {op['payload']}")
    for a in op["attempt_log"]:
        print(f"  attempt {a['attempt']}: {a['started_at']} -> {a['outcome'] or 'running'}"
              + (f" [{a['error_class']} {a['http_status'] or ''}] {a['error']}"
                 if a["error"] else ""))
    return 0


def _apply_now(args: argparse.Namespace, engine: Engine, op_ids: list[int]) -> int:
    report = run_applying(engine, lambda: engine.apply_due(trigger="cli", op_ids=op_ids))
    doc = report.as_dict()
    emit_json(doc) if args.json else print(run_text(doc))
    return report.exit_code


def cmd_retry(args: argparse.Namespace) -> int:
    config, store = load(args)
    now = Clock().now()
    if args.all_failed:
        ids = [r[0] for r in store.conn.execute(
            "SELECT id FROM ops WHERE status IN ('failed','dead')")]
    elif args.ids:
        ids = args.ids
        for op in _ops_or_fail(store, ids):
            if op["status"] not in ("failed", "dead"):
                raise CliError(f"operation {op['id']} is {op['status']}; only failed or dead "
                               "operations can be retried")
    else:
        raise CliError("name operation ids or pass --all-failed")
    # Applying now: refused before any operation is queued again while another node leads.
    engine = None if args.defer else engine_for(config, store)
    if engine is not None:
        check_leader(engine)
    acted = actions.retry(store, now, ids, config.guards.retry_max_attempts,
                          actor=audit.current_actor())
    _say_skipped(acted.skipped, "failed or dead")
    if engine is None or not acted.done:
        print(f"{len(acted.done)} operation(s) queued for the next run") if not args.json \
            else emit_json({"queued": acted.done, "skipped": acted.skipped})
        return 0
    return _apply_now(args, engine, acted.done)


def cmd_suppress(args: argparse.Namespace) -> int:
    _config, store = load(args)
    now = Clock().now()
    people = {op["employee_id"] for op in _ops_or_fail(store, args.ids)} | set(args.employee)
    if not people:
        raise CliError("name operation ids or --employee ID")
    until = _expiry(args, now)
    actions.suppress_people(store, now, people, args.reason, until, audit.current_actor(),
                            op_ids=args.ids or None)
    doc = {"suppressed": sorted(people), "reason": args.reason, "until": ts(until)}
    emit_json(doc) if args.json else print(
        f"suppressed {', '.join(sorted(people))}" + (f" until {ts(until)}" if until else ""))
    return 0


def cmd_unsuppress(args: argparse.Namespace) -> int:
    _config, store = load(args)
    now = Clock().now()
    actor = audit.current_actor()
    lifted = actions.unsuppress(store, now, args.employee_ids, actor)
    emit_json({"lifted": lifted}) if args.json else print(
        "\n".join(f"{k}: {v} suppression(s) lifted" for k, v in lifted.items()))
    return 0


def _held_ids(store: Store, args: argparse.Namespace) -> list[int]:
    if args.run is not None:
        ids = op_store.ids_with_status(store, "held", run_id=args.run)
        if not ids:
            raise CliError(f"run {args.run} has no held operations")
        return ids
    if not args.ids:
        raise CliError("name operation ids or pass --run RUN_ID")
    for op in _ops_or_fail(store, args.ids):
        if op["status"] != "held":
            raise CliError(f"operation {op['id']} is {op['status']}, not held")
    return args.ids


def cmd_approve(args: argparse.Namespace) -> int:
    config, store = load(args)
    now = Clock().now()
    actor = audit.current_actor()
    ids = _held_ids(store, args)
    # Applying now: refused before anything is approved while another node leads.
    engine = None if args.defer else engine_for(config, store)
    if engine is not None:
        check_leader(engine)
    acted = actions.approve(store, now, ids, actor, run=args.run)
    _say_skipped(acted.skipped, "held")
    if engine is None or not acted.done:
        emit_json({"approved": acted.done, "skipped": acted.skipped}) if args.json else \
            print(f"approved {len(acted.done)} operation(s); they apply on the next run")
        return 0
    return _apply_now(args, engine, acted.done)


def cmd_reject(args: argparse.Namespace) -> int:
    _config, store = load(args)
    now = Clock().now()
    actor = audit.current_actor()
    ids = _held_ids(store, args)
    until = _expiry(args, now)
    # reject() also suppresses their people: else the next run would plan them again.
    acted = actions.reject(store, now, ids, args.reason, until, actor, run=args.run)
    _say_skipped(acted.skipped, "held")
    emit_json({"rejected": acted.done, "skipped": acted.skipped,
               "suppressed": acted.people}) if args.json else print(
        f"rejected {len(acted.done)} operation(s); {len(acted.people)} people suppressed"
        + (f" until {ts(until)}" if until else " with no expiry"))
    return 0
