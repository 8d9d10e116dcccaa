"""BambooHR's future-dated values, kept apart from the current ones (pure).

With ``onlyCurrent=false`` every history field (employment status, department, division,
job title, location) comes back with its future-dated value (connectors.md §1.2 B,
"Correction"): read that way, a leave or transfer entered for next month would be
applied today. So current values are read with ``onlyCurrent=true`` and the future view
is read separately, only for the history fields and ``terminationDate``:

- a future ``terminationDate`` is carried on the current record: the engine schedules
  the deactivation for that date and enforces it then (sync/lifecycle.py);
- any other history field whose future value differs is a scheduled change. Its
  effective date comes from the employee's table rows (``employmentStatus``,
  ``jobInfo``, §1.2 D); it is recorded on the raw record under ``SCHEDULED`` (shown,
  never mapped) and the source re-reads the person once the date has come, because a
  row taking effect edits nothing and ``/v1/employees/changed`` will not report it.
"""

from __future__ import annotations

from datetime import date
from typing import Any

# Employee field id -> (table, the table's column) (connectors.md §1.2 D, §1.4).
HISTORY_FIELDS: dict[str, tuple[str, str]] = {
    "employmentHistoryStatus": ("employmentStatus", "employmentStatus"),
    "department": ("jobInfo", "department"),
    "division": ("jobInfo", "division"),
    "jobTitle": ("jobInfo", "jobTitle"),
    "location": ("jobInfo", "location"),
}
TERMINATION = "terminationDate"
# Not a BambooHR field id (those are camelCase words or numbers): no field can clash.
SCHEDULED = "rostersync:scheduled"
NO_DATE = "0000-00-00"


def probe_fields(requested: list[str]) -> list[str]:
    """The fields whose future-dated value is worth asking for: the history fields and
    the termination date among those requested."""
    wanted = [f for f in requested if f in HISTORY_FIELDS or f == TERMINATION]
    return ["id", *dict.fromkeys(wanted)] if wanted else []


def pending_fields(current: dict[str, Any], future: dict[str, Any] | None) -> list[str]:
    """History fields whose future-dated value differs from the current one."""
    if not future:
        return []
    return [f for f in HISTORY_FIELDS
            if f in future and _norm(future.get(f)) != _norm(current.get(f))]


def tables_for(fields: list[str]) -> list[str]:
    return sorted({HISTORY_FIELDS[f][0] for f in fields if f in HISTORY_FIELDS})


def scheduled_changes(rows_by_table: dict[str, Any], today: date) -> list[dict[str, Any]] | None:
    """The rows dated after ``today``, as ``{"date", "changes": {field id: value}}``,
    earliest first; None when a table's answer is not a list of dated rows (its JSON
    shape is [inferred]) and so says nothing about when."""
    out: list[dict[str, Any]] = []
    for table, rows in rows_by_table.items():
        if not isinstance(rows, list):
            return None
        for row in rows:
            day = _day(row.get("date")) if isinstance(row, dict) else None
            if day is None:
                return None
            if day <= today:
                continue
            changes = {f: row[col] for f, (t, col) in HISTORY_FIELDS.items()
                       if t == table and col in row}
            out.append({"date": day.isoformat(), "table": table, "changes": changes})
    return sorted(out, key=lambda c: c["date"])


def merge(current: dict[str, Any], future: dict[str, Any] | None, pending: list[str],
          scheduled: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The record the engine gets: current values, the future termination date, and the
    scheduled changes (or, when their dates are unknown, the pending values undated)."""
    out = dict(current)
    if future and _norm(future.get(TERMINATION)) and not _norm(current.get(TERMINATION)):
        out[TERMINATION] = future[TERMINATION]
    if pending:
        undated = {"date": None, "table": None,
                   "changes": {f: (future or {}).get(f) for f in pending}}
        out[SCHEDULED] = scheduled or [undated]
    return out


def next_due(raw: Any) -> tuple[bool, date | None]:
    """(has a scheduled change, its earliest date or None when undated)."""
    changes = raw.get(SCHEDULED) if isinstance(raw, dict) else None
    if not changes:
        return False, None
    days = [_day(c.get("date")) for c in changes if isinstance(c, dict)]
    if not days or any(d is None for d in days):
        return True, None
    return True, min(d for d in days if d is not None)


def _day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value.strip()[:10])
    except ValueError:
        return None


def _norm(value: Any) -> str | None:
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return None if not text or text == NO_DATE else text
