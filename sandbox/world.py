"""A generated organisation written as an HRIS CSV export (tests, demo, benchmarks)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

HEADER = ["Employee ID", "Employee Number", "First Name", "Last Name", "Preferred Name",
          "Work Email", "Department", "Job Title", "Location", "Manager ID", "Status",
          "Hire Date", "Termination Date", "Time Zone", "Worker Type"]
DEPARTMENTS = ["Sales", "Engineering", "Finance", "Support", "Marketing"]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Europe/London",
         "America/Los_Angeles"]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Emil", "Fatima", "Goran", "Hana", "Ivo", "Jun",
         "Kemal", "Lena", "Mona", "Nils", "Olu", "Priya", "Quinn", "Rosa", "Sami", "Tomas"]
LAST = ["Novak", "Okafor", "Schmidt", "Tanaka", "Costa", "Larsen", "Dubois", "Haddad",
        "Kowalski", "Moreau", "Nakamura", "Petrov", "Ribeiro", "Silva", "Weber", "Yilmaz"]

# The config column map that matches HEADER (canonical field -> CSV header).
COLUMNS = {
    "employee_id": "Employee ID", "employee_number": "Employee Number",
    "first_name": "First Name", "last_name": "Last Name", "preferred_name": "Preferred Name",
    "email": "Work Email", "department": "Department", "job_title": "Job Title",
    "location": "Location", "manager_id": "Manager ID", "status": "Status",
    "hire_date": "Hire Date", "termination_date": "Termination Date", "timezone": "Time Zone",
}


def employee_id(i: int) -> str:
    return f"E{i:05d}"


@dataclass
class World:
    """Person 1 is the top; everyone else reports up a tree with five reports each."""

    rows: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def generate(cls, n: int) -> World:
        world = cls()
        for i in range(1, n + 1):
            world.rows[employee_id(i)] = world.person(i)
        return world

    @staticmethod
    def person(i: int, **overrides: str) -> dict[str, str]:
        first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
        row = {
            "Employee ID": employee_id(i), "Employee Number": f"{100000 + i}",
            "First Name": first, "Last Name": last, "Preferred Name": "",
            "Work Email": f"{first.lower()}.{last.lower()}.{i}@acme.example",
            "Department": DEPARTMENTS[i % len(DEPARTMENTS)], "Job Title": "Specialist",
            "Location": "Berlin", "Manager ID": "" if i == 1 else employee_id((i - 2) // 5 + 1),
            "Status": "Active", "Hire Date": "2020-03-01", "Termination Date": "",
            "Time Zone": ZONES[i % len(ZONES)], "Worker Type": "Employee",
        }
        row.update(overrides)
        return row

    def write(self, path: Path, rows: list[dict[str, str]] | None = None) -> Path:
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=HEADER)
            writer.writeheader()
            writer.writerows(self.rows.values() if rows is None else rows)
        return path
