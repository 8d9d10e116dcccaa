"""`rostersync audiences ...`: the audience rules and why a person is in an audience."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rostersync.console.cli_context import CliError, load
from rostersync.console.render import emit_json
from rostersync.storage.db import Store
from rostersync.sync.audiences.explain import explain, overview
from rostersync.sync.clock import Clock
from rostersync.sync.config import Config


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:
    aud = sub.add_parser("audiences", help="LMS audiences: rules, sizes, why a person is in one")
    asub = aud.add_subparsers(dest="audiences_command", metavar="ACTION", required=True)

    p = asub.add_parser("list", help="every audience with its rules, size and pending changes")
    common(p)
    p.set_defaults(func=cmd_list)

    p = asub.add_parser("explain", help="where a person is, should be, and which rule says so")
    common(p)
    p.add_argument("employee_id")
    p.set_defaults(func=cmd_explain)


def _load(args: argparse.Namespace) -> tuple[Config, Store]:
    return load(args)


def cmd_list(args: argparse.Namespace) -> int:
    config, store = _load(args)
    rows = overview(store, config)
    if args.json:
        emit_json({"audiences": rows})
        return 0
    if not rows:
        print("no audiences are configured ([[audiences]] in the config; see docs/audiences.md)")
        return 0
    print(f"{'audience':<24} {'members':>7} {'should':>7} {'+add':>5} {'-rem':>5} "
          f"{'held':>5}  rules")
    for r in rows:
        print(f"{r['id']:<24} {r['size']:>7} {r['desired']:>7} {r['pending_add']:>5} "
              f"{r['pending_remove']:>5} {r['held']:>5}  {' | '.join(r['rules'])}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    config, store = _load(args)
    doc = explain(store, config, args.employee_id, Clock().now())
    if doc is None:
        raise CliError(f"employee {args.employee_id!r} is not known to rostersync (no HR "
                       "record has been read for that id)")
    if args.json:
        emit_json(doc)
        return 0
    print(f"{doc['employee_id']} {doc['name'] or ''}".rstrip())
    if not doc["eligible"]:
        print(f"  belongs to no audience: {doc['why_not']}")
    for field, value in doc["unmapped"].items():
        print(f"  unmapped: {field} {value!r} matches no audience rule or known value (L&D)")
    if doc["onboarding_change_at"]:
        print(f"  membership changes by time alone at {doc['onboarding_change_at']}")
    for a in doc["audiences"]:
        state = ("in" if a["is_in"] else "not in") + ", " + (
            "should be" if a["should_be_in"] else "should not be")
        line = f"  {a['id']:<24} {state}"
        if a["rule"]:
            line += f"  rule: {a['rule']}"
            if a["because"] and a["because"] != [a["rule"]]:
                line += f"  (because {'; '.join(a['because'])})"
        if a["left_alone"]:
            line += f"  left as is: {a['left_alone']}"
        if a.get("note"):
            line += f"  ({a['note']})"
        if a["pending"]:
            line += f"  [{a['pending']['kind']} {a['pending']['status']}]"
        print(line)
    return 0
