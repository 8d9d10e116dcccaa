"""Config sections for real-time sync, metrics and alerts ([realtime], [metrics],
[alerts]). Defaults keep every feature off, so older configs stay valid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from rostersync.sync.config_base import Strict, http_url

OpKindName = Literal["create", "update", "deactivate", "reactivate", "link", "delete"]
_REALTIME_KINDS: tuple[OpKindName, ...] = ("create", "deactivate", "reactivate", "delete")
ALL_KINDS: frozenset[str] = frozenset(
    ("create", "update", "deactivate", "reactivate", "link", "delete"))


def host_port(value: str) -> str:
    """``host:port`` (an IPv6 host in brackets); port 0 picks a free one."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:8787, not {value!r}")
    return value


def split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


class RealtimeConfig(Strict):
    """The webhook listener and which operation kinds act on an event at once.

    mode: "batch" records events and leaves every change to the scheduled runs;
    "realtime" applies every kind of change on the event; "hybrid" applies only
    ``realtime_kinds`` on the event (terminations and hires by default) and leaves the
    rest (profile updates) to the scheduled runs.
    """

    enabled: bool = False
    # Loopback by default: put a TLS-terminating proxy in front to receive from outside.
    listen: str = "127.0.0.1:8787"
    mode: Literal["batch", "realtime", "hybrid"] = "hybrid"
    realtime_kinds: list[OpKindName] = Field(default_factory=lambda: list(_REALTIME_KINDS))
    # Events wait this long before acting, so a burst coalesces and a bad record can be
    # caught (suppressed, or held by the windowed mass-deactivation check) before it spreads.
    buffer_seconds: float = Field(0.0, ge=0, le=3600)
    # Environment variables holding the shared secrets (BambooHR's webhook privateKey; the
    # key of the generic signed JSON event). An intake without a secret is not served.
    bamboohr_secret_env: str | None = None
    generic_secret_env: str | None = None
    # A signed request older (or newer) than this is refused as a possible replay.
    max_skew_seconds: float = Field(300.0, gt=0, le=86400)
    # Older name of guards.mass_window_minutes (one window for every kind of run): when
    # set here and not there, it sets that window (sync.config.Config._one_mass_window).
    mass_window_minutes: float = Field(60.0, ge=0)
    # Received events are kept this long (the console's list, replay detection).
    keep_events_days: float = Field(7.0, gt=0)
    # Connections the webhook listener serves at once; one more is answered 503 at once.
    # Lowered to half the process's open-file limit (ulimit -n) when that is smaller.
    max_connections: int = Field(64, ge=1, le=100000)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return host_port(value)

    @model_validator(mode="after")
    def _needs_a_secret(self) -> RealtimeConfig:
        if self.enabled and not (self.bamboohr_secret_env or self.generic_secret_env):
            raise ValueError("realtime.enabled needs realtime.bamboohr_secret_env or "
                             "realtime.generic_secret_env (unsigned webhooks are refused)")
        return self

    def event_kinds(self) -> frozenset[str]:
        """Operation kinds an event applies at once (empty: events only get recorded)."""
        if not self.enabled or self.mode == "batch":
            return frozenset()
        if self.mode == "realtime":
            return ALL_KINDS
        return frozenset(self.realtime_kinds)

    def describe_mode(self) -> str:
        if not self.enabled:
            return "batch (real-time intake off)"
        if self.mode != "hybrid":
            return self.mode
        kinds = ", ".join(sorted(self.realtime_kinds)) or "nothing"
        return f"hybrid ({kinds} in real time)"


class MetricsConfig(Strict):
    enabled: bool = False
    # The Prometheus endpoint (GET /metrics); "" serves none (textfile only).
    listen: str = "127.0.0.1:9464"
    # node_exporter's textfile collector: written atomically every textfile_every_seconds.
    textfile: Path | None = None
    textfile_every_seconds: float = Field(60.0, gt=0)

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return host_port(value) if value else value


class WebhookChannel(Strict):
    """A generic JSON POST; the body carries "text", so a Slack incoming webhook works."""

    type: Literal["webhook"] = "webhook"
    # The URL of a Slack-style webhook is a secret: name its environment variable.
    url_env: str | None = None
    url: str | None = None  # a URL that is not a secret (e.g. a local relay)
    allow_insecure_http: bool = False  # plain http:// beyond loopback (sync/config_safety.py)
    timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @model_validator(mode="after")
    def _one_url(self) -> WebhookChannel:
        if bool(self.url) == bool(self.url_env):
            raise ValueError("an alerts webhook channel needs exactly one of url or url_env")
        return self


class CommandChannel(Strict):
    """A command run with the notice as JSON on stdin (no shell)."""

    type: Literal["command"] = "command"
    command: list[str] = Field(min_length=1)
    pass_env: list[str] = Field(default_factory=list)  # more variables it may see (alerts.py)
    timeout_seconds: float = Field(30.0, gt=0)


AlertChannel = Annotated[WebhookChannel | CommandChannel, Field(discriminator="type")]


class AlertsConfig(Strict):
    channels: list[AlertChannel] = Field(default_factory=list)
    check_every_seconds: float = Field(30.0, gt=0)
    # A source counts as stale for alerting from this staleness state on.
    stale_from: Literal["warning", "critical"] = "critical"
