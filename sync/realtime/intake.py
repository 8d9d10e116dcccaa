"""Webhook bodies -> HR events (pure). Which people changed, and how the sender put it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class IntakeError(Exception):
    """The body is signed but not something rostersync can read; one sentence."""


@dataclass(frozen=True)
class HrEvent:
    employee_id: str
    action: str | None
    # False: recorded, but nothing to sync (a BambooHR *Deleted* record is not a
    # termination; the full pull's vanished-person grace decides about it).
    actionable: bool = True
    detail: str | None = None


# No webhook this reads nests deeper than 4 levels ({"employees": [{"fields": {...}}]}); a
# signed body nested far deeper is refused before it is walked. json.loads itself stops at
# the interpreter's recursion limit with a RecursionError, caught below for the same answer.
MAX_NESTING = 32
# An employee id is a short key; one longer than this is not an id.
MAX_ID_CHARS = 256


def nesting_depth(data: Any) -> int:
    """How deeply containers nest in parsed JSON (a scalar 0, ``[]`` 1, ``[{}]`` 2),
    walked without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        if isinstance(value, list):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((item, depth) for item in value if isinstance(item, dict | list))
    return deepest


def _json(body: bytes, what: str) -> Any:
    too_deep = f"{what}: the JSON nests deeper than {MAX_NESTING} levels"
    try:
        data = json.loads(body)
    except RecursionError:
        raise IntakeError(too_deep) from None
    except (ValueError, UnicodeDecodeError):
        raise IntakeError(f"{what}: the body is not JSON") from None
    if nesting_depth(data) > MAX_NESTING:
        raise IntakeError(too_deep)
    return data


def employee_key(value: Any, where: str) -> str:
    """An employee id as a string: a JSON string or integer, nothing else (an object's
    text would be queued as a person's id). ``where`` names the field for the message."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "missing" if value is None else f"a JSON {_json_kind(value)}, not a string " \
            "or an integer"
        raise IntakeError(f"{where} is {kind}")
    key = str(value).strip()
    if not key:
        raise IntakeError(f"{where} is empty")
    if len(key) > MAX_ID_CHARS:
        raise IntakeError(f"{where} is {len(key)} characters long; an id has at most "
                          f"{MAX_ID_CHARS}")
    return key


def _label(value: Any, where: str, default: str) -> str:
    """An action or event name: a JSON string (or absent, which means ``default``)."""
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise IntakeError(f"{where} is a JSON {_json_kind(value)}, not a string")
    return value


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", bool: "boolean", float: "number",
            int: "number", str: "string"}.get(type(value), type(value).__name__)


def parse_bamboohr(body: bytes) -> list[HrEvent]:
    """``{"employees": [{"id", "action", "timestamp", "changedFields", "fields"}]}``
    (connectors.md §1.8; the wrapper is inferred, so a bare list is accepted too)."""
    data = _json(body, "BambooHR webhook")
    entries = data.get("employees") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise IntakeError("BambooHR webhook: the body has no 'employees' list")
    out: list[HrEvent] = []
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict) or entry.get("id") in (None, ""):
            raise IntakeError(f"BambooHR webhook: employees[{n}] has no 'id'")
        emp_id = employee_key(entry["id"], f"BambooHR webhook: employees[{n}].id")
        action = _label(entry.get("action"), f"BambooHR webhook: employees[{n}].action",
                        "Updated")
        if action.lower() == "deleted":
            out.append(HrEvent(emp_id, action, False,
                               "a deleted record is not a termination; the full pull's "
                               "vanished-person grace decides"))
            continue
        changed = entry.get("changedFields")
        names = [c for c in changed if isinstance(c, str)] if isinstance(changed, list) else []
        detail = ", ".join(names) if names else None
        out.append(HrEvent(emp_id, action, True, detail))
    return out


def parse_generic(body: bytes) -> list[HrEvent]:
    """``{"employee_id": "412", "event": "terminated"}`` or ``{"events": [...]}``.
    The event only says who changed; the HRIS record itself is read again."""
    data = _json(body, "generic event")
    items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
    if not isinstance(items, list):
        raise IntakeError("generic event: 'events' is not a list")
    out: list[HrEvent] = []
    for n, item in enumerate(items):
        if not isinstance(item, dict) or item.get("employee_id") in (None, ""):
            raise IntakeError(f"generic event: events[{n}] has no 'employee_id'")
        emp_id = employee_key(item["employee_id"], f"generic event: events[{n}].employee_id")
        out.append(HrEvent(emp_id, _label(item.get("event"), f"generic event: events[{n}].event",
                                          "changed"), True, None))
    return out
