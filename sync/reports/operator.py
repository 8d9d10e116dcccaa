"""The operator report: who retried, suppressed, approved or rejected what, from the
audit log, with the chain verified (and any retention checkpoint named)."""

from __future__ import annotations

import json
from typing import Any

from rostersync.storage import audit
from rostersync.storage.db import Store, ts
from rostersync.sync.reports.period import Period

# Actions an operator takes on purpose (the rest are the engine's own records).
STEERING = ("retry", "suppress", "unsuppress", "approve", "reject", "pause", "resume",
            "resync", "sync", "prune")


def build(store: Store, period: Period) -> dict[str, Any]:
    entries = store.rows("SELECT * FROM audit WHERE at >= ? AND at <= ? ORDER BY id",
                         (ts(period.since), ts(period.until)))
    ops = _ops_named(store, entries)
    rows = [_entry(e, ops) for e in entries]
    by_actor: dict[str, dict[str, int]] = {}
    by_action: dict[str, int] = {}
    for r in rows:
        by_actor.setdefault(r["actor"], {})
        by_actor[r["actor"]][r["action"]] = by_actor[r["actor"]].get(r["action"], 0) + 1
        by_action[r["action"]] = by_action.get(r["action"], 0) + 1
    check = audit.verify(store)
    checkpoint = store.rows("SELECT at, through_id, through_at, pruned, actor "
                            "FROM audit_checkpoints WHERE kind = 'prune' ORDER BY id DESC LIMIT 1")
    return {
        "report": "operator", "period": period.as_dict(),
        "chain": {"ok": check.ok, "entries": check.entries, "broken_at": check.broken_at,
                  "message": check.message,
                  "checkpoint": checkpoint[0] if checkpoint else None},
        "summary": {"entries": len(rows), "actors": len(by_actor), "by_action": by_action,
                    "ops_touched": len({i for r in rows for i in r["ops"]})},
        "by_actor": [{"actor": a, "total": sum(c.values()), **c}
                     for a, c in sorted(by_actor.items())],
        "entries": rows,
    }


def _detail(entry: dict[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(entry["detail"])
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _ops_named(store: Store, entries: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    ids = sorted({int(i) for e in entries for i in (_detail(e).get("ops") or [])})
    out: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        marks = ",".join("?" * len(part))
        for row in store.rows(f"SELECT id, employee_id, kind, status FROM ops "
                              f"WHERE id IN ({marks})", part):
            out[row["id"]] = row
    return out


def _entry(e: dict[str, Any], ops: dict[int, dict[str, Any]]) -> dict[str, Any]:
    detail = _detail(e)
    op_ids = [int(i) for i in detail.get("ops") or []]
    people = sorted({ops[i]["employee_id"] for i in op_ids if i in ops})
    kinds = sorted({ops[i]["kind"] for i in op_ids if i in ops})
    what = []
    if op_ids:
        shown = ", ".join(map(str, op_ids[:8])) + (" …" if len(op_ids) > 8 else "")
        what.append(f"{len(op_ids)} op(s) [{shown}]"
                    + (f" {'/'.join(kinds)}" if kinds else "")
                    + (f" for {', '.join(people[:5])}" + (" …" if len(people) > 5 else "")
                       if people else ""))
    for key in ("reason", "until", "kind", "run", "state", "was"):
        if detail.get(key) not in (None, "", []):
            what.append(f"{key}: {detail[key]}")
    # The OS user beside the name the action was taken as (--actor): storage/audit.py.
    return {"id": e["id"], "at": e["at"], "actor": e["actor"], "os_user": e.get("os_user"),
            "action": e["action"],
            "target": e["target"], "ops": op_ids, "people": people,
            "steering": e["action"] in STEERING, "what": "; ".join(what)}
