"""The [lms] section for Moodle (type = "moodle"); read by sync.connectors.moodle.

Keys whose behaviour docs/moodle.md checked against Moodle's source say what it showed.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from rostersync.sync.config_base import Strict, http_url
from rostersync.sync.connectors.http_limits import LMS_DEADLINE_SECONDS, LMS_MAX_ANSWER_BYTES

# Moodle core user fields that hold free text and that rostersync never uses for
# anything else: the homes an Account field without a core Moodle field can be given.
CORE_TEXT_FIELDS = ("institution", "city", "phone1", "phone2", "address",
                    "alternatename", "middlename")
PROFILE_PREFIX = "profile_field_"  # Moodle's own spelling of a custom profile field
# Account fields Moodle has no core field for; each may be given a home in [lms.fields].
HOMELESS_FIELDS = ("title", "employee_number", "manager_key")

_SHORTNAME = re.compile(r"[A-Za-z0-9_]+")


def check_moodle_attributes(names: tuple[str, ...] | list[str],
                            homes: dict[str, str]) -> None:
    """Raises ValueError, naming the key, for a [mapping.attributes] name a Moodle target
    cannot take: only custom profile fields, as ``profile_field_<shortname>``, and none
    that [lms.fields] already gives to an account field (one value, one expression)."""
    for name in names:
        key = f"key 'mapping.attributes.{name}'"
        shortname = name.removeprefix(PROFILE_PREFIX)
        if not name.startswith(PROFILE_PREFIX) or not _SHORTNAME.fullmatch(shortname):
            raise ValueError(f"{key}: a Moodle target takes custom profile fields, named "
                             "profile_field_<shortname> (docs/moodle.md §8), beside the "
                             "built-in attributes")
        owner = next((field for field, home in homes.items() if home == name), None)
        if owner is not None:
            raise ValueError(f"{key}: lms.fields.{owner} already writes that profile field; "
                             f"map {owner} instead")


class MoodleCohortConfig(Strict):
    """Cohort membership that follows one Account field (docs/moodle.md §6.4).

    A value picks the cohort whose idnumber is ``idnumbers[value]``, else
    ``idnumber_prefix + slug(value)`` (one cohort per value is rostersync's
    convention, not Moodle's). Cohorts so named are "managed": a user is kept in exactly the one its
    value picks and taken out of the others.
    """

    field: Literal["department", "title"] = "department"
    idnumbers: dict[str, str] = Field(default_factory=dict)
    # None: only values listed in `idnumbers` get a cohort.
    idnumber_prefix: str | None = "dept-"
    # Create a missing cohort (system context) instead of failing the write.
    create_missing: bool = False

    @field_validator("idnumber_prefix")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be blank: an empty prefix would claim every cohort "
                             "(use null to rely on idnumbers alone)")
        return value


class MoodleTargetConfig(Strict):
    type: Literal["moodle"] = "moodle"
    # The site's wwwroot, e.g. https://lms.example.com (the REST endpoint is appended).
    base_url: str
    token_env: str | None = None
    concurrency: int = Field(4, ge=1, le=64)
    timeout_seconds: float = Field(30.0, gt=0)
    verify_tls: bool = True
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    # What one answer may cost (sync/connectors/http_limits.py): bytes read (streamed)
    # and seconds in all per request (the read timeout is per chunk).
    max_answer_bytes: int = Field(LMS_MAX_ANSWER_BYTES, gt=0)
    request_deadline_seconds: float = Field(LMS_DEADLINE_SECONDS, gt=0)
    # Where wstoken travels: the documented query parameter, or the form body (Moodle
    # reads either: webservice/rest/locallib.php; the body keeps it out of proxy and
    # access logs).
    token_in: Literal["query", "body"] = "query"
    # Users per core_user_create_users / core_user_update_users call ("off" or 1: one
    # call per user). Each call boots the whole site, so batches are several times faster;
    # the site's PHP max_input_vars bounds a call (about ten fields per user).
    bulk: Literal["auto", "off"] = "auto"
    batch_size: int = Field(100, ge=1, le=1000)
    # Batches in flight per stream of batch writes: batch N+1's create_users call goes out
    # while batch N is still being read back (a site answers a read-back at about a third
    # of a write's cost, docs/moodle.md "Speed on the real site"). Writes go one at a time
    # per stream, so lms.concurrency batches in flight are concurrency / pipeline_depth
    # streams. 1: every batch writes and reads back on its own (no overlap).
    pipeline_depth: int = Field(2, ge=1, le=16)

    # -- new accounts ---------------------------------------------------------------
    auth: str = "manual"  # auth plugin of new users (manual, oauth2, saml2, ldap, ...)
    # How create_users gets the password it insists on: a random one nobody is told
    # (SSO sites), Moodle's own createpassword=1 (it e-mails one), or none, which Moodle
    # takes only for an auth plugin that is not internal (oauth2, saml2, ldap).
    new_password: Literal["random", "createpassword", "none"] = "random"
    institution: str | None = None  # a constant written on create, never compared

    # -- usernames (§6.2) --------------------------------------------------------------
    # Mirror the site's $CFG->extendedusernamechars.
    extended_username_chars: bool = False
    # A user_name that Moodle's cleaning would change: refuse the record (data error
    # for HR), or send the cleaned form (Moodle itself rejects it: docs/moodle.md §6.2).
    invalid_username: Literal["reject", "clean"] = "reject"

    # -- fields without a core Moodle home -------------------------------------------
    # Account field -> a core text field or "profile_field_<shortname>".
    fields: dict[str, str] = Field(default_factory=dict)
    cohorts: MoodleCohortConfig | None = None

    # -- listing and retries ---------------------------------------------------------
    # core_user_get_users needs a criterion; email LIKE '%' matches every user who is not
    # deleted and has an email (docs/moodle.md §6.3).
    list_criteria_key: Literal["email", "auth", "idnumber", "username", "firstname",
                               "lastname"] = "email"
    list_criteria_value: str = "%"
    max_attempts: int = Field(4, ge=1, le=10)  # per call, throttled or 5xx
    max_retry_wait_seconds: float = Field(30.0, ge=0)
    backoff_base_seconds: float = Field(1.0, ge=0)

    # The custom profile fields [mapping.attributes] maps, as profile_field_<shortname>
    # (set by Config when the file is loaded, sync.mapping_targets): read with every user.
    _mapped_attributes: tuple[str, ...] = PrivateAttr(default=())

    @property
    def mapped_attributes(self) -> tuple[str, ...]:
        return self._mapped_attributes

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = http_url(value)
        # Accept the endpoint itself too: people paste what they see in the docs.
        return value.removesuffix("/webservice/rest/server.php")

    @field_validator("fields")
    @classmethod
    def _field_homes(cls, value: dict[str, str]) -> dict[str, str]:
        for name, home in value.items():
            if name not in HOMELESS_FIELDS:
                raise ValueError(f"{name!r} cannot be given a home; only "
                                 + ", ".join(HOMELESS_FIELDS) + " can")
            shortname = home.removeprefix(PROFILE_PREFIX)
            if home.startswith(PROFILE_PREFIX):
                if not _SHORTNAME.fullmatch(shortname):
                    raise ValueError(f"{name}: {home!r} is not a valid custom profile "
                                     "field shortname")
            elif home not in CORE_TEXT_FIELDS:
                raise ValueError(f"{name}: {home!r} is neither profile_field_<shortname> "
                                 "nor one of " + ", ".join(CORE_TEXT_FIELDS))
        homes = list(value.values())
        if len(set(homes)) != len(homes):
            raise ValueError("two fields share one Moodle home")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MoodleTargetConfig:
        if self.institution is not None and "institution" in self.fields.values():
            raise ValueError("institution is both a constant and the home of a field")
        if self.cohorts is not None and self.cohorts.field not in ("department", *self.fields):
            # The field is read back to tell whether membership matches it.
            raise ValueError(f"cohorts follow {self.cohorts.field!r}, which has no home: "
                             f"set fields.{self.cohorts.field} first")
        return self

    @property
    def unmanaged_fields(self) -> frozenset[str]:
        """Managed Account fields this site cannot hold: left out of comparisons by an
        engine that reads this property (see docs/moodle.md, "Fields")."""
        return frozenset(f for f in HOMELESS_FIELDS if f not in self.fields)
