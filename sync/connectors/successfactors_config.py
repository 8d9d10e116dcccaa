"""The [hris] section for SuccessFactors (type = "successfactors"); read by
sync.connectors.successfactors. Section numbers refer to docs/successfactors.md.

Fields are named by *paths* into one person as the source sees it after choosing the
current employment and the current effective-dated segments:

    personIdExternal, lastModifiedDateTime   PerPerson itself
    personal.firstName                        current personalInfoNav segment (PerPersonal)
    email.emailAddress                        primary emailNav entry (PerEmail)
    employment.startDate                      the chosen employmentNav entry (EmpEmployment)
    user.title                                its userNav (User)
    job.departmentNav.name_localized          its current jobInfoNav segment (EmpJob)
    termination.latestTerminationDate         personEmpTerminationInfoNav

"a|b" reads b when a is empty. The $select/$expand of every call is derived from these
(sync.connectors.successfactors_entities reads each prefix from its own entity set).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from rostersync.sync.config_base import Strict, http_url
from rostersync.sync.connectors.http_limits import (
    HRIS_DEADLINE_SECONDS,
    HRIS_MAX_ANSWER_BYTES,
    MAX_PAGES,
)
from rostersync.sync.models import Status

# Path prefix -> the PerPerson navigation it reads (§3.2).
NAVIGATIONS = {
    "personal": "personalInfoNav",
    "email": "emailNav",
    "employment": "employmentNav",
    "user": "employmentNav/userNav",
    "job": "employmentNav/jobInfoNav",
    "termination": "personEmpTerminationInfoNav",
}

# The canonical fields a path may feed. employee_id is always personIdExternal; status
# and termination_date are worked out from the job segments (§3.6), not read.
MAPPABLE_FIELDS = (
    "employee_number", "first_name", "last_name", "preferred_name", "email", "department",
    "job_title", "location", "cost_center", "manager_id", "hire_date", "timezone",
    "source_updated_at",
)
DATE_FIELDS = ("hire_date", "termination_date")

DEFAULT_FIELDS = {
    "employee_number": "user.empId|employment.userId",
    "first_name": "personal.firstName",
    "last_name": "personal.lastName",
    "preferred_name": "personal.preferredName",
    "email": "email.emailAddress|user.email",
    "department": "job.departmentNav.name_localized",
    "job_title": "job.jobTitle|user.title",
    "location": "user.location",
    "manager_id": "job.managerId",
    "hire_date": "employment.startDate",
    "source_updated_at": "lastModifiedDateTime",
}

# emplStatusNav.externalCode -> canonical status (§3.2 table; U/P are leave per §8).
DEFAULT_STATUS_CODES = {
    "A": Status.active, "D": Status.active, "U": Status.leave, "P": Status.leave,
    "S": Status.leave, "F": Status.terminated, "O": Status.terminated,
    "R": Status.terminated, "T": Status.terminated,
}

# Entra's incremental template ORs the change stamps of these navigations (§3.5).
DEFAULT_DELTA_NAVIGATIONS = [
    "personalInfoNav", "emailNav", "employmentNav", "employmentNav/jobInfoNav",
    "employmentNav/userNav",
]
DEFAULT_EFFECTIVE_NAVIGATIONS = ["personalInfoNav", "employmentNav/jobInfoNav"]


class SuccessFactorsSourceConfig(Strict):
    type: Literal["successfactors"] = "successfactors"
    # The API server of the tenant's data center, e.g. https://api4.successfactors.com
    # (/odata/v2 is added; §3.1).
    base_url: str
    company_id: str = Field(min_length=1)
    # basic: "username@company_id" and a password (SAP calls it deprecated); bearer: an
    # OAuth access token obtained outside rostersync; oauth: the OAuth 2.0 SAML bearer
    # grant done by rostersync (§3.1), tokens renewed as they expire.
    auth: Literal["basic", "bearer", "oauth"] = "basic"
    username: str | None = None
    password_env: str | None = None
    token_env: str | None = None
    # auth = "oauth": the API key of the registered OAuth client (client_id), the user
    # the assertion names, and the private key whose certificate is registered with the
    # client (PEM), from a file readable by its owner only or an environment variable.
    client_id: str | None = None
    user_id: str | None = None
    private_key_file: str | None = None
    private_key_env: str | None = None
    # The token endpoint; {api-server}/oauth/token when not set (§3.1, Jitterbit). Never
    # /oauth/idp (KBA 3462403).
    token_url: str | None = None
    # How long a signed assertion is valid (NotOnOrAfter); SAP asks for short-lived ones.
    assertion_lifetime_seconds: int = Field(300, ge=30, le=3600)
    # Canonical field -> path (see the module docstring); merged over DEFAULT_FIELDS.
    # An empty path ("") stops reading that field.
    fields: dict[str, str] = Field(default_factory=dict)
    # Extra paths kept on Person.attributes (usable by the scope filter).
    attributes: dict[str, str] = Field(default_factory=dict)
    # Configured paths (one alternative of "a|b" each) the answers may lack. Any other
    # configured property that no returned object carries rejects the feed
    # (sync/schema_check.py).
    optional_columns: list[str] = Field(default_factory=list)
    date_formats: list[str] = ["%Y-%m-%d"]  # the source hands dates over as YYYY-MM-DD
    status_codes: dict[str, Status] = Field(default_factory=lambda: dict(DEFAULT_STATUS_CODES))
    # A code missing from status_codes: "report" makes the person `invalid` drift naming
    # the code; a status applies it (SAP counts custom codes as inactive, §3.2).
    unknown_status_code: Literal["report"] | Status = "report"
    # managerId values that mean "no manager" [inferred].
    no_manager_values: list[str] = Field(default_factory=lambda: ["NO_MANAGER"])
    # An extra $filter on PerPerson (empty: none). Only people with an EmpEmployment are
    # read as workers whatever it says. Do not filter on personEmpTerminationInfoNav: it
    # can go null during a termination and drop the person from deltas (§3.6).
    person_filter: str = ""
    page_size: int = Field(500, ge=1, le=1000)  # customPageSize; SAP's ceiling is 1000
    snapshot_paging: bool = True  # paging=snapshot: no gaps or repeats between pages
    # EmpJob and PerPersonal (read at the top level, where fromDate/toDate apply, KBA
    # 2853045) are read from today - this many days to 9999-12-31, so future-dated
    # terminations, hires and changes are visible before they take effect (§3.6).
    segment_lookback_days: int = Field(0, ge=0, le=36500)
    # Delta (§3.5): the window starts this long before the watermark (clock skew,
    # changes saved while the last pull ran), and ORs these navigations' stamps.
    delta_overlap_minutes: float = Field(60.0, ge=0)
    delta_navigations: list[str] = Field(default_factory=lambda: list(DEFAULT_DELTA_NAVIGATIONS))
    # ...and segments of these navigations that became effective since the watermark.
    delta_effective_navigations: list[str] = Field(
        default_factory=lambda: list(DEFAULT_EFFECTIVE_NAVIGATIONS))
    timeout_seconds: float = Field(60.0, gt=0)
    verify_tls: bool = True
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    # What one answer may cost (sync/connectors/http_limits.py): bytes read (streamed),
    # seconds in all per request (the read timeout is per chunk), and pages per listing.
    max_answer_bytes: int = Field(HRIS_MAX_ANSWER_BYTES, gt=0)
    request_deadline_seconds: float = Field(HRIS_DEADLINE_SECONDS, gt=0)
    max_pages: int = Field(MAX_PAGES, ge=1)  # a listing with more pages is refused
    retry_max_attempts: int = Field(4, ge=1, le=20)
    # SAP asks for 300 s after a 429 (§3.7); a longer Retry-After fails the pull.
    retry_max_wait_seconds: float = Field(300.0, ge=0)
    retry_backoff_seconds: float = Field(2.0, ge=0)  # when Retry-After is missing (§0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value).removesuffix("/odata/v2")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return http_url(value) if value is not None else None

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(MAPPABLE_FIELDS))
        if unknown:
            raise ValueError(f"cannot map {unknown[0]!r}; mappable fields are "
                             + ", ".join(MAPPABLE_FIELDS) + " (employee_id, status and "
                             "termination_date are worked out by the source)")
        for path in value.values():
            _check_path(path)
        return value

    @field_validator("attributes")
    @classmethod
    def _attribute_paths(cls, value: dict[str, str]) -> dict[str, str]:
        for path in value.values():
            if not path:
                raise ValueError("an attribute path must not be empty")
            _check_path(path)
        return value

    @field_validator("delta_navigations", "delta_effective_navigations")
    @classmethod
    def _navigation_paths(cls, value: list[str]) -> list[str]:
        for nav in value:
            if not all(part.isalnum() for part in nav.split("/")):
                raise ValueError(f"{nav!r} is not a navigation path like employmentNav/jobInfoNav")
        return value

    @field_validator("status_codes")
    @classmethod
    def _codes(cls, value: dict[str, Status]) -> dict[str, Status]:
        return {k.strip(): v for k, v in value.items()}

    @model_validator(mode="after")
    def _auth_settings(self) -> SuccessFactorsSourceConfig:
        if self.auth == "basic" and not (self.username and self.password_env):
            raise ValueError("auth = \"basic\" needs username and password_env")
        if self.auth == "bearer" and not self.token_env:
            raise ValueError("auth = \"bearer\" needs token_env")
        if self.auth == "oauth":
            if not (self.client_id and self.user_id):
                raise ValueError("auth = \"oauth\" needs client_id (the API key) and user_id")
            if bool(self.private_key_file) == bool(self.private_key_env):
                raise ValueError("auth = \"oauth\" needs one of private_key_file or "
                                 "private_key_env")
        if self.token_url is not None and self.token_url.rstrip("/").endswith("/oauth/idp"):
            raise ValueError("token_url must not be /oauth/idp: SAP calls it insecure and "
                             "deprecated (KBA 3462403); use /oauth/token")
        named = {alt for p in [*self.paths.values(), *self.attributes.values()]
                 for alt in p.split("|")}
        for path in self.optional_columns:
            if path not in named:
                raise ValueError(f"optional_columns: {path!r} is not a path named in "
                                 "hris.fields (or its defaults) or hris.attributes")
        return self

    @property
    def paths(self) -> dict[str, str]:
        """Canonical field -> path actually read (defaults merged, blanks dropped)."""
        merged = {**DEFAULT_FIELDS, **self.fields}
        return {name: path for name, path in merged.items() if path}

    @property
    def columns(self) -> dict[str, str]:
        """Canonical fields this config reads (what the feed gate checks for nulls)."""
        return {"employee_id": "personIdExternal", **self.paths,
                "status": "job.emplStatusNav.externalCode",
                "termination_date": "job.startDate (terminated segment) - 1 day"}


def _check_path(path: str) -> None:
    for alternative in path.split("|") if path else []:
        parts = alternative.split(".")
        if not all(part and part.replace("_", "").isalnum() for part in parts):
            raise ValueError(f"{path!r} is not a path like job.departmentNav.name_localized")
        if parts[0] in NAVIGATIONS and len(parts) == 1:
            raise ValueError(f"{path!r} names a navigation, not a property of it")
