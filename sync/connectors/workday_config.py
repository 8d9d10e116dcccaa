"""The [hris] section for Workday (type = "workday"); read by sync.connectors.workday.

The source pulls one Advanced custom report exposed as a web service (RaaS,
docs/workday.md §2.1). Its columns are reached through their XML aliases, which the
customer's Workday admin sets explicitly in the report; ``columns`` is that contract.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from sync.config_base import Strict, http_url

# The alias contract proposed in docs/workday.md §2.1 (canonical field -> report alias).
DEFAULT_COLUMNS: dict[str, str] = {
    "employee_id": "Worker_WID", "employee_number": "Employee_ID",
    "first_name": "Legal_First_Name", "last_name": "Legal_Last_Name",
    "preferred_name": "Preferred_First_Name", "email": "Work_Email",
    "department": "Supervisory_Organization", "cost_center": "Cost_Center",
    "job_title": "Business_Title", "location": "Location",
    "manager_id": "Manager_Employee_ID", "status": "Worker_Status",
    "hire_date": "Hire_Date", "termination_date": "Termination_Date",
    "source_updated_at": "Last_Updated",
}


class WorkdayStatusRules(Strict):
    """How boolean flag columns decide the canonical status (docs/workday.md §2.1).

    The text status alias is ``columns.status``; the flags here are consulted first,
    because they are typed: terminated flag set -> "terminated"; active flag cleared ->
    ``inactive_status`` (or "pre_hire" before the hire date); leave flag set -> "leave";
    then the text status if the row has one; else "active" when any flag was read.
    """

    active_flag: str | None = "Active"
    terminated_flag: str | None = None
    leave_flag: str | None = "On_Leave"
    # What a cleared active flag means. Workday also clears it for future-dated hires
    # until the hire date (§2.2), hence the pre-hire rule below (inferred for RaaS).
    inactive_status: Literal["terminated", "pre_hire"] = "terminated"
    future_hire_is_pre_hire: bool = True

    @field_validator("active_flag", "terminated_flag", "leave_flag")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        # TOML has no null: "" switches a flag off.
        return (value or "").strip() or None

    def flags(self) -> list[str]:
        return [f for f in (self.active_flag, self.terminated_flag, self.leave_flag) if f]


class WorkdaySourceConfig(Strict):
    type: Literal["workday"] = "workday"
    # https://{host}, e.g. https://wd2-impl-services1.workday.com
    base_url: str
    # ccx/service/customreport2/{tenant}/{reportOwner}/{reportName}
    report_path: str
    auth: Literal["basic", "bearer"] = "basic"
    # The Integration System User; whether it needs an "@tenant" suffix depends on the
    # tenant (§2.1, inferred), so it is written here exactly as it must be sent.
    user: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    # Report prompts, sent as query parameters on every pull (§2.1).
    prompts: dict[str, str] = Field(default_factory=dict)
    # A prompt that narrows the report to one worker by key, for one-off resyncs; without
    # it a resync reads the whole report and picks the worker out.
    fetch_prompt: str | None = None
    # Canonical field -> report alias. columns.status is the text status column.
    columns: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_COLUMNS))
    # What columns.manager_id holds: the manager's employee number (resolved to the key
    # through this report's employee_number column) or the manager's key itself.
    manager_reference: Literal["employee_number", "employee_id"] = "employee_number"
    status: WorkdayStatusRules = Field(default_factory=WorkdayStatusRules)
    # Text spellings of flag values, compared case-insensitively; JSON true/false and the
    # numbers 1/0 are always understood (§2.1: "1"/"0" or true/false by field type).
    true_values: list[str] = ["1", "true", "yes", "y"]
    false_values: list[str] = ["0", "false", "no", "n"]
    # Extra report aliases kept on Person.attributes (usable by the scope filter).
    attributes: dict[str, str] = Field(default_factory=dict)
    # A zone suffix such as 2025-07-31-07:00 (§2.1) is cut before these are tried.
    date_formats: list[str] = ["%Y-%m-%d"]
    timeout_seconds: float = Field(120.0, gt=0)  # a whole report is computed per call
    verify_tls: bool = True
    # Throttling is undocumented (§0): these statuses are retried with backoff.
    retry_statuses: list[int] = [429, 500, 502, 503, 504]
    max_attempts: int = Field(4, ge=1, le=20)
    max_wait_seconds: float = Field(60.0, ge=0)  # the longest Retry-After honoured
    backoff_base_seconds: float = Field(2.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("report_path")
    @classmethod
    def _report_path(cls, value: str) -> str:
        path = value.strip().strip("/")
        if not path or "?" in path:
            raise ValueError("must be the report's path without a query, e.g. "
                             "ccx/service/customreport2/acme/ISU_LMS/LMS_Workers")
        return path

    @field_validator("columns")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        # Imported here: sync.config imports this module for its unions.
        from sync.config import CANONICAL_FIELDS

        unknown = sorted(set(value) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}; known fields are "
                             + ", ".join(CANONICAL_FIELDS))
        if not value.get("employee_id"):
            raise ValueError("must map employee_id (the worker key) to a report alias")
        return value

    @field_validator("true_values", "false_values")
    @classmethod
    def _fold(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]

    @model_validator(mode="after")
    def _consistent(self) -> WorkdaySourceConfig:
        if self.auth == "basic" and not (self.user and self.password_env):
            raise ValueError("auth = \"basic\" needs user (the integration system user) "
                             "and password_env (the variable holding its password)")
        if self.auth == "bearer" and not self.token_env:
            raise ValueError("auth = \"bearer\" needs token_env (the variable holding "
                             "the token)")
        if set(self.true_values) & set(self.false_values):
            raise ValueError("true_values and false_values share a spelling")
        if not (self.columns.get("status") or self.status.flags()):
            raise ValueError("no status source: map columns.status or set a flag in "
                             "[hris.status]")
        if ("manager_id" in self.columns and self.manager_reference == "employee_number"
                and "employee_number" not in self.columns):
            raise ValueError("manager_reference = \"employee_number\" needs "
                             "columns.employee_number to resolve managers")
        return self

    @property
    def report_url(self) -> str:
        return f"{self.base_url}/{self.report_path}"

    def interpretation(self) -> dict[str, object]:
        """Settings that change how a row reads but are not in columns/attributes/
        date_formats (which the config fingerprint covers): part of each row's digest."""
        return {"status": self.status.model_dump(), "true": self.true_values,
                "false": self.false_values, "manager": self.manager_reference}
