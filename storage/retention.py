"""Retention: delete recorded history older than its configured horizon.

What is pruned, each by its own age: runs and old feed snapshots, the per-attempt log,
finished operations (with their attempts), resolved drift, and audit entries. Open work
(open drift, pending/failed/held/suppressed ops, the running run, the newest snapshots)
is never pruned.

The audit log is append-only and hash-chained, so its oldest entries cannot simply be
deleted: in one transaction the prune writes a checkpoint row naming the last pruned
entry and its hash, removes the prefix (lifting the no-delete trigger for that statement
only), and appends an audit entry that records the prune itself. `audit.verify` then
starts the chain from the newest checkpoint's hash: the first kept entry must link to it,
so the kept history stays tamper-evident and the prune is itself on the record.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rostersync.storage import audit
from rostersync.storage.db import Store, ts

FINISHED_OPS = ("succeeded", "dead", "superseded")
_NO_DELETE = ("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
              "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def prune(store: Store, now: datetime, horizons: dict[str, float], *, actor: str,
          dry_run: bool = False) -> dict[str, Any]:
    """Delete history older than each horizon (name -> days); returns rows per table.

    Names: runs, attempts, ops, resolved_drift, audit (RetentionConfig.horizons()).
    A dry run counts what would go and changes nothing.
    """
    cutoffs = {name: ts(now - timedelta(days=days)) for name, days in horizons.items()}
    counts: dict[str, int] = {}
    with store.tx() as conn:
        if "ops" in cutoffs:
            where = (f"status IN ({','.join('?' * len(FINISHED_OPS))}) "
                     "AND coalesce(finished_at, updated_at) < ?")
            params = (*FINISHED_OPS, cutoffs["ops"])
            counts["ops"] = _count(conn, f"SELECT count(*) FROM ops WHERE {where}", params)
            counts["op_attempts_of_pruned_ops"] = _count(
                conn, f"SELECT count(*) FROM op_attempts WHERE op_id IN "
                      f"(SELECT id FROM ops WHERE {where})", params)
            if not dry_run:
                conn.execute(f"DELETE FROM op_attempts WHERE op_id IN "
                             f"(SELECT id FROM ops WHERE {where})", params)
                conn.execute(f"DELETE FROM ops WHERE {where}", params)
        if "attempts" in cutoffs:
            where = "coalesce(finished_at, started_at) < ?"
            counts["op_attempts"] = _count(
                conn, f"SELECT count(*) FROM op_attempts WHERE {where}", (cutoffs["attempts"],))
            if not dry_run:
                conn.execute(f"DELETE FROM op_attempts WHERE {where}", (cutoffs["attempts"],))
        if "resolved_drift" in cutoffs:
            where = "resolved_at IS NOT NULL AND resolved_at < ?"
            counts["drift"] = _count(conn, f"SELECT count(*) FROM drift WHERE {where}",
                                     (cutoffs["resolved_drift"],))
            if not dry_run:
                conn.execute(f"DELETE FROM drift WHERE {where}", (cutoffs["resolved_drift"],))
        if "runs" in cutoffs:
            _prune_runs(conn, cutoffs["runs"], counts, dry_run)
        if "audit" in cutoffs:
            _prune_audit(store, conn, now, cutoffs["audit"], counts, actor, dry_run)
        if not dry_run and any(counts.values()):
            audit.record(store, now, "prune", None,
                         {"horizons_days": horizons, "deleted": counts}, actor=actor)
    return {"dry_run": dry_run, "cutoffs": cutoffs, "deleted": counts}


def _count(conn: Any, sql: str, params: Any = ()) -> int:
    return int(conn.execute(sql, params).fetchone()[0])


def _prune_runs(conn: Any, cutoff: str, counts: dict[str, int], dry_run: bool) -> None:
    where = "status != 'running' AND started_at < ?"
    counts["runs"] = _count(conn, f"SELECT count(*) FROM runs WHERE {where}", (cutoff,))
    # The newest snapshot and the newest accepted full one are what the feed gate
    # compares the next pull with: never pruned, whatever their age.
    keep = ("id NOT IN (SELECT max(id) FROM snapshots UNION "
            "SELECT max(id) FROM snapshots WHERE accepted = 1 AND mode = 'full')")
    swhere = f"created_at < ? AND {keep}"
    counts["snapshots"] = _count(conn, f"SELECT count(*) FROM snapshots WHERE {swhere}",
                                 (cutoff,))
    if not dry_run:
        conn.execute(f"DELETE FROM runs WHERE {where}", (cutoff,))
        conn.execute(f"DELETE FROM snapshots WHERE {swhere}", (cutoff,))


def _prune_audit(store: Store, conn: Any, now: datetime, cutoff: str, counts: dict[str, int],
                 actor: str, dry_run: bool) -> None:
    # The newest entry is always kept, so the chain never has to restart from nothing.
    row = conn.execute(
        "SELECT id, hash, at FROM audit WHERE at < ? AND id < (SELECT max(id) FROM audit) "
        "ORDER BY id DESC LIMIT 1", (cutoff,)).fetchone()
    if row is None:
        counts["audit"] = 0
        return
    through_id, through_hash, through_at = row
    counts["audit"] = _count(conn, "SELECT count(*) FROM audit WHERE id <= ?", (through_id,))
    if dry_run:
        return
    # Signed when the log is keyed (storage/audit.py), so a forged one shows.
    audit.add_prune_checkpoint(store, conn, now, through_id, through_hash, through_at,
                               counts["audit"], actor)
    conn.execute("DROP TRIGGER audit_no_delete")
    conn.execute("DELETE FROM audit WHERE id <= ?", (through_id,))
    conn.execute(_NO_DELETE)


def checkpoints(store: Store) -> list[dict[str, Any]]:
    return store.rows("SELECT * FROM audit_checkpoints ORDER BY id")
