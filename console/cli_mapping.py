"""`rostersync mapping test`: where a person's desired values come from (or would, with a
trial expression), from the HR record rostersync last read."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from rostersync.console.cli_context import CliError, load
from rostersync.console.render import emit_json
from rostersync.storage import accounts as account_store
from rostersync.storage.db import Store
from rostersync.sync.clock import Clock
from rostersync.sync.expressions import ExpressionError
from rostersync.sync.mapping_explain import explain_mapping, trial_pairs
from rostersync.sync.models import Account, Person


def add_parsers(sub: argparse._SubParsersAction, common: Callable[..., None]) -> None:
    mapping = sub.add_parser("mapping", help="attribute mapping: try it on a person")
    msub = mapping.add_subparsers(dest="mapping_command", metavar="ACTION", required=True)
    p = msub.add_parser("test", help="every target attribute of a person: expression, "
                                     "inputs and result")
    common(p)
    p.add_argument("employee_id")
    p.add_argument("--expr", action="append", default=[], metavar="ATTR=EXPR",
                   help="try this expression for ATTR instead of the configured one "
                        "(repeatable; ATTR may be a new target attribute)")
    p.set_defaults(func=cmd_test)


def _recorded(store: Store, employee_id: str) -> tuple[Person, Account | None, str | None]:
    row = store.one("SELECT record, desired FROM people WHERE employee_id = ?",
                    (employee_id,))
    if row is None:
        raise CliError(f"employee {employee_id!r} is not known to rostersync (no HR record "
                       "has been read for that id)")
    if not row[0]:
        raise CliError(f"employee {employee_id!r} has no valid HR record yet (see its "
                       "`invalid` drift): there is nothing to map")
    person = Person.model_validate_json(row[0])
    linked = account_store.by_external_keys(store, [employee_id]).get(employee_id)
    desired = Account.from_json(row[1]) if row[1] else None
    return person, (Account.from_json(linked) if linked else None), (
        desired.user_name if desired else None)


def cmd_test(args: argparse.Namespace) -> int:
    config, store = load(args)
    try:
        trials = trial_pairs(args.expr)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    person, lms, login = _recorded(store, args.employee_id)
    try:
        doc = explain_mapping(person, config.mapping.compiled(), Clock().now().date(),
                              lms=lms, assigned_login=login, trials=trials)
    except ExpressionError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        emit_json(doc)
        return 0
    print(_text(doc))
    return 0


def _value(value: Any) -> str:
    return "(empty)" if value is None or value == "" else repr(value)


def _text(doc: dict[str, Any]) -> str:
    lines = [f"{doc['employee_id']}: what each LMS attribute gets (today {doc['today']})"]
    for row in doc["attributes"]:
        tag = "" if row["source"] == "configured" else f" [{row['source']}]"
        apply = "" if row["apply"] == "always" else f" (apply = {row['apply']})"
        lines.append(f"{row['attribute']}{tag}{apply}")
        lines.append(f"  expression: {row['expression']}")
        if row["inputs"]:
            lines.append("  inputs:     " + ", ".join(
                f"{k} = {_value(v)}" for k, v in row["inputs"].items()))
        if row["outcome"] == "ok":
            lines.append(f"  result:     {_value(row['result'])}")
        else:
            lines.append(f"  {row['outcome']}: {row['message']}")
        if row["lms"] is not None:
            lines.append(f"  LMS holds:  {_value(row['lms'])}")
    if doc["generated_login"]:
        lines.append(f"assigned login: {_value(doc.get('assigned_login'))} (a generated "
                     "login is chosen once among the candidates and kept)")
    return "\n".join(lines)
