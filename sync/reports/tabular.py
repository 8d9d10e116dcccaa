"""CSV and JSON renderings of a report for spreadsheets and pipelines (pure)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

# Each report's tables, the first being the default for CSV.
TABLES: dict[str, tuple[str, ...]] = {
    "terminations": ("rows",),
    "drift": ("series", "time_to_resolve", "oldest_open", "data_quality", "failures"),
    "operator": ("entries", "by_actor"),
}


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, default=str)


def table_rows(doc: dict[str, Any], table: str) -> list[dict[str, Any]]:
    if doc["report"] == "drift" and table == "series":
        s = doc["series"]
        return [{"bucket_end": end, "kind": kind, "opened": s["opened"][kind][i],
                 "open_at_end": s["open"][kind][i]}
                for i, end in enumerate(s["ends"]) for kind in s["open"]]
    rows = doc[table]
    return [{k: (json.dumps(v) if isinstance(v, list | dict) else v) for k, v in r.items()}
            for r in rows]


# A spreadsheet runs a cell that starts with one of these as a formula (DDE included:
# =cmd|' /C calc'!A0). OWASP's rule: prefix such a cell with a single quote, which makes
# it text. HR values (names, titles, reasons, actors) reach these reports unfiltered.
# https://owasp.org/www-community/attacks/CSV_Injection
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A cell a spreadsheet would not run as a formula (pure). Numbers we computed stay
    numbers (a negative count is not a formula); any text that starts like one is
    prefixed with a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def to_csv(doc: dict[str, Any], table: str | None = None) -> str:
    table = table or TABLES[doc["report"]][0]
    rows = table_rows(doc, table)
    out = io.StringIO()
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    writer = csv.DictWriter(out, fieldnames=columns or ["empty"], lineterminator="\n")
    writer.writerow({c: neutralise(c) for c in columns} if columns else {"empty": "empty"})
    writer.writerows({k: neutralise(v) for k, v in r.items()} for r in rows)
    return out.getvalue()
