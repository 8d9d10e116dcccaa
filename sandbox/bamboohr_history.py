"""Effective-dated table rows in the BambooHR sandbox, and what each call shows of them.

BambooHR keeps employment status and job information as tables of dated rows (the
``employmentStatus`` and ``jobInfo`` tables, docs/bamboohr.md §1.2 D); the employee
fields ``employmentHistoryStatus``, ``department``, ``division``, ``jobTitle`` and
``location`` are views of those rows. Which row a view shows depends on ``onlyCurrent``:

- ``onlyCurrent=true`` (the default): the row in force today, i.e. the latest row dated
  today or earlier.
- ``onlyCurrent=false``: "Set to false to include future-dated values"
  (https://documentation.bamboohr.com/reference/request-custom-report). That applies to
  EVERY history field, not only ``terminationDate`` (/work/shared/connectors.md §1.2 B,
  "Correction"): a leave or transfer entered for next month shows up today.

A row taking effect edits nothing: the employee's ``lastChanged`` and the change log
(``/v1/employees/changed``) only move when a row is entered, never on its date
(issue 16; unconfirmed by BambooHR, but no documented mechanism would report it).

An employee with no rows in a table shows the plain stored field; once a row is in force
it takes precedence over that field (tests change a history field either way, not both).

Pure functions; the store (sandbox.bamboohr_store) holds the rows.
"""

from __future__ import annotations

from datetime import date
from typing import Any

# Employee field id -> (table, the table's column for it) (connectors.md §1.2 D, §1.4).
HISTORY_FIELDS: dict[str, tuple[str, str]] = {
    "employmentHistoryStatus": ("employmentStatus", "employmentStatus"),
    "department": ("jobInfo", "department"),
    "division": ("jobInfo", "division"),
    "jobTitle": ("jobInfo", "jobTitle"),
    "location": ("jobInfo", "location"),
}
TABLES = frozenset(table for table, _ in HISTORY_FIELDS.values())
NO_DATE = "0000-00-00"


def view_of(employee: dict[str, Any], rows: dict[str, list[dict[str, Any]]], today: date,
            only_current: bool) -> dict[str, Any]:
    """The employee's fields as a call with this ``onlyCurrent`` shows them today."""
    out = dict(employee)
    for field, (table, column) in HISTORY_FIELDS.items():
        row = _shown_row(rows.get(table, []), column, today, only_current)
        if row is not None:
            out[field] = row[column]
    ends = out.get("terminationDate")
    if only_current and ends and ends != NO_DATE and ends > today.isoformat():
        # The default hides future-dated values (§1.2 B): a termination typed in advance
        # is invisible until its date without onlyCurrent=false.
        out["terminationDate"] = None
    return out


def _shown_row(rows: list[dict[str, Any]], column: str, today: date,
               only_current: bool) -> dict[str, Any] | None:
    dated = sorted((r for r in rows if column in r), key=lambda r: r["date"])
    if not only_current:
        return dated[-1] if dated else None
    current = [r for r in dated if r["date"] <= today.isoformat()]
    return current[-1] if current else None


def table_rows(emp_id: str, table: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A table's rows as ``GET /v1/employees/{id}/tables/{table}`` answers them in JSON:
    a list of row objects with ``id``, ``employeeId``, ``date`` and the table's columns
    (the JSON shape is [inferred] in connectors.md §1.2 D)."""
    return [{"id": str(n), "employeeId": emp_id, **row}
            for n, row in enumerate(sorted(rows, key=lambda r: r["date"]), start=1)]
