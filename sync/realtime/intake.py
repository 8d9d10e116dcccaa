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


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise IntakeError(f"{what}: the body is not JSON") from None


def parse_bamboohr(body: bytes) -> list[HrEvent]:
    """``{"employees": [{"id", "action", "timestamp", "changedFields", "fields"}]}``
    (connectors.md §1.8; the wrapper is inferred, so a bare list is accepted too)."""
    data = _json(body, "BambooHR webhook")
    entries = data.get("employees") if isinstance(data, dict) else data
    if not isinstance(entries, list):
        raise IntakeError("BambooHR webhook: the body has no 'employees' list")
    out: list[HrEvent] = []
    for n, entry in enumerate(entries):
        emp_id = str(entry.get("id") or "").strip() if isinstance(entry, dict) else ""
        if not emp_id:
            raise IntakeError(f"BambooHR webhook: employees[{n}] has no 'id'")
        action = str(entry.get("action") or "Updated")
        if action.lower() == "deleted":
            out.append(HrEvent(emp_id, action, False,
                               "a deleted record is not a termination; the full pull's "
                               "vanished-person grace decides"))
            continue
        changed = entry.get("changedFields")
        detail = ", ".join(map(str, changed)) if isinstance(changed, list) and changed else None
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
        emp_id = str(item.get("employee_id") or "").strip() if isinstance(item, dict) else ""
        if not emp_id:
            raise IntakeError(f"generic event: events[{n}] has no 'employee_id'")
        out.append(HrEvent(emp_id, str(item.get("event") or "changed"), True, None))
    return out
