"""Where the demo's HR life goes: a CSV drop, or a BambooHR tenant (sandbox.bamboohr).

The world keeps people as CSV-shaped rows (sandbox.world); a publisher turns the current
rows into what the HRIS serves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

from rostersync.sandbox.bamboohr import BambooSandbox
from rostersync.sandbox.world import World


class Publisher(Protocol):
    def publish(self, rows: list[dict[str, str]]) -> None: ...


class CsvPublisher:
    def __init__(self, world: World, path: Path) -> None:
        self.world = world
        self.path = path

    def publish(self, rows: list[dict[str, str]]) -> None:
        tmp = self.path.with_suffix(".tmp")
        self.world.write(tmp, rows)
        tmp.replace(self.path)  # a drop is atomic: never a half-written file


def bamboo_employee(row: dict[str, str]) -> dict[str, Any]:
    """A world row as BambooHR's fields (docs/bamboohr.md §1.4): `status` is only
    Active/Inactive; the account-customised employmentHistoryStatus says more."""
    terminated = row["Status"] == "Terminated"
    history = ("Terminated" if terminated else
               "Contractor" if row["Worker Type"] == "Contractor" else
               "Leave of Absence" if row["Status"] == "Leave of Absence" else "Full-Time")
    return {
        "id": row["Employee ID"], "employeeNumber": row["Employee Number"],
        "firstName": row["First Name"], "lastName": row["Last Name"],
        "preferredName": row["Preferred Name"] or None, "workEmail": row["Work Email"],
        "department": row["Department"], "jobTitle": row["Job Title"],
        "location": row["Location"], "supervisorEId": row["Manager ID"] or None,
        # A future-dated termination keeps status Active until the date (§1.5).
        "status": "Inactive" if terminated else "Active",
        "employmentHistoryStatus": history, "hireDate": row["Hire Date"] or "0000-00-00",
        "terminationDate": row["Termination Date"] or "0000-00-00",
        "timeZone": row["Time Zone"],
    }


class BambooPublisher:
    """Puts only what changed, so lastChanged and the changed-since feed stay truthful."""

    def __init__(self, sandbox: BambooSandbox) -> None:
        self.sandbox = sandbox
        self.last: dict[str, dict[str, Any]] = {}

    def publish(self, rows: list[dict[str, str]]) -> None:
        current = {row["Employee ID"]: bamboo_employee(row) for row in rows}
        for emp_id, employee in current.items():
            if self.last.get(emp_id) != employee:
                self.sandbox.put(employee)
        for emp_id in self.last.keys() - current.keys():
            self.sandbox.delete(emp_id)
        self.last = current
