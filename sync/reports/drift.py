"""The drift report: drift by kind over time, time-to-resolve per kind, the oldest open
items, data-quality problems by field and owner, and failures by error class.

"Open at a moment" means first seen at or before it and not resolved by then, so the
series is the backlog the console showed at the end of each day (or week).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from rostersync.storage.db import Store, ts
from rostersync.sync.models import DRIFT_OWNER, ERROR_OWNER, DriftKind
from rostersync.sync.reports import history
from rostersync.sync.reports.period import Period
from rostersync.sync.reports.stats import spread
from rostersync.sync.status import format_age

# Kinds that are data-quality problems for a person to fix, and who fixes them.
QUALITY_KINDS = (DriftKind.invalid, DriftKind.unmapped, DriftKind.disputed,
                 DriftKind.conflict, DriftKind.manager_unknown, DriftKind.manager_cycle,
                 DriftKind.login_taken)
_PROBLEM_FIELD = re.compile(r" field (\w+):")
OLDEST_LIMIT = 20


def build(store: Store, period: Period) -> dict[str, Any]:
    since, until = ts(period.since), ts(period.until)
    rows = store.rows(
        "SELECT id, subject, kind, detail, owner, first_seen_at, resolved_at FROM drift "
        "WHERE first_seen_at <= ? AND (resolved_at IS NULL OR resolved_at >= ?) ORDER BY id",
        (until, since))
    for r in rows:
        r["seen"] = history.moment(r["first_seen_at"])
        resolved = history.moment(r["resolved_at"])
        r["resolved"] = resolved if resolved is not None and resolved <= period.until else None
    kinds = [str(k) for k in DriftKind]
    series = _series(rows, period, kinds)
    resolve = _time_to_resolve(rows, period, kinds)
    open_now = [r for r in rows if r["resolved"] is None]
    oldest = sorted(open_now, key=lambda r: (r["first_seen_at"], r["id"]))[:OLDEST_LIMIT]
    failures = _failures(store, since, until)
    open_by_kind = {k: sum(1 for r in open_now if r["kind"] == k) for k in kinds}
    return {
        "report": "drift", "period": period.as_dict(),
        "summary": {
            "open_at_end": open_by_kind, "open_total": len(open_now),
            "opened": {k: sum(1 for r in rows if r["kind"] == k and r["seen"] >= period.since)
                       for k in kinds},
            "resolved": {k: resolve[k]["count"] for k in kinds},
            "oldest_open_age_seconds": (round((period.until - oldest[0]["seen"])
                                              .total_seconds()) if oldest else None),
            "failed_attempts": sum(f["attempts"] for f in failures),
        },
        "series": series,
        "time_to_resolve": [{"kind": k, **resolve[k]} for k in kinds],
        "oldest_open": [_item(r, period.until) for r in oldest],
        "data_quality": _quality(rows, period),
        "failures": failures,
    }


def bucket_size(period: Period) -> timedelta:
    return timedelta(days=1) if period.days <= 62 else timedelta(weeks=1)


def _series(rows: list[dict[str, Any]], period: Period, kinds: list[str]) -> dict[str, Any]:
    step = bucket_size(period)
    ends: list[datetime] = []
    moment = period.since + step
    while moment < period.until:
        ends.append(moment)
        moment += step
    ends.append(period.until)
    open_at = {k: [0] * len(ends) for k in kinds}
    opened = {k: [0] * len(ends) for k in kinds}
    for r in rows:
        kind = r["kind"] if r["kind"] in open_at else None
        if kind is None:
            continue
        for i, end in enumerate(ends):
            start = ends[i - 1] if i else period.since
            if r["seen"] <= end and (r["resolved"] is None or r["resolved"] > end):
                open_at[kind][i] += 1
            if start < r["seen"] <= end or (i == 0 and r["seen"] == start):
                opened[kind][i] += 1
    # Kinds with nothing in the period are left out: the chart and the CSV show activity.
    active = [k for k in kinds if any(open_at[k]) or any(opened[k])]
    return {"bucket": "day" if step.days == 1 else "week", "ends": [ts(e) for e in ends],
            "open": {k: open_at[k] for k in active}, "opened": {k: opened[k] for k in active}}


def _time_to_resolve(rows: list[dict[str, Any]], period: Period,
                     kinds: list[str]) -> dict[str, dict[str, Any]]:
    out = {}
    for k in kinds:
        durations = [(r["resolved"] - r["seen"]).total_seconds() for r in rows
                     if r["kind"] == k and r["resolved"] is not None
                     and r["resolved"] >= period.since]
        figures = spread([round(d) for d in durations])
        out[k] = {**figures, "p50_text": format_age(figures["p50"]) if durations else None,
                  "max_text": format_age(figures["max"]) if durations else None}
    return out


def _item(r: dict[str, Any], until: datetime) -> dict[str, Any]:
    age = (until - r["seen"]).total_seconds()
    return {"id": r["id"], "subject": r["subject"], "kind": r["kind"],
            "owner": r["owner"] or DRIFT_OWNER.get(r["kind"]) or "IT",
            "first_seen_at": r["first_seen_at"], "age_seconds": round(age),
            "age": format_age(age), "detail": _summary(r["detail"])}


def _summary(detail: str) -> str:
    try:
        data = json.loads(detail)
    except ValueError:
        return detail[:120]
    if isinstance(data, dict):
        if "problems" in data:
            return "; ".join(map(str, data["problems"]))[:160]
        if "fields" in data:
            fields = data["fields"]
            return ("fields " + ", ".join(f"{k}={v!r}" for k, v in fields.items())
                    if isinstance(fields, dict) else "fields " + ", ".join(fields))[:160]
        return ", ".join(f"{k}={v}" for k, v in data.items() if v not in (None, "", {}))[:160]
    return str(data)[:160]


def _quality(rows: list[dict[str, Any]], period: Period) -> list[dict[str, Any]]:
    """Problems by field and owner: invalid HR values (HR), unmapped values (L&D),
    ambiguous account matches (IT); 'open' is at the period's end."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        if r["kind"] not in QUALITY_KINDS:
            continue
        owner = r["owner"] or DRIFT_OWNER.get(r["kind"], "IT")
        for field_name, example in _fields(r["kind"], r["detail"]):
            g = groups.setdefault((field_name, owner, r["kind"]), {
                "field": field_name, "owner": owner, "kind": r["kind"], "seen": 0, "open": 0,
                "examples": []})
            g["seen"] += 1
            g["open"] += r["resolved"] is None
            if example and example not in g["examples"] and len(g["examples"]) < 3:
                g["examples"].append(example)
    return sorted(groups.values(), key=lambda g: (-g["open"], -g["seen"], g["field"]))


