"""What every config section shares: unknown keys are errors, URLs are checked the same way.

Connector sections live next to their connectors (sync/connectors/*_config.py) and build
on this module, never on sync.config, which imports them for its unions.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# The canonical HR fields every source maps its columns to (the Person model's fields).
CANONICAL_FIELDS = (
    "employee_id", "employee_number", "first_name", "last_name", "preferred_name", "email",
    "department", "job_title", "location", "cost_center", "manager_id", "status",
    "hire_date", "termination_date", "timezone", "source_updated_at",
)
REQUIRED_FIELDS = ("employee_id", "first_name", "last_name", "status")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def http_url(value: str) -> str:
    """A base URL: http(s) only, no trailing slash."""
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must start with http:// or https://, not {value!r}")
    return value.rstrip("/")
