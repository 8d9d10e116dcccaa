"""The HR sources configured in the file itself: a CSV file drop and BambooHR (the other
sources keep their sections beside their connectors)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from rostersync.sync.config_base import CANONICAL_FIELDS, REQUIRED_FIELDS, http_url
from rostersync.sync.config_base import Strict as _Strict
from rostersync.sync.connectors.http_limits import (
    HRIS_DEADLINE_SECONDS,
    HRIS_MAX_ANSWER_BYTES,
    MAX_PAGES,
)


class CsvSourceConfig(_Strict):
    type: Literal["csv"] = "csv"
    path: Path
    delta_path: Path | None = None
    encoding: str = "utf-8-sig"
    delimiter: str = ","
    # Canonical field -> CSV header. Unlisted canonical fields are simply not read.
    columns: dict[str, str] = Field(default_factory=lambda: {f: f for f in REQUIRED_FIELDS})
    # Extra CSV columns kept on Person.attributes (usable by the scope filter).
    attributes: dict[str, str] = Field(default_factory=dict)
    # Configured headers the export may lack (read as empty). Any other configured header
    # missing from the file rejects the feed (sync/schema_check.py).
    optional_columns: list[str] = Field(default_factory=list)
    date_formats: list[str] = ["%Y-%m-%d", "%Y/%m/%d", "%m/%d/%Y", "%d.%m.%Y"]

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known fields are "
                             + ", ".join(CANONICAL_FIELDS))
        if "employee_id" not in value:
            raise ValueError("must map employee_id (the HRIS key) to a column")
        return value

    @field_validator("optional_columns")
    @classmethod
    def _optional_configured(cls, value: list[str], info: ValidationInfo) -> list[str]:
        columns = info.data.get("columns") or {}
        named = {*columns.values(), *(info.data.get("attributes") or {}).values()}
        required = {columns[f] for f in REQUIRED_FIELDS if f in columns}
        return _check_optional(value, named, required, "hris.columns or hris.attributes")

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, value: str) -> str:
        if len(value) != 1:
            raise ValueError(f"must be one character, not {value!r}")
        return value


class BambooHRSourceConfig(_Strict):
    """BambooHR over its REST API (docs/bamboohr.md §1); read by sync.connectors.bamboohr."""

    # Canonical field -> the BambooHR field id it is read from (docs/bamboohr.md §1.4). The
    # manager and the status each have a second source field: supervisorId (employee
    # number) backs up supervisorEId, and status backs up employmentHistoryStatus.
    COLUMNS: ClassVar[dict[str, str]] = {
        "employee_id": "id", "employee_number": "employeeNumber",
        "first_name": "firstName", "last_name": "lastName", "preferred_name": "preferredName",
        "email": "workEmail", "department": "department", "job_title": "jobTitle",
        "location": "location", "manager_id": "supervisorEId",
        "status": "employmentHistoryStatus", "hire_date": "hireDate",
        "termination_date": "terminationDate", "timezone": "timeZone",
        "source_updated_at": "lastChanged",
    }
    FALLBACKS: ClassVar[dict[str, str]] = {"supervisorEId": "supervisorId",
                                           "employmentHistoryStatus": "status"}

    type: Literal["bamboohr"] = "bamboohr"
    # e.g. https://api.bamboohr.com/api/gateway.php/acme (without /v1)
    base_url: str
    api_key_env: str
    # BambooHR field ids to request; unknown ones are silently left out by BambooHR.
    fields: list[str] = Field(default_factory=lambda: [
        *BambooHRSourceConfig.COLUMNS.values(), *BambooHRSourceConfig.FALLBACKS.values()])
    # Extra BambooHR fields kept on Person.attributes (usable by the scope filter).
    attributes: dict[str, str] = Field(default_factory=dict)
    # Requested field ids the report may leave out (read as empty). Any other requested
    # field missing from the report's field list rejects the feed (sync/schema_check.py).
    optional_columns: list[str] = Field(default_factory=list)
    date_formats: list[str] = ["%Y-%m-%d"]
    timeout_seconds: float = Field(30.0, gt=0)
    verify_tls: bool = True
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    # What one answer may cost (sync/connectors/http_limits.py): bytes read (streamed),
    # seconds in all per request (the read timeout is per chunk), and pages per listing.
    max_answer_bytes: int = Field(HRIS_MAX_ANSWER_BYTES, gt=0)
    request_deadline_seconds: float = Field(HRIS_DEADLINE_SECONDS, gt=0)
    max_pages: int = Field(MAX_PAGES, ge=1)  # a listing with more pages is refused
    # How current values are read (docs/bamboohr.md §1.2): "report" (the custom report)
    # or "dataset" (Datasets v2, the report's documented successor; the report is the
    # fallback when the dataset is not there). Names in the dataset differ: defaults in
    # sync/connectors/bamboohr_dataset.py, overridden per field id by dataset_fields.
    read_via: Literal["report", "dataset"] = "report"
    dataset_name: str = Field("employee", pattern=r"^[A-Za-z0-9_-]+$")
    dataset_fields: dict[str, str] = Field(default_factory=dict)
    dataset_page_size: int = Field(1000, ge=1, le=1000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value).removesuffix("/v1")

    @field_validator("fields")
    @classmethod
    def _has_id(cls, value: list[str]) -> list[str]:
        if "id" not in value:
            raise ValueError("must include 'id' (the immutable employee ID, the HRIS key)")
        return value

    @field_validator("optional_columns")
    @classmethod
    def _optional_requested(cls, value: list[str], info: ValidationInfo) -> list[str]:
        named = {*(info.data.get("fields") or ()), *(info.data.get("attributes") or {}).values()}
        return _check_optional(value, named, {"id"}, "hris.fields or hris.attributes")

    @property
    def columns(self) -> dict[str, str]:
        """Canonical fields this config reads (what the feed gate checks for nulls)."""
        asked = set(self.fields)
        return {c: f for c, f in self.COLUMNS.items()
                if f in asked or self.FALLBACKS.get(f) in asked}


def _check_optional(value: list[str], named: set[str], required: set[str],
                    where: str) -> list[str]:
    """``optional_columns`` may only relax columns the config reads, never a required one
    (without it no record can be read at all)."""
    for column in value:
        if column not in named:
            raise ValueError(f"{column!r} is not a column named in {where}")
        if column in required:
            raise ValueError(f"{column!r} holds a required field and cannot be optional")
    return value
