"""The [hris] section for Workday (type = "workday"); read by sync.connectors.workday.

The source pulls one Advanced custom report exposed as a web service (RaaS,
docs/workday.md §2.1). Its columns are reached through their XML aliases, which the
customer's Workday admin sets explicitly in the report; ``columns`` is that contract.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rostersync.sync.config_base import CANONICAL_FIELDS, Strict, http_url
from rostersync.sync.connectors.http_limits import HRIS_MAX_ANSWER_BYTES
from rostersync.sync.connectors.workday_prompts import check_template
from rostersync.sync.schema_check import column_keys

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
    auth: Literal["basic", "bearer", "oauth"] = "basic"
    # The Integration System User; whether it needs an "@tenant" suffix depends on the
    # tenant (§2.1, inferred), so it is written here exactly as it must be sent.
    user: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    # auth = "oauth": an API client for integrations exchanges its refresh token for
    # short-lived access tokens (§2.1). The client id is not secret; the client secret
    # and the refresh token are read from these environment variables.
    client_id: str | None = None
    client_secret_env: str | None = None
    refresh_token_env: str | None = None
    # Default: {base_url}/ccx/oauth2/{tenant}/token, the tenant taken from report_path.
    token_url: str | None = None
    # Report prompts, sent as query parameters on every pull (§2.1). Values may hold
    # {today}, {today-7d}, {now}, {now-2h}: resolved at pull time (workday_prompts.py).
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
    # Configured aliases the report may lack (read as empty). Any other configured alias
    # missing from the report's schema rejects the feed (sync/schema_check.py).
    optional_columns: list[str] = Field(default_factory=list)
    # Read the report's column list from its XML Schema ({report}?{schema_query}) once
    # per full pull and refuse a feed that lost a configured alias. The query is what
    # public integrations send (inferred for other tenants): switch off if it fails.
    schema_check: bool = True
    schema_query: str = "xsds"
    # Reports join several values of one column with this in non-JSON formats (§2.1);
    # in the key, manager, status and flag columns it (like a JSON list of values) marks
    # a multi-valued cell, which is refused. "" switches the split off.
    multi_value_separator: str = ";"
    # A zone suffix such as 2025-07-31-07:00 (§2.1) is cut before these are tried.
    date_formats: list[str] = ["%Y-%m-%d"]
    # Connecting, the schema and the token call. The report call reads for longer: the
    # whole report is computed per call, with no paging (§2.1).
    timeout_seconds: float = Field(120.0, gt=0)
    report_timeout_seconds: float = Field(600.0, gt=0)
    verify_tls: bool = True
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    # What one answer may cost (sync/connectors/http_limits.py): bytes read (streamed),
    # seconds in all per request (the read timeout is per chunk), and pages per listing (the report's
    # deadline must exceed report_timeout_seconds).
    max_answer_bytes: int = Field(HRIS_MAX_ANSWER_BYTES, gt=0)
    request_deadline_seconds: float = Field(1800.0, gt=0)
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
        if self.request_deadline_seconds < self.report_timeout_seconds:
            # The report may take report_timeout_seconds to start: the deadline covers it.
            raise ValueError(f"request_deadline_seconds ({self.request_deadline_seconds:g}) "
                             "is shorter than report_timeout_seconds "
                             f"({self.report_timeout_seconds:g}): the report would be cut off")
        if not (self.columns.get("status") or self.status.flags()):
            raise ValueError("no status source: map columns.status or set a flag in "
                             "[hris.status]")
        if ("manager_id" in self.columns and self.manager_reference == "employee_number"
                and "employee_number" not in self.columns):
            raise ValueError("manager_reference = \"employee_number\" needs "
                             "columns.employee_number to resolve managers")
        if self.auth == "oauth":
            if not (self.client_id and self.client_secret_env and self.refresh_token_env):
                raise ValueError("auth = \"oauth\" needs client_id, client_secret_env and "
                                 "refresh_token_env (the variables holding the client "
                                 "secret and the refresh token)")
            if self.token_url is None and self.tenant is None:
                raise ValueError("auth = \"oauth\" needs token_url, since report_path "
                                 "does not name the tenant (ccx/service/customreport2/"
                                 "{tenant}/...)")
        named = {alias for _key, alias in self.configured_columns()}
        for alias in self.optional_columns:
            if alias not in named:
                raise ValueError(f"optional_columns: {alias!r} is not an alias named in "
                                 "hris.columns, hris.attributes or hris.status")
            if alias == self.columns["employee_id"]:
                raise ValueError(f"optional_columns: {alias!r} is the key "
                                 "(columns.employee_id) and cannot be optional")
        return self

    @field_validator("prompts")
    @classmethod
    def _prompt_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            try:
                check_template(text)
            except ValueError as exc:
                raise ValueError(f"{name}: {exc}") from None
        return value

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return http_url(value) if value else None

    @property
    def report_url(self) -> str:
        return f"{self.base_url}/{self.report_path}"

    @property
    def tenant(self) -> str | None:
        """The tenant named in report_path (ccx/service/customreport2/{tenant}/...)."""
        parts = self.report_path.split("/")
        if len(parts) >= 4 and parts[:3] == ["ccx", "service", "customreport2"]:
            return parts[3]
        return None

    @property
    def oauth_token_url(self) -> str:
        """Where the refresh token is exchanged (§2.1: /ccx/oauth2/{tenant}/token)."""
        return self.token_url or f"{self.base_url}/ccx/oauth2/{self.tenant}/token"

    def configured_columns(self) -> list[tuple[str, str]]:
        """(config key, alias) for every report column the config reads, flags included:
        what the report's schema must still offer (sync/schema_check.py)."""
        flags = [(f"hris.status.{name}", alias) for name, alias in (
            ("active_flag", self.status.active_flag),
            ("terminated_flag", self.status.terminated_flag),
            ("leave_flag", self.status.leave_flag)) if alias]
        return column_keys(self.columns, self.attributes) + flags

    def interpretation(self) -> dict[str, object]:
        """Settings that change how a row reads but are not in columns/attributes/
        date_formats (which the config fingerprint covers): part of each row's digest."""
        return {"status": self.status.model_dump(), "true": self.true_values,
                "false": self.false_values, "manager": self.manager_reference,
                "split": self.multi_value_separator}
