"""The one TOML configuration file, validated by pydantic.

Secrets are never in the file: it names environment variables (``token_env``) and the
value is read at connect time. A bad file is reported as one sentence naming the key.
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from rostersync.storage import pg_url
from rostersync.sync import config_errors, config_safety
from rostersync.sync.config_audiences import AudienceConfig, audiences_fingerprint, check_audiences
from rostersync.sync.config_base import (  # noqa: F401 - the fields are imported from here too
    CANONICAL_FIELDS,
    REQUIRED_FIELDS,
    http_url,
)
from rostersync.sync.config_base import Strict as _Strict
from rostersync.sync.config_checks import check_cron, check_date_formats, check_zone, undecodable
from rostersync.sync.config_console import ConsoleConfig
from rostersync.sync.config_ha import HaConfig
from rostersync.sync.config_mapping import MappingConfig  # also imported from here
from rostersync.sync.config_realtime import AlertsConfig, MetricsConfig, RealtimeConfig
from rostersync.sync.config_reports import RetentionConfig
from rostersync.sync.config_sources import (  # also imported from here
    BambooHRSourceConfig,
    CsvSourceConfig,
)
from rostersync.sync.connectors.canvas_config import CanvasTargetConfig
from rostersync.sync.connectors.http_limits import (
    LMS_DEADLINE_SECONDS,
    LMS_MAX_ANSWER_BYTES,
    MAX_PAGES,
)
from rostersync.sync.connectors.moodle_config import MoodleTargetConfig
from rostersync.sync.connectors.successfactors_config import SuccessFactorsSourceConfig
from rostersync.sync.connectors.workday_config import WorkdaySourceConfig
from rostersync.sync.mapping_targets import check_targets
from rostersync.sync.models import Status

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """One sentence naming the file, the key and what is wrong."""


HrisConfig = Annotated[
    CsvSourceConfig | BambooHRSourceConfig | WorkdaySourceConfig | SuccessFactorsSourceConfig,
    Field(discriminator="type")]


class ScimTargetConfig(_Strict):
    type: Literal["scim"] = "scim"
    base_url: str
    token_env: str | None = None
    page_size: int = Field(200, ge=1, le=10000)
    max_pages: int = Field(MAX_PAGES, ge=1)  # a listing with more pages is refused
    concurrency: int = Field(8, ge=1, le=64)
    # Bytes read per answer (streamed) and seconds per request in all (sync/connectors/
    # http_limits.py): timeout_seconds is per read, which a byte-at-a-time answer never trips.
    max_answer_bytes: int = Field(LMS_MAX_ANSWER_BYTES, gt=0)
    request_deadline_seconds: float = Field(LMS_DEADLINE_SECONDS, gt=0)
    timeout_seconds: float = Field(30.0, gt=0)
    verify_tls: bool = True
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    use_etags: bool = True
    # SCIM Bulk (RFC 7644 §3.7) where /ServiceProviderConfig offers it, or one request per
    # operation; and the failOnErrors sent with each bulk request (None: run them all).
    bulk: Literal["auto", "off"] = "auto"
    bulk_fail_on_errors: int | None = Field(None, ge=1)
    # Where SCIM LMSs differ (docs/connectors.md, "SCIM vendor profiles"): what "remove"
    # means and which attributes the LMS keeps as they were first created.
    profile: Literal["generic", "absorb", "360learning", "linkedin_learning",
                     "talentlms"] = "generic"
    deactivate_by: Literal["active_false", "delete"] = "active_false"
    # Account fields the LMS will not change once created (360Learning keys users by
    # email): never compared or written after the create. Default: the profile's.
    immutable_fields: list[Literal["user_name", "email"]] | None = None

    # Vendor facts from connectors.md §5.6: who cannot delete, who keys by email.
    NO_DELETE: ClassVar[frozenset[str]] = frozenset({"linkedin_learning", "talentlms"})
    KEYED_BY_EMAIL: ClassVar[frozenset[str]] = frozenset({"360learning"})

    @model_validator(mode="after")
    def _profile_rules(self) -> ScimTargetConfig:
        if self.deactivate_by == "delete" and self.profile in self.NO_DELETE:
            raise ValueError(f"deactivate_by = \"delete\" is not possible with profile "
                             f"{self.profile!r}: that LMS does not delete users over SCIM "
                             "(use \"active_false\")")
        if self.immutable_fields is None:
            self.immutable_fields = (["user_name", "email"]
                                     if self.profile in self.KEYED_BY_EMAIL else [])
        return self

    # The target attributes [mapping.attributes] maps beyond the built-in fields (set by
    # Config when the file is loaded): read back from every User to be compared.
    _mapped_attributes: tuple[str, ...] = PrivateAttr(default=())

    @property
    def unmanaged_fields(self) -> frozenset[str]:
        return frozenset(self.immutable_fields or ())

    @property
    def mapped_attributes(self) -> tuple[str, ...]:
        return self._mapped_attributes

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return http_url(value)


LmsConfig = Annotated[ScimTargetConfig | MoodleTargetConfig | CanvasTargetConfig,
                      Field(discriminator="type")]


class ScopeConfig(_Strict):
    # field -> allowed values (all listed fields must match); empty means everyone.
    include: dict[str, list[str]] = Field(default_factory=dict)
    # field -> excluded values (any listed match puts the person out of scope).
    exclude: dict[str, list[str]] = Field(default_factory=dict)
    # Statuses whose people get no account created (they may still hold one).
    skip_create_statuses: list[Status] = Field(
        default_factory=lambda: [Status.pre_hire, Status.terminated])


class GuardsConfig(_Strict):
    feed_max_drop_percent: float = Field(10.0, ge=0, le=100)
    # Terminations are rows that are still present; a drop in *active* people beyond
    # this points at a broken status column. Below it, the mass-deactivation hold decides.
    feed_max_active_drop_percent: float = Field(30.0, ge=0, le=100)
    feed_max_null_rate_increase: float = Field(0.10, ge=0, le=1)
    mass_deactivation_min: int = Field(25, ge=0)
    mass_deactivation_percent: float = Field(2.0, ge=0, le=100)
    # Deactivations every run (batch, resync, real-time) planned within this sliding window
    # count together against that limit, so runs of just under it cannot bleed past it.
    # 0: each run is counted alone.
    mass_window_minutes: float = Field(60.0, ge=0)
    # Login or email changes in one run beyond max(min, percent of active accounts) are
    # held for approval: a spliced export or a broken email column rewrites identities.
    mass_identity_change_min: int = Field(25, ge=0)
    mass_identity_change_percent: float = Field(5.0, ge=0, le=100)
    # Updates rewriting one attribute (a changed mapping, a broken HR column) on more
    # accounts than max(min, percent of active accounts) in one run are held likewise.
    mass_attribute_change_min: int = Field(100, ge=0)
    mass_attribute_change_percent: float = Field(10.0, ge=0, le=100)
    vanished_grace_hours: float = Field(24.0, ge=0)
    vanished_grace_pulls: int = Field(0, ge=0)  # 0: time alone decides
    termination_cutoff: Literal["start_of_day", "end_of_day"] = "end_of_day"
    termination_sla_minutes: float = Field(60.0, ge=0)
    leave_policy: Literal["keep", "suspend"] = "keep"
    orphan_policy: Literal["report", "deactivate"] = "report"
    breaker_min_ops: int = Field(20, ge=1)
    breaker_failure_rate: float = Field(0.40, gt=0, le=1)
    retry_max_attempts: int = Field(6, ge=1)
    retry_base_seconds: float = Field(30.0, ge=0)
    retry_max_seconds: float = Field(3600.0, ge=0)
    inline_retry_max_seconds: float = Field(5.0, ge=0)
    lease_seconds: float = Field(120.0, gt=0)
    # Audience removals in one run beyond max(min, percent of the audience's size) are
    # held; an [[audiences]] table's mass_removal_min / _percent override these.
    audience_mass_removal_min: int = Field(10, ge=0)
    audience_mass_removal_percent: float = Field(10.0, ge=0, le=100)


class ScheduleConfig(_Strict):
    delta_every_minutes: float = Field(15.0, gt=0)
    full_cron: str = "0 2 * * *"
    # Instead of the cron: a full reconcile every N minutes (the demo uses seconds).
    full_every_minutes: float | None = Field(None, gt=0)
    retry_every_minutes: float = Field(5.0, gt=0)
    timezone: str = "UTC"

    # Checked here, not first at `serve`, so that `doctor` and every command see it.
    @field_validator("full_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)


class ThresholdsConfig(_Strict):
    hris_stale_warning_hours: float = 26.0
    hris_stale_critical_hours: float = 50.0
    lms_stale_warning_hours: float = 26.0
    lms_stale_critical_hours: float = 50.0
    failed_ops_warning: int = 1
    dead_ops_critical: int = 1


class DatabaseConfig(_Strict):
    path: Path = Path("rostersync.db")
    # PostgreSQL instead of the SQLite file at ``path`` (storage/pg_store.py); the
    # password comes from the environment variable ``password_env`` names, never the file.
    url: str | None = None
    password_env: str = Field(pg_url.DEFAULT_PASSWORD_ENV, min_length=1)

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, value: str | None) -> str | None:
        problem = None if value is None else pg_url.url_problem(value, "the URL")
        if problem is not None:
            raise ValueError(problem)
        return value


class Config(_Strict):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    hris: HrisConfig
    lms: LmsConfig
    mapping: MappingConfig = Field(default_factory=MappingConfig)
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    guards: GuardsConfig = Field(default_factory=GuardsConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    thresholds: ThresholdsConfig = Field(default_factory=ThresholdsConfig)
    realtime: RealtimeConfig = Field(default_factory=RealtimeConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    audiences: list[AudienceConfig] = Field(default_factory=list)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    console: ConsoleConfig = Field(default_factory=ConsoleConfig)
    ha: HaConfig = Field(default_factory=HaConfig)
    source_path: Path | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _user_name_matches_the_lms(self) -> Config:
        keyed: frozenset[str] = getattr(self.lms, "KEYED_BY_EMAIL", frozenset())
        profile = getattr(self.lms, "profile", None)
        if profile in keyed and self.mapping.user_name != "email":
            raise ValueError(f"mapping.user_name must be \"email\" for profile "
                             f"{profile!r}: that LMS keys its users by email")
        return self

    @model_validator(mode="after")
    def _target_holds_the_attributes(self) -> Config:
        # sync.config_mapping checks the section alone; which attributes exist is the
        # target's business (sync.mapping_targets).
        check_targets(self)
        return self

    @model_validator(mode="after")
    def _one_mass_window(self) -> Config:
        # [realtime] mass_window_minutes came first, for real-time runs alone; it still
        # sets the one window every run shares, unless [guards] sets it too.
        old, new = self.realtime.model_fields_set, self.guards.model_fields_set
        if "mass_window_minutes" in old:
            if "mass_window_minutes" not in new:
                self.guards.mass_window_minutes = self.realtime.mass_window_minutes
            elif self.guards.mass_window_minutes != self.realtime.mass_window_minutes:
                raise ValueError(
                    f"realtime.mass_window_minutes ({self.realtime.mass_window_minutes:g}) "
                    f"and guards.mass_window_minutes ({self.guards.mass_window_minutes:g}) "
                    "disagree; set only guards.mass_window_minutes (one window for every run)")
        return self

    @model_validator(mode="after")
    def _audiences_fit(self) -> Config:
        check_audiences(self)  # ids, custom fields, a target that holds them
        return self

    @model_validator(mode="after")
    def _date_formats_read_dates(self) -> Config:
        # One bad entry would make every dated row invalid; every source type has the key.
        try:
            check_date_formats(self.hris.date_formats)
        except ValueError as exc:
            raise ValueError(f"key 'hris.date_formats': {exc}") from None
        return self

    @model_validator(mode="after")
    def _secrets_stay_safe(self) -> Config:
        # A secret pasted into a *_env key is never repeated; plain HTTP beyond loopback
        # needs the section's explicit allow_insecure_http (sync/config_safety.py).
        pasted = config_safety.secret_like_env_keys(self)
        if pasted:
            raise ValueError(config_safety.secret_sentence(pasted[0]))
        refused = config_safety.refused_cleartext(self)
        if refused:
            raise ValueError(refused)
        return self

    def fingerprint(self) -> str:
        """What must invalidate cached mapping results when it changes."""
        from rostersync.sync.models import digest_of

        parts = {
            "columns": self.hris.columns, "attributes": self.hris.attributes,
            "formats": self.hris.date_formats, "mapping": self.mapping.fingerprint_data(),
            "scope": self.scope.model_dump(mode="json"),
            # Source-specific rules that change what a raw record means (Workday's flags).
            "interpretation": getattr(self.hris, "interpretation", lambda: None)(),
            # Fields the target cannot hold change what is compared.
            "unmanaged": sorted(getattr(self.lms, "unmanaged_fields", ())),
        }
        if self.audiences:  # rules decide membership: a changed rule re-evaluates everyone
            parts["audiences"] = audiences_fingerprint(self)
        return digest_of(parts).hex()


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a config file; relative paths resolve against its folder."""
    path = Path(path)
    try:
        data = path.read_bytes()
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: the config file is not UTF-8 text "
                          f"({undecodable(data, exc)}); save it as UTF-8") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found (run `rostersync init` to write "
                          "a commented sample)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(document, path)


def config_from_dict(data: dict[str, Any], path: Path | None = None) -> Config:
    where = f"{path}: " if path else ""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(where + config_errors.summarise(exc.errors(), Config)) from None
    base = path.parent if path else Path.cwd()
    config.source_path = path
    config.database.path = _resolve(base, config.database.path)
    if config.metrics.textfile is not None:  # beside the config, like the database
        config.metrics.textfile = _resolve(base, config.metrics.textfile)
    for key, url, _ in config_safety.cleartext_urls(config):  # allowed, or it was refused
        log.warning("%s%s", where, config_safety.insecure_sentence(key, url))
    textfile_problem = metrics_textfile_problem(config)
    if textfile_problem is not None:
        log.warning("%s%s", where, textfile_problem)
    if config.hris.type == "csv":
        config.hris.path = _resolve(base, config.hris.path)
        if config.hris.delta_path is not None:
            config.hris.delta_path = _resolve(base, config.hris.delta_path)
    return config


def metrics_textfile_problem(config: Config) -> str | None:
    """One sentence when the metrics textfile cannot be written for want of its folder."""
    textfile = config.metrics.textfile
    if not config.metrics.enabled or textfile is None or textfile.parent.is_dir():
        return None
    return (f"key 'metrics.textfile': the folder {textfile.parent} does not exist; the "
            "metrics textfile is not written until it does")


def _resolve(base: Path, p: Path) -> Path:
    p = p.expanduser()
    return p if p.is_absolute() else (base / p)


def secret_from_env(name: str | None, what: str) -> str | None:
    """Read a secret named by the config; never logged, never stored."""
    if not name:
        return None
    if config_safety.looks_like_secret(name):  # never echo what may be the secret itself
        raise ConfigError(config_safety.secret_sentence(what))
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set (the config "
                          f"names it in {what}; the secret itself never goes in the file)")
    return value


def default_config_path() -> Path:
    return Path(os.environ.get("ROSTERSYNC_CONFIG", "rostersync.toml"))
