"""Config sections for real-time sync, metrics and alerts ([realtime], [metrics],
[alerts]). Defaults keep every feature off, so older configs stay valid."""

from __future__ import annotations

from pydantic import Field

from sync.config_base import Strict


class RealtimeConfig(Strict):
    enabled: bool = False


class MetricsConfig(Strict):
    enabled: bool = False


class AlertsConfig(Strict):
    channels: list[dict[str, str]] = Field(default_factory=list)
