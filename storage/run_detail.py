"""One run opened: its row, what it held, and the operations that failed in it.

A run's failures are the operations whose last attempt in that run ended in an error,
whichever run planned them: a retry sweep that fails 22 operations planned by earlier
runs shows those 22. Attempts recorded before op_attempts had a run (schema 8) count for
the run that planned their operation, the only run known for them.
"""

from __future__ import annotations

import json
from typing import Any

from rostersync.storage.db import Store

# The last attempt each operation made in run :run (one row per op).
_LAST_ATTEMPTS = """
    SELECT op_id, max(attempt) AS attempt FROM (
        SELECT op_id, attempt FROM op_attempts WHERE run_id = :run
        UNION ALL
        SELECT a.op_id, a.attempt FROM ops o JOIN op_attempts a ON a.op_id = o.id
         WHERE o.run_id = :run AND a.run_id IS NULL
    ) GROUP BY op_id
"""

# Operations that failed in run :run, with the class and text of that failure and the
# op's status now (a later retry may have fixed it).
_FAILED_IN_RUN = f"""
    SELECT o.id, o.status, coalesce(a.error_class, 'unknown') AS error_class, a.error
      FROM ({_LAST_ATTEMPTS}) t
      JOIN op_attempts a ON a.op_id = t.op_id AND a.attempt = t.attempt
      JOIN ops o ON o.id = t.op_id
     WHERE a.outcome = 'error'
"""


def run_detail(store: Store, run_id: int) -> dict[str, Any] | None:
    rows = store.rows("SELECT * FROM runs WHERE id = ?", (run_id,))
    if not rows:
        return None
    run = rows[0]
    run["counts"] = json.loads(run["counts"] or "{}")
    held = store.rows("SELECT coalesce(hold_reason, 'held') AS why, count(*) AS n FROM ops "
                      "WHERE run_id = ? AND status = 'held' GROUP BY why ORDER BY n DESC",
                      (run_id,))
    failures = store.rows(
        "SELECT error_class, count(*) AS n, "
        "sum(status IN ('failed', 'dead')) AS still_failing, min(error) AS sample "
        f"FROM ({_FAILED_IN_RUN}) GROUP BY error_class ORDER BY n DESC, error_class",
        {"run": run_id})
    return {"run": run, "held": held, "failures": failures}


def failed_ids(store: Store, run_id: int, error_class: str) -> list[int]:
    """The operations of one failure group that are still failed or dead: the ones a
    retry of the group acts on (one that succeeded since is not retried)."""
    return [r["id"] for r in store.rows(
        f"SELECT id FROM ({_FAILED_IN_RUN}) WHERE error_class = :cls "
        "AND status IN ('failed', 'dead') ORDER BY id", {"run": run_id, "cls": error_class})]
