"""The [retention] config: how long recorded history is kept for reports."""

from __future__ import annotations

from sync.config_base import Strict


class RetentionConfig(Strict):
    pass
