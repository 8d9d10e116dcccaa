"""The BambooHR sandbox's data: employees, their dated table rows, the change log.

Safe to mutate from any thread; sandbox.bamboohr serves it over HTTP.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from rostersync.sandbox.bamboohr_history import TABLES

# `since` formats of /employees/changed (§1.3): yyyy-mm-ddThh:mm:ss then Z, ±hh:mm or ±hhmm.
_SINCE = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(Z|[+-]\d{2}:?\d{2})")


def parse_since(text: str) -> datetime | None:
    """The moment a documented ``since`` value names; None if it is not one."""
    match = _SINCE.fullmatch(text)
    if match is None:
        return None
    moment, offset = match.groups()
    if offset == "Z":
        zone = UTC
    else:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        zone = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        return datetime.fromisoformat(moment).replace(tzinfo=zone)
    except ValueError:
        return None


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


class EmployeeStore:
    """The tenant's employees and change log; safe to mutate from any thread."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._employees: dict[str, dict[str, Any]] = {}
        # id -> table -> dated rows (sandbox.bamboohr_history).
        self._rows: dict[str, dict[str, list[dict[str, Any]]]] = {}
        # id -> (action, when): the last change per employee, as /employees/changed
        # reports it (one entry per id, the object is keyed by id).
        self._changes: dict[str, tuple[str, datetime]] = {}
        # Called after each change with (action, before, after): the webhook senders
        # (sandbox.bamboohr_webhooks) listen here.
        self.listeners: list[Callable[[str, dict[str, Any] | None, dict[str, Any] | None],
                                      None]] = []

    def put(self, employee: dict[str, Any]) -> dict[str, Any]:
        """Insert or replace one employee (BambooHR field ids as keys); stamps lastChanged."""
        emp_id = str(employee["id"])
        now = self.clock()
        with self._lock:
            before = self._employees.get(emp_id)
            action = "Updated" if before is not None else "Inserted"
            stored = {**employee, "id": emp_id, "lastChanged": stamp(now)}
            self._employees[emp_id] = stored
            self._changes[emp_id] = (action, now)
        for listener in self.listeners:
            listener(action, before, stored)
        return dict(stored)

    def update(self, emp_id: str, **fields: Any) -> dict[str, Any]:
        """Change some fields of an existing employee (an *Updated* change)."""
        with self._lock:
            current = dict(self._employees[str(emp_id)])
        return self.put({**current, **fields})

    def schedule(self, emp_id: str, table: str, day: str, **columns: Any) -> dict[str, Any]:
        """Enter a dated row in ``table`` (e.g. a leave in employmentStatus, a transfer in
        jobInfo). Entering a row is a change to the employee (§1.3: any table change
        marks the employee); the row taking effect later is not."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        emp_id = str(emp_id)
        with self._lock:
            self._rows.setdefault(emp_id, {}).setdefault(table, []).append(
                {"date": day, **columns})
        return self.update(emp_id)

    def rows(self, emp_id: str) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return {t: [dict(r) for r in rows]
                    for t, rows in self._rows.get(str(emp_id), {}).items()}

    def delete(self, emp_id: str) -> None:
        """Remove the record itself (not a termination: that is an update, §1.5)."""
        with self._lock:
            before = self._employees.pop(str(emp_id))
            self._changes[str(emp_id)] = ("Deleted", self.clock())
        for listener in self.listeners:
            listener("Deleted", before, None)

    def get(self, emp_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._employees.get(str(emp_id))
            return dict(found) if found is not None else None

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._employees.values()]

    def changed_since(self, since: datetime) -> dict[str, tuple[str, datetime]]:
        with self._lock:
            # Inclusive: a change in the same second as the watermark is reported again
            # rather than lost; re-reading an unchanged employee is harmless (unconfirmed).
            return {k: v for k, v in self._changes.items() if v[1] >= since}


def generate(n: int) -> list[dict[str, Any]]:
    """A small organisation: employee 1 at the top, five reports per manager."""
    out = []
    for i in range(1, n + 1):
        boss = None if i == 1 else (i - 2) // 5 + 1
        out.append({
            "id": str(i), "employeeNumber": f"E-{10000 + i}", "firstName": f"First{i}",
            "lastName": f"Last{i}", "preferredName": None,
            "workEmail": f"person{i}@acme.example", "department": "Engineering",
            "jobTitle": "Specialist", "location": "Berlin",
            "supervisorEId": None if boss is None else str(boss),
            "supervisorId": None if boss is None else f"E-{10000 + boss}",
            "status": "Active", "employmentHistoryStatus": "Full-Time",
            "hireDate": "2020-03-01", "terminationDate": "0000-00-00",
            "timeZone": "Europe/Berlin",
        })
    return out


def seed_schedule(store: EmployeeStore, n: int) -> None:
    """A scheduled leave for employee 3 and a scheduled transfer for employee 4, each a
    few weeks ahead: what onlyCurrent=false shows early and a sync must not apply early."""
    today = store.clock().date()
    if n >= 3:
        store.schedule("3", "employmentStatus", (today + timedelta(days=21)).isoformat(),
                       employmentStatus="Leave of Absence")
    if n >= 4:
        store.schedule("4", "jobInfo", (today + timedelta(days=14)).isoformat(),
                       department="Sales", division=None, jobTitle="Account Executive",
                       location="Munich")
