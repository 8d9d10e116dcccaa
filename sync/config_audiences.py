"""The [[audiences]] config: LMS groups and cohorts defined by rules on HR fields."""

from __future__ import annotations

from sync.config_base import Strict


class AudienceConfig(Strict):
    id: str
