"""Reads of recorded history shared by the reports (IO at the edge; nothing here decides)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rostersync.storage.db import Store, parse_ts
from rostersync.storage.people import chunks


def moment(text: str | None) -> datetime | None:
    """A stored timestamp (fixed-width UTC text) or an ISO string with an offset."""
    if not text:
        return None
    try:
        return parse_ts(text)
    except ValueError:
        value = datetime.fromisoformat(text)
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def people_records(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    """employee_id -> the last valid Person record (as a dict), for names and zones."""
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(sorted(set(keys))):
        marks = ",".join("?" * len(part))
        for key, record in store.conn.execute(
                f"SELECT employee_id, record FROM people WHERE employee_id IN ({marks})", part):
            out[key] = json.loads(record) if record else {}
    return out


def attempts_of(store: Store, op_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {}
    for start in range(0, len(op_ids), 500):
        part = op_ids[start:start + 500]
        marks = ",".join("?" * len(part))
        for row in store.rows(f"SELECT * FROM op_attempts WHERE op_id IN ({marks}) "
                              "ORDER BY op_id, attempt", part):
            out.setdefault(row["op_id"], []).append(row)
    return out


def suppressions_of(store: Store, keys: list[str]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for part in chunks(sorted(set(keys))):
        marks = ",".join("?" * len(part))
        for row in store.rows(f"SELECT * FROM suppressions WHERE employee_id IN ({marks}) "
                              "ORDER BY id", part):
            out.setdefault(row["employee_id"], []).append(row)
    return out


def op_actions(store: Store, until_text: str) -> dict[int, list[dict[str, Any]]]:
    """op id -> the operator actions that named it (approve, retry, reject), oldest first."""
    out: dict[int, list[dict[str, Any]]] = {}
    for row in store.rows("SELECT at, actor, action, detail FROM audit WHERE action IN "
                          "('approve', 'retry', 'reject') AND at <= ? ORDER BY id",
                          (until_text,)):
        try:
            ids = json.loads(row["detail"]).get("ops") or []
        except (ValueError, AttributeError):
            continue
        for op_id in ids:
            out.setdefault(int(op_id), []).append(row)
    return out
