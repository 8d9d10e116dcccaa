"""The [lms] section for Canvas (type = "canvas"); read by sync.connectors.canvas.

Section numbers (§7.1, §7.2) are those of docs/canvas.md, which cites Canvas's source for
each behaviour; what a tenant may set up differently has a key here, so it is a config
change, not a code change.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, field_validator

from rostersync.sync.config_base import Strict, http_url
from rostersync.sync.connectors.http_limits import (
    LMS_DEADLINE_SECONDS,
    LMS_MAX_ANSWER_BYTES,
    MAX_PAGES,
)


class CanvasGroupsConfig(Strict):
    """[lms.groups]: audiences as account-level groups (docs/canvas.md §7.4)."""

    # The name of the group category holding one audience's group, "{group}" standing for
    # the group's name: each audience has a category of its own, since Canvas keeps a user
    # in one group per category (docs/canvas.md §7.4). Created with the group when the
    # audience allows create_missing.
    category: str = Field("rostersync audiences: {group}", min_length=1)
    # Membership workflow_states that count as "in the group" (invited / requested do not).
    member_states: list[str] = Field(default_factory=lambda: ["accepted"], min_length=1)
    # How a member leaves: DELETE /groups/:id/users/:user_id ("user") or
    # DELETE /groups/:id/memberships/:membership_id ("membership").
    remove_by: Literal["user", "membership"] = "user"
    # join_level of the groups rostersync creates: nobody joins one on their own.
    join_level: str = "invitation_only"

    @field_validator("category")
    @classmethod
    def _one_category_per_group(cls, value: str) -> str:
        if value.count("{group}") != 1 or value.replace("{group}", "").count("{") \
                or value.replace("{group}", "").count("}"):
            raise ValueError(f"must hold \"{{group}}\" once and no other braces, not {value!r}: "
                             "Canvas keeps a user in one group per category, so each "
                             "audience's group needs a category of its own")
        return value


class CanvasTargetConfig(Strict):
    type: Literal["canvas"] = "canvas"
    # The instance root, e.g. https://acme.instructure.com (without /api/v1).
    base_url: str
    # The environment variable holding the bearer access token (§7.1).
    token_env: str | None = None
    # The account users are created in and logins are edited through (§7.2). "self" is
    # Canvas's alias for the domain's root account (not checked against the source); a
    # number is safer.
    account_id: str = "self"
    # Asked for on every listing; the server's own cap is unspecified, so the Link header
    # is always followed whatever this says (§7.1).
    per_page: int = Field(100, ge=1, le=1000)
    concurrency: int = Field(4, ge=1, le=64)
    timeout_seconds: float = Field(30.0, gt=0)
    verify_tls: bool = True
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    # What one answer may cost (sync/connectors/http_limits.py): bytes read (streamed)
    # and seconds in all per request (the read timeout is per chunk), and pages per
    # listing.
    max_answer_bytes: int = Field(LMS_MAX_ANSWER_BYTES, gt=0)
    request_deadline_seconds: float = Field(LMS_DEADLINE_SECONDS, gt=0)
    max_pages: int = Field(MAX_PAGES, ge=1)  # a listing with more pages is refused

    # -- logins (§7.2) -----------------------------------------------------------------
    # pseudonym[authentication_provider_id] for new logins (e.g. "saml", or an id); unset:
    # Canvas's default provider. Login ids are unique per account and provider.
    authentication_provider_id: str | None = None
    # Where Account.employee_number lives: the login's integration_id, or nowhere.
    employee_number_field: Literal["integration_id", "none"] = "integration_id"
    # How a termination is written (§7.2 cites the source of each):
    #   login_state: PUT /accounts/:id/logins/:login_id login[workflow_state]=<suspended_state>
    #   user_event:  PUT /users/:id user[event]=suspend|unsuspend (every login of the user)
    #   delete:      DELETE /accounts/:id/users/:id (the engine deletes instead of deactivating)
    deactivate_by: Literal["login_state", "user_event", "delete"] = "login_state"
    # The login workflow_state values that mean "can log in" and "suspended"; Canvas takes
    # only "active" and "suspended" (PseudonymsController#update_pseudonym_from_params).
    active_state: str = "active"
    suspended_state: str = "suspended"
    # enable_sis_reactivation on create: revive a deleted user holding the same SIS id
    # instead of failing with "SIS ID already in use" (a rehire after deactivate_by=delete).
    enable_sis_reactivation: bool = False

    # -- throttling and retries (§7.1) -------------------------------------------------
    # The text of Canvas's throttled 403 (RequestThrottle#rate_limit_exceeded).
    rate_limit_text: str = "Rate Limit Exceeded"
    # Attempts per call: a throttled call is retried for reads and writes (Canvas refused
    # it before doing anything); a 5xx, a network error or a garbled answer only for reads.
    max_attempts: int = Field(5, ge=1, le=20)
    backoff_base_seconds: float = Field(1.0, ge=0)
    # The longest single wait; a longer Retry-After ends the call with the error.
    max_wait_seconds: float = Field(60.0, ge=0)
    # Pace before the bucket overflows: when X-Rate-Limit-Remaining falls below
    # low_water_remaining, the next request waits until the bucket has drained back to it
    # at leak_units_per_second (Canvas: high-water 700, outflow 10 units/s; 0 disables).
    low_water_remaining: float = Field(50.0, ge=0)
    leak_units_per_second: float = Field(10.0, gt=0)

    # -- audiences (§7.4) ----------------------------------------------------------------
    groups: CanvasGroupsConfig = Field(default_factory=CanvasGroupsConfig)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value).removesuffix("/api/v1")

    @field_validator("account_id")
    @classmethod
    def _account(cls, value: str) -> str:
        value = value.strip()
        if not (value == "self" or value.isdigit() or value.startswith("sis_account_id:")):
            raise ValueError("must be a Canvas account number, \"self\" or "
                             f"\"sis_account_id:...\", not {value!r}")
        return value

    @field_validator("active_state", "suspended_state", "rate_limit_text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    # The Canvas attributes [mapping.attributes] maps beyond the built-in fields (set by
    # Config when the file is loaded, sync.mapping_targets): read with every user.
    _mapped_attributes: tuple[str, ...] = PrivateAttr(default=())

    @property
    def mapped_attributes(self) -> tuple[str, ...]:
        return self._mapped_attributes

    @property
    def unmanaged_fields(self) -> frozenset[str]:
        """Account fields Canvas has no place for: the engine neither compares nor writes
        them, so mapping them for another target's sake causes no endless drift."""
        homeless = {"title", "department", "manager_key"}
        if self.employee_number_field == "none":
            homeless.add("employee_number")
        return frozenset(homeless)
