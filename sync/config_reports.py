"""The [retention] config: how long recorded history is kept for reports.

Every setting is a number of days, or absent to keep that history forever (the default:
nothing is pruned until someone decides how long evidence must be kept). Pruning runs
only when asked (`rostersync prune`); reports cover only what is kept.
"""

from __future__ import annotations

from pydantic import Field

from rostersync.sync.config_base import Strict


class RetentionConfig(Strict):
    # Runs (with their counts) and rejected or superseded feed snapshots' records.
    runs_days: float | None = Field(None, gt=0)
    # The per-attempt log of operations (op_attempts); the op itself keeps its last error.
    attempts_days: float | None = Field(None, gt=0)
    # Finished operations (succeeded, dead, superseded) and their attempts: the
    # terminations report's evidence, so keep them at least as long as audits look back.
    ops_days: float | None = Field(None, gt=0)
    # Drift rows resolved this long ago; open drift is never pruned.
    resolved_drift_days: float | None = Field(None, gt=0)
    # Audit entries; a checkpoint keeps the chain verifiable (docs/reports.md).
    audit_days: float | None = Field(None, gt=0)

    def horizons(self) -> dict[str, float]:
        """What is configured to be pruned: history name -> days kept."""
        return {name.removesuffix("_days"): value
                for name, value in self.model_dump().items() if value is not None}
