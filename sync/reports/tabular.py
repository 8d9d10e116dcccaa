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


def to_csv(doc: dict[str, Any], table: str | None = None) -> str:
    table = table or TABLES[doc["report"]][0]
    rows = table_rows(doc, table)
    out = io.StringIO()
    columns: list[str] = []
    for r in rows:
        columns.extend(k for k in r if k not in columns)
    writer = csv.DictWriter(out, fieldnames=columns or ["empty"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
