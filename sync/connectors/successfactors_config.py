"""The [hris] section for SuccessFactors (type = "successfactors"); read by sync.connectors.successfactors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sync.config_base import Strict, http_url


class SuccessFactorsSourceConfig(Strict):
    type: Literal["successfactors"] = "successfactors"
    base_url: str
    # Extra source fields kept on Person.attributes (usable by the scope filter).
    attributes: dict[str, str] = Field(default_factory=dict)
    date_formats: list[str] = ["%Y-%m-%d"]

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @property
    def columns(self) -> dict[str, str]:
        """Canonical fields this config reads (what the feed gate checks for nulls)."""
        return {}
