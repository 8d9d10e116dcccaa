"""`rostersync links ...`: the work queue of disputed and unlinked matches, and the
operators' decisions on them (console/actions_links.py does the deciding).

``add_parsers`` is handed what the commands need from console/cli.py (the common
options and ``load``), so this module does not import it back.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from rostersync.console import actions_links
from rostersync.console.render import emit_json
from rostersync.storage import audit
from rostersync.sync.clock import Clock
from rostersync.sync.run_report import EXIT_OK, EXIT_USAGE

Load = Callable[[argparse.Namespace], tuple[Any, Any]]


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None], load: Load) -> None:
    links = sub.add_parser("links", help="disputed and unlinked matches: decide link, create "
                                         "or ignore")
    lsub = links.add_subparsers(dest="links_command", metavar="ACTION", required=True)

    p = lsub.add_parser("list", help="open disputed/unlinked matches with candidates and "
                                     "decisions")
    common(p)
    p.set_defaults(func=partial(cmd_list, load=load))

    p = lsub.add_parser("link", help="link the person to exactly this candidate LMS account")
    common(p)
    p.add_argument("employee_id")
    p.add_argument("lms_id")
    p.set_defaults(func=partial(cmd_decide, load=load, decide=lambda a, s, now, who:
                                actions_links.link(s, now, who, a.employee_id, a.lms_id)))

    p = lsub.add_parser("create", help="create a new LMS account, whatever the candidates")
    common(p)
    p.add_argument("employee_id")
    p.set_defaults(func=partial(cmd_decide, load=load, decide=lambda a, s, now, who:
                                actions_links.create(s, now, who, a.employee_id)))

    p = lsub.add_parser("ignore", help="leave the match alone (the drift stays, marked "
                                       "ignored)")
    common(p)
    p.add_argument("employee_id")
    p.add_argument("--reason", required=True, help="why (goes to the audit log)")
    p.set_defaults(func=partial(cmd_decide, load=load, decide=lambda a, s, now, who:
                                actions_links.ignore(s, now, who, a.employee_id, a.reason)))

    p = lsub.add_parser("clear", help="end the person's decision (ordinary matching again)")
    common(p)
    p.add_argument("employee_id")
    p.set_defaults(func=partial(cmd_decide, load=load, decide=lambda a, s, now, who:
                                actions_links.clear(s, now, who, a.employee_id)))


def cmd_decide(args: argparse.Namespace, *, load: Load, decide: Callable[..., Any]) -> int:
    _config, store = load(args)
    try:
        outcome = decide(args, store, Clock().now(), audit.current_actor())
    except actions_links.LinkRefused as exc:
        print(f"rostersync: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.json:
        emit_json({"employee_id": args.employee_id, "action": args.links_command,
                   "outcome": outcome})
    else:
        print(outcome)
    return EXIT_OK


def cmd_list(args: argparse.Namespace, *, load: Load) -> int:
    _config, store = load(args)
    matches = actions_links.queue(store)
    if args.json:
        emit_json({"matches": matches})
        return EXIT_OK
    if not matches:
        print("no disputed or unlinked match is open")
        return EXIT_OK
    for m in matches:
        print(_headline(m))
        for c in m["candidates"]:
            print("    " + _candidate(c))
    return EXIT_OK


def _headline(m: dict[str, Any]) -> str:
    rec = m["record"] or {}
    name = " ".join(p for p in (rec.get("first_name"), rec.get("last_name")) if p)
    text = (f"{m['employee_id']}  {m['kind']}  since {m['first_seen_at'][:16]}  "
            f"{name or '-'} <{rec.get('email') or '-'}>")
    decision = m["decision"]
    if decision:
        what = decision["decision"] + (f" {decision['lms_id']}" if decision["lms_id"] else "")
        text += f"  decided: {what} by {decision['by']}"
        if decision["reason"]:
            text += f" ({decision['reason']})"
    if m["detail"].get("decision_stale"):
        text += f"  STALE: {m['detail']['decision_stale']}"
    return text


def _candidate(c: dict[str, Any]) -> str:
    name = " ".join(p for p in (c.get("given_name"), c.get("family_name")) if p)
    return (f"LMS {c['lms_id']}  userName {c.get('user_name')!r}  email "
            f"{c.get('email') or '-'}  {name or '-'}  externalId "
            f"{c.get('external_key') or '-'}  {'active' if c.get('active') else 'inactive'}")