def _fields(kind: str, detail: str) -> list[tuple[str, str | None]]:
    try:
        data = json.loads(detail)
    except ValueError:
        return [("?", None)]
    if kind == DriftKind.invalid:
        found: list[tuple[str, str | None]] = []
        for problem in data.get("problems", []):
            match = _PROBLEM_FIELD.search(str(problem))
            found.append((match.group(1) if match else "record", str(problem)[:100]))
        return found or [("record", None)]
    if kind == DriftKind.unmapped:
        return [(f, f"{v!r} has no mapping") for f, v in (data.get("fields") or {}).items()]
    if kind == DriftKind.conflict:
        return [(f, f"{v.get('value')!r} also held by {', '.join(v.get('with', []))}")
                for f, v in (data.get("fields") or {}).items()]
    if kind in (DriftKind.manager_unknown, DriftKind.manager_cycle):
        return [("manager_id", data.get("cycle") or " -> ".join(data.get("chain", [])))]
    if kind == DriftKind.login_taken:
        return [("user_name", f"{c!r} held by {', '.join(w)}")
                for c, w in (data.get("candidates") or {}).items()]
    return [("user_name/email", f"{len(data.get('candidates', []))} candidate accounts")]


def _failures(store: Store, since: str, until: str) -> list[dict[str, Any]]:
    """Failed attempts in the period by error class, with the class's owner."""
    out = []
    for cls, attempts, ops, sample in store.conn.execute(
            "SELECT coalesce(error_class, 'unknown'), count(*), count(DISTINCT op_id), "
            "max(error) FROM op_attempts WHERE finished_at >= ? AND finished_at <= ? "
            "AND outcome != 'ok' GROUP BY 1 ORDER BY 2 DESC, 1", (since, until)):
        out.append({"error_class": cls, "owner": ERROR_OWNER.get(cls, "IT"),
                    "attempts": attempts, "ops": ops, "example": (sample or "")[:160]})
    return out
