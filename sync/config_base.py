"""What every config section shares: unknown keys are errors, URLs are checked the same way.

Connector sections live next to their connectors (sync/connectors/*_config.py) and build
on this module, never on sync.config, which imports them for its unions.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def http_url(value: str) -> str:
    """A base URL: http(s) only, no trailing slash."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, not {value!r}")
    return value.rstrip("/")
