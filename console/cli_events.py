"""`rostersync events list`: the HR events the webhook listener received, with who
changed, what the sender said, the outcome and the run that synced them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rostersync.console.cli_context import CliError, load
from rostersync.console.render import emit_json
from rostersync.storage import intake as intake_store
from rostersync.sync.clock import Clock
from rostersync.sync.reports.period import PeriodError, parse_period

# events_received.status: the intake's own outcomes, then the statuses a run can end in.
OUTCOMES = ("queued", "synced", "coalesced", "gated", "batched", "ignored",
            "held", "partial", "quarantined", "paused", "failed")


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:
    events = sub.add_parser("events", help="HR events received by the webhook listener")
    esub = events.add_subparsers(dest="events_command", metavar="ACTION", required=True)
    p = esub.add_parser("list", help="events received, newest first")
    common(p)
    p.add_argument("--since", default="24h",
                   help="30m, 12h, 7d back from now, or an ISO date/time (default 24h)")
    p.add_argument("--outcome", action="append", default=[],
                   help=f"only these outcomes (repeat or comma-separate): {', '.join(OUTCOMES)}")
    p.add_argument("--limit", type=int, default=200)
    p.set_defaults(func=cmd_list)


def parse_outcomes(values: list[str]) -> list[str]:
    wanted = [v.strip() for value in values for v in value.split(",") if v.strip()]
    for value in wanted:
        if value not in OUTCOMES:
            raise CliError(f"--outcome {value!r} is not an event outcome; use one of "
                           f"{', '.join(OUTCOMES)}")
    return wanted


def cmd_list(args: argparse.Namespace) -> int:
    outcomes = parse_outcomes(args.outcome)
    if args.limit < 1:
        raise CliError(f"--limit {args.limit}: expected a positive number")
    config, store = load(args)
    try:
        period = parse_period(args.since, None, Clock().now())
    except PeriodError as exc:
        raise CliError(str(exc)) from None
    rows = intake_store.list_events(store, period.since, outcomes, args.limit)
    if args.json:
        emit_json(rows)
    elif rows:
        print(events_table(rows))
    else:
        off = "" if config.realtime.enabled else \
            "; real-time intake is off ([realtime] enabled = false)"
        print(f"no events received since {period.since.isoformat()}"
              + (f" with outcome {', '.join(outcomes)}" if outcomes else "") + off)
    return 0


def events_table(rows: list[dict[str, Any]]) -> str:
    out = [f"{'ID':>6}  {'RECEIVED':<24} {'SOURCE':<9} {'EMPLOYEE':<12} {'ACTION':<12} "
           f"{'OUTCOME':<11} {'RUN':>5}  DETAIL"]
    for r in rows:
        run = str(r["run_id"]) if r["run_id"] is not None else "-"
        out.append(f"{r['id']:>6}  {r['received_at']:<24} {r['source']:<9} "
                   f"{r['employee_id']:<12} {(r['action'] or '-')[:12]:<12} "
                   f"{r['outcome']:<11} {run:>5}  {(r['detail'] or '')[:80]}")
    return "\n".join(out)
