"""The [lms] section for Canvas (type = "canvas"); read by sync.connectors.canvas."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sync.config_base import Strict, http_url


class CanvasTargetConfig(Strict):
    type: Literal["canvas"] = "canvas"
    base_url: str
    token_env: str | None = None
    concurrency: int = Field(4, ge=1, le=64)
    timeout_seconds: float = Field(30.0, gt=0)
    verify_tls: bool = True

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)
