"""Where each desired value comes from: every target attribute of one person, with its
expression, the HR values it read and what it gave (pure; `rostersync mapping test`).

Trial expressions (``trials``: attribute -> text) stand in for the configured ones, so a
change can be tried on a recorded person before the config is edited.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Any

from rostersync.sync.diff import same_value
from rostersync.sync.expressions import (
    EvaluationError,
    ExpressionError,
    UnknownValue,
    compile_expression,
)
from rostersync.sync.expressions.values import text_of
from rostersync.sync.mapping_rules import CompiledMapping, Rule, evaluate_rule, person_values
from rostersync.sync.models import Account, Person


def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def with_trials(compiled: CompiledMapping, trials: dict[str, str]) -> CompiledMapping:
    """The mapping with trial expressions in place (or added). Raises ExpressionError
    naming the --expr it came from."""
    rules = list(compiled.rules)
    login = compiled.login
    for target, text in trials.items():
        expression = compile_expression(text, name=f"--expr {target}",
                                        tables=tuple(compiled.tables))
        if target == "user_name":
            login = (Rule("user_name", text, "create", expression),)
            continue
        found = next((i for i, r in enumerate(rules) if r.target == target), None)
        trial = Rule(target, text, rules[found].apply if found is not None else "always",
                     expression)
        if found is None:
            rules.append(trial)
        else:
            rules[found] = trial
    return replace(compiled, rules=tuple(rules), login=login)


def _row(rule: Rule, person: Person, today: date, compiled: CompiledMapping,
         lms: Account | None, trial: bool) -> dict[str, Any]:
    inputs = person_values(person, rule.inputs)
    row: dict[str, Any] = {
        "attribute": rule.target, "expression": rule.text, "apply": rule.apply,
        "source": "trial" if trial else "default" if rule.default else "configured",
        "inputs": {k: _shown(v) for k, v in sorted(inputs.items())},
        "result": None, "outcome": "ok", "message": None,
        "lms": _shown(lms.value(rule.target)) if lms is not None else None,
    }
    if rule.apply == "never":
        row["outcome"] = "unmanaged"
        row["message"] = "apply = \"never\": neither written nor compared"
        return row
    try:
        row["result"] = _shown(evaluate_rule(rule, person, today, compiled.tables))
    except UnknownValue as exc:
        row["outcome"] = "unmapped"
        row["message"] = (f"value {exc.value!r} is not in the table {exc.table!r}: the LMS "
                          "keeps what it has (unmapped drift, owned by L&D)")
    except EvaluationError as exc:
        row["outcome"] = "error"
        row["message"] = str(exc)
    return row


def explain_mapping(person: Person, compiled: CompiledMapping, today: date, *,
                    lms: Account | None = None, assigned_login: str | None = None,
                    trials: dict[str, str] | None = None) -> dict[str, Any]:
    """Every target attribute for ``person``: expression, inputs, result, the value the
    LMS holds (``lms``: the linked account as last read) and whether it differs."""
    trials = trials or {}
    if trials:
        compiled = with_trials(compiled, trials)
    rows = [_row(r, person, today, compiled, lms, r.target in trials) for r in compiled.rules]
    candidates = []
    for i, rule in enumerate(compiled.login):
        row = _row(rule, person, today, compiled, lms, "user_name" in trials)
        row["attribute"] = "user_name" if len(compiled.login) == 1 else f"user_name[{i}]"
        if row["outcome"] == "ok" and row["result"] is not None and rule.native is None:
            value = text_of(row["result"]) or None
            row["result"] = value.lower() if value and compiled.lowercase_login else value
        candidates.append(row)
    for row in candidates + rows:
        row["differs"] = _differs(row, lms)
    doc: dict[str, Any] = {
        "employee_id": person.employee_id, "today": today.isoformat(),
        "attributes": candidates + rows,
        "generated_login": compiled.generated_login,
    }
    if compiled.generated_login:
        doc["assigned_login"] = (lms.user_name if lms is not None else assigned_login)
    return doc


def _differs(row: dict[str, Any], lms: Account | None) -> bool | None:
    """Whether the LMS holds something else than the result (None: nothing to compare,
    for want of an account or of a result, or because the attribute is unmanaged)."""
    if lms is None or row["outcome"] != "ok":
        return None
    name = "user_name" if row["attribute"].startswith("user_name") else row["attribute"]
    return not same_value(name, row["result"], row["lms"])


def trial_pairs(items: list[str]) -> dict[str, str]:
    """``ATTR=EXPR`` arguments as a dict; raises ValueError naming a malformed one."""
    out: dict[str, str] = {}
    for item in items:
        target, sep, text = item.partition("=")
        if not sep or not target.strip() or not text.strip():
            raise ValueError(f"--expr {item!r}: write it as ATTRIBUTE=EXPRESSION")
        out[target.strip()] = text.strip()
    return out


__all__ = ["ExpressionError", "explain_mapping", "trial_pairs", "with_trials"]
